//! `tianxia bench reads` (docs/operations.md#bench-reads): the read path's throughput against a
//! bare axum handler serving the same bytes, in the same run.
//!
//! The World of a scenario is built and its read models published once. Two servers run on one
//! runtime thread each in turn: the real one (`net::router`, behind the server's own connection
//! handling: rate limits, ETags, CORS, compression negotiation, the access log at its level),
//! and a bare axum router answering `GET /api/generals/{id}` and `GET /api/world` with the JSON
//! the real one serves, serialized once. A load generator on a runtime thread of its own keeps
//! `--connections` keep-alive HTTP/1.1 connections busy for `--seconds`, alternating the two
//! servers for `--rounds` rounds so that drift of the machine falls on both. Reported per path:
//! requests per second of each, their ratio (target ≥ 0.8) and the latency percentiles.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{Router, body::Bytes, routing::get};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use systems::{
    app::{AppSettings, build_app},
    spawn::WorldSettings,
};
use tokio::{net::TcpListener, sync::oneshot};

use super::{Samples, Table, print_json};
use crate::{Failure, connections};

/// The ratio of the real read path's throughput to the bare handler's it should reach.
const TARGET_RATIO: f64 = 0.8;
/// Latency samples kept per run at most.
const SAMPLES_MAX: usize = 2_000_000;

#[derive(Clone, Debug, clap::Args)]
pub struct ReadsBench {
    /// Seconds each measured run lasts (one run per server, path and round).
    #[arg(long, default_value_t = 3)]
    pub seconds: u64,
    /// Keep-alive connections the load generator keeps busy.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Rounds of alternating runs of the two servers.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    #[arg(long, default_value = "190")]
    pub scenario: String,
    /// The designer data directory.
    #[arg(long, default_value = "assets")]
    pub assets: std::path::PathBuf,
}

#[derive(Debug, Default, Serialize)]
struct Side {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Answers other than 200, and failed requests.
    errors: u64,
}

#[derive(Debug, Serialize)]
struct PathRun {
    path: String,
    bytes: usize,
    server: Side,
    bare: Side,
    ratio: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    bench: &'static str,
    scenario: String,
    seconds: u64,
    connections: usize,
    rounds: usize,
    paths: Vec<PathRun>,
    target_ratio: f64,
    met: bool,
}

pub fn reads(options: &ReadsBench) -> Result<(), Failure> {
    if !(1..=600).contains(&options.seconds)
        || !(1..=1_024).contains(&options.connections)
        || !(1..=20).contains(&options.rounds)
    {
        return Err(Failure::Usage(
            "--seconds must be 1-600, --connections 1-1024 and --rounds 1-20".into(),
        ));
    }
    let data = Arc::new(systems::assets::load(&options.assets, &options.scenario)?);
    let read = components::read_model::ReadHandle::default();
    let settings = AppSettings::new(WorldSettings {
        name: "bench-reads".into(),
        speed: 24.0,
    });
    let mut app = build_app(data, &settings, read.clone(), None);
    app.world_mut().run_schedule(systems::schedule::Publish);
    let models = read
        .load_full()
        .ok_or_else(|| Failure::Runtime(anyhow::anyhow!("the World published nothing")))?;
    let general = models
        .generals
        .values()
        .next()
        .cloned()
        .ok_or_else(|| Failure::Runtime(anyhow::anyhow!("the scenario has no general")))?;
    let paths = [
        (format!("/api/generals/{}", general.id), json(&*general)),
        ("/api/world".to_string(), json(&*models.world)),
    ];
    let runtime = |name: &str| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(name)
            .enable_all()
            .build()
            .map_err(|e| Failure::Runtime(e.into()))
    };
    let servers = runtime("bench-reads-server")?;
    let clients = runtime("bench-reads-clients")?;
    let real = Server::real(&servers, read.clone())?;
    let bare = Server::bare(&servers, &paths)?;

    let table = Table::new();
    let mut runs = Vec::new();
    for (path, body) in &paths {
        let (mut server, mut baseline) = (Load::default(), Load::default());
        for round in 0..options.rounds {
            eprintln!(
                "bench reads: {path}, round {} of {}",
                round + 1,
                options.rounds
            );
            server.add(clients.block_on(load(real.address, path, options))?);
            baseline.add(clients.block_on(load(bare.address, path, options))?);
        }
        let (server, bare) = (server.side(), baseline.side());
        let ratio = if bare.requests_per_second > 0.0 {
            server.requests_per_second / bare.requests_per_second
        } else {
            0.0
        };
        table.row(
            &format!("{path} req/s"),
            format!("{:.0}", server.requests_per_second),
            String::new(),
        );
        table.row(
            "  bare axum req/s",
            format!("{:.0}", bare.requests_per_second),
            String::new(),
        );
        table.row(
            "  ratio",
            format!("{ratio:.2}"),
            format!(">={TARGET_RATIO}"),
        );
        table.row(
            "  p50 / p99 ms",
            format!("{:.2} / {:.2}", server.p50_ms, server.p99_ms),
            String::new(),
        );
        runs.push(PathRun {
            path: path.clone(),
            bytes: body.len(),
            server,
            bare,
            ratio,
        });
    }
    real.stop(&servers);
    bare.stop(&servers);
    let met = runs
        .iter()
        .all(|r| r.ratio >= TARGET_RATIO && r.server.errors == 0 && r.bare.errors == 0);
    print_json(&Report {
        bench: "reads",
        scenario: options.scenario.clone(),
        seconds: options.seconds,
        connections: options.connections,
        rounds: options.rounds,
        paths: runs,
        target_ratio: TARGET_RATIO,
        met,
    })
}

/// A read model as JSON, the way the routes serialize it.
fn json(value: &impl Serialize) -> Bytes {
    serde_json::to_vec(value).unwrap_or_default().into()
}

/// What runs of one server on one path came to.
#[derive(Default)]
struct Load {
    ok: u64,
    errors: u64,
    seconds: f64,
    latencies_ms: Vec<f64>,
}

impl Load {
    fn add(&mut self, other: Load) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.seconds += other.seconds;
        let room = SAMPLES_MAX.saturating_sub(self.latencies_ms.len());
        self.latencies_ms
            .extend(other.latencies_ms.into_iter().take(room));
    }

    fn side(self) -> Side {
        let samples = Samples::new(self.latencies_ms);
        Side {
            requests_per_second: if self.seconds > 0.0 {
                self.ok as f64 / self.seconds
            } else {
                0.0
            },
            p50_ms: samples.p50(),
            p99_ms: samples.p99(),
            errors: self.errors,
        }
    }
}

/// Keeps `options.connections` connections to `address` busy with `GET path` for
/// `options.seconds`.
async fn load(address: SocketAddr, path: &str, options: &ReadsBench) -> Result<Load, Failure> {
    let duration = Duration::from_secs(options.seconds);
    let started = Instant::now();
    let deadline = started + duration;
    let per_task = SAMPLES_MAX / options.connections.max(1);
    let mut tasks = Vec::with_capacity(options.connections);
    for _ in 0..options.connections {
        let path = path.to_string();
        tasks.push(tokio::spawn(async move {
            let mut load = Load::default();
            let Ok(stream) = tokio::net::TcpStream::connect(address).await else {
                load.errors += 1;
                return load;
            };
            let _ = stream.set_nodelay(true);
            let Ok((mut sender, connection)) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
            else {
                load.errors += 1;
                return load;
            };
            tokio::spawn(connection);
            while Instant::now() < deadline {
                let request = hyper::Request::get(path.as_str())
                    .header(hyper::header::HOST, "127.0.0.1")
                    .body(Empty::<Bytes>::new());
                let Ok(request) = request else {
                    load.errors += 1;
                    break;
                };
                let sent = Instant::now();
                let ok = match sender.send_request(request).await {
                    Ok(response) => {
                        let status = response.status();
                        response.into_body().collect().await.is_ok()
                            && status == hyper::StatusCode::OK
                    }
                    Err(_) => false,
                };
                if ok {
                    load.ok += 1;
                    if load.latencies_ms.len() < per_task {
                        load.latencies_ms
                            .push(sent.elapsed().as_secs_f64() * 1_000.0);
                    }
                } else {
                    load.errors += 1;
                    if sender.ready().await.is_err() {
                        break;
                    }
                }
            }
            load
        }));
    }
    let mut total = Load::default();
    for task in tasks {
        let load = task
            .await
            .map_err(|e| Failure::Runtime(anyhow::anyhow!("a load task failed: {e}")))?;
        total.add(load);
    }
    total.seconds = started.elapsed().as_secs_f64();
    Ok(total)
}

/// One of the two servers, on its port.
struct Server {
    address: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

/// A listener on a free local port, and its address.
fn listen(
    runtime: &tokio::runtime::Runtime,
) -> Result<(TcpListener, std::net::SocketAddr), Failure> {
    let listener = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .map_err(|e| Failure::Runtime(e.into()))?;
    let address = listener
        .local_addr()
        .map_err(|e| Failure::Runtime(e.into()))?;
    Ok((listener, address))
}

impl Server {
    /// The server's read path: its router over the published read models, behind its own
    /// connection handling.
    fn real(
        runtime: &tokio::runtime::Runtime,
        read: components::read_model::ReadHandle,
    ) -> Result<Server, Failure> {
        let (listener, address) = listen(runtime)?;
        let _entered = runtime.enter();
        let hub = net::Hub::new(read.clone(), net::WsConfig::default());
        let (bus_tx, _) = crossbeam_channel::bounded(1);
        let state = net::AppState {
            ws: hub,
            read,
            metrics: metrics_exporter_prometheus::PrometheusBuilder::new()
                .build_recorder()
                .handle(),
            backends: Arc::new(net::Backends::none()),
            accounts: net::Accounts::memory(),
            bus: Arc::new(net::CommandBus::new(
                Arc::new(super::ws::NoCommands),
                bus_tx,
            )),
            limits: Arc::new(net::RateLimits::default()),
            events: Arc::new(super::ws::NoLog),
            persist: Arc::new(components::durable::PersistStatus::new("none")),
            read_source: net::ReadSource::World,
            cors: net::CorsOrigins::None,
            sandbox: false,
            admin: None,
        };
        let (stop, stop_rx) = oneshot::channel();
        let task = runtime.spawn(connections::serve(
            Arc::new(listener),
            net::router(state),
            4_096,
            stop_rx,
            Duration::from_secs(5),
            Arc::default(),
        ));
        Ok(Server {
            address,
            stop,
            task,
        })
    }

    /// A bare axum router answering each path with its bytes.
    fn bare(
        runtime: &tokio::runtime::Runtime,
        paths: &[(String, Bytes)],
    ) -> Result<Server, Failure> {
        let (listener, address) = listen(runtime)?;
        let mut router = Router::new();
        for (path, body) in paths {
            let body = body.clone();
            let route = if path.starts_with("/api/generals/") {
                "/api/generals/{id}"
            } else {
                path.as_str()
            };
            router = router.route(
                route,
                get(move || {
                    let body = body.clone();
                    async move { ([(hyper::header::CONTENT_TYPE, "application/json")], body) }
                }),
            );
        }
        let (stop, stop_rx) = oneshot::channel::<()>();
        let task = runtime.spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stop_rx.await;
                })
                .await;
        });
        Ok(Server {
            address,
            stop,
            task,
        })
    }

    fn stop(self, runtime: &tokio::runtime::Runtime) {
        let _ = self.stop.send(());
        let _ = runtime.block_on(self.task);
    }
}
