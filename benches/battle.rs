//! Criterion benchmark of battle steps: the same field battle as `tianxia bench battle`,
//! one step of the battle against one step of a bare rapier2d world replaying its inputs.
//!
//! `cargo bench --bench battle` (the units per battle can be set with `BATTLE_UNITS`,
//! default 1000). For the figures of BENCHMARKS.md use `tianxia bench battle`, which also
//! reports tail latencies, memory and the targets.

use std::path::Path;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use systems::battle::{
    baseline::{Baseline, StepInputs},
    setup::{BattleParams, field_battle},
    sim::BattleSim,
};

/// Steps run before measuring, so the armies are in contact.
const WARM_UP_STEPS: u32 = 300;

fn battle_step(c: &mut Criterion) {
    let units: u32 = std::env::var("BATTLE_UNITS")
        .ok()
        .and_then(|u| u.parse().ok())
        .unwrap_or(1_000);
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let rules = systems::assets::load_rules_only(&assets).expect("designer data");
    let params = BattleParams::from_balance(&rules.balance.battle);
    let setup = field_battle(units, 1, &params, &rules.troops);

    // Both worlds after the warm-up, in step.
    let mut sim = BattleSim::new(setup.clone()).expect("setup");
    let mut baseline = Baseline::new(setup).expect("setup");
    for _ in 0..WARM_UP_STEPS {
        sim.step();
        baseline.apply(&StepInputs::of(&sim));
        baseline.step();
    }

    let mut group = c.benchmark_group(format!("battle_{units}_units"));
    group.sample_size(20);
    group.bench_function("battle step", |b| b.iter(|| sim.step()));
    group.bench_function("bare rapier2d step", |b| {
        b.iter_batched(
            || StepInputs::of(&sim),
            |inputs| {
                baseline.apply(&inputs);
                baseline.step();
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, battle_step);
criterion_main!(benches);
