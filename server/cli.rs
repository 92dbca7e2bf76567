//! The command line (docs/operations.md#command-line). Serve options are all optional here so
//! configuration can layer them: command line, then environment, then config file, then
//! defaults.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "tianxia",
    version,
    about = "Headless, server-authoritative Three Kingdoms grand-strategy game server"
)]
pub struct Cli {
    /// Log format.
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run everything in one process: the World, the HTTP API and storage.
    Serve(Box<ServeArgs>),
    /// Run the single writer of one world (needs REDIS_URL and MONGODB_URI): takes the lease
    /// (standing by while another daemon holds it), reads commands from the Redis stream,
    /// simulates and persists; HTTP serves /health, /ready and /metrics only.
    Daemon(Box<ServeArgs>),
    /// Run a stateless HTTP front end (needs REDIS_URL and MONGODB_URI): commands go to the
    /// world's Redis stream, reads come from the L2 read models through an in-process cache.
    Api(Box<ServeArgs>),
    /// Validate every designer data file; exit 1 listing every error.
    Check {
        /// The designer data directory.
        #[arg(long, default_value = "assets")]
        assets: PathBuf,
    },
    /// Battle tools.
    #[command(subcommand)]
    Battle(BattleCommand),
    /// Fast-forward a new world headless with the AI on all sides; print the nations month by
    /// month and one JSON line.
    Simulate(crate::simulate::SimulateArgs),
    /// Benchmarks; each prints a table and one JSON line.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Print the JSON Schema of each kind of designer data file (or of one kind), with the
    /// ranges `check` holds numbers to and the troop types and cards the data defines.
    Schema {
        /// One of: troops, positions, commands, balance, scenario, nations, cities, roads,
        /// generals.
        kind: Option<String>,
        /// The designer data directory the schemas are made from (it must be valid).
        #[arg(long, default_value = "assets")]
        assets: PathBuf,
        /// Write each kind's schema to DIR/KIND.schema.json instead of printing.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// TOML file with any of the options below, named with `_` for `-`.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on, as IP:PORT or HOST:PORT [default: 127.0.0.1:8080].
    #[arg(long)]
    pub bind: Option<String>,
    /// The world's name [default: main].
    #[arg(long)]
    pub world: Option<String>,
    /// The designer data directory [default: assets].
    #[arg(long)]
    pub assets: Option<PathBuf>,
    /// Scenario a new world starts from [default: 190].
    #[arg(long)]
    pub scenario: Option<String>,
    /// Directory for the embedded store, locked while serving [default: data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Game seconds per real second [default: 24].
    #[arg(long)]
    pub speed: Option<f64>,
    /// Rate of the intake schedule, per real second [default: 20].
    #[arg(long)]
    pub intake_hz: Option<f64>,
    /// Rate of the strategy schedule, per real second [default: 1].
    #[arg(long)]
    pub strategy_hz: Option<f64>,
    /// Rate of the battle schedule, per real second [default: 60].
    #[arg(long)]
    pub battle_hz: Option<f64>,
    /// Most recent domain events kept in the published read models [default: 10000].
    #[arg(long)]
    pub event_window: Option<usize>,
    /// Finished battles kept in the read models with their last frame and recording
    /// (`GET /api/battles/{id}/recording`), most recent first [default: 100].
    #[arg(long)]
    pub battles_kept: Option<usize>,
    /// Threads battles step on, side by side and within each battle's physics [default: one
    /// per core].
    #[arg(long)]
    pub battle_threads: Option<usize>,
    /// Real seconds between checkpoint epochs [default: 10].
    #[arg(long)]
    pub flush_interval: Option<f64>,
    /// Real seconds between hot snapshots to Redis, taken by the lease holder [default: 5].
    #[arg(long)]
    pub snapshot_interval: Option<f64>,
    /// Open HTTP connections at most; beyond it new connections are closed at once
    /// [default: 4096, and never more than the open-file limit allows].
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Open WebSocket connections at most; beyond it an upgrade answers 503 [default: 10000].
    #[arg(long)]
    pub ws_max_connections: Option<usize>,
    /// Messages one WebSocket connection's outbound queue holds; a client further behind is
    /// closed as slow (4008) [default: 1024].
    #[arg(long)]
    pub ws_queue_messages: Option<usize>,
    /// Bytes one WebSocket connection's outbound queue holds [default: 1048576].
    #[arg(long)]
    pub ws_queue_bytes: Option<usize>,
    /// Origins whose pages may call the API from a browser (CORS): a comma-separated list
    /// of `scheme://host[:port]`, or `*` for any [default: none; the page at / needs none].
    #[arg(long, env = "TIANXIA_CORS_ORIGINS")]
    pub cors_origins: Option<String>,
    /// A sandbox for client developers (serve only, never with Redis): admin routes under
    /// /api/sandbox give troops and gold, teleport generals, stop, start and speed the
    /// clock. A world created as a sandbox is served only as one, and no other world is.
    #[arg(long)]
    pub sandbox: bool,
    /// Redis server; requires MONGODB_URI as well.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// MongoDB server.
    #[arg(long, env = "MONGODB_URI", hide_env_values = true)]
    pub mongodb_uri: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum BattleCommand {
    /// Replay a recorded battle headless; print its result and final state hash, and fail
    /// if it does not reach the recorded one.
    Run {
        /// A battle recording (JSON).
        file: PathBuf,
        /// Fight it again under the troop types and battle numbers of this designer data
        /// directory, saying first how they differ from the recording's.
        #[arg(long)]
        assets: Option<PathBuf>,
    },
    /// Fight every pair of the data's troop types against each other, equal and two to one,
    /// in the open and against walls, over a range of seeds; print the attacker's win rate,
    /// each side's losses and the time to the outcome per pair, and one JSON line.
    Matchup(crate::matchup::MatchupArgs),
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Battle throughput against a bare rapier2d world with the same bodies and contacts.
    Battle(crate::bench::battle::BattleBench),
    /// Strategy tick cost of the 190 scenario and of a world scaled to 100,000 generals and
    /// 10,000 cities, with the AI on all sides.
    Strategy(crate::bench::strategy::StrategyBench),
    /// Persistence: extracting and writing N changed entities to the embedded store (and to
    /// MongoDB against the raw driver), recovery, and the tick's p99 while flushing.
    Flush(crate::bench::flush::FlushBench),
    /// Commands from the Redis stream into the World: throughput against a bare
    /// XREADGROUP/XACK loop on the same Redis, and latency from XADD to applied.
    Commands(crate::bench::commands::CommandsBench),
    /// WebSocket fan-out: clients on `world` and a battle while the World runs, against a
    /// bare broadcast server; memory per idle connection; the World's tick with and without.
    Ws(crate::bench::ws::WsBench),
    /// The read routes (`GET /api/generals/{id}`, `GET /api/world`) against a bare axum
    /// handler serving the same JSON, in the same run.
    Reads(crate::bench::reads::ReadsBench),
    /// Every benchmark, each in a process of its own, and one JSON summary of every report
    /// with each target and whether it was met.
    All(crate::bench::all::AllBench),
    /// The clients of `bench ws`, which starts them in a process of their own.
    #[command(hide = true)]
    WsClients(crate::bench::ws::clients::ClientsOptions),
}
