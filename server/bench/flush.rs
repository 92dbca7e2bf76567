//! `tianxia bench flush`: persistence of a world of N generals.
//!
//! - Extract: the World builds one epoch holding every entity (the first epoch of a World
//!   is full, so all N are "changed").
//! - Embedded write: that epoch committed to a fresh embedded store (one synced
//!   transaction). Extract + write is the flush time (target under 2 s for 100,000).
//! - Recovery: the world rebuilt from that store (load + build; target under 3 s).
//! - MongoDB (when `MONGODB_URI` or `--mongodb-uri` is given): the same epoch committed by
//!   the MongoDB store, against the raw driver inserting the same snapshot documents into
//!   the same server in the same run (target at most 1.5x).
//! - Tick p99 with and without flushes: two copies of the world tick side by side in
//!   alternating blocks, one handing an epoch to a store worker writing the embedded store
//!   every `--flush-every` ticks (target: p99 within 10 % of the other's).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use components::{persist::Batch, read_model::ReadHandle};
use persistence::{DataDir, Embedded, EmbeddedStore, KEEP_EVENTS, MongoStore, WorldStore};
use serde::Serialize;
use systems::{
    app::{AppSettings, Origin, build_app_with},
    assets::GameData,
    persist::{Extract, PersistSettings, close_epoch},
    schedule::{ClockStep, Publish, Strategy},
    spawn::WorldSettings,
};

use super::{Samples, Table, print_json};
use crate::{Failure, persister::Persister};

const TARGET_FLUSH_MS: f64 = 2_000.0;
const TARGET_RECOVERY_MS: f64 = 3_000.0;
const TARGET_MONGO_RATIO: f64 = 1.5;
const TARGET_TICK_RATIO: f64 = 1.10;

#[derive(Clone, Debug, clap::Args)]
pub struct FlushBench {
    /// Generals of the world (it has a tenth as many cities).
    #[arg(long, default_value_t = 100_000)]
    pub entities: usize,
    /// Strategy ticks per world for the tick comparison.
    #[arg(long, default_value_t = 1_200)]
    pub ticks: u32,
    /// Ticks between epochs in the tick comparison (10 s of a 1 Hz strategy schedule).
    #[arg(long, default_value_t = 10)]
    pub flush_every: u32,
    /// Game seconds per tick.
    #[arg(long, default_value_t = 24)]
    pub step: i64,
    /// The designer data directory (its rules are used).
    #[arg(long, default_value = "assets")]
    pub assets: std::path::PathBuf,
    /// A MongoDB server to measure too.
    #[arg(long, env = "MONGODB_URI", hide_env_values = true)]
    pub mongodb_uri: Option<String>,
}

#[derive(Debug, Serialize)]
struct MongoReport {
    entities: usize,
    store_ms: f64,
    raw_driver_ms: f64,
    ratio: f64,
    target_ratio: f64,
    met: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    bench: &'static str,
    entities: usize,
    extract_ms: f64,
    embedded_write_ms: f64,
    flush_ms: f64,
    flush_target_ms: f64,
    recovery_ms: f64,
    recovery_target_ms: f64,
    store_bytes: u64,
    mongodb: Option<MongoReport>,
    ticks: u32,
    tick_p50_ms: f64,
    tick_p99_ms: f64,
    tick_p50_flushing_ms: f64,
    tick_p99_flushing_ms: f64,
    tick_p99_ratio: f64,
    tick_target_ratio: f64,
    epochs_written: u64,
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

fn world_data(options: &FlushBench) -> Result<GameData, Failure> {
    let rules = systems::assets::load_rules_only(&options.assets)?;
    Ok(systems::scale::scaled_world(
        rules,
        (options.entities / 10).max(4),
        100,
        options.entities,
    ))
}

fn settings(options: &FlushBench) -> AppSettings {
    AppSettings::new(WorldSettings {
        name: "bench-flush".into(),
        speed: options.step as f64,
    })
}

/// A World handing its epochs to `sink`; epochs close only when asked for.
fn persisted_app(
    data: Arc<GameData>,
    options: &FlushBench,
    sink: crossbeam_channel::Sender<Batch>,
) -> bevy_app::App {
    let persist = PersistSettings {
        sink,
        flush_interval: Duration::from_secs(365 * 86_400),
        lease_epoch: 0,
        last_epoch: 0,
        incarnation: 1,
        hot: None,
    };
    build_app_with(
        data,
        &settings(options),
        ReadHandle::default(),
        None,
        Origin::Scenario,
        Some(persist),
    )
    .unwrap_or_else(|e| unreachable!("a scenario always builds: {e}"))
}

pub fn flush(options: &FlushBench) -> Result<(), Failure> {
    if options.entities == 0 || options.ticks == 0 || options.flush_every == 0 {
        return Err(Failure::Usage(
            "--entities, --ticks and --flush-every must be positive".into(),
        ));
    }
    let data = Arc::new(world_data(options)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;

    // Extract: the World's first epoch holds everything.
    eprintln!("building a world of {} generals", options.entities);
    let (sink, epochs) = crossbeam_channel::unbounded();
    let mut app = persisted_app(data.clone(), options, sink);
    let started = Instant::now();
    close_epoch(app.world_mut());
    let extract_ms = ms(started);
    let batch = epochs
        .try_recv()
        .context("the World handed over no epoch")?;
    let entities = batch.snapshots.len();
    drop(app);

    // Embedded write and recovery.
    let dir = tempfile::tempdir().context("cannot make a scratch directory")?;
    let data_dir = DataDir::lock(dir.path()).map_err(anyhow::Error::from)?;
    let store = EmbeddedStore::open(&data_dir).map_err(anyhow::Error::from)?;
    eprintln!("writing {entities} snapshots to the embedded store");
    let started = Instant::now();
    store
        .commit_epoch(&batch, KEEP_EVENTS)
        .map_err(anyhow::Error::from)?;
    let embedded_write_ms = ms(started);
    let store_bytes = std::fs::metadata(store.path()).map_or(0, |m| m.len());
    eprintln!("recovering from it");
    let started = Instant::now();
    let recovered = store
        .recover_world("bench-flush")
        .map_err(anyhow::Error::from)?
        .world
        .context("the checkpoint was not found")?;
    let restored = build_app_with(
        data.clone(),
        &settings(options),
        ReadHandle::default(),
        None,
        Origin::Checkpoint(Box::new(recovered)),
        None,
    )
    .map_err(anyhow::Error::from)?;
    let recovery_ms = ms(started);
    drop(restored);

    let mongodb = match &options.mongodb_uri {
        Some(uri) => Some(runtime.block_on(mongo(uri, &batch))?),
        None => None,
    };

    // Tick p99 with and without a store worker taking epochs.
    eprintln!(
        "ticking two copies of the world {} ticks each, one flushing every {} ticks",
        options.ticks, options.flush_every
    );
    let (sink, quiet_epochs) = crossbeam_channel::unbounded();
    let mut quiet = persisted_app(data.clone(), options, sink);
    close_epoch(quiet.world_mut());
    drop(quiet_epochs);
    // The quiet copy closes no epoch on its own (only a capture would; its sink is gone, so
    // such an epoch is built and dropped): nothing is written for it.
    let (sink, rx) = crossbeam_channel::unbounded();
    let mut flushing = persisted_app(data, options, sink);
    let status = Arc::new(components::durable::PersistStatus::new("embedded"));
    let writer: Arc<dyn WorldStore> = Arc::new(Embedded::new(Arc::new(store)));
    let persister = Persister::start(
        rx,
        writer,
        None,
        status.clone(),
        runtime.handle().clone(),
        None,
    )?;
    let mut plain = Vec::with_capacity(options.ticks as usize);
    let mut timed = Vec::with_capacity(options.ticks as usize);
    let block = 50;
    let mut done = 0;
    while done < options.ticks {
        let n = block.min(options.ticks - done);
        for (app, times, flushes) in [
            (&mut quiet, &mut plain, false),
            (&mut flushing, &mut timed, true),
        ] {
            let world = app.world_mut();
            for i in done..done + n {
                if flushes && (i + 1) % options.flush_every == 0 {
                    world.resource_mut::<Extract>().request();
                }
                world.insert_resource(ClockStep(options.step));
                let t = Instant::now();
                world.run_schedule(Strategy);
                world.run_schedule(Publish);
                times.push(ms(t));
            }
        }
        done += n;
    }
    drop(flushing);
    persister.join();
    drop(quiet);
    let (plain, timed) = (Samples::new(plain), Samples::new(timed));
    let (p99, p99_flushing) = (plain.p99(), timed.p99());

    let report = Report {
        bench: "flush",
        entities,
        extract_ms,
        embedded_write_ms,
        flush_ms: extract_ms + embedded_write_ms,
        flush_target_ms: TARGET_FLUSH_MS,
        recovery_ms,
        recovery_target_ms: TARGET_RECOVERY_MS,
        store_bytes,
        mongodb,
        ticks: options.ticks,
        tick_p50_ms: plain.p50(),
        tick_p99_ms: p99,
        tick_p50_flushing_ms: timed.p50(),
        tick_p99_flushing_ms: p99_flushing,
        tick_p99_ratio: p99_flushing / p99.max(f64::MIN_POSITIVE),
        tick_target_ratio: TARGET_TICK_RATIO,
        epochs_written: status.report().durable_epoch,
    };
    print_report(&report);
    print_json(&report)
}

async fn mongo(uri: &str, batch: &Batch) -> Result<MongoReport, Failure> {
    let store = MongoStore::connect(uri, Duration::from_secs(5))
        .await
        .map_err(|e| Failure::Usage(e.to_string()))?;
    store.create_indexes().await.map_err(anyhow::Error::from)?;
    let suffix = format!(
        "{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    );
    let mut batch = batch.clone();
    batch.checkpoint.world = format!("bench-flush-{suffix}");
    let scratch = format!("bench_raw_{}", suffix.replace('-', "_"));
    let world = batch.checkpoint.world.clone();
    let entities = batch.snapshots.len();
    eprintln!(
        "writing {entities} snapshots to MongoDB, then the same documents with the raw driver"
    );
    let batch = Arc::new(batch);
    let started = Instant::now();
    let stored = store.commit(batch.clone()).await;
    let store_ms = ms(started);
    let docs = store.snapshot_documents(&batch);
    let started = Instant::now();
    let raw = store.insert_raw(&scratch, docs).await;
    let raw_driver_ms = ms(started);
    let cleaned = store.remove_world(&world, &scratch).await;
    stored.map_err(anyhow::Error::from)?;
    raw.map_err(anyhow::Error::from)?;
    cleaned.map_err(anyhow::Error::from)?;
    let ratio = store_ms / raw_driver_ms.max(f64::MIN_POSITIVE);
    Ok(MongoReport {
        entities,
        store_ms,
        raw_driver_ms,
        ratio,
        target_ratio: TARGET_MONGO_RATIO,
        met: ratio <= TARGET_MONGO_RATIO,
    })
}

fn print_report(report: &Report) {
    let table = Table::new();
    let row = |name: &str, value: String, target: String| table.row(name, value, target);
    row("entities", report.entities.to_string(), String::new());
    row(
        "extract ms",
        format!("{:.1}", report.extract_ms),
        String::new(),
    );
    row(
        "embedded write ms",
        format!("{:.1}", report.embedded_write_ms),
        String::new(),
    );
    row(
        "flush ms (extract + write)",
        format!("{:.1}", report.flush_ms),
        format!("<{}", report.flush_target_ms),
    );
    row(
        "recovery ms",
        format!("{:.1}", report.recovery_ms),
        format!("<{}", report.recovery_target_ms),
    );
    if let Some(m) = &report.mongodb {
        row(
            "mongodb store ms",
            format!("{:.1}", m.store_ms),
            String::new(),
        );
        row(
            "mongodb raw driver ms",
            format!("{:.1}", m.raw_driver_ms),
            String::new(),
        );
        row(
            "mongodb store / raw",
            format!("{:.2}", m.ratio),
            format!("<={}", m.target_ratio),
        );
    }
    row(
        "tick p50 ms",
        format!("{:.3}", report.tick_p50_ms),
        String::new(),
    );
    row(
        "tick p99 ms",
        format!("{:.3}", report.tick_p99_ms),
        String::new(),
    );
    row(
        "tick p50 ms, flushing",
        format!("{:.3}", report.tick_p50_flushing_ms),
        String::new(),
    );
    row(
        "tick p99 ms, flushing",
        format!("{:.3}", report.tick_p99_flushing_ms),
        String::new(),
    );
    row(
        "tick p99 flushing / not",
        format!("{:.3}", report.tick_p99_ratio),
        format!("<={}", report.tick_target_ratio),
    );
}
