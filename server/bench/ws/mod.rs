//! `tianxia bench ws`: WebSocket fan-out (docs/websocket.md) against a bare broadcast server,
//! in one run.
//!
//! One World ([`world`]: the `tiny` scenario at the server's rates, a battle under way, a
//! steady stream of commands each making an event) runs throughout; the phases, in order:
//!
//! 1. Alone: the World's pass durations with no WebSocket served, the tick p99 baseline (its
//!    samples are taken before the other phases and again after them, against drift).
//! 2. Idle memory: the server's WebSocket (the real `Hub`, pump and router, on the same
//!    accept loop as `serve`) with `--idle-clients` connections each subscribed to one quiet
//!    city: this process's resident memory before and after, per connection.
//! 3. The server: `--clients` connections subscribed to `world` and to the battle for
//!    `--seconds`: messages delivered per second, event latency from the World publishing it
//!    to a client reading it, the World's pass p99, connections closed.
//! 4. The baseline ([`bare`]): the same clients on a bare tokio-tungstenite broadcast server
//!    fed from the same World with the same messages.
//!
//! The clients run in a process of their own ([`clients`]), so the memory measured is the
//! server's; both processes read the wall clock, so a latency is a receipt time minus a
//! publication time. The targets: 10,000 clients connected, under 16 KiB per idle
//! connection, deliveries at least 0.7x the baseline's, the World's p99 within 10 % of its p99
//! alone, event latency p99 under 50 ms.

pub mod bare;
pub mod clients;
pub mod world;

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, ChildStdin, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use serde::Serialize;
use tokio::{net::TcpListener, sync::oneshot};

use self::{
    clients::{ClientsReport, Ready, Stop},
    world::{BenchWorld, Published},
};
use super::{Samples, Table, print_json, process_memory};
use crate::{Failure, backends::runtime, connections};

const TARGET_CLIENTS: usize = 10_000;
const TARGET_IDLE_BYTES: f64 = 16.0 * 1024.0;
const TARGET_RATIO: f64 = 0.7;
const TARGET_TICK_RATIO: f64 = 1.1;
const TARGET_P99_MS: f64 = 50.0;
/// How long the clients' process may take to connect and subscribe, or to report.
const READY_TIMEOUT: Duration = Duration::from_secs(600);
/// How long after telling the clients to stop the World's last notes are taken: more than a
/// pass, so every event a client read before it stopped has been noted.
const NOTES_SETTLE: Duration = Duration::from_millis(200);
/// The city the idle clients watch, away from the battle.
const QUIET_CITY: &str = "east_port";

/// Options of `bench ws`.
#[derive(Clone, Debug, clap::Args)]
pub struct WsBench {
    /// Clients subscribed to `world` and the battle in the delivery runs.
    #[arg(long, default_value_t = 1_000)]
    pub clients: usize,
    /// Idle clients connected for the memory measure.
    #[arg(long, default_value_t = 10_000)]
    pub idle_clients: usize,
    /// Commands a second sent to the World, each making one event.
    #[arg(long, default_value_t = 200)]
    pub rate: u32,
    /// Seconds each measured phase lasts.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// The designer data directory (the `tiny` scenario's generals fight the battle).
    #[arg(long, default_value = "assets")]
    pub assets: std::path::PathBuf,
}

#[derive(Debug, Serialize)]
struct Report {
    bench: &'static str,
    clients: usize,
    rate: u32,
    seconds: u64,
    idle_clients: usize,
    idle_connected: usize,
    idle_bytes_per_connection: f64,
    server: Run,
    bare: Run,
    deliveries_ratio: f64,
    tick_p99_alone_ms: f64,
    tick_p99_ratio: f64,
    battle_fought_throughout: bool,
    targets: Targets,
}

/// One delivery run.
#[derive(Debug, Serialize)]
struct Run {
    connected: usize,
    failed: usize,
    /// Messages read per second, all clients together: events, frames and state pushes.
    deliveries_per_s: f64,
    /// Events the World published per second during the run.
    published_events_per_s: f64,
    /// Events read per second, all clients together.
    received_events_per_s: f64,
    /// Events read over those published times the clients connected: 1 when every client
    /// read every event (each is on `world`).
    received_share: f64,
    frames_per_s: f64,
    /// Events whose latency was measured.
    latency_samples: u64,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
    latency_max_ms: f64,
    unmatched_events: u64,
    /// Connections closed by the server, by close code, and dropped without a close.
    closed: std::collections::BTreeMap<u16, u64>,
    dropped: u64,
    tick_p50_ms: f64,
    tick_p99_ms: f64,
}

#[derive(Debug, Serialize)]
struct Targets {
    clients: usize,
    clients_met: bool,
    idle_bytes_max: f64,
    idle_bytes_met: bool,
    deliveries_ratio_min: f64,
    deliveries_ratio_met: bool,
    tick_p99_ratio_max: f64,
    tick_p99_met: bool,
    latency_p99_ms_max: f64,
    /// Judged at 1,000 clients or more.
    latency_p99_met: Option<bool>,
}

pub fn ws(options: &WsBench) -> Result<(), Failure> {
    if options.clients == 0 || options.idle_clients == 0 || options.seconds == 0 {
        return Err(Failure::Usage(
            "--clients, --idle-clients and --seconds must be positive".into(),
        ));
    }
    let data = Arc::new(systems::assets::load(&options.assets, world::SCENARIO)?);
    let most = options.clients.max(options.idle_clients);
    let fits = connections::raise_file_limit(most + 64);
    if fits < most {
        return Err(Failure::Usage(format!(
            "the open-file limit allows {fits} connections; lower --clients or --idle-clients"
        )));
    }
    let runtime = runtime(2)?;
    let world = BenchWorld::start(data, options.rate)?;
    let seconds = Duration::from_secs(options.seconds);
    eprintln!(
        "warming up: the World with its battle and {} commands/s",
        options.rate
    );
    world.run_for(Duration::from_secs(2));

    eprintln!(
        "alone: the World for {}s with no WebSocket",
        options.seconds
    );
    let (mut alone, _) = world.run_for(seconds);

    let server = Served::start(&runtime, &world, most + 16)?;
    eprintln!("idle: {} connections on the server", options.idle_clients);
    let before = process_memory("VmRSS");
    let idle = Clients::start(
        &server.url,
        options.idle_clients,
        &[format!("city:{QUIET_CITY}")],
    )?;
    std::thread::sleep(Duration::from_secs(1));
    let after = process_memory("VmRSS");
    let idle_connected = idle.ready.connected;
    idle.report(Vec::new())?;
    let idle_bytes = (after - before) / idle_connected.max(1) as f64;

    let topics = [format!("battle:{}", world.battle), "world".to_string()];
    eprintln!(
        "server: {} clients on world and battle:{} for {}s",
        options.clients, world.battle, options.seconds
    );
    let served = deliveries(&world, &server.url, options.clients, &topics, seconds)?;
    server.stop(&runtime);

    let bare = Bare::start(&runtime, &world)?;
    eprintln!(
        "baseline: {} clients on a bare broadcast server",
        options.clients
    );
    let bare_run = deliveries(&world, &bare.url, options.clients, &topics, seconds)?;
    bare.stop(&runtime);
    eprintln!(
        "alone again: the World for {}s with no WebSocket",
        options.seconds
    );
    alone.extend(world.run_for(seconds).0);
    let alone = Samples::new(alone);
    let battle_fought_throughout = world.battle_on();
    drop(world);

    let deliveries_ratio =
        served.deliveries_per_s / bare_run.deliveries_per_s.max(f64::MIN_POSITIVE);
    let tick_p99_ratio = served.tick_p99_ms / alone.p99().max(f64::MIN_POSITIVE);
    // A target is met only where it was measured: a run with no samples meets nothing.
    let latency_p99_met = (options.clients >= 1_000).then_some(
        served.latency_samples > 0
            && served.closed.is_empty()
            && served.latency_p99_ms < TARGET_P99_MS,
    );
    let report = Report {
        bench: "ws",
        clients: options.clients,
        rate: options.rate,
        seconds: options.seconds,
        idle_clients: options.idle_clients,
        idle_connected,
        idle_bytes_per_connection: idle_bytes,
        deliveries_ratio,
        tick_p99_alone_ms: alone.p99(),
        tick_p99_ratio,
        battle_fought_throughout,
        targets: Targets {
            clients: TARGET_CLIENTS,
            clients_met: idle_connected >= TARGET_CLIENTS,
            idle_bytes_max: TARGET_IDLE_BYTES,
            idle_bytes_met: idle_connected > 0 && idle_bytes < TARGET_IDLE_BYTES,
            deliveries_ratio_min: TARGET_RATIO,
            deliveries_ratio_met: bare_run.deliveries_per_s > 0.0
                && deliveries_ratio >= TARGET_RATIO,
            tick_p99_ratio_max: TARGET_TICK_RATIO,
            tick_p99_met: alone.p99() > 0.0
                && served.tick_p99_ms > 0.0
                && tick_p99_ratio <= TARGET_TICK_RATIO,
            latency_p99_ms_max: TARGET_P99_MS,
            latency_p99_met,
        },
        server: served,
        bare: bare_run,
    };
    print_report(&report);
    print_json(&report)
}

/// One delivery run: `clients` connections on `topics` at `url` for `duration`.
fn deliveries(
    world: &BenchWorld,
    url: &str,
    clients: usize,
    topics: &[String],
    duration: Duration,
) -> anyhow::Result<Run> {
    world.take();
    let mut started = Clients::start(url, clients, topics)?;
    // Events published while the clients connected may arrive within the run: their
    // publications go to the clients too.
    let (_, mut published) = world.take();
    std::thread::sleep(duration);
    let (passes, during) = world.take();
    started.stop()?;
    let events: u64 = during.iter().map(|(first, last, _)| last + 1 - first).sum();
    published.extend(during);
    // An event read just before the clients stopped may be noted by the World a moment
    // after it was published.
    std::thread::sleep(NOTES_SETTLE);
    published.extend(world.take().1);
    let connected = started.ready.connected;
    let failed = started.ready.failed;
    let received = started.report(published)?;
    let passes = Samples::new(passes);
    let per_s = |n: u64| n as f64 / received.seconds.max(f64::MIN_POSITIVE);
    let published_events_per_s = events as f64 / duration.as_secs_f64();
    let received_events_per_s = per_s(received.events);
    Ok(Run {
        connected,
        failed,
        deliveries_per_s: per_s(received.events + received.frames + received.other),
        published_events_per_s,
        received_events_per_s,
        received_share: received_events_per_s
            / (published_events_per_s * connected as f64).max(f64::MIN_POSITIVE),
        frames_per_s: per_s(received.frames),
        latency_samples: received.latency_samples,
        latency_p50_ms: received.latency_p50_ms,
        latency_p99_ms: received.latency_p99_ms,
        latency_max_ms: received.latency_max_ms,
        unmatched_events: received.unmatched,
        closed: received.closed,
        dropped: received.dropped,
        tick_p50_ms: passes.p50(),
        tick_p99_ms: passes.p99(),
    })
}

/// The clients' process, connected and subscribed.
struct Clients {
    child: Child,
    stdin: ChildStdin,
    lines: crossbeam_channel::Receiver<String>,
    ready: Ready,
    stopped: bool,
}

impl Clients {
    fn start(url: &str, clients: usize, topics: &[String]) -> anyhow::Result<Clients> {
        let exe =
            std::env::current_exe().context("cannot find this program to start the clients")?;
        let mut child = Command::new(exe)
            .args(["bench", "ws-clients", "--url", url, "--clients"])
            .arg(clients.to_string())
            .arg("--topics")
            .arg(topics.join(","))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start the clients' process")?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            anyhow::bail!("the clients' process has no pipes");
        };
        let (tx, lines) = crossbeam_channel::bounded(4);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut started = Clients {
            child,
            stdin,
            lines,
            ready: Ready {
                connected: 0,
                failed: 0,
            },
            stopped: false,
        };
        started.ready = started.line(READY_TIMEOUT)?;
        Ok(started)
    }

    fn line<T: serde::de::DeserializeOwned>(&self, timeout: Duration) -> anyhow::Result<T> {
        let line = self
            .lines
            .recv_timeout(timeout)
            .context("the clients' process stopped answering")?;
        serde_json::from_str(&line).with_context(|| format!("the clients' process said {line}"))
    }

    /// Tells the clients to stop reading: their run ends now.
    fn stop(&mut self) -> anyhow::Result<()> {
        writeln!(self.stdin, "stop").context("cannot tell the clients to stop")?;
        self.stdin.flush()?;
        self.stopped = true;
        Ok(())
    }

    /// Stops the clients if they run, sends the publications, returns what they received.
    fn report(mut self, published: Vec<Published>) -> anyhow::Result<ClientsReport> {
        if !self.stopped {
            self.stop()?;
        }
        let line = serde_json::to_string(&Stop { published })?;
        writeln!(self.stdin, "{line}").context("cannot send the clients the publications")?;
        self.stdin.flush()?;
        // On no answer the process is killed when `self` drops.
        let report = self.line(READY_TIMEOUT)?;
        let _ = self.child.wait();
        Ok(report)
    }
}

impl Drop for Clients {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The server's WebSocket, as `serve` runs it.
struct Served {
    url: String,
    hub: Arc<net::Hub>,
    stop_pump: tokio::sync::watch::Sender<bool>,
    stop_http: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    fn start(
        runtime: &tokio::runtime::Runtime,
        world: &BenchWorld,
        max_connections: usize,
    ) -> anyhow::Result<Served> {
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let url = format!("ws://{}/ws", listener.local_addr()?);
        let _entered = runtime.enter();
        let read = world.read.clone();
        let hub = net::Hub::new(
            read.clone(),
            net::WsConfig {
                max_connections,
                ..net::WsConfig::default()
            },
        );
        let (stop_pump, stop_pump_rx) = tokio::sync::watch::channel(false);
        runtime.spawn(hub.clone().pump(stop_pump_rx));
        let (bus_tx, _) = crossbeam_channel::bounded(1);
        let state = net::AppState {
            ws: hub.clone(),
            read: read.clone(),
            metrics: metrics_exporter_prometheus::PrometheusBuilder::new()
                .build_recorder()
                .handle(),
            backends: Arc::new(net::Backends::none()),
            accounts: net::Accounts::memory(),
            bus: Arc::new(net::CommandBus::new(Arc::new(NoCommands), bus_tx)),
            limits: Arc::new(net::RateLimits::default()),
            events: Arc::new(NoLog),
            persist: Arc::new(components::durable::PersistStatus::new("none")),
            read_source: net::ReadSource::World,
            cors: net::CorsOrigins::None,
            sandbox: false,
            admin: None,
        };
        let (stop_http, stop_http_rx) = oneshot::channel();
        let task = runtime.spawn(connections::serve(
            Arc::new(listener),
            net::router(state),
            max_connections,
            stop_http_rx,
            Duration::from_secs(5),
            Arc::default(),
        ));
        Ok(Served {
            url,
            hub,
            stop_pump,
            stop_http,
            task,
        })
    }

    fn stop(self, runtime: &tokio::runtime::Runtime) {
        self.hub.shut_down();
        let _ = self.stop_pump.send(true);
        let _ = self.stop_http.send(());
        let _ = runtime.block_on(self.task);
    }
}

/// The bench's HTTP side takes no commands: its World has its own load.
pub(crate) struct NoCommands;

impl components::durable::Journal for NoCommands {
    fn append(&self, _: components::command::Command) -> components::durable::JournalFuture<'_> {
        Box::pin(async {
            Err(components::durable::JournalError::Unavailable(
                "this benchmark's server takes no commands".into(),
            ))
        })
    }
}

/// Nor does it keep events: its clients never resume.
pub(crate) struct NoLog;

impl components::durable::EventLog for NoLog {
    fn events<'a>(
        &'a self,
        _: u64,
        _: usize,
        _: Option<&'a str>,
    ) -> components::durable::DurableFuture<'a, Vec<components::events::DomainEvent>> {
        Box::pin(async { Err("this benchmark's server keeps no event log".to_string()) })
    }
}

/// The baseline server.
struct Bare {
    url: String,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Bare {
    fn start(runtime: &tokio::runtime::Runtime, world: &BenchWorld) -> anyhow::Result<Bare> {
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let url = format!("ws://{}/ws", listener.local_addr()?);
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let task = runtime.spawn(bare::serve(
            listener,
            world.read.clone(),
            world.battle.clone(),
            stop_rx,
        ));
        Ok(Bare { url, stop, task })
    }

    fn stop(self, runtime: &tokio::runtime::Runtime) {
        let _ = self.stop.send(true);
        let _ =
            runtime.block_on(async { tokio::time::timeout(bare::CLOSE_GRACE, self.task).await });
    }
}

fn print_report(report: &Report) {
    let table = Table::new();
    let row = |name: &str, value: String, target: String| table.row(name, value, target);
    let ms = |v: f64| format!("{v:.1}");
    row(
        "clients (idle, connected)",
        report.idle_connected.to_string(),
        format!(">={}", report.targets.clients),
    );
    row(
        "server memory per idle conn B",
        format!("{:.0}", report.idle_bytes_per_connection),
        format!("<{}", report.targets.idle_bytes_max),
    );
    row(
        "clients (delivery runs)",
        report.clients.to_string(),
        String::new(),
    );
    for (name, run) in [("server", &report.server), ("bare", &report.bare)] {
        row(
            &format!("{name}: events published /s"),
            format!("{:.0}", run.published_events_per_s),
            String::new(),
        );
        row(
            &format!("{name}: deliveries /s"),
            format!("{:.0}", run.deliveries_per_s),
            String::new(),
        );
        row(
            &format!("{name}: share of events read"),
            format!("{:.3}", run.received_share),
            String::new(),
        );
    }
    row(
        "server / bare deliveries",
        format!("{:.2}", report.deliveries_ratio),
        format!(">={}", report.targets.deliveries_ratio_min),
    );
    row(
        "server event latency p50 ms",
        ms(report.server.latency_p50_ms),
        String::new(),
    );
    row(
        "server event latency p99 ms",
        ms(report.server.latency_p99_ms),
        format!("<{}", report.targets.latency_p99_ms_max),
    );
    row(
        "bare event latency p50 ms",
        ms(report.bare.latency_p50_ms),
        String::new(),
    );
    row(
        "bare event latency p99 ms",
        ms(report.bare.latency_p99_ms),
        String::new(),
    );
    row(
        "World pass p99 alone ms",
        ms(report.tick_p99_alone_ms),
        String::new(),
    );
    row(
        "World pass p99, server ms",
        ms(report.server.tick_p99_ms),
        String::new(),
    );
    row(
        "World pass p99, bare ms",
        ms(report.bare.tick_p99_ms),
        String::new(),
    );
    row(
        "pass p99 server / alone",
        format!("{:.2}", report.tick_p99_ratio),
        format!("<={}", report.targets.tick_p99_ratio_max),
    );
    let closed: u64 = report.server.closed.values().sum::<u64>() + report.server.dropped;
    row(
        "server connections closed",
        closed.to_string(),
        String::new(),
    );
}
