//! `tianxia serve`: everything in one process. The World runs on a thread of its own, driven
//! at fixed rates; a tokio runtime beside it serves HTTP from the read models the World
//! publishes. They share no lock: the World swaps in new read models and listens for a stop
//! message between passes.
//!
//! Start-up: lock the data directory, recover the world from its store's last checkpoint (or
//! build it from the scenario), apply the logged commands after it, and owe the clock the
//! downtime. Shutdown (SIGTERM or Ctrl-C): stop accepting requests, stop logging commands,
//! let the World finish its pass and hand over a final checkpoint, wait for the store to take
//! it, release the data directory. If the World's thread dies, the server stops with an error
//! rather than serve a frozen world.

use std::{
    io::Write,
    sync::Arc,
    thread::JoinHandle,
    time::{Duration, Instant, SystemTime},
};

use anyhow::Context;
use components::{
    command::{Command, Inbound},
    events::DomainEvent,
    persist::Recovered,
    read_model::ReadHandle,
};
use net::{
    Accounts, AppState, Backends, CommandBus, DurableFuture, EventLog, Journal, PersistStatus,
    Probe, ProbeFuture, RateLimits, lease::Lease, ops_router, router,
};
use persistence::{
    CommandLog, DataDir, Embedded, EmbeddedStore, MongoProbe, MongoStore, WorldStore,
};
use systems::{
    app::{AppSettings, Origin, build_app_with},
    assets::GameData,
    driver::{Driver, MonotonicClock},
    hot::HotSettings,
    persist::PersistSettings,
    spawn::WorldSettings,
};
use tokio::{
    net::TcpListener,
    signal::unix::{Signal, SignalKind, signal},
    sync::oneshot,
};
use tracing::{error, info};

use crate::{
    Failure,
    accounts::{EmbeddedAccounts, MongoAccounts, RedisAccounts},
    bridge::{Intake, LeaseKeeper, Release, Stream},
    config::{Role, ServeConfig},
    hot::HotThread,
    journal::JournalThread,
    metrics,
    persister::Persister,
};

/// How long a backend probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often backends are probed.
const PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// Commands waiting for the World at most; beyond, `POST /api/commands` answers 503.
const COMMAND_QUEUE: usize = 100_000;
/// How long MongoDB may take to answer before an operation counts as failed.
const MONGO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long in-flight requests get to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The World's thread and the means to stop it.
struct WorldThread {
    stop: crossbeam_channel::Sender<()>,
    /// Set to stop without a final checkpoint (this process may no longer write the world).
    abandon: Arc<std::sync::atomic::AtomicBool>,
    handle: JoinHandle<()>,
}

/// Tells the server when the World's thread ends, however it ends.
struct ExitNotice(Option<oneshot::Sender<()>>);

impl Drop for ExitNotice {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// What the World thread starts from.
struct Start {
    data: Arc<GameData>,
    recovered: Option<Recovered>,
    /// Logged commands after the recovered position, to apply again first.
    replay: Vec<Command>,
    persist: PersistSettings,
    /// With a lease: the first checkpoint, full, must be written (as this status shows)
    /// before any command is applied (SPEC 7).
    checkpoint_first: Option<Arc<PersistStatus>>,
}

/// How long the first checkpoint of a lease holder may take.
const FIRST_CHECKPOINT_WAIT: Duration = Duration::from_secs(60);

/// Closes a full epoch at once and waits until the store has it.
fn write_first_checkpoint(
    world: &mut bevy_ecs::world::World,
    status: &PersistStatus,
) -> Result<(), String> {
    let epoch = systems::persist::close_epoch(world);
    let deadline = Instant::now() + FIRST_CHECKPOINT_WAIT;
    loop {
        let report = status.report();
        if report.durable_epoch >= epoch {
            info!(epoch, "full checkpoint written under this lease epoch");
            return Ok(());
        }
        if status.fenced() {
            return Err(report
                .error
                .unwrap_or_else(|| "fenced out by a newer writer".into()));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the first checkpoint was not written within {} s: {}",
                FIRST_CHECKPOINT_WAIT.as_secs(),
                report.error.unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl WorldThread {
    /// Builds the World on its own thread (from the checkpoint, or the scenario), applies
    /// the logged commands after it, then runs it; returns once it runs, or why it could not.
    fn start(
        start: Start,
        config: &ServeConfig,
        read: ReadHandle,
        inbox: crossbeam_channel::Receiver<Inbound>,
        exited: oneshot::Sender<()>,
    ) -> anyhow::Result<WorldThread> {
        let (stop, stop_rx) = crossbeam_channel::bounded(1);
        let abandon = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let abandoned = abandon.clone();
        let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<(), String>>(1);
        let mut settings = AppSettings::new(WorldSettings {
            name: config.world.clone(),
            speed: config.rates.speed,
        });
        settings.event_window = config.event_window;
        let rates = config.rates.clone();
        let handle = std::thread::Builder::new()
            .name("world".into())
            .spawn(move || {
                let _notice = ExitNotice(Some(exited));
                let Start {
                    data,
                    recovered,
                    replay,
                    persist,
                    checkpoint_first,
                } = start;
                let speed_milli = (rates.speed * 1_000.0).round() as u64;
                // The world went on while the server was down: the clock owes the downtime.
                let owed = recovered.as_ref().map_or(0, |r| {
                    let down_ms = components::time::unix_ms(SystemTime::now())
                        .saturating_sub(r.checkpoint.updated_at);
                    (u128::from(down_ms) * u128::from(speed_milli) / 1_000_000) as i64
                });
                let origin = match recovered {
                    Some(recovered) => Origin::Checkpoint(Box::new(recovered)),
                    None => Origin::Scenario,
                };
                let mut app =
                    match build_app_with(data, &settings, read, Some(inbox), origin, Some(persist))
                    {
                        Ok(app) => app,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                let world = app.world_mut();
                if let Some(status) = checkpoint_first
                    && let Err(e) = write_first_checkpoint(world, &status)
                {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
                if !replay.is_empty() {
                    info!(
                        commands = replay.len(),
                        "applying the logged commands after the checkpoint"
                    );
                    systems::persist::replay(world, replay);
                }
                let mut driver = Driver::new(MonotonicClock::new(), &rates).owing(owed);
                if owed > 0 {
                    info!(
                        game_seconds = owed,
                        "catching up on the time the server was down"
                    );
                }
                let _ = ready_tx.send(Ok(()));
                info!(
                    speed = rates.speed,
                    intake_hz = rates.intake_hz,
                    strategy_hz = rates.strategy_hz,
                    "world running"
                );
                driver.run(world, &stop_rx);
                if abandoned.load(std::sync::atomic::Ordering::SeqCst) {
                    info!("world stopped without a final checkpoint: another writer has the world");
                    return;
                }
                // The journal has stopped: what it handed over is applied before the final
                // checkpoint, so a graceful restart replays nothing.
                systems::rules::commands::drain_inbox(world);
                world.run_schedule(systems::schedule::Publish);
                let epoch = systems::persist::close_epoch(world);
                info!(epoch, "world stopped; final checkpoint handed to the store");
            })
            .context("cannot start the world thread")?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(WorldThread {
                stop,
                abandon,
                handle,
            }),
            Ok(Err(e)) => {
                let _ = handle.join();
                Err(anyhow::anyhow!("the world cannot be recovered: {e}"))
            }
            Err(_) => {
                let _ = handle.join();
                Err(anyhow::anyhow!("the world thread stopped while starting"))
            }
        }
    }

    /// Asks the World to stop after its current pass and waits for it; with `checkpoint`,
    /// it applies what it was handed and closes a final epoch first.
    fn stop(self, checkpoint: bool) -> anyhow::Result<()> {
        self.abandon
            .store(!checkpoint, std::sync::atomic::Ordering::SeqCst);
        let _ = self.stop.send(());
        self.handle
            .join()
            .map_err(|_| anyhow::anyhow!("the world thread panicked"))
    }
}

/// Adapts the MongoDB client to a readiness probe.
struct MongoReadiness(MongoProbe);

impl Probe for MongoReadiness {
    fn name(&self) -> &'static str {
        "mongodb"
    }

    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(async move { self.0.ping().await.map_err(|e| e.to_string()) })
    }
}

async fn probes(config: &ServeConfig) -> Result<Vec<Arc<dyn Probe>>, Failure> {
    let mut probes: Vec<Arc<dyn Probe>> = Vec::new();
    if let Some(url) = &config.redis_url {
        let probe = net::redis_probe::RedisProbe::new(url)
            .map_err(|e| Failure::Usage(format!("REDIS_URL is not a Redis URL: {e}")))?;
        probes.push(Arc::new(probe));
    }
    if let Some(uri) = &config.mongodb_uri {
        let probe = MongoProbe::new(uri, PROBE_TIMEOUT)
            .await
            .map_err(|e| Failure::Usage(e.to_string()))?;
        probes.push(Arc::new(MongoReadiness(probe)));
    }
    Ok(probes)
}

/// Why serving stopped.
pub(crate) enum Stop {
    Signal(&'static str),
    WorldEnded,
    /// This process may no longer write the world (lease lost, or fenced out).
    Fatal(String),
}

pub(crate) struct Signals {
    terminate: Signal,
    interrupt: Signal,
}

impl Signals {
    /// Installs the handlers now, so a signal that arrives early is not lost.
    pub(crate) fn install() -> anyhow::Result<Signals> {
        Ok(Signals {
            terminate: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            interrupt: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
        })
    }

    pub(crate) async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}

/// The durable event log over the world's store.
pub(crate) struct StoreEvents {
    pub(crate) store: Arc<dyn WorldStore>,
    pub(crate) world: String,
}

impl EventLog for StoreEvents {
    fn events<'a>(
        &'a self,
        after: u64,
        limit: usize,
        aggregate: Option<&'a str>,
    ) -> DurableFuture<'a, Vec<DomainEvent>> {
        Box::pin(async move {
            self.store
                .events(&self.world, after, limit, aggregate)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// Runs `serve` until a signal, or until the World's thread ends.
pub fn run(config: ServeConfig) -> Result<(), Failure> {
    let data = Arc::new(systems::assets::load(&config.assets, &config.scenario)?);
    info!(
        assets = %config.assets.display(),
        scenario = %config.scenario,
        data_hash = %data.data_hash,
        "designer data loaded"
    );
    let data_dir = DataDir::lock(&config.data_dir).map_err(anyhow::Error::from)?;
    info!(data_dir = %data_dir.path().display(), "data directory locked");
    let store = Arc::new(EmbeddedStore::open(&data_dir).map_err(anyhow::Error::from)?);
    info!(store = %store.path().display(), "embedded store open");
    let log = Arc::new(CommandLog::open(&data_dir, &config.world).map_err(anyhow::Error::from)?);
    let metrics = metrics::install()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tianxia-io")
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;

    let mut signals = runtime.block_on(async { Signals::install() })?;
    // With MongoDB, accounts, checkpoints and events live there; the command log stays in
    // the data directory (SPEC 8).
    let (fatal_tx, fatal_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    // One Redis client and connection for the lease, tokens and the stream's ordinary
    // requests (the stream's blocking reads get a connection of their own).
    let redis = match &config.redis_url {
        Some(url) => {
            let client = redis::Client::open(url.as_str())
                .map_err(|e| Failure::Usage(format!("REDIS_URL is not a Redis URL: {e}")))?;
            let manager = {
                let _entered = runtime.enter();
                crate::bridge::manager(&client, crate::bridge::REDIS_TIMEOUT)?
            };
            Some((client, manager))
        }
        None => None,
    };
    let mut lease: Option<LeaseKeeper> = None;
    let mut lease_epoch = 0;
    let (world_store, accounts): (Arc<dyn WorldStore>, Accounts) = match &config.mongodb_uri {
        Some(uri) => {
            let mut mongo = runtime
                .block_on(MongoStore::connect(uri, MONGO_TIMEOUT))
                .map_err(|e| Failure::Usage(e.to_string()))?;
            if let Some((_, redis)) = &redis {
                // The single writer (SPEC 7): the Redis lease first (a standby waits here),
                // then the lease epoch from MongoDB's fence, before anything is read.
                let Some(keeper) = runtime.block_on(take_lease(
                    redis,
                    &config.world,
                    &mut signals,
                    fatal_tx.clone(),
                )) else {
                    info!("stopped while standing by");
                    return Ok(());
                };
                lease = Some(keeper);
                let Some(epoch) =
                    runtime.block_on(retrying("take the lease epoch", &mut signals, async || {
                        mongo.take_fence(&config.world).await
                    }))
                else {
                    info!("stopped before the lease epoch was taken");
                    return Ok(());
                };
                info!(
                    lease_epoch = epoch,
                    "lease epoch taken from the MongoDB fence"
                );
                lease_epoch = epoch;
            }
            let mongo = Arc::new(mongo);
            let players = MongoAccounts::new(mongo.clone());
            // With Redis, tokens live there, shared by every process (SPEC 7).
            let accounts = match &redis {
                Some((_, redis)) => {
                    Accounts::new(Arc::new(RedisAccounts::new(players, redis.clone())))
                }
                None => Accounts::new(Arc::new(players)),
            };
            (mongo, accounts)
        }
        None => (
            Arc::new(Embedded::new(store.clone())),
            Accounts::new(Arc::new(EmbeddedAccounts::new(store.clone()))),
        ),
    };
    let started = Instant::now();
    info!(world = %config.world, store = world_store.name(), "recovering the world");
    let Some(recovery) =
        runtime.block_on(retrying("recover the world", &mut signals, async || {
            world_store.recover(&config.world).await
        }))
    else {
        info!("stopped before the world was recovered");
        return Ok(());
    };
    let incarnation = recovery.incarnation;
    let mut recovered = recovery.world;
    // With a lease, a hot snapshot in Redis newer than MongoDB's checkpoint is where the
    // world resumes (SPEC 8); its first checkpoint then writes what the store lacks.
    let mut last_epoch = recovered.as_ref().map_or(0, |r| r.checkpoint.epoch);
    // Hot snapshots are large: they get a connection of their own, so the lease's renewals
    // never wait behind one.
    let hot_redis = match (&redis, &lease) {
        (Some((client, _)), Some(_)) => {
            let _entered = runtime.enter();
            Some(crate::bridge::manager(client, crate::hot::WRITE_TIMEOUT)?)
        }
        _ => None,
    };
    if let Some(redis) = &hot_redis {
        let checkpoint = recovered.as_ref().map(|r| r.checkpoint.clone());
        let mut redis = redis.clone();
        let Some(hot) = runtime.block_on(retrying(
            "read the hot snapshot",
            &mut signals,
            async || crate::hot::read_newer(&mut redis, &config.world, checkpoint.as_ref()).await,
        )) else {
            info!("stopped before the world was recovered");
            return Ok(());
        };
        if let Some(hot) = hot {
            info!(
                lease_epoch = hot.checkpoint.lease_epoch,
                epoch = hot.checkpoint.epoch,
                game_seconds = hot.checkpoint.game_seconds,
                owed_events = hot.events.len(),
                "recovering from the hot snapshot in Redis, newer than the checkpoint"
            );
            last_epoch = last_epoch.max(hot.checkpoint.epoch);
            recovered = Some(Recovered {
                checkpoint: hot.checkpoint,
                entities: hot.entities,
                incarnation,
                events: hot.events,
            });
        }
    }
    let floor = match &recovered {
        Some(r) => {
            info!(
                epoch = r.checkpoint.epoch,
                incarnation,
                entities = r.entities.len(),
                game_seconds = r.checkpoint.game_seconds,
                log_seq = r.checkpoint.log_seq,
                took_ms = started.elapsed().as_millis() as u64,
                "checkpoint loaded"
            );
            r.checkpoint.log_seq
        }
        None => {
            info!(scenario = %config.scenario, "no checkpoint: a new world from the scenario");
            0
        }
    };
    let logged = log.after(floor).map_err(anyhow::Error::from)?;
    // With Redis, commands come from the stream: the group continues from the checkpoint's
    // entry, and what a dead daemon left pending after it is applied again first.
    let (stream, replay, release) = match &redis {
        Some((client, redis)) => {
            if !logged.is_empty() {
                return Err(anyhow::anyhow!(
                    "the command log in {} holds {} commands no checkpoint covers; start once without REDIS_URL so they are applied and checkpointed, then with it",
                    data_dir.path().display(),
                    logged.len()
                )
                .into());
            }
            let mut stream = {
                let _entered = runtime.enter();
                Stream::new(client, redis.clone(), &config.world, lease_epoch)?
            };
            let from = recovered.as_ref().and_then(|r| r.checkpoint.stream_id);
            let Some((replay, after)) = runtime.block_on(retrying(
                "prepare the command stream",
                &mut signals,
                async || stream.recover(from).await,
            )) else {
                info!("stopped before the command stream was ready");
                return Ok(());
            };
            let release = Release::Stream {
                redis: stream.redis.clone(),
                keys: stream.keys.clone(),
                consumer: stream.consumer.clone(),
            };
            (Some((stream, after)), replay, release)
        }
        None => (None, logged, Release::Log(log.clone())),
    };
    let release_redis = match &release {
        Release::Stream { redis, .. } => Some(redis.clone()),
        Release::Log(_) => None,
    };
    let status = Arc::new(PersistStatus::new(world_store.name()));
    let (batch_tx, batch_rx) = crossbeam_channel::unbounded();
    // The lease holder's hot snapshots, written off the tick.
    let hot = match (&hot_redis, &lease) {
        (Some(redis), Some(lease)) => {
            let (tx, rx) = crossbeam_channel::bounded(1);
            let writer =
                net::hot::HotWriter::new(redis.clone(), &config.world, lease.tenure.clone());
            let thread = HotThread::start(rx, writer, runtime.handle().clone())?;
            let settings = HotSettings {
                sink: tx,
                interval: config.snapshot_interval,
                durable_seq: status.durable_seq_cell(),
            };
            Some((settings, thread))
        }
        _ => None,
    };
    let (hot_settings, hot_thread) = hot.unzip();
    let persister = Persister::start(
        batch_rx,
        world_store.clone(),
        Some(release),
        status.clone(),
        runtime.handle().clone(),
        Some(fatal_tx),
    )?;

    let read = ReadHandle::default();
    let (exited_tx, exited_rx) = oneshot::channel();
    let (bus_tx, bus_rx) = crossbeam_channel::bounded(COMMAND_QUEUE);
    let start = Start {
        data,
        recovered,
        replay,
        persist: PersistSettings {
            sink: batch_tx,
            flush_interval: config.flush_interval,
            lease_epoch,
            last_epoch,
            incarnation,
            hot: hot_settings,
        },
        // A lease holder writes a full checkpoint under its epoch before any command.
        checkpoint_first: lease.is_some().then(|| status.clone()),
    };
    let world = match WorldThread::start(start, &config, read.clone(), bus_rx, exited_tx) {
        Ok(world) => world,
        Err(e) => {
            persister.join();
            if let Some(thread) = hot_thread {
                thread.join();
            }
            return Err(e.into());
        }
    };
    info!(
        took_ms = started.elapsed().as_millis() as u64,
        "world ready"
    );
    let (journal, intake): (Arc<dyn Journal>, Intake) = match stream {
        Some((stream, after)) => {
            let tenure = lease.as_ref().map(|l| l.tenure.clone());
            let (journal, reader) = stream.start(runtime.handle(), bus_tx.clone(), after, tenure);
            (Arc::new(journal), Intake::Stream(reader))
        }
        None => {
            let (journal, thread) =
                JournalThread::start(log.clone(), floor, bus_tx.clone(), COMMAND_QUEUE)?;
            (Arc::new(journal), Intake::Log(thread))
        }
    };
    let bus = Arc::new(CommandBus::new(journal, bus_tx));
    // With Redis, the L2 read models, live events and battle frames follow the World.
    // Players active on api processes count as active in the World.
    let l2 = release_redis.map(|redis| {
        let tenure = lease.as_ref().map(|l| l.tenure.clone());
        let writer = net::l2::L2Writer::new(redis.clone(), &config.world, read.clone(), tenure);
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let presence = runtime.spawn(net::presence::feed(
            redis,
            config.world.clone(),
            bus.sender(),
            stop_rx.clone(),
        ));
        (stop, runtime.spawn(writer.run(stop_rx)), presence)
    });
    let events: Arc<dyn EventLog> = Arc::new(StoreEvents {
        store: world_store,
        world: config.world.clone(),
    });
    let served = runtime.block_on(serve_http(
        &config,
        HttpParts {
            read,
            bus,
            accounts,
            metrics,
            events,
            persist: status,
        },
        signals,
        exited_rx,
        fatal_rx,
    ));
    // In order: no more requests (done), no more commands taken in, the World's last pass
    // and final epoch, the store takes what waits (and releases the commands it covers),
    // then the data directory is released.
    // A process that may no longer write the world (fenced out, lease taken) writes nothing
    // more: no final checkpoint, no last L2 round.
    let writer = !matches!(served, Ok(Stop::Fatal(_)));
    intake.stop(runtime.handle());
    let stopped = world.stop(writer);
    if let Some((stop, task, presence)) = l2 {
        if writer {
            // One last round, with the World's final state.
            let _ = stop.send(true);
            let _ = runtime.block_on(task);
        } else {
            task.abort();
            let _ = stop.send(true);
        }
        let _ = runtime.block_on(presence);
    }
    persister.join();
    if let Some(thread) = hot_thread {
        thread.join();
    }
    if let Some(lease) = lease {
        lease.release(runtime.handle());
    }
    runtime.shutdown_timeout(Duration::from_secs(5));
    drop(data_dir);
    let stop = served?;
    stopped?;
    match stop {
        Stop::Signal(name) => {
            info!(signal = name, "shutdown complete");
            Ok(())
        }
        Stop::WorldEnded => Err(anyhow::anyhow!("the world thread stopped unexpectedly").into()),
        Stop::Fatal(why) => Err(anyhow::anyhow!("stopped: {why}").into()),
    }
}

/// Runs `attempt` until it succeeds, retrying with backoff (each failure logged as "cannot
/// {what} yet"); `None` if a signal came first. What start-up needs from a backend that may
/// not be reachable yet goes through here.
async fn retrying<T, E: std::fmt::Display>(
    what: &str,
    signals: &mut Signals,
    mut attempt: impl AsyncFnMut() -> Result<T, E>,
) -> Option<T> {
    let mut backoff = Duration::from_millis(200);
    loop {
        // An unreachable server fails within its client's timeout.
        tokio::select! {
            outcome = attempt() => match outcome {
                Ok(done) => return Some(done),
                Err(e) => error!(error = %e, "cannot {what} yet; retrying"),
            },
            name = signals.recv() => {
                info!(signal = name, "shutting down");
                return None;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            name = signals.recv() => {
                info!(signal = name, "shutting down");
                return None;
            }
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Waits for the lease of `world` (standing by while another daemon holds it) and keeps it
/// renewed; `None` if a signal came first. Losing it later is reported on `lost`.
async fn take_lease(
    redis: &redis::aio::ConnectionManager,
    world: &str,
    signals: &mut Signals,
    lost: tokio::sync::mpsc::UnboundedSender<String>,
) -> Option<LeaseKeeper> {
    let (_never, idle) = tokio::sync::watch::channel(false);
    tokio::select! {
        lease = Lease::acquire(redis, world, idle) => lease.map(|l| LeaseKeeper::start(l, lost)),
        name = signals.recv() => {
            info!(signal = name, "shutting down");
            None
        }
    }
}

/// What the HTTP side serves from.
pub(crate) struct HttpParts {
    pub(crate) read: ReadHandle,
    pub(crate) bus: Arc<CommandBus>,
    pub(crate) accounts: Accounts,
    pub(crate) metrics: metrics_exporter_prometheus::PrometheusHandle,
    pub(crate) events: Arc<dyn EventLog>,
    pub(crate) persist: Arc<PersistStatus>,
}

pub(crate) async fn serve_http(
    config: &ServeConfig,
    parts: HttpParts,
    mut signals: Signals,
    world_exited: oneshot::Receiver<()>,
    mut fatal: tokio::sync::mpsc::UnboundedReceiver<String>,
) -> Result<Stop, Failure> {
    let HttpParts {
        read,
        bus,
        accounts,
        metrics,
        events,
        persist,
    } = parts;
    let backends = Arc::new(Backends::new(probes(config).await?, PROBE_TIMEOUT));
    let listener = TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let monitor = backends.clone().spawn_monitor(PROBE_INTERVAL);
    let upkeep_handle = metrics.clone();
    let limits = Arc::new(RateLimits::default());
    let upkeep_limits = limits.clone();
    let upkeep = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(5));
        loop {
            ticker.tick().await;
            upkeep_handle.run_upkeep();
            upkeep_limits.forget_idle();
        }
    });

    let routes = match config.role {
        Role::Daemon => ops_router,
        Role::Serve | Role::Api => router,
    };
    let app = routes(AppState {
        read,
        metrics,
        backends,
        accounts,
        bus,
        limits: limits.clone(),
        events,
        persist,
    });
    let (stop_http, stop_http_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stop_http_rx.await;
        })
        .await
    });
    info!(%addr, "listening");
    println!("tianxia listening on http://{addr}");
    let _ = std::io::stdout().flush();

    let stop = tokio::select! {
        name = signals.recv() => Stop::Signal(name),
        _ = world_exited => Stop::WorldEnded,
        Some(why) = fatal.recv() => Stop::Fatal(why),
    };
    match &stop {
        Stop::Signal(name) => info!(signal = name, "shutting down"),
        Stop::WorldEnded => error!("the world thread ended; shutting down"),
        Stop::Fatal(why) => {
            error!(reason = %why, "this process may no longer write the world; shutting down")
        }
    }
    let _ = stop_http.send(());
    match tokio::time::timeout(DRAIN_TIMEOUT, server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => error!(error = %e, "HTTP server failed"),
        Ok(Err(e)) => error!(error = %e, "HTTP server task failed"),
        Err(_) => {
            error!("in-flight requests did not finish within {DRAIN_TIMEOUT:?}; dropping them")
        }
    }
    monitor.abort();
    upkeep.abort();
    Ok(stop)
}
