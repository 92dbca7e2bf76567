//! Configuration of `serve`, `daemon` and `api` (docs/operations.md#precedence): command line
//! beats environment beats config file beats defaults. Every value is checked here, before
//! anything starts; a bad one is a usage error (exit status 2) that says which value and why.

use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::Deserialize;
use systems::driver::TickRates;

use crate::{Failure, cli::ServeArgs};

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
pub const MAX_CONNECTIONS: usize = 1_000_000;
pub const DEFAULT_WORLD: &str = "main";
pub const DEFAULT_ASSETS: &str = "assets";
pub const DEFAULT_SCENARIO: &str = "190";
pub const DEFAULT_DATA_DIR: &str = "data";
pub const DEFAULT_EVENT_WINDOW: usize = 10_000;
use components::command::{MAX_SPEED, MIN_SPEED};
/// Schedule rates accepted, per real second.
pub const MIN_RATE_HZ: f64 = 0.01;
pub const MAX_RATE_HZ: f64 = 1_000.0;
pub const DEFAULT_FLUSH_INTERVAL: f64 = 10.0;
/// Flush intervals accepted, in seconds.
pub const MIN_FLUSH_INTERVAL: f64 = 0.05;
pub const MAX_FLUSH_INTERVAL: f64 = 3_600.0;
pub const DEFAULT_SNAPSHOT_INTERVAL: f64 = 5.0;
/// Hot snapshot intervals accepted, in seconds.
pub const MIN_SNAPSHOT_INTERVAL: f64 = 0.1;
pub const MAX_SNAPSHOT_INTERVAL: f64 = 3_600.0;
/// The environment variable that holds the admin token, and its shortest length.
pub const ADMIN_TOKEN_VAR: &str = "TIANXIA_ADMIN_TOKEN";
pub const MIN_ADMIN_TOKEN: usize = 16;
/// Most recent events kept in memory at most.
pub const MAX_EVENT_WINDOW: usize = 100_000;
/// Finished battles kept in the read models by default, and at most.
pub const DEFAULT_BATTLES_KEPT: usize = 100;
pub const MAX_BATTLES_KEPT: usize = 10_000;
/// Most threads the battle pool may have.
pub const MAX_BATTLE_THREADS: usize = 256;

/// The config file: the long flags' names with `_` for `-`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    bind: Option<String>,
    world: Option<String>,
    assets: Option<PathBuf>,
    scenario: Option<String>,
    data_dir: Option<PathBuf>,
    speed: Option<f64>,
    intake_hz: Option<f64>,
    strategy_hz: Option<f64>,
    battle_hz: Option<f64>,
    event_window: Option<usize>,
    battles_kept: Option<usize>,
    battle_threads: Option<usize>,
    max_connections: Option<usize>,
    ws_max_connections: Option<usize>,
    ws_queue_messages: Option<usize>,
    ws_queue_bytes: Option<usize>,
    /// Origins allowed by CORS, or `["*"]`.
    cors_origins: Option<Vec<String>>,
    flush_interval: Option<f64>,
    snapshot_interval: Option<f64>,
    redis_url: Option<String>,
    mongodb_uri: Option<String>,
    sandbox: Option<bool>,
}

/// Which part of the system a process plays (docs/operations.md#roles).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything in one process.
    Serve,
    /// The single writer of one world: intake, simulation, persistence (HTTP: health,
    /// readiness and metrics only).
    Daemon,
    /// A stateless HTTP front end: commands to the stream, reads from L2.
    Api,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Serve => "serve",
            Role::Daemon => "daemon",
            Role::Api => "api",
        }
    }
}

/// Everything `serve` (and the other roles) run with.
#[derive(Clone, Debug, PartialEq)]
pub struct ServeConfig {
    pub role: Role,
    pub bind: SocketAddr,
    pub world: String,
    pub assets: PathBuf,
    pub scenario: String,
    pub data_dir: PathBuf,
    pub rates: TickRates,
    pub event_window: usize,
    /// Finished battles kept with their last frame and recording.
    pub battles_kept: usize,
    /// Threads battles step on (docs/operations.md#battle-threads).
    pub battle_threads: usize,
    /// Open HTTP connections at most (docs/operations.md#connections).
    pub max_connections: usize,
    /// The WebSocket side's limits.
    pub ws: net::WsConfig,
    /// Origins whose pages may call the API (docs/http.md#browser-clients).
    pub cors: net::CorsOrigins,
    /// Real time between checkpoint epochs.
    pub flush_interval: std::time::Duration,
    /// Real time between hot snapshots (docs/redis.md#the-hot-snapshot), with a lease.
    pub snapshot_interval: std::time::Duration,
    pub redis_url: Option<String>,
    pub mongodb_uri: Option<String>,
    /// A sandbox for client developers (docs/sandbox.md): `serve` only, without Redis.
    pub sandbox: bool,
    /// `TIANXIA_ADMIN_TOKEN`: the admin routes answer with it (docs/http.md#admin-routes).
    pub admin_token: Option<String>,
}

fn read_file(path: &Path) -> Result<FileConfig, Failure> {
    let text = fs::read_to_string(path)
        .map_err(|e| Failure::Usage(format!("cannot read config file {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| {
        let at = e.span().map(|span| {
            let before = &text[..span.start.min(text.len())];
            format!(":{}", before.matches('\n').count() + 1)
        });
        Failure::Usage(format!(
            "config file {}{}: {}",
            path.display(),
            at.unwrap_or_default(),
            e.message().trim_end()
        ))
    })
}

/// An unset or empty environment value counts as absent.
fn present(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

fn check_rate(name: &str, value: f64, min: f64, max: f64) -> Result<f64, Failure> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(Failure::Usage(format!(
            "{name} must be between {min} and {max}, not {value}"
        )))
    }
}

/// Layers the command line (with the environment clap already applied) over the config file
/// over the defaults, and checks the result.
pub fn resolve(args: ServeArgs) -> Result<ServeConfig, Failure> {
    resolve_role(args, Role::Serve)
}

/// [`resolve`] for `role`: `daemon` needs both `REDIS_URL` and `MONGODB_URI`.
/// The address `text` names: `IP:PORT`, `[IPv6]:PORT` or `HOST:PORT` (the host's first
/// address, IPv4 before IPv6).
fn resolve_bind(text: &str) -> Result<SocketAddr, Failure> {
    use std::net::ToSocketAddrs;
    let bad = |why: String| Failure::Usage(format!("bind: \"{text}\" {why} (expected HOST:PORT)"));
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let mut found: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| bad(format!("is not an address: {e}")))?
        .collect();
    found.sort_by_key(|a| a.is_ipv6());
    found
        .into_iter()
        .next()
        .ok_or_else(|| bad("names no address".into()))
}

pub fn resolve_role(args: ServeArgs, role: Role) -> Result<ServeConfig, Failure> {
    let file = match &args.config {
        Some(path) => read_file(path)?,
        None => FileConfig::default(),
    };
    let bind = resolve_bind(args.bind.or(file.bind).as_deref().unwrap_or(DEFAULT_BIND))?;
    let world = args
        .world
        .or(file.world)
        .unwrap_or_else(|| DEFAULT_WORLD.into());
    if !components::ids::is_valid_id(&world) {
        return Err(Failure::Usage(format!(
            "world: \"{world}\" is not a world name (1-48 characters of [a-z0-9_-])"
        )));
    }
    let defaults = TickRates::default();
    let rates = TickRates {
        speed: check_rate(
            "speed",
            args.speed.or(file.speed).unwrap_or(defaults.speed),
            MIN_SPEED,
            MAX_SPEED,
        )?,
        intake_hz: check_rate(
            "intake_hz",
            args.intake_hz
                .or(file.intake_hz)
                .unwrap_or(defaults.intake_hz),
            MIN_RATE_HZ,
            MAX_RATE_HZ,
        )?,
        strategy_hz: check_rate(
            "strategy_hz",
            args.strategy_hz
                .or(file.strategy_hz)
                .unwrap_or(defaults.strategy_hz),
            MIN_RATE_HZ,
            MAX_RATE_HZ,
        )?,
        battle_hz: check_rate(
            "battle_hz",
            args.battle_hz
                .or(file.battle_hz)
                .unwrap_or(defaults.battle_hz),
            MIN_RATE_HZ,
            MAX_RATE_HZ,
        )?,
        max_catchup_ticks: defaults.max_catchup_ticks,
    };
    let max_connections = args
        .max_connections
        .or(file.max_connections)
        .unwrap_or(DEFAULT_MAX_CONNECTIONS);
    if !(1..=MAX_CONNECTIONS).contains(&max_connections) {
        return Err(Failure::Usage(format!(
            "max_connections must be 1–{MAX_CONNECTIONS}, not {max_connections}"
        )));
    }
    let ws_defaults = net::WsConfig::default();
    let within = |name: &str, value: usize, range: std::ops::RangeInclusive<usize>| {
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(Failure::Usage(format!(
                "{name} must be {}–{}, not {value}",
                range.start(),
                range.end()
            )))
        }
    };
    let ws = net::WsConfig {
        max_connections: within(
            "ws_max_connections",
            args.ws_max_connections
                .or(file.ws_max_connections)
                .unwrap_or(ws_defaults.max_connections),
            1..=MAX_CONNECTIONS,
        )?,
        queue_messages: within(
            "ws_queue_messages",
            args.ws_queue_messages
                .or(file.ws_queue_messages)
                .unwrap_or(ws_defaults.queue_messages),
            16..=1_000_000,
        )?,
        queue_bytes: within(
            "ws_queue_bytes",
            args.ws_queue_bytes
                .or(file.ws_queue_bytes)
                .unwrap_or(ws_defaults.queue_bytes),
            64 * 1024..=1 << 30,
        )?,
    };
    let cors = match (present(args.cors_origins), file.cors_origins) {
        (Some(list), _) => net::CorsOrigins::parse(&list),
        (None, Some(list)) => net::CorsOrigins::parse(&list.join(",")),
        (None, None) => Ok(net::CorsOrigins::None),
    }
    .map_err(Failure::Usage)?;
    let event_window = args
        .event_window
        .or(file.event_window)
        .unwrap_or(DEFAULT_EVENT_WINDOW);
    if !(1..=MAX_EVENT_WINDOW).contains(&event_window) {
        return Err(Failure::Usage(format!(
            "event_window must be 1–{MAX_EVENT_WINDOW}, not {event_window}"
        )));
    }
    let battles_kept = args
        .battles_kept
        .or(file.battles_kept)
        .unwrap_or(DEFAULT_BATTLES_KEPT);
    if !(1..=MAX_BATTLES_KEPT).contains(&battles_kept) {
        return Err(Failure::Usage(format!(
            "battles_kept must be 1–{MAX_BATTLES_KEPT}, not {battles_kept}"
        )));
    }
    let battle_threads = args
        .battle_threads
        .or(file.battle_threads)
        .unwrap_or_else(systems::battle::default_battle_threads);
    if !(1..=MAX_BATTLE_THREADS).contains(&battle_threads) {
        return Err(Failure::Usage(format!(
            "battle_threads must be 1–{MAX_BATTLE_THREADS}, not {battle_threads}"
        )));
    }
    let redis_url = present(args.redis_url).or(present(file.redis_url));
    let mongodb_uri = present(args.mongodb_uri).or(present(file.mongodb_uri));
    if role != Role::Serve && (redis_url.is_none() || mongodb_uri.is_none()) {
        return Err(Failure::Usage(format!(
            "{} needs both REDIS_URL and MONGODB_URI (missing: {})",
            role.name(),
            [
                redis_url.is_none().then_some("REDIS_URL"),
                mongodb_uri.is_none().then_some("MONGODB_URI"),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ")
        )));
    }
    let admin_token = present(std::env::var(ADMIN_TOKEN_VAR).ok());
    if let Some(token) = &admin_token
        && (token.len() < MIN_ADMIN_TOKEN || !token.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(Failure::Usage(format!(
            "{ADMIN_TOKEN_VAR} must be at least {MIN_ADMIN_TOKEN} visible ASCII characters (no spaces)"
        )));
    }
    let sandbox = args.sandbox || file.sandbox.unwrap_or(false);
    if sandbox && role != Role::Serve {
        return Err(Failure::Usage(format!(
            "--sandbox is an option of serve only, not of {}",
            role.name()
        )));
    }
    if sandbox && redis_url.is_some() {
        return Err(Failure::Usage(
            "--sandbox runs without Redis: a sandbox is one process with its own world; unset REDIS_URL"
                .into(),
        ));
    }
    if redis_url.is_some() && mongodb_uri.is_none() {
        return Err(Failure::Usage(
            "REDIS_URL is set but MONGODB_URI is not: with Redis configured, serve needs MongoDB too"
                .into(),
        ));
    }
    Ok(ServeConfig {
        role,
        bind,
        world,
        assets: args
            .assets
            .or(file.assets)
            .unwrap_or_else(|| DEFAULT_ASSETS.into()),
        scenario: args
            .scenario
            .or(file.scenario)
            .unwrap_or_else(|| DEFAULT_SCENARIO.into()),
        data_dir: args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
        rates,
        event_window,
        battles_kept,
        battle_threads,
        max_connections,
        ws,
        cors,
        flush_interval: std::time::Duration::from_secs_f64(check_rate(
            "flush_interval",
            args.flush_interval
                .or(file.flush_interval)
                .unwrap_or(DEFAULT_FLUSH_INTERVAL),
            MIN_FLUSH_INTERVAL,
            MAX_FLUSH_INTERVAL,
        )?),
        snapshot_interval: std::time::Duration::from_secs_f64(check_rate(
            "snapshot_interval",
            args.snapshot_interval
                .or(file.snapshot_interval)
                .unwrap_or(DEFAULT_SNAPSHOT_INTERVAL),
            MIN_SNAPSHOT_INTERVAL,
            MAX_SNAPSHOT_INTERVAL,
        )?),
        redis_url,
        mongodb_uri,
        sandbox,
        admin_token,
    })
}
