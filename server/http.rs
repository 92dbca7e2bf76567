//! The HTTP half of every role (docs/http.md#who-serves-what): probes of the configured
//! backends for `/ready`, the router the role chose, served until a signal, the World's end
//! or a fatal report (this process may no longer write the world), then drained.

use std::{io::Write, sync::Arc, time::Duration};

use anyhow::Context;
use axum::Router;
use components::{
    durable::{EventLog, PersistStatus},
    read_model::ReadHandle,
};
use net::{Accounts, AppState, Backends, CommandBus, Probe, ProbeFuture, RateLimits};
use persistence::{FileHealth, MongoProbe};
use tokio::{net::TcpListener, sync::oneshot};
use tracing::{error, info};

use crate::{Failure, config::ServeConfig, connections, signals::Signals};

/// How long a backend probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often backends are probed.
const PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// How long in-flight requests get to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The routes a role serves: [`net::router`] (the whole API) or [`net::ops_router`].
pub(crate) type Routes = fn(AppState) -> Router;

/// What the HTTP side serves from.
pub(crate) struct HttpParts {
    pub(crate) read: ReadHandle,
    pub(crate) bus: Arc<CommandBus>,
    pub(crate) accounts: Accounts,
    pub(crate) metrics: metrics_exporter_prometheus::PrometheusHandle,
    pub(crate) events: Arc<dyn EventLog>,
    pub(crate) persist: Arc<PersistStatus>,
    /// Where the read models come from (`X-Cache`).
    pub(crate) read_source: net::ReadSource,
    /// The embedded store files this process uses, by name: readiness fails while one is
    /// dead.
    pub(crate) files: Vec<(&'static str, Arc<FileHealth>)>,
    /// What the admin routes do here (none where no World runs).
    pub(crate) admin: Option<Arc<dyn components::admin::AdminOps>>,
}

/// Adapts a store file's health to a readiness probe.
struct FileReadiness(&'static str, Arc<FileHealth>);

impl Probe for FileReadiness {
    fn name(&self) -> &'static str {
        self.0
    }

    fn check(&self) -> ProbeFuture<'_> {
        let outcome = match self.1.dead() {
            Some(why) => Err(format!("{}: {why}", self.1.path().display())),
            None => Ok(()),
        };
        Box::pin(async move { outcome })
    }
}

/// Why serving stopped.
pub(crate) enum Stop {
    Signal(&'static str),
    WorldEnded,
    /// This process may no longer write the world (lease lost, or fenced out).
    Fatal(String),
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
        let probe = net::redis::probe::RedisProbe::new(url)
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

/// Listens on the configured address: the first step of every role, so a taken port is found
/// before anything else is opened or created.
pub(crate) fn bind(
    config: &ServeConfig,
    runtime: &tokio::runtime::Runtime,
) -> Result<Arc<TcpListener>, Failure> {
    let listener = runtime
        .block_on(TcpListener::bind(config.bind))
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    if let Ok(address) = listener.local_addr() {
        info!(%address, "address bound; serving once the world is ready");
    }
    Ok(Arc::new(listener))
}

/// What a daemon's address answers while it stands by for the lease: `/health` (alive) and
/// `/ready` (503, standing by), and 503 for anything else, rather than leaving connections
/// waiting until it takes over.
pub(crate) struct Standby {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Standby {
    pub(crate) fn start(listener: &Arc<TcpListener>, runtime: &tokio::runtime::Runtime) -> Standby {
        use axum::{Json, http::StatusCode, routing::get};
        use serde_json::json;
        let waiting = || async {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "not_ready",
                    "world_loaded": false,
                    "reasons": ["standing by: another daemon holds the world's lease"],
                })),
            )
        };
        let app = Router::new()
            .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
            .route("/ready", get(waiting))
            .fallback(waiting);
        let (stop, stop_rx) = oneshot::channel();
        let task = runtime.spawn(connections::serve(
            listener.clone(),
            app,
            64,
            stop_rx,
            Duration::from_secs(1),
            Arc::default(),
        ));
        Standby { stop, task }
    }

    /// Stops answering, so the writer's routes take the address.
    pub(crate) fn stop(self, runtime: &tokio::runtime::Runtime) {
        let _ = self.stop.send(());
        let _ = runtime.block_on(self.task);
    }
}

/// Serves `routes` on `listener` until a signal, the World's end or a fatal report; then
/// stops taking requests and lets those in flight finish.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve_http(
    config: &ServeConfig,
    listener: Arc<TcpListener>,
    routes: Routes,
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
        read_source,
        files,
        admin,
    } = parts;
    let mut probes = probes(config).await?;
    for (name, health) in files {
        probes.push(Arc::new(FileReadiness(name, health)));
    }
    let backends = Arc::new(Backends::new(probes, PROBE_TIMEOUT));
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

    let mut ws = config.ws;
    ws.max_connections = connections::raise_file_limit(config.max_connections + ws.max_connections)
        .saturating_sub(config.max_connections)
        .clamp(1, ws.max_connections);
    let hub = net::Hub::new(read.clone(), ws);
    let http_connections: Arc<components::admin::OpenCount> = Arc::default();
    let (stop_pump, stop_pump_rx) = tokio::sync::watch::channel(false);
    let pump = tokio::spawn(hub.clone().pump(stop_pump_rx));
    let app = routes(AppState {
        ws: hub.clone(),
        read,
        metrics,
        backends,
        accounts,
        bus,
        limits: limits.clone(),
        events,
        persist,
        read_source,
        cors: config.cors.clone(),
        sandbox: config.sandbox,
        admin: config.admin_token.clone().map(|token| {
            Arc::new(net::http::admin::Admin {
                token,
                ops: admin,
                http: http_connections.clone(),
            })
        }),
    });
    let (stop_http, stop_http_rx) = oneshot::channel::<()>();
    let max_connections = connections::raise_file_limit(config.max_connections);
    let server = tokio::spawn(connections::serve(
        listener,
        app,
        max_connections,
        stop_http_rx,
        DRAIN_TIMEOUT,
        http_connections,
    ));
    info!(%addr, max_connections, "listening");
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
    // WebSocket clients are told the server is going away (1001) and reconnect elsewhere.
    hub.shut_down();
    let _ = stop_pump.send(true);
    let _ = stop_http.send(());
    match tokio::time::timeout(DRAIN_TIMEOUT + Duration::from_secs(1), server).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => error!(error = %e, "HTTP server task failed"),
        Err(_) => {
            error!("in-flight requests did not finish within {DRAIN_TIMEOUT:?}; dropping them")
        }
    }
    monitor.abort();
    upkeep.abort();
    let _ = pump.await;
    Ok(stop)
}
