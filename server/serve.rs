//! `tianxia serve`: everything in one process. The World runs on a thread of its own, driven
//! at fixed rates; a tokio runtime beside it serves HTTP from the read models the World
//! publishes. They share no lock: the World swaps in new read models and listens for a stop
//! message between passes.
//!
//! Shutdown (SIGTERM or Ctrl-C): stop accepting requests, let the World finish its pass and
//! stop, release the data directory. If the World's thread dies, the server stops with an
//! error rather than serve a frozen world.

use std::{io::Write, sync::Arc, thread::JoinHandle, time::Duration};

use anyhow::Context;
use components::command::Inbound;
use components::read_model::ReadHandle;
use net::{Accounts, AppState, Backends, CommandBus, Probe, ProbeFuture, RateLimits, router};
use persistence::{DataDir, EmbeddedStore, MongoProbe};
use systems::{
    app::{AppSettings, build_app},
    assets::GameData,
    driver::{Driver, MonotonicClock},
    spawn::WorldSettings,
};
use tokio::{
    net::TcpListener,
    signal::unix::{Signal, SignalKind, signal},
    sync::oneshot,
};
use tracing::{error, info};

use crate::{Failure, accounts::EmbeddedAccounts, config::ServeConfig, metrics};

/// How long a backend probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often backends are probed.
const PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// Commands waiting for the World at most; beyond, `POST /api/commands` answers 503.
const COMMAND_QUEUE: usize = 100_000;
/// How long in-flight requests get to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The World's thread and the means to stop it.
struct WorldThread {
    stop: crossbeam_channel::Sender<()>,
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

impl WorldThread {
    fn start(
        data: Arc<GameData>,
        config: &ServeConfig,
        read: ReadHandle,
        inbox: crossbeam_channel::Receiver<Inbound>,
        exited: oneshot::Sender<()>,
    ) -> anyhow::Result<WorldThread> {
        let (stop, stop_rx) = crossbeam_channel::bounded(1);
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
                let mut app = build_app(data, &settings, read, Some(inbox));
                let mut driver = Driver::new(MonotonicClock::new(), &rates);
                info!(
                    speed = rates.speed,
                    intake_hz = rates.intake_hz,
                    strategy_hz = rates.strategy_hz,
                    "world running"
                );
                driver.run(app.world_mut(), &stop_rx);
                info!("world stopped");
            })
            .context("cannot start the world thread")?;
        Ok(WorldThread { stop, handle })
    }

    /// Asks the World to stop after its current pass and waits for it.
    fn stop(self) -> anyhow::Result<()> {
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
enum Stop {
    Signal(&'static str),
    WorldEnded,
}

struct Signals {
    terminate: Signal,
    interrupt: Signal,
}

impl Signals {
    /// Installs the handlers now, so a signal that arrives early is not lost.
    fn install() -> anyhow::Result<Signals> {
        Ok(Signals {
            terminate: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            interrupt: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
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
    let accounts = Accounts::new(Arc::new(EmbeddedAccounts::new(store)));
    let metrics = metrics::install()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tianxia-io")
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;

    let read = ReadHandle::default();
    let (exited_tx, exited_rx) = oneshot::channel();
    let (bus_tx, bus_rx) = crossbeam_channel::bounded(COMMAND_QUEUE);
    let bus = Arc::new(CommandBus::new(bus_tx));
    let world = WorldThread::start(data, &config, read.clone(), bus_rx, exited_tx)?;
    let served = runtime.block_on(serve_http(&config, read, bus, accounts, metrics, exited_rx));
    let stopped = world.stop();
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
    }
}

async fn serve_http(
    config: &ServeConfig,
    read: ReadHandle,
    bus: Arc<CommandBus>,
    accounts: Accounts,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
    world_exited: oneshot::Receiver<()>,
) -> Result<Stop, Failure> {
    let mut signals = Signals::install()?;
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

    let app = router(AppState {
        read,
        metrics,
        backends,
        accounts,
        bus,
        limits: limits.clone(),
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
    };
    match stop {
        Stop::Signal(name) => info!(signal = name, "shutting down"),
        Stop::WorldEnded => error!("the world thread ended; shutting down"),
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
