//! `tianxia bench battle`: battles run headless as fast as the CPU allows, each
//! beside a bare rapier2d world kept in step with it (same bodies, same velocities, same
//! removals, hence the same contacts) so the cost of the game logic is measured against the
//! physics alone, in the same run.

use std::{path::Path, time::Instant};

use serde::Serialize;
use systems::battle::{
    baseline::{Baseline, StepInputs},
    pool::{BattlePool, Steppable, Stepping},
    record::{BattleRecord, hash_hex},
    setup::{BattleParams, field_battle},
    sim::BattleSim,
};

use super::{Samples, print_json, process_memory};
use crate::Failure;

/// Ticks a battle runs before its baseline replays them.
const CHUNK_TICKS: u32 = 30;

/// The battle targets (docs/operations.md#performance-targets).
const RATIO_TARGET: f64 = 1.25;
const TICK_TARGET_MS: f64 = 1000.0 / 60.0;
const BYTES_PER_UNIT_TARGET: f64 = 512.0;
/// One large battle's step on two threads.
const TWO_THREAD_P50_TARGET_MS: f64 = 10.0;
/// Several battles on two threads against one.
const SPEEDUP_TARGET: f64 = 1.7;

/// Options of `bench battle`.
#[derive(Clone, Debug, clap::Args)]
pub struct BattleBench {
    /// Units per battle.
    #[arg(long)]
    pub units: u32,
    /// Battles stepped side by side.
    #[arg(long, default_value_t = 1)]
    pub battles: u32,
    /// Steps to run: the default, 100 s of battle time, takes a field battle of 10,000
    /// units from deployment through the peak of the melee.
    #[arg(long, default_value_t = 6000)]
    pub ticks: u32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The designer data directory (troop types and battle rules).
    #[arg(long, default_value = "assets")]
    pub assets: std::path::PathBuf,
    /// Write the first battle's recording to this file.
    #[arg(long)]
    pub record: Option<std::path::PathBuf>,
    /// Threads stepping the battles (and the bare worlds) as the server's battle pool does:
    /// small battles side by side, a large one's physics stages split among them. With more
    /// than one, the same battles also run on one thread, alternating with the others in the
    /// same run, for the speed-up and to check they end in the same state.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

#[derive(Debug, Serialize)]
struct Report {
    bench: &'static str,
    units: u32,
    battles: u32,
    ticks: u32,
    seed: u64,
    ms_per_tick_p50: f64,
    ms_per_tick_p99: f64,
    baseline_ms_per_tick_p50: f64,
    baseline_ms_per_tick_p99: f64,
    threads: usize,
    /// The same battles on one thread (runs with more than one).
    one_thread_ms_per_tick_p50: Option<f64>,
    /// One-thread step time over this run's: the throughput gained by the threads.
    threads_speedup: Option<f64>,
    /// Whether the one-thread copies ended in the same state.
    one_thread_same_hash: Option<bool>,
    /// Total battle time over total baseline time.
    cost_ratio: f64,
    unit_ticks_per_second: f64,
    state_hash: String,
    peak_rss_mb: f64,
    bytes_per_unit_outside_physics: f64,
    targets: Targets,
}

#[derive(Debug, Serialize)]
struct Targets {
    cost_ratio_max: f64,
    cost_ratio_met: bool,
    /// Only judged when the run is a single battle.
    tick_p50_ms_max: f64,
    tick_p50_met: Option<bool>,
    bytes_per_unit_max: f64,
    bytes_per_unit_met: bool,
    /// Only judged for a single battle: p99 of a step within one 60 Hz tick.
    tick_p99_ms_max: f64,
    tick_p99_met: Option<bool>,
    /// Only judged for several battles on several threads: each pass of all of them within
    /// a 60 Hz tick at p99, and the threads' speed-up.
    pass_p99_met: Option<bool>,
    threads_speedup_min: f64,
    threads_speedup_met: Option<bool>,
}

/// Peak resident memory of this process.
fn peak_rss_mb() -> f64 {
    process_memory("VmHWM") / (1024.0 * 1024.0)
}

pub fn battle(options: &BattleBench) -> Result<(), Failure> {
    if options.units < 2 || options.battles == 0 || options.ticks == 0 || options.threads == 0 {
        return Err(Failure::Usage(
            "--units must be at least 2, --battles, --ticks and --threads at least 1".into(),
        ));
    }
    let pool = BattlePool::new(options.threads);
    let single = (options.threads > 1).then(|| BattlePool::new(1));
    let rules = systems::assets::load_rules_only(&options.assets)?;
    let params = BattleParams::from_balance(&rules.balance.battle);
    let mut sims = Vec::new();
    let mut baselines = Vec::new();
    let mut copies = Vec::new();
    for b in 0..options.battles {
        let setup = field_battle(
            options.units,
            options.seed.wrapping_add(u64::from(b)),
            &params,
            &rules.troops,
        );
        baselines.push(Baseline::new(setup.clone()).map_err(|e| Failure::Runtime(e.into()))?);
        if single.is_some() {
            copies.push(BattleSim::new(setup.clone()).map_err(|e| Failure::Runtime(e.into()))?);
        }
        sims.push(BattleSim::new(setup).map_err(|e| Failure::Runtime(e.into()))?);
    }
    let units: usize = sims.iter().map(BattleSim::unit_count).sum();
    eprintln!(
        "bench battle: {} battle(s) of {} units, {} ticks, seed {}, {} thread(s)",
        options.battles, options.units, options.ticks, options.seed, options.threads
    );

    // Battles and baselines take turns in chunks of ticks, each chunk of battle steps
    // recording what it did to its physics for the baselines to replay: each world runs with
    // its own data warm in the caches, and slow spells of the machine hit both alike.
    let mut ours = Vec::with_capacity(options.ticks as usize);
    let mut bare = Vec::with_capacity(options.ticks as usize);
    let mut one = Vec::new();
    let mut unit_ticks = 0u64;
    let mut done = 0u32;
    while done < options.ticks {
        let chunk = CHUNK_TICKS.min(options.ticks - done);
        let mut recorded: Vec<Vec<StepInputs>> = vec![Vec::new(); sims.len()];
        for _ in 0..chunk {
            let started = Instant::now();
            step_all(&pool, &mut sims);
            ours.push(started.elapsed().as_secs_f64() * 1e3);
            for (record, sim) in recorded.iter_mut().zip(&sims) {
                record.push(StepInputs::of(sim));
            }
            unit_ticks += sims
                .iter()
                .map(|s| u64::from(s.units_alive().iter().sum::<u32>()))
                .sum::<u64>();
        }
        for t in 0..chunk as usize {
            for (baseline, record) in baselines.iter_mut().zip(&recorded) {
                baseline.apply(&record[t]);
            }
            let started = Instant::now();
            step_all(&pool, &mut baselines);
            bare.push(started.elapsed().as_secs_f64() * 1e3);
        }
        if let Some(single) = &single {
            for _ in 0..chunk {
                let started = Instant::now();
                step_all(single, &mut copies);
                one.push(started.elapsed().as_secs_f64() * 1e3);
            }
        }
        done += chunk;
        if done.is_multiple_of(150) || done == options.ticks {
            let b = &baselines[0];
            let recent = |v: &[f64]| {
                v[v.len().saturating_sub(chunk as usize)..]
                    .iter()
                    .sum::<f64>()
                    / f64::from(chunk)
            };
            eprintln!(
                "  tick {done}/{}: {:.1} ms (bare {:.1} ms) over the last {chunk}, {} bodies, {} pairs touching",
                options.ticks,
                recent(&ours),
                recent(&bare),
                b.bodies(),
                b.touching_pairs()
            );
        }
    }

    let total_ours: f64 = ours.iter().sum();
    let total_bare: f64 = bare.iter().sum();
    let ours_sorted = Samples::new(ours);
    let bare_sorted = Samples::new(bare);
    let hash = combined_hash(&sims);
    let total_one: f64 = one.iter().sum();
    let one_p50 = (!one.is_empty()).then(|| Samples::new(one).p50());
    let speedup = one_p50.map(|_| total_one / total_ours.max(f64::MIN_POSITIVE));
    let several = options.battles > 1 && options.threads > 1;
    // One core holds a 60 Hz tick; two threads should leave room for the rest of the World.
    let p50_target = if options.threads > 1 {
        TWO_THREAD_P50_TARGET_MS
    } else {
        TICK_TARGET_MS
    };
    let bytes: usize = sims.iter().map(BattleSim::bytes_outside_physics).sum();
    let bytes_per_unit = bytes as f64 / units.max(1) as f64;
    let ratio = total_ours / total_bare.max(f64::MIN_POSITIVE);
    let p50 = ours_sorted.p50();
    let report = Report {
        bench: "battle",
        units: options.units,
        battles: options.battles,
        ticks: options.ticks,
        seed: options.seed,
        ms_per_tick_p50: p50,
        ms_per_tick_p99: ours_sorted.p99(),
        baseline_ms_per_tick_p50: bare_sorted.p50(),
        baseline_ms_per_tick_p99: bare_sorted.p99(),
        threads: options.threads,
        one_thread_ms_per_tick_p50: one_p50,
        threads_speedup: speedup,
        one_thread_same_hash: single.as_ref().map(|_| combined_hash(&copies) == hash),
        cost_ratio: ratio,
        unit_ticks_per_second: unit_ticks as f64 / (total_ours / 1e3).max(f64::MIN_POSITIVE),
        state_hash: hash_hex(hash),
        peak_rss_mb: peak_rss_mb(),
        bytes_per_unit_outside_physics: bytes_per_unit,
        targets: Targets {
            cost_ratio_max: RATIO_TARGET,
            cost_ratio_met: ratio <= RATIO_TARGET,
            tick_p50_ms_max: p50_target,
            tick_p50_met: (options.battles == 1).then_some(p50 <= p50_target),
            bytes_per_unit_max: BYTES_PER_UNIT_TARGET,
            bytes_per_unit_met: bytes_per_unit < BYTES_PER_UNIT_TARGET,
            tick_p99_ms_max: TICK_TARGET_MS,
            tick_p99_met: (options.battles == 1).then_some(ours_sorted.p99() < TICK_TARGET_MS),
            pass_p99_met: several.then_some(ours_sorted.p99() < TICK_TARGET_MS),
            threads_speedup_min: SPEEDUP_TARGET,
            threads_speedup_met: speedup.filter(|_| several).map(|s| s >= SPEEDUP_TARGET),
        },
    };
    if let Some(path) = &options.record {
        write_record(path, &sims[0])?;
    }
    print_table(&report);
    print_json(&report)?;
    if report.one_thread_same_hash == Some(false) {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "the battles ended differently on one thread than on {}",
            options.threads
        )));
    }
    Ok(())
}

/// The battles' final states in one hash.
fn combined_hash(sims: &[BattleSim]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for sim in sims {
        hash = (hash ^ sim.state_hash()).wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// One step of each, on the pool as the server steps its battles.
fn step_all<S: Steppable>(pool: &BattlePool, all: &mut [S]) {
    let mut stepping: Vec<Stepping<'_, S>> = all
        .iter_mut()
        .map(|battle| Stepping { battle, quota: 1 })
        .collect();
    pool.run(&mut stepping, 1, None);
}

fn write_record(path: &Path, sim: &BattleSim) -> Result<(), Failure> {
    let record = BattleRecord::of(sim, "bench", "bench");
    std::fs::write(path, record.to_json())
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("cannot write {}: {e}", path.display())))
}

fn print_table(r: &Report) {
    println!("{:<34} {:>14} {:>14}", "", "battle", "bare rapier2d");
    println!(
        "{:<34} {:>14.3} {:>14.3}",
        "ms per tick, p50", r.ms_per_tick_p50, r.baseline_ms_per_tick_p50
    );
    println!(
        "{:<34} {:>14.3} {:>14.3}",
        "ms per tick, p99", r.ms_per_tick_p99, r.baseline_ms_per_tick_p99
    );
    println!(
        "{:<34} {:>14.3}",
        "cost ratio (battle / bare)", r.cost_ratio
    );
    println!(
        "{:<34} {:>14.0}",
        "unit-ticks per second", r.unit_ticks_per_second
    );
    println!(
        "{:<34} {:>14.1}",
        "bytes per unit outside physics", r.bytes_per_unit_outside_physics
    );
    println!("{:<34} {:>14.1}", "peak RSS, MiB", r.peak_rss_mb);
    println!("{:<34} {:>14}", "threads", r.threads);
    if let (Some(p50), Some(speedup), Some(same)) = (
        r.one_thread_ms_per_tick_p50,
        r.threads_speedup,
        r.one_thread_same_hash,
    ) {
        println!("{:<34} {:>14.3}", "one thread: ms per tick, p50", p50);
        println!("{:<34} {:>14.2}", "speed-up over one thread", speedup);
        println!("{:<34} {:>14}", "same end on one thread", same);
    }
    println!("{:<34} {:>14}", "final state hash", r.state_hash);
}
