//! Criterion benchmark of battle steps: the same field battle as `tianxia bench battle`, one
//! step of the battle against one step of a bare rapier2d world replaying its inputs.
//!
//! `cargo bench --bench battle` (units per battle from `BATTLE_UNITS`, default 10000). Each of
//! the two measurements builds its own battle and bare world, warms them up to the same
//! state (deterministically), then steps both in lockstep, timing only its own side: both
//! measure the same sequence of steps of the same battle. For the figures of BENCHMARKS.md
//! use `tianxia bench battle`, which also reports tail latencies, memory and the targets.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use criterion::{Criterion, criterion_group, criterion_main};
use systems::battle::{
    baseline::{Baseline, StepInputs},
    setup::{BattleParams, field_battle},
    sim::BattleSim,
};

/// Steps run before measuring, so the armies are in contact.
const WARM_UP_STEPS: u32 = 600;

/// A battle and its bare world after the warm-up, in step.
fn warm(units: u32) -> (BattleSim, Baseline) {
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let rules = systems::assets::load_rules_only(&assets).expect("designer data");
    let params = BattleParams::from_balance(&rules.balance.battle);
    let setup = field_battle(units, 1, &params, &rules.troops);
    let mut sim = BattleSim::new(setup.clone()).expect("setup");
    let mut baseline = Baseline::new(setup).expect("setup");
    for _ in 0..WARM_UP_STEPS {
        sim.step();
        baseline.apply(&StepInputs::of(&sim));
        baseline.step();
    }
    (sim, baseline)
}

/// Which side of the lockstep a measurement times.
#[derive(Clone, Copy, PartialEq)]
enum Timed {
    Battle,
    Bare,
}

fn lockstep(sim: &mut BattleSim, baseline: &mut Baseline, iters: u64, timed: Timed) -> Duration {
    let mut spent = Duration::ZERO;
    for _ in 0..iters {
        let started = Instant::now();
        sim.step();
        if timed == Timed::Battle {
            spent += started.elapsed();
        }
        baseline.apply(&StepInputs::of(sim));
        let started = Instant::now();
        baseline.step();
        if timed == Timed::Bare {
            spent += started.elapsed();
        }
    }
    spent
}

fn battle_step(c: &mut Criterion) {
    let units: u32 = std::env::var("BATTLE_UNITS")
        .ok()
        .and_then(|u| u.parse().ok())
        .unwrap_or(10_000);
    let mut group = c.benchmark_group(format!("battle_{units}_units"));
    group.sample_size(20);
    for (name, timed) in [
        ("battle step", Timed::Battle),
        ("bare rapier2d step", Timed::Bare),
    ] {
        let (mut sim, mut baseline) = warm(units);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| lockstep(&mut sim, &mut baseline, iters, timed))
        });
    }
    group.finish();
}

criterion_group!(benches, battle_step);
criterion_main!(benches);
