//! Battles (docs/rules.md#battles) as the rules and operators use them: the simulation's
//! outcomes, its determinism, recordings and their replay from the command line, battles inside
//! the World at different speeds, and their read models over HTTP.

use components::{battle::Side, world::TroopType};
use systems::battle::{
    setup::{BattleParams, BattleSetup, GroupSetup},
    sim::{BattleSim, UnitState},
};

use crate::support::assets;

pub fn rules() -> systems::assets::RulesData {
    systems::assets::load_rules_only(&assets()).expect("the shipped rules load")
}

pub fn group(
    id: &str,
    side: Side,
    troop: TroopType,
    soldiers: u32,
    stats: (u8, u8, u8),
) -> GroupSetup {
    GroupSetup {
        id: id.into(),
        side,
        troop_type: troop,
        soldiers,
        leadership: stats.0,
        training: stats.1,
        morale: stats.2,
        join_step: 0,
    }
}

pub fn setup(seed: u64, walls: u32, groups: Vec<GroupSetup>) -> BattleSetup {
    let rules = rules();
    BattleSetup {
        seed,
        walls,
        params: BattleParams::from_balance(&rules.balance.battle),
        troops: rules.troops,
        groups,
    }
}

fn run(setup: BattleSetup) -> BattleSim {
    let mut sim = BattleSim::new(setup).expect("a valid setup");
    while sim.outcome().is_none() {
        sim.step();
    }
    sim
}

/// Every group's soldiers are all accounted for: `initial = survivors + casualties`, and the
/// survivors are exactly the soldiers its units still have.
fn assert_conserved(sim: &BattleSim) {
    let results = sim.group_results();
    let mut in_units = vec![0u32; results.len()];
    for i in 0..sim.unit_count() {
        let (group, _, soldiers, _) = sim.unit(i);
        in_units[group] += soldiers;
    }
    for (g, result) in results.iter().enumerate() {
        assert_eq!(
            result.initial,
            result.survivors + result.casualties,
            "{result:?}"
        );
        assert_eq!(
            result.survivors,
            in_units[g],
            "{result:?} at step {}",
            sim.steps()
        );
    }
}

/// A field battle of infantry against infantry and archers, with or without walls.
fn siege(seed: u64, walls: u32, attackers: u32, defenders: u32) -> BattleSetup {
    setup(
        seed,
        walls,
        vec![
            group(
                "att",
                Side::Attacker,
                TroopType::INFANTRY,
                attackers,
                (70, 60, 80),
            ),
            group(
                "def",
                Side::Defender,
                TroopType::INFANTRY,
                defenders / 2,
                (70, 60, 80),
            ),
            group(
                "arc",
                Side::Defender,
                TroopType::ARCHER,
                defenders / 2,
                (70, 60, 80),
            ),
        ],
    )
}

#[test]
fn a_stronger_army_wins_and_every_soldier_is_accounted_for() {
    let mut sim = BattleSim::new(setup(
        3,
        0,
        vec![
            group(
                "strong",
                Side::Attacker,
                TroopType::INFANTRY,
                3_000,
                (80, 70, 85),
            ),
            group(
                "weak",
                Side::Defender,
                TroopType::INFANTRY,
                1_000,
                (50, 40, 70),
            ),
        ],
    ))
    .unwrap();
    while sim.outcome().is_none() {
        sim.step();
        if sim.steps().is_multiple_of(100) {
            assert_conserved(&sim);
        }
    }
    assert_conserved(&sim);
    let outcome = sim.outcome().unwrap();
    assert_eq!(outcome.winner, Side::Attacker, "{outcome:?}");
    let results = sim.group_results();
    assert!(results[1].casualties > results[0].casualties, "{results:?}");
    assert!(
        results[1].casualties > 0 && results[0].casualties > 0,
        "{results:?}"
    );
    // A finished battle steps no more.
    let hash = sim.state_hash();
    sim.step();
    assert_eq!(sim.state_hash(), hash);
}

#[test]
fn the_same_setup_and_seed_give_the_same_battle() {
    let first = run(siege(11, 0, 2_000, 1_500));
    let second = run(siege(11, 0, 2_000, 1_500));
    assert_eq!(first.outcome(), second.outcome());
    assert_eq!(first.group_results(), second.group_results());
    assert_eq!(first.state_hash(), second.state_hash());
    let other = run(siege(12, 0, 2_000, 1_500));
    assert_ne!(
        other.state_hash(),
        first.state_hash(),
        "another seed, another battle"
    );
    // Stepping in bursts or one by one makes no difference.
    let mut a = BattleSim::new(siege(11, 0, 2_000, 1_500)).unwrap();
    let mut b = BattleSim::new(siege(11, 0, 2_000, 1_500)).unwrap();
    for burst in [1, 7, 60, 3, 250] {
        for _ in 0..burst {
            a.step();
        }
    }
    for _ in 0..321 {
        b.step();
    }
    assert_eq!(a.state_hash(), b.state_hash());
}

#[test]
fn walls_change_the_outcome() {
    let open = run(siege(7, 0, 2_000, 1_500));
    let walled = run(siege(7, 5, 2_000, 1_500));
    assert_eq!(
        open.outcome().unwrap().winner,
        Side::Attacker,
        "{:?}",
        open.outcome()
    );
    assert_eq!(
        walled.outcome().unwrap().winner,
        Side::Defender,
        "{:?}",
        walled.outcome()
    );
    let lost = |sim: &BattleSim, side| {
        sim.group_results()
            .iter()
            .filter(|g| g.side == side)
            .map(|g| g.casualties)
            .sum::<u32>()
    };
    assert!(lost(&walled, Side::Defender) < lost(&open, Side::Defender));
}

#[test]
fn at_the_time_limit_the_defender_holds() {
    let mut far_apart = siege(9, 0, 2_000, 1_000);
    far_apart.params.deploy_gap = 2_000.0;
    far_apart.params.time_limit_steps = 300;
    let sim = run(far_apart);
    let outcome = sim.outcome().unwrap();
    assert_eq!(outcome.winner, Side::Defender);
    assert_eq!(outcome.reason, components::battle::EndReason::TimeLimit);
    assert_eq!(outcome.steps, 300);
    assert!(sim.group_results().iter().all(|g| g.casualties == 0));
}

#[test]
fn a_broken_unit_flees_towards_its_own_side() {
    let mut sim = BattleSim::new(setup(
        5,
        0,
        vec![
            group(
                "fierce",
                Side::Attacker,
                TroopType::INFANTRY,
                3_000,
                (90, 90, 95),
            ),
            group(
                "shaky",
                Side::Defender,
                TroopType::INFANTRY,
                1_500,
                (40, 30, 35),
            ),
        ],
    ))
    .unwrap();
    // Run until a defending unit breaks.
    let (unit, broke_at) = loop {
        sim.step();
        assert!(
            sim.outcome().is_none(),
            "the battle ended before any unit broke"
        );
        let routed = (0..sim.unit_count()).find(|&i| {
            let (group, state, _, _) = sim.unit(i);
            group == 1 && state == UnitState::Routed
        });
        if let Some(i) = routed {
            break (i, sim.unit(i).3);
        }
    };
    for _ in 0..120 {
        sim.step();
    }
    let (_, state, soldiers, now) = sim.unit(unit);
    match state {
        UnitState::Routed => assert!(
            now.x > broke_at.x + 2.0,
            "fled from {broke_at:?} to {now:?}"
        ),
        UnitState::Fled => assert!(soldiers > 0),
        other => assert_eq!(
            other,
            UnitState::Dead,
            "a broken unit flees, falls or escapes"
        ),
    }
    while sim.outcome().is_none() {
        sim.step();
    }
    let outcome = sim.outcome().unwrap();
    assert_eq!(outcome.winner, Side::Attacker);
    assert_eq!(
        outcome.reason,
        components::battle::EndReason::Routed,
        "{outcome:?}"
    );
    assert_conserved(&sim);
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn troop() -> impl Strategy<Value = TroopType> {
        prop_oneof![
            Just(TroopType::INFANTRY),
            Just(TroopType::CAVALRY),
            Just(TroopType::ARCHER)
        ]
    }

    fn groups(side: Side) -> impl Strategy<Value = Vec<GroupSetup>> {
        prop::collection::vec((troop(), 1u32..900, 1u8..=100, 0u8..=100, 0u8..=100), 1..3).prop_map(
            move |gs| {
                gs.into_iter()
                    .enumerate()
                    .map(|(i, (t, n, l, tr, m))| {
                        group(&format!("{side:?}{i}"), side, t, n, (l, tr, m))
                    })
                    .collect()
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

        #[test]
        fn soldiers_are_conserved_and_casualties_only_grow(
            seed in any::<u64>(),
            walls in 0u32..4,
            attackers in groups(Side::Attacker),
            defenders in groups(Side::Defender),
        ) {
            let mut all = attackers;
            all.extend(defenders);
            let mut sim = BattleSim::new(setup(seed, walls, all)).unwrap();
            let mut lost = vec![0u32; sim.group_results().len()];
            for _ in 0..12 {
                for _ in 0..60 {
                    sim.step();
                }
                assert_conserved(&sim);
                for (g, result) in sim.group_results().iter().enumerate() {
                    prop_assert!(result.casualties >= lost[g]);
                    lost[g] = result.casualties;
                }
                if let Some(outcome) = sim.outcome() {
                    prop_assert_eq!(outcome.steps, sim.steps());
                    break;
                }
            }
        }
    }
}

mod recordings {
    use std::fs;

    use systems::battle::record::BattleRecord;

    use super::*;
    use crate::support::run as tianxia;

    fn recorded(dir: &std::path::Path) -> (std::path::PathBuf, BattleRecord) {
        let mut sim = BattleSim::new(siege(21, 3, 1_200, 900)).unwrap();
        for _ in 0..400 {
            sim.step();
        }
        let record = BattleRecord::of(&sim, "b-test-1", "data-hash-of-test");
        let path = dir.join("battle.json");
        fs::write(&path, record.to_json()).unwrap();
        (path, record)
    }

    #[test]
    fn a_recorded_battle_replays_to_the_same_hash_from_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let (path, record) = recorded(dir.path());
        let output = tianxia(&["battle", "run", path.to_str().unwrap()], &[]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.contains(&format!("state hash: {}", record.state_hash)),
            "{stdout}"
        );
        assert!(stdout.contains("matches the recording"), "{stdout}");
        assert!(stdout.contains("att") && stdout.contains("arc"), "{stdout}");

        // A recording whose hash the replay does not reach is reported.
        let mut wrong = record.clone();
        wrong.state_hash = "0123456789abcdef".into();
        fs::write(&path, wrong.to_json()).unwrap();
        let output = tianxia(&["battle", "run", path.to_str().unwrap()], &[]);
        assert_eq!(output.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&output.stderr).contains("diverged"));
    }

    #[test]
    fn bad_recordings_are_refused_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let (path, record) = recorded(dir.path());
        let json = record.to_json();
        let mut zero = record.clone();
        zero.setup.groups[0].soldiers = 0;
        let mut one_sided = record.clone();
        one_sided.setup.groups.retain(|g| g.side == Side::Attacker);
        let mut bad_hash = record.clone();
        bad_hash.state_hash = "not hex".into();
        for (text, needle) in [
            (json[..json.len() / 2].to_string(), "line"),
            ("[1, 2, 3]".to_string(), "not a battle recording"),
            (
                json.replacen("\"format\": 1", "\"format\": 9", 1),
                "format 9 is not supported",
            ),
            (json.replacen("\"seed\"", "\"sead\"", 1), "unknown field"),
            (zero.to_json(), "needs at least one soldier"),
            (one_sided.to_json(), "a group on each side"),
            (bad_hash.to_json(), "is not 16 hex digits"),
        ] {
            fs::write(&path, &text).unwrap();
            let output = tianxia(&["battle", "run", path.to_str().unwrap()], &[]);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "{needle}: {stderr}");
            assert!(stderr.contains(needle), "expected {needle:?} in {stderr}");
            assert!(
                stderr.contains("battle.json"),
                "the file is named: {stderr}"
            );
        }
        let missing = tianxia(
            &[
                "battle",
                "run",
                dir.path().join("none.json").to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(missing.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read"));
    }

    #[test]
    fn bench_battle_prints_a_table_and_a_json_line() {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("bench.json");
        let assets = assets();
        let output = tianxia(
            &[
                "bench",
                "battle",
                "--units",
                "200",
                "--ticks",
                "90",
                "--assets",
                assets.to_str().unwrap(),
                "--record",
                record.to_str().unwrap(),
            ],
            &[],
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("cost ratio (battle / bare)"), "{stdout}");
        let line = stdout.lines().last().unwrap();
        let report: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(report["units"], 200);
        assert_eq!(report["ticks"], 90);
        for field in [
            "ms_per_tick_p50",
            "ms_per_tick_p99",
            "baseline_ms_per_tick_p50",
            "cost_ratio",
            "unit_ticks_per_second",
            "peak_rss_mb",
            "bytes_per_unit_outside_physics",
        ] {
            assert!(
                report[field].as_f64().is_some_and(|v| v > 0.0),
                "{field}: {line}"
            );
        }
        assert_eq!(report["state_hash"].as_str().unwrap().len(), 16);
        assert!(report["targets"]["bytes_per_unit_met"].is_boolean());
        assert_eq!(report["threads"], 1);
        assert!(report["threads_speedup"].is_null());
        // Two battles on two threads, beside the same two on one: the same end.
        let output = tianxia(
            &[
                "bench",
                "battle",
                "--units",
                "200",
                "--battles",
                "2",
                "--ticks",
                "90",
                "--threads",
                "2",
                "--assets",
                assets.to_str().unwrap(),
            ],
            &[],
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let two: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        assert_eq!(two["threads"], 2);
        assert_eq!(two["one_thread_same_hash"], true, "{stdout}");
        assert!(two["threads_speedup"].as_f64().is_some_and(|v| v > 0.0));
        assert!(two["targets"]["threads_speedup_met"].is_boolean());
        assert!(two["targets"]["pass_p99_met"].is_boolean());
        // The recording it wrote replays to its hash.
        let replay = tianxia(&["battle", "run", record.to_str().unwrap()], &[]);
        assert!(
            replay.status.success(),
            "{}",
            String::from_utf8_lossy(&replay.stderr)
        );
    }
}

mod matchup {
    use std::{collections::BTreeSet, fs};

    use crate::support::{SPEARMAN, copy_dir, repo, run as tianxia};

    const SITUATIONS: [(&str, &str); 4] = [
        ("equal_open", "Equal numbers, open field"),
        ("two_to_one_open", "2:1, open field"),
        ("equal_walls", "Equal numbers, against level-3 walls"),
        ("two_to_one_walls", "2:1, against level-3 walls"),
    ];

    #[test]
    fn matchup_covers_every_pair_and_is_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let assets = dir.path().join("assets");
        copy_dir(&repo().join("assets"), &assets);
        let troops = assets.join("troops.toml");
        let mut text = fs::read_to_string(&troops).unwrap();
        text.push_str(SPEARMAN);
        fs::write(&troops, text).unwrap();
        let csv = dir.path().join("m.csv");
        let svg = dir.path().join("m.svg");
        let args = [
            "battle",
            "matchup",
            "--units",
            "16",
            "--seeds",
            "2",
            "--assets",
            assets.to_str().unwrap(),
            "--csv",
            csv.to_str().unwrap(),
            "--plot",
            svg.to_str().unwrap(),
        ];

        let mut runs = Vec::new();
        for _ in 0..2 {
            let output = tianxia(&args, &[]);
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            assert!(
                output.status.success(),
                "{stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            );
            runs.push((
                stdout,
                fs::read_to_string(&csv).unwrap(),
                fs::read_to_string(&svg).unwrap(),
            ));
        }
        assert_eq!(runs[0].0, runs[1].0, "the same inputs print the same text");
        assert_eq!(runs[0].1, runs[1].1, "and write the same CSV");
        assert_eq!(runs[0].2, runs[1].2, "and draw the same SVG");
        let (stdout, csv_text, svg_text) = &runs[0];

        for (_, title) in SITUATIONS {
            assert!(stdout.contains(title), "{title} in {stdout}");
        }
        let line = stdout.lines().last().unwrap();
        let report: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(report["matchup"], "done");
        assert_eq!(report["units"], 16);
        assert_eq!(report["seeds"], 2);
        assert_eq!(
            report["battle_data_hash"].as_str().map(str::len),
            Some(16),
            "{line}"
        );
        let cells = report["cells"].as_array().unwrap();
        assert_eq!(cells.len(), 4 * 4 * 4, "{line}");
        let mut seen = BTreeSet::new();
        for cell in cells {
            let key = (
                cell["situation"].as_str().unwrap().to_string(),
                cell["attacker"].as_str().unwrap().to_string(),
                cell["defender"].as_str().unwrap().to_string(),
            );
            assert!(seen.insert(key), "each pair and situation once: {cell}");
            for share in [
                "attacker_win_rate",
                "attacker_casualties",
                "defender_casualties",
            ] {
                let value = cell[share].as_f64().unwrap();
                assert!((0.0..=1.0).contains(&value), "{share}: {cell}");
            }
            assert!(cell["seconds"].as_f64().unwrap() > 0.0, "{cell}");
            assert!(cell["time_limit_ends"].as_u64().unwrap() <= 2, "{cell}");
        }
        let types = ["archer", "cavalry", "infantry", "spearman"];
        for (situation, _) in SITUATIONS {
            for attacker in types {
                for defender in types {
                    assert!(
                        seen.contains(&(
                            situation.to_string(),
                            attacker.to_string(),
                            defender.to_string()
                        )),
                        "{situation} {attacker} against {defender}"
                    );
                }
            }
        }

        assert_eq!(csv_text.lines().count(), 1 + 64, "{csv_text}");
        assert!(
            csv_text.starts_with(
                "situation,attacker,defender,attacker_win_rate,attacker_casualties,\
                 defender_casualties,seconds,time_limit_ends\n"
            ),
            "{csv_text}"
        );
        assert!(csv_text.contains(",spearman,"), "{csv_text}");

        assert!(svg_text.contains(r#"class="legend""#));
        for (_, title) in SITUATIONS {
            assert!(svg_text.contains(title), "{title} in the plot");
        }
        assert!(svg_text.contains("spearman"));
        assert!(svg_text.trim_end().ends_with("</svg>"));

        // Bad options are refused with a message, before any battle.
        for (option, value) in [("--units", "0"), ("--seeds", "0")] {
            let output = tianxia(
                &[
                    "battle",
                    "matchup",
                    option,
                    value,
                    "--assets",
                    assets.to_str().unwrap(),
                ],
                &[],
            );
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{option} {value}: {stderr}");
            assert!(stderr.contains(option), "{option} named in {stderr}");
        }
        let missing = tianxia(
            &[
                "battle",
                "matchup",
                "--assets",
                dir.path().join("none").to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(missing.status.code(), Some(1));
        assert!(!String::from_utf8_lossy(&missing.stderr).is_empty());
    }
}
