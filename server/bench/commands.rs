//! `tianxia bench commands`: commands from the Redis stream into the World.
//!
//! - Baseline, the same Redis in the same run: a bare loop reading N entries already in a
//!   stream with `XREADGROUP COUNT 500` and acknowledging each batch with `XACK`.
//! - Latency, first, on the scenario's world: `JOIN` commands (each a new player, accepted)
//!   added at a steady rate while the World runs at the server's rates (intake 20 Hz); from
//!   each `XADD` to the published read models showing it applied (p50, p99; target p99 <
//!   100 ms).
//! - Throughput: N more `JOIN` commands already in the world's stream; the server's stream
//!   reader hands them to the World (at most 20,000 a tick); measured until the World has
//!   applied the last one. Then N `TRAIN` commands, one for each general that joined (each
//!   accepted: an order, its events, the general changed), measured the same way. The targets
//!   (at least 100,000/s and at least 0.4x the baseline) are judged on the `TRAIN` run, a
//!   running game's steady state; `JOIN`, the heaviest command to apply (each creates a
//!   general: an entity, its read model, its place in the indexes), is reported beside it.
//!
//! The reader holds the world's lease and takes entries as a daemon does (a script checking
//! the lease, after a plain blocking read for news). Uses `REDIS_URL` (default the local
//! Redis) with keys of its own, removed at the end.

use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use components::{read_model::ReadHandle, stream::EntryId};
use net::redis::{
    REDIS_TIMEOUT,
    lease::Lease,
    stream::{self, StreamKeys, StreamReader, group},
};
use redis::aio::ConnectionManager;
use serde::Serialize;
use systems::{
    app::{AppSettings, Origin, build_app_with},
    driver::{Driver, MonotonicClock, TickRates},
    spawn::WorldSettings,
};

use super::{Samples, Table, print_json};
use crate::{
    Failure,
    backends::{RedisLink, runtime},
};

const TARGET_RATE: f64 = 100_000.0;
const TARGET_RATIO: f64 = 0.4;
const TARGET_P99_MS: f64 = 100.0;
/// Entries per `XADD` pipeline.
const ADD_PIPELINE: usize = 500;
/// Entries per read in the baseline loop.
const BARE_COUNT: usize = 500;

#[derive(Clone, Debug, clap::Args)]
pub struct CommandsBench {
    /// Commands in the throughput run (and entries in the baseline loop).
    #[arg(long, default_value_t = 100_000)]
    pub count: usize,
    /// Commands in the latency run.
    #[arg(long, default_value_t = 20_000)]
    pub latency_count: usize,
    /// Commands added per second in the latency run.
    #[arg(long, default_value_t = 10_000)]
    pub latency_rate: u32,
    /// The designer data directory.
    #[arg(long, default_value = "assets")]
    pub assets: std::path::PathBuf,
    /// Scenario of the World.
    #[arg(long, default_value = "190")]
    pub scenario: String,
    /// The Redis server.
    #[arg(
        long,
        env = "REDIS_URL",
        hide_env_values = true,
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,
}

#[derive(Debug, Serialize)]
struct Report {
    bench: &'static str,
    count: usize,
    bare_loop_per_s: f64,
    /// TRAIN on existing generals: the targets are judged on this run.
    train_per_s: f64,
    train_ratio: f64,
    /// JOIN, each a new general: the heaviest command.
    join_per_s: f64,
    join_ratio: f64,
    target_per_s: f64,
    target_ratio: f64,
    latency_count: usize,
    latency_rate: u32,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
    latency_max_ms: f64,
    target_p99_ms: f64,
    met: bool,
}

fn join_payload(player: &str) -> String {
    serde_json::json!({
        "id": "join", "player": player, "type": "JOIN", "args": {"name": player}
    })
    .to_string()
}

fn train_payload(player: &str) -> String {
    serde_json::json!({
        "id": "train", "player": player, "type": "TRAIN", "general": format!("g-{player}")
    })
    .to_string()
}

/// Adds `payloads` to `key` in pipelines; returns the entry ids in order.
async fn add_all(
    redis: &mut ConnectionManager,
    key: &str,
    payloads: impl Iterator<Item = String>,
) -> redis::RedisResult<Vec<String>> {
    let mut ids = Vec::new();
    let payloads: Vec<String> = payloads.collect();
    for chunk in payloads.chunks(ADD_PIPELINE) {
        let mut pipe = redis::pipe();
        for payload in chunk {
            pipe.cmd("XADD")
                .arg(key)
                .arg("*")
                .arg("payload")
                .arg(payload);
        }
        let added: Vec<String> = pipe.query_async(redis).await?;
        ids.extend(added);
    }
    Ok(ids)
}

/// The bare loop: reads `count` entries already in `key` in batches, acknowledging each.
async fn bare_loop(redis: &mut ConnectionManager, key: &str, count: usize) -> anyhow::Result<f64> {
    redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(key)
        .arg("bare")
        .arg("0")
        .arg("MKSTREAM")
        .query_async::<()>(redis)
        .await?;
    add_all(
        redis,
        key,
        (0..count).map(|i| join_payload(&format!("b{i}"))),
    )
    .await?;
    let started = Instant::now();
    let mut read = 0;
    while read < count {
        let reply: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("bare")
            .arg("c")
            .arg("COUNT")
            .arg(BARE_COUNT)
            .arg("STREAMS")
            .arg(key)
            .arg(">")
            .query_async(redis)
            .await?;
        let ids: Vec<String> = reply
            .keys
            .into_iter()
            .flat_map(|k| k.ids.into_iter().map(|e| e.id))
            .collect();
        if ids.is_empty() {
            anyhow::bail!("the bare loop ran out of entries at {read}");
        }
        read += ids.len();
        redis::cmd("XACK")
            .arg(key)
            .arg("bare")
            .arg(&ids)
            .query_async::<usize>(redis)
            .await?;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// Waits until the World has applied `entry`.
fn wait_applied(read: &ReadHandle, entry: EntryId, deadline: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + deadline;
    loop {
        if read
            .load()
            .as_ref()
            .and_then(|m| m.applied_entry)
            .is_some_and(|a| a >= entry)
        {
            return Ok(());
        }
        if Instant::now() > until {
            anyhow::bail!("the World did not apply {entry} within {deadline:?}");
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

async fn remove_keys(redis: &mut ConnectionManager, keys: &[String]) {
    let _ = redis::cmd("DEL").arg(keys).query_async::<i64>(redis).await;
}

pub fn commands(options: &CommandsBench) -> Result<(), Failure> {
    if options.count == 0 || options.latency_count == 0 || options.latency_rate == 0 {
        return Err(Failure::Usage(
            "--count, --latency-count and --latency-rate must be positive".into(),
        ));
    }
    let data = Arc::new(systems::assets::load(&options.assets, &options.scenario)?);
    let runtime = runtime(1)?;
    let (mut redis, reader_redis) = {
        let _entered = runtime.enter();
        let link = RedisLink::open(&options.redis_url)?;
        (
            link.connection(Duration::from_secs(30))?,
            link.connection(stream::BLOCK + REDIS_TIMEOUT)?,
        )
    };
    let world_name = format!("bench-commands-{}", std::process::id());
    let keys = StreamKeys::new(&world_name);
    let bare_key = format!("bench:{world_name}:bare");
    let cleanup = vec![
        keys.commands().to_string(),
        keys.dlq().to_string(),
        bare_key.clone(),
    ];

    eprintln!(
        "baseline: a bare XREADGROUP/XACK loop over {} entries",
        options.count
    );
    let bare = runtime.block_on(bare_loop(&mut redis, &bare_key, options.count));
    runtime.block_on(remove_keys(&mut redis, &cleanup));
    let bare = bare?;

    // The World at the server's rates, fed by the server's stream reader.
    let read = ReadHandle::default();
    let (bus_tx, bus_rx) = crossbeam_channel::bounded(100_000);
    let settings = AppSettings::new(WorldSettings {
        name: world_name.clone(),
        speed: 24.0,
    });
    let (stop_world, stop_world_rx) = crossbeam_channel::bounded(1);
    let (built_tx, built_rx) = crossbeam_channel::bounded(1);
    let world_read = read.clone();
    let world_thread = std::thread::Builder::new()
        .name("world".into())
        .spawn(move || {
            let built = build_app_with(
                data,
                &settings,
                world_read,
                Some(bus_rx),
                Origin::Scenario,
                None,
            );
            let mut app = match built {
                Ok(app) => {
                    let _ = built_tx.send(Ok(()));
                    app
                }
                Err(e) => {
                    let _ = built_tx.send(Err(e.to_string()));
                    return;
                }
            };
            let world = app.world_mut();
            let mut driver = Driver::new(MonotonicClock::new(), &TickRates::default());
            driver.run(world, &stop_world_rx);
        })
        .context("cannot start the world thread")?;
    match built_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(anyhow::anyhow!("the World cannot be built: {e}").into()),
        Err(_) => return Err(anyhow::anyhow!("the world thread stopped while starting").into()),
    }

    let outcome = runtime.block_on(async {
        group::prepare(&mut redis, &keys, None).await?;
        // The reader takes entries as a daemon does: only while it holds the lease.
        let lease = Lease::try_acquire(&redis, &world_name)
            .await?
            .context("the bench world's lease is held by someone else")?;
        let tenure = lease.tenure();
        let (lost_tx, _lost_rx) = tokio::sync::mpsc::unbounded_channel();
        let (stop_lease, stop_lease_rx) = tokio::sync::watch::channel(false);
        let keeper = lease.keep(lost_tx, stop_lease_rx);
        let start_reader = |consumer: &str| {
            let reader = StreamReader::new(
                reader_redis.clone(),
                keys.clone(),
                consumer.into(),
                bus_tx.clone(),
                EntryId::ZERO,
                Some(tenure.clone()),
            );
            let (stop, stop_rx) = tokio::sync::watch::channel(false);
            (stop, tokio::spawn(reader.run(stop_rx)))
        };

        // Latency first, on the scenario's world.
        eprintln!(
            "latency: {} JOIN commands at {}/s",
            options.latency_count, options.latency_rate
        );
        let (stop, reading) = start_reader("latency");
        let latencies = latency_run(&mut redis, &keys, &read, options).await?;
        let _ = stop.send(true);
        let _ = reading.await;

        // Throughput: entries already in the stream, read and applied until the last.
        let throughput = async |redis: &mut ConnectionManager,
                                consumer: &str,
                                payloads: Vec<String>|
               -> anyhow::Result<f64> {
            let count = payloads.len();
            let ids = add_all(redis, keys.commands(), payloads.into_iter()).await?;
            let last: EntryId = ids
                .last()
                .and_then(|id| id.parse().ok())
                .context("no entry was added")?;
            let started = Instant::now();
            let (stop, reading) = start_reader(consumer);
            let waited = {
                let read = read.clone();
                tokio::task::spawn_blocking(move || {
                    wait_applied(&read, last, Duration::from_secs(600))
                })
                .await?
            };
            let per_s = count as f64 / started.elapsed().as_secs_f64();
            waited?;
            let _ = stop.send(true);
            let _ = reading.await;
            Ok(per_s)
        };
        eprintln!(
            "throughput: {} JOIN commands through the stream into the World",
            options.count
        );
        let joins = (0..options.count).map(|i| join_payload(&format!("p{i}")));
        let join_per_s = throughput(&mut redis, "joins", joins.collect()).await?;
        eprintln!(
            "throughput: {} TRAIN commands, one for each general that joined",
            options.count
        );
        let trains = (0..options.count).map(|i| train_payload(&format!("p{i}")));
        let train_per_s = throughput(&mut redis, "orders", trains.collect()).await?;
        let _ = stop_lease.send(true);
        if let Ok(lease) = keeper.await {
            let _ = lease.release().await;
        }
        anyhow::Ok((join_per_s, train_per_s, latencies))
    });
    let _ = stop_world.send(());
    let _ = world_thread.join();
    runtime.block_on(remove_keys(&mut redis, &cleanup));
    let (join_per_s, train_per_s, latencies) = outcome?;
    let latencies = Samples::new(latencies);
    let p99 = latencies.p99();
    let report = Report {
        bench: "commands",
        count: options.count,
        bare_loop_per_s: bare,
        train_per_s,
        train_ratio: train_per_s / bare,
        join_per_s,
        join_ratio: join_per_s / bare,
        target_per_s: TARGET_RATE,
        target_ratio: TARGET_RATIO,
        latency_count: options.latency_count,
        latency_rate: options.latency_rate,
        latency_p50_ms: latencies.p50(),
        latency_p99_ms: p99,
        latency_max_ms: latencies.max(),
        target_p99_ms: TARGET_P99_MS,
        met: train_per_s >= TARGET_RATE
            && train_per_s / bare >= TARGET_RATIO
            && p99 < TARGET_P99_MS,
    };
    print_report(&report);
    print_json(&report)
}

/// Adds commands at a steady rate while the World runs; the time from each `XADD` to the
/// published read models showing it applied, in ms.
async fn latency_run(
    redis: &mut ConnectionManager,
    keys: &StreamKeys,
    read: &ReadHandle,
    options: &CommandsBench,
) -> anyhow::Result<Vec<f64>> {
    // Small batches at a steady pace: 1 ms apart.
    let per_ms = (options.latency_rate as f64 / 1_000.0).max(1.0);
    let mut sent: VecDeque<(EntryId, Instant)> = VecDeque::new();
    let mut latencies = Vec::with_capacity(options.latency_count);
    let started = Instant::now();
    let mut added = 0usize;
    let observe = |sent: &mut VecDeque<(EntryId, Instant)>, latencies: &mut Vec<f64>| {
        let applied = read.load().as_ref().and_then(|m| m.applied_entry);
        let now = Instant::now();
        while let Some((entry, at)) = sent.front() {
            if applied.is_some_and(|a| a >= *entry) {
                latencies.push((now - *at).as_secs_f64() * 1e3);
                sent.pop_front();
            } else {
                break;
            }
        }
    };
    while added < options.latency_count {
        let due = ((started.elapsed().as_secs_f64() * 1e3 + 1.0) * per_ms) as usize;
        let n = due.min(options.latency_count).saturating_sub(added);
        if n > 0 {
            let mut pipe = redis::pipe();
            for i in added..added + n {
                pipe.cmd("XADD")
                    .arg(keys.commands())
                    .arg("*")
                    .arg("payload")
                    .arg(join_payload(&format!("l{i}")));
            }
            let at = Instant::now();
            let ids: Vec<String> = pipe.query_async(redis).await?;
            for id in ids {
                sent.push_back((id.parse().context("an entry id")?, at));
            }
            added += n;
        }
        observe(&mut sent, &mut latencies);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while !sent.is_empty() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the World stopped applying commands"
        );
        observe(&mut sent, &mut latencies);
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    Ok(latencies)
}

fn print_report(report: &Report) {
    let table = Table::new();
    let row = |name: &str, value: String, target: String| table.row(name, value, target);
    row("commands", report.count.to_string(), String::new());
    row(
        "bare XREADGROUP+XACK loop /s",
        format!("{:.0}", report.bare_loop_per_s),
        String::new(),
    );
    row(
        "TRAIN applied in the World /s",
        format!("{:.0}", report.train_per_s),
        format!(">={}", report.target_per_s),
    );
    row(
        "TRAIN applied / bare loop",
        format!("{:.2}", report.train_ratio),
        format!(">={}", report.target_ratio),
    );
    row(
        "JOIN applied in the World /s",
        format!("{:.0}", report.join_per_s),
        String::new(),
    );
    row(
        "JOIN applied / bare loop",
        format!("{:.2}", report.join_ratio),
        String::new(),
    );
    row(
        "XADD to applied p50 ms",
        format!("{:.1}", report.latency_p50_ms),
        String::new(),
    );
    row(
        "XADD to applied p99 ms",
        format!("{:.1}", report.latency_p99_ms),
        format!("<{}", report.target_p99_ms),
    );
}
