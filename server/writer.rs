//! A world's single writer: what `serve` and `daemon` run (docs/operations.md#start-up).
//! [`run`] is the list of start-up steps, each in the module that owns it:
//!
//! 1. start the runtime and listen on the HTTP address (a taken port stops the start before
//!    anything is opened or created), load the designer data, lock the data directory, check
//!    and open the embedded store and the command log, install the signal handlers;
//! 2. with Redis, take the lease (standing by while another daemon holds it) and the lease
//!    epoch from MongoDB's fence ([`recovery::take_lease`]); with MongoDB alone, the lease
//!    epoch alone ([`recovery::take_fence`]); the store, MongoDB or embedded,
//!    and the accounts beside it ([`recovery::Store`]);
//! 3. recover the world: the store's last checkpoint, or a newer hot snapshot
//!    ([`recovery::recover`]);
//! 4. find the command source and what must be applied again ([`recovery::command_source`]);
//! 5. start the store's worker ([`Persister`]) and, under a lease, the hot snapshot's writer
//!    ([`HotThread`]);
//! 6. start the World ([`WorldThread`]): built from what was recovered, a full checkpoint
//!    first under a lease, the commands replayed, the downtime owed to the clock;
//! 7. start the intake (the journal thread over the command log, or the stream reader) and,
//!    with Redis, the L2 writer and the presence feed;
//! 8. serve HTTP ([`serve_http`]) until a signal, the World's end, or a lost lease.
//!
//! Shutdown runs the other way: no more requests, no more commands taken in, the World's
//! last pass and final epoch (not when another writer has the world), the store takes what
//! waits, the lease is released, the data directory unlocked.

use std::{sync::Arc, time::Duration, time::Instant};

use anyhow::Context;
use components::{
    command::Inbound,
    durable::{EventLog, Journal, PersistStatus},
    read_model::ReadHandle,
    stream::EntryId,
};
use net::{
    CommandBus,
    redis::{
        l2::L2Writer,
        lease::Tenure,
        presence,
        stream::{CommandStream, ReaderTask},
    },
};
use persistence::{CommandLog, DataDir, EmbeddedStore, JournalThread, WorldEvents};
use redis::aio::ConnectionManager;
use systems::{
    assets::{GameData, Reloader},
    persist::PersistSettings,
};
use tokio::{sync::oneshot, task::JoinHandle};
use tracing::{info, warn};

use crate::{
    Failure,
    backends::{RedisLink, runtime},
    config::ServeConfig,
    hot::{self, HotThread},
    http::{HttpParts, Routes, Standby, Stop, bind, serve_http},
    metrics,
    persister::Persister,
    recovery::{self, Store},
    reload::{Reloads, WorldAdmin},
    signals::Signals,
    world_thread::{Start, WorldThread},
};

/// Commands waiting to be logged, and waiting for the World, at most: beyond the first,
/// `POST /api/commands` answers 503; while the World's channel is full, the journal and the
/// stream reader wait.
const COMMAND_QUEUE: usize = 100_000;

/// How commands come in.
enum Intake {
    Log(JournalThread),
    Stream(ReaderTask),
}

impl Intake {
    /// Starts taking commands for the World: the stream reader (its journal the submit
    /// script), or the journal thread over the command log, its sequences after `floor`.
    fn start(
        stream: Option<(CommandStream, EntryId)>,
        log: &Arc<CommandLog>,
        floor: u64,
        world: &crossbeam_channel::Sender<Inbound>,
        tenure: Option<Tenure>,
        runtime: &tokio::runtime::Handle,
    ) -> Result<(Arc<dyn Journal>, Intake), Failure> {
        Ok(match stream {
            Some((stream, after)) => {
                let (journal, reader) = stream.start(runtime, world.clone(), after, tenure);
                (Arc::new(journal), Intake::Stream(reader))
            }
            None => {
                let (journal, thread) =
                    JournalThread::start(log.clone(), floor, world.clone(), COMMAND_QUEUE)
                        .context("cannot start the journal thread")?;
                (Arc::new(journal), Intake::Log(thread))
            }
        })
    }

    /// No more commands reach the World after this.
    fn stop(self, runtime: &tokio::runtime::Handle) {
        match self {
            Intake::Log(thread) => thread.join(),
            Intake::Stream(reader) => reader.stop(runtime),
        }
    }
}

/// In Redis mode, what follows the World: the L2 read models, live events and battle frames
/// written after each publish, and players active on api processes fed to the World.
struct Followers {
    stop: tokio::sync::watch::Sender<bool>,
    l2: JoinHandle<()>,
    presence: JoinHandle<()>,
}

impl Followers {
    fn start(
        redis: ConnectionManager,
        config: &ServeConfig,
        read: &ReadHandle,
        bus: &CommandBus,
        tenure: Option<Tenure>,
        runtime: &tokio::runtime::Handle,
    ) -> Followers {
        let writer = L2Writer::new(redis.clone(), &config.world, read.clone(), tenure);
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let presence = runtime.spawn(presence::feed(
            redis,
            config.world.clone(),
            bus.sender(),
            stop_rx.clone(),
        ));
        Followers {
            stop,
            l2: runtime.spawn(writer.run(stop_rx)),
            presence,
        }
    }

    /// Stops them; a `writer` writes one last round, with the World's final state.
    fn stop(self, writer: bool, runtime: &tokio::runtime::Handle) {
        if writer {
            let _ = self.stop.send(true);
            let _ = runtime.block_on(self.l2);
        } else {
            self.l2.abort();
            let _ = self.stop.send(true);
        }
        let _ = runtime.block_on(self.presence);
    }
}

/// Loads the designer data of the configured scenario, with its reloader.
pub(crate) fn load_data(config: &ServeConfig) -> Result<(Arc<GameData>, Reloader), Failure> {
    let (data, reloader) = systems::assets::load_reloadable(&config.assets, &config.scenario)?;
    info!(
        assets = %config.assets.display(),
        scenario = %config.scenario,
        data_hash = %data.data_hash,
        "designer data loaded"
    );
    Ok((Arc::new(data), reloader))
}

/// Reloads designer data waiting for the World at most (it drains them every intake tick).
const RELOAD_QUEUE: usize = 8;

/// Runs the world's writer, serving `routes`, until a signal or until it may no longer run.
pub(crate) fn run(config: ServeConfig, routes: Routes) -> Result<(), Failure> {
    // 1. The runtime and the address, the data, the data directory and what it holds, the
    // signals.
    let runtime = runtime(2)?;
    let mut signals = runtime.block_on(async { Signals::install() })?;
    let listener = bind(&config, &runtime)?;
    let (data, reloader) = load_data(&config)?;
    let (reload_tx, reload_rx) = crossbeam_channel::bounded(RELOAD_QUEUE);
    let read = ReadHandle::default();
    let reloads = Reloads::new(reloader, reload_tx, read.clone());
    let (admin_tx, admin_rx) = crossbeam_channel::bounded(crate::reload::ADMIN_QUEUE);
    let data_dir = DataDir::lock(&config.data_dir).map_err(anyhow::Error::from)?;
    info!(data_dir = %data_dir.path().display(), "data directory locked");
    if let Some(pid) = data_dir.previous_run_unclean() {
        warn!(
            data_dir = %data_dir.path().display(),
            previous_pid = pid,
            "the previous run on this data directory did not stop cleanly (it was killed, crashed, or failed): the world recovers from its last checkpoint and the commands after it"
        );
    }
    let embedded = Arc::new(EmbeddedStore::open(&data_dir).map_err(anyhow::Error::from)?);
    info!(store = %embedded.path().display(), "embedded store open");
    let log = Arc::new(CommandLog::open(&data_dir, &config.world).map_err(anyhow::Error::from)?);
    let metrics = metrics::install()?;
    let (fatal_tx, fatal_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let redis = {
        let _entered = runtime.enter();
        config
            .redis_url
            .as_deref()
            .map(RedisLink::open)
            .transpose()?
    };

    // 2. The store; with Redis, the lease and the lease epoch first.
    let mut mongo = runtime.block_on(recovery::connect_mongo(&config))?;
    let (lease, lease_epoch) = match (&redis, &mut mongo) {
        (Some(link), Some(mongo)) => {
            let standby = Standby::start(&listener, &runtime);
            let taken = runtime.block_on(recovery::take_lease(
                &config,
                link,
                mongo,
                &mut signals,
                fatal_tx.clone(),
            ));
            standby.stop(&runtime);
            let Some((lease, epoch)) = taken else {
                data_dir.release_cleanly();
                return Ok(());
            };
            (Some(lease), epoch)
        }
        (None, Some(mongo)) => {
            let Some(epoch) = runtime.block_on(recovery::take_fence(&config, mongo, &mut signals))
            else {
                data_dir.release_cleanly();
                return Ok(());
            };
            (None, epoch)
        }
        _ => (None, 0),
    };
    let store = Store::new(&embedded, mongo, redis.as_ref());
    let started = Instant::now();

    // 3. The world as it was: the checkpoint, or a newer hot snapshot. Hot snapshots are
    // large: they get a connection of their own, so the lease's renewals never wait behind
    // one.
    let hot_redis = match (&redis, &lease) {
        (Some(link), Some(_)) => {
            let _entered = runtime.enter();
            Some(link.connection(hot::WRITE_TIMEOUT)?)
        }
        _ => None,
    };
    let Some(resumed) = runtime.block_on(recovery::recover(
        &config,
        &store,
        hot_redis.as_ref(),
        &mut signals,
    ))?
    else {
        data_dir.release_cleanly();
        return Ok(());
    };
    if let Some(recovered) = &resumed.recovered {
        // A sandbox's state was edited by hand: it stays a sandbox, and no other world
        // becomes one (docs/sandbox.md).
        let is_sandbox = recovered.checkpoint.sandbox.is_some();
        if is_sandbox != config.sandbox {
            data_dir.release_cleanly();
            return Err(Failure::Usage(if is_sandbox {
                format!(
                    "world {} in {} is a sandbox: serve it with --sandbox",
                    config.world,
                    config.data_dir.display()
                )
            } else {
                format!(
                    "world {} in {} was not created as a sandbox and cannot become one: give the sandbox a world of its own (--world or --data-dir)",
                    config.world,
                    config.data_dir.display()
                )
            }));
        }
    }

    // 4. Where commands come from, and what is applied again first.
    let Some(source) = runtime.block_on(recovery::command_source(
        &resumed,
        &log,
        &data_dir,
        redis.as_ref(),
        &config,
        lease_epoch,
        &mut signals,
    ))?
    else {
        data_dir.release_cleanly();
        return Ok(());
    };

    // 5. The store's worker, and the lease holder's hot snapshots, written off the tick.
    let status = Arc::new(PersistStatus::new(store.world_store.name()));
    let (batch_tx, batch_rx) = crossbeam_channel::unbounded();
    let hot = match (&hot_redis, &lease) {
        (Some(redis), Some(lease)) => Some(HotThread::for_lease(
            redis, lease, &config, &status, &runtime,
        )?),
        _ => None,
    };
    let (hot_settings, hot_thread) = hot.unzip();
    let persister = Persister::start(
        batch_rx,
        store.world_store.clone(),
        Some(source.release),
        status.clone(),
        runtime.handle().clone(),
        Some(fatal_tx),
    )?;

    // 6. The World, on its own thread.
    let (exited_tx, exited_rx) = oneshot::channel();
    let (bus_tx, bus_rx) = crossbeam_channel::bounded(COMMAND_QUEUE);
    let floor = resumed.log_seq();
    let start = Start {
        data,
        recovered: resumed.recovered,
        replay: source.replay,
        persist: PersistSettings {
            sink: batch_tx,
            flush_interval: config.flush_interval,
            lease_epoch,
            last_epoch: resumed.last_epoch,
            incarnation: resumed.incarnation,
            hot: hot_settings,
        },
        // A lease holder writes a full checkpoint under its epoch before any command.
        checkpoint_first: lease.is_some().then(|| status.clone()),
        reloads: reload_rx,
        admin: admin_rx,
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
    // Designer data edited from now on is reloaded (a directory that cannot be watched
    // leaves POST /admin/reload).
    let _watcher = reloads
        .watch()
        .inspect_err(|e| warn!(error = %format!("{e:#}"), "designer data is not watched; POST /admin/reload still reloads it"))
        .ok();
    // Edits made while this process waited for the lease or recovered are not missed.
    let _ = reloads.reload("start");

    // 7. The intake; with Redis, the L2 read models and presence follow the World.
    let tenure = lease.as_ref().map(|l| l.tenure.clone());
    let (journal, intake) = Intake::start(
        source.stream,
        &log,
        floor,
        &bus_tx,
        tenure.clone(),
        runtime.handle(),
    )?;
    let bus = Arc::new(CommandBus::new(journal, bus_tx));
    let followers = redis.as_ref().map(|link| {
        Followers::start(
            link.redis.clone(),
            &config,
            &read,
            &bus,
            tenure,
            runtime.handle(),
        )
    });

    let files = vec![
        (EmbeddedStore::FILE, embedded.health()),
        (CommandLog::FILE, log.health()),
    ];
    // 8. HTTP, until a signal, the World's end or a lost lease.
    let events: Arc<dyn EventLog> = Arc::new(WorldEvents::new(store.world_store, &config.world));
    let served = runtime.block_on(serve_http(
        &config,
        listener,
        routes,
        HttpParts {
            read,
            bus,
            accounts: store.accounts,
            metrics,
            events,
            persist: status,
            read_source: net::ReadSource::World,
            files,
            admin: Some(Arc::new(WorldAdmin {
                reloads: reloads.clone(),
                world: admin_tx,
                lease_epoch,
                tenure: lease.as_ref().map(|l| l.tenure.clone()),
            })),
        },
        signals,
        exited_rx,
        fatal_rx,
    ));

    // Shutdown. A process that may no longer write the world (fenced out, lease taken)
    // writes nothing more: no final checkpoint, no last L2 round.
    let writer = !matches!(served, Ok(Stop::Fatal(_)));
    intake.stop(runtime.handle());
    let stopped = world.stop(writer);
    if let Some(followers) = followers {
        followers.stop(writer, runtime.handle());
    }
    persister.join();
    if let Some(thread) = hot_thread {
        thread.join();
    }
    if let Some(lease) = lease {
        lease.release(runtime.handle());
    }
    runtime.shutdown_timeout(Duration::from_secs(5));
    let clean = matches!(served, Ok(Stop::Signal(_))) && stopped.is_ok();
    if clean {
        data_dir.release_cleanly();
    } else {
        drop(data_dir);
    }
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
