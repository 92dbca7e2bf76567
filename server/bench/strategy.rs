//! `tianxia bench strategy`: the cost of one strategy tick, with the AI on all
//! sides, for the 190 scenario and for a synthetic world scaled to 100,000 generals and
//! 10,000 cities. Ticks run back to back as in a catch-up, each advancing the clock by the
//! step of one tick at speed 24, for a game day by default (so the day's economy is in the
//! measurement). Battles the AI starts are stepped between ticks, untimed; publishing the
//! read models is timed apart.

use std::{sync::Arc, time::Instant};

use components::read_model::ReadHandle;
use serde::Serialize;
use systems::{
    app::{AppSettings, build_app},
    assets::GameData,
    battle::BattlePace,
    schedule::{BattleTick, ClockStep, Publish, Strategy},
    spawn::WorldSettings,
};

use crate::{
    Failure,
    bench::{Samples, print_json, process_memory},
};

/// The strategy targets (docs/operations.md#performance-targets), in milliseconds per
/// strategy tick.
const TARGET_190_MS: f64 = 1.0;
const TARGET_SCALED_MS: f64 = 10.0;
/// The memory target per general.
const BYTES_PER_GENERAL_TARGET: f64 = 1024.0;

#[derive(Clone, Debug, clap::Args)]
pub struct StrategyBench {
    /// Strategy ticks measured per world: the default is one game day at 24 game seconds a
    /// tick.
    #[arg(long, default_value_t = 3_600)]
    pub ticks: u32,
    /// Game seconds each tick advances the clock by (speed 24 at 1 Hz).
    #[arg(long, default_value_t = 24)]
    pub step: i64,
    /// Cities of the scaled world (rounded to a square grid).
    #[arg(long, default_value_t = 10_000)]
    pub cities: usize,
    /// Generals of the scaled world.
    #[arg(long, default_value_t = 100_000)]
    pub generals: usize,
    /// Nations of the scaled world (rounded to a square).
    #[arg(long, default_value_t = 100)]
    pub nations: usize,
    /// The designer data directory (rules, and the 190 scenario).
    #[arg(long, default_value = "assets")]
    pub assets: std::path::PathBuf,
}

#[derive(Debug, Serialize)]
struct WorldReport {
    world: String,
    cities: usize,
    generals: usize,
    ticks: u32,
    ms_per_tick_mean: f64,
    ms_per_tick_p50: f64,
    ms_per_tick_p99: f64,
    ms_per_tick_max: f64,
    publish_ms_p50: f64,
    publish_ms_p99: f64,
    target_ms: f64,
    /// p99 under the target.
    met: bool,
    /// Resident memory the world and its read models added, per general (an upper bound:
    /// cities, nations and the read models are counted in).
    bytes_per_general: f64,
    /// Of which the World itself (components, resources, indexes), before any publish.
    world_bytes_per_general: f64,
    events: u64,
    battles_started: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    bench: &'static str,
    step: i64,
    worlds: Vec<WorldReport>,
    bytes_per_general_max: f64,
}

fn rss_bytes() -> f64 {
    process_memory("VmRSS")
}

fn measure(name: &str, data: GameData, options: &StrategyBench, target_ms: f64) -> WorldReport {
    let cities = data.scenario.cities.city.len();
    let generals = data.scenario.generals.general.len();
    let before = rss_bytes();
    let read = ReadHandle::default();
    let settings = AppSettings::new(WorldSettings {
        name: "bench".into(),
        speed: options.step as f64,
    });
    let mut app = build_app(Arc::new(data), &settings, read.clone(), None);
    let per_general = |bytes: f64| bytes.max(0.0) / generals.max(1) as f64;
    let world_bytes_per_general = per_general(rss_bytes() - before);
    let world = app.world_mut();
    world.run_schedule(Publish);
    let bytes_per_general = per_general(rss_bytes() - before);
    eprintln!(
        "{name}: {cities} cities, {generals} generals; running {} ticks",
        options.ticks
    );

    let mut ticks = Vec::with_capacity(options.ticks as usize);
    let mut publishes = Vec::with_capacity(options.ticks as usize);
    let started = Instant::now();
    for i in 0..options.ticks {
        world.insert_resource(ClockStep(options.step));
        let t = Instant::now();
        world.run_schedule(Strategy);
        ticks.push(t.elapsed().as_secs_f64() * 1e3);
        world.insert_resource(BattlePace {
            catch_up: true,
            share: 1.0,
            budget: std::time::Duration::from_secs(60),
        });
        world.run_schedule(BattleTick);
        let t = Instant::now();
        world.run_schedule(Publish);
        publishes.push(t.elapsed().as_secs_f64() * 1e3);
        if (i + 1) % 600 == 0 {
            eprintln!(
                "  {name}: {} of {} ticks, {:.0} s",
                i + 1,
                options.ticks,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let mean = ticks.iter().sum::<f64>() / ticks.len().max(1) as f64;
    let slowest = ticks
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i);
    let ticks = Samples::new(ticks);
    let publishes = Samples::new(publishes);
    let models = read.load_full();
    let events = models
        .as_ref()
        .and_then(|m| m.events.last().map(|e| e.seq))
        .unwrap_or(0);
    let battles_started = models.as_ref().map_or(0, |m| {
        m.events
            .iter()
            .filter(|e| e.kind.name() == "BattleStarted")
            .count() as u64
    });
    let p99 = ticks.p99();
    eprintln!("  {name}: the slowest tick was tick {}", slowest + 1);
    WorldReport {
        world: name.to_string(),
        cities,
        generals,
        ticks: options.ticks,
        ms_per_tick_mean: mean,
        ms_per_tick_p50: ticks.p50(),
        ms_per_tick_p99: p99,
        ms_per_tick_max: ticks.max(),
        publish_ms_p50: publishes.p50(),
        publish_ms_p99: publishes.p99(),
        target_ms,
        met: p99 < target_ms,
        bytes_per_general,
        world_bytes_per_general,
        events,
        battles_started,
    }
}

pub fn strategy(options: &StrategyBench) -> Result<(), Failure> {
    if options.ticks == 0 || options.step <= 0 || options.generals == 0 || options.cities < 4 {
        return Err(Failure::Usage(
            "--ticks and --step must be positive, --generals at least 1, --cities at least 4"
                .into(),
        ));
    }
    let data = systems::assets::load(&options.assets, "190")?;
    let rules = systems::assets::load_rules_only(&options.assets)?;
    let mut worlds = vec![measure("190", data, options, TARGET_190_MS)];
    let scaled =
        systems::scale::scaled_world(rules, options.cities, options.nations, options.generals);
    worlds.push(measure("scaled", scaled, options, TARGET_SCALED_MS));
    let report = Report {
        bench: "strategy",
        step: options.step,
        worlds,
        bytes_per_general_max: BYTES_PER_GENERAL_TARGET,
    };
    println!(
        "{:<10} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10} {:>8} {:>10}",
        "world",
        "cities",
        "generals",
        "mean ms",
        "p50 ms",
        "p99 ms",
        "max ms",
        "publish99",
        "target",
        "B/general"
    );
    for w in &report.worlds {
        println!(
            "{:<10} {:>8} {:>9} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>10.3} {:>8} {:>10.0} {:>10.0}",
            w.world,
            w.cities,
            w.generals,
            w.ms_per_tick_mean,
            w.ms_per_tick_p50,
            w.ms_per_tick_p99,
            w.ms_per_tick_max,
            w.publish_ms_p99,
            format!("<{}", w.target_ms),
            w.bytes_per_general,
            w.world_bytes_per_general
        );
    }
    print_json(&report)
}
