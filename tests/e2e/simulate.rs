//! `tianxia simulate` (docs/operations.md#subcommands): a game year of the 190 scenario with
//! the AI on all sides, headless, as an operator runs it: the world stays consistent (every
//! city held by one active nation or none, no negative stocks, command points within bounds,
//! events in sequence) and things happen (marches, battles, captures, wars declared and
//! ended, a nation destroyed); the first month of `tiny`, with its CSV; a range of seeds
//! compared against a data change, reported the same way every time; and the charts of the
//! reports (round ticks, escaped text, the heat map).

use std::collections::BTreeSet;

use serde_json::Value;
use tianxia::report_svg::{Axis, diverging_color, escape, heat_map, nice_ticks};

use crate::support::{assets, copy_dir, run};

#[test]
fn a_year_of_the_190_scenario_with_ai_on_all_sides() {
    let dir = tempfile::tempdir().unwrap();
    let plot = dir.path().join("territory.svg");
    let output = run(
        &[
            "simulate",
            "--days",
            "360",
            "--seed",
            "7",
            "--scenario",
            "190",
            "--assets",
            assets().to_str().unwrap(),
            "--plot",
            plot.to_str().unwrap(),
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "simulate failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    // A table per month: the start and twelve month boundaries.
    let months = stdout
        .lines()
        .filter(|l| {
            l.split_once('-').is_some_and(|(y, m)| {
                y.parse::<u32>().is_ok() && m.parse::<u32>().is_ok_and(|m| (1..=12).contains(&m))
            })
        })
        .count();
    assert_eq!(months, 13, "{stdout}");
    assert!(stdout.contains("dong_zhuo"));

    let report: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(report["consistent"], true, "{report}");
    assert_eq!(report["days"], 360);
    let happened = &report["happened"];
    for what in [
        "marches",
        "battles",
        "captures",
        "commands_accepted",
        "wars_declared",
        "peace_made",
        "nations_destroyed",
    ] {
        assert!(happened[what].as_u64().unwrap() > 0, "no {what}: {report}");
    }
    let cities: u64 = report["standings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["cities"].as_u64().unwrap())
        .sum();
    assert!(cities > 0 && cities <= 49, "{report}");

    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(
        svg.starts_with("<svg")
            && svg.contains("Territory")
            && svg.contains(r#"class="axis""#)
            && svg.contains("dong_zhuo")
            && svg.ends_with("</svg>\n"),
        "{svg}"
    );
}

/// The small world sees battles and a capture in its first game month, with every event of
/// the run written as JSON lines and every month of it as CSV.
#[test]
fn the_first_month_of_the_tiny_scenario_has_battles() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let csv = dir.path().join("months.csv");
    let output = run(
        &[
            "simulate",
            "--days",
            "30",
            "--scenario",
            "tiny",
            "--assets",
            assets().to_str().unwrap(),
            "--events",
            events.to_str().unwrap(),
            "--csv",
            csv.to_str().unwrap(),
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(report["consistent"], true, "{report}");
    let happened = &report["happened"];
    assert!(happened["battles"].as_u64().unwrap() > 0, "{report}");
    assert!(happened["captures"].as_u64().unwrap() > 0, "{report}");
    let lines: Vec<Value> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, happened["events"].as_u64().unwrap());
    let ended = lines.iter().filter(|e| e["type"] == "BattleEnded").count() as u64;
    assert_eq!(ended, happened["battles"].as_u64().unwrap());
    assert!(
        lines
            .windows(2)
            .all(|w| w[1]["seq"].as_u64() > w[0]["seq"].as_u64())
    );

    // One row per month and nation, then the end; each month's battles on every row of it.
    let csv = std::fs::read_to_string(&csv).unwrap();
    let mut rows = csv.lines();
    assert_eq!(
        rows.next(),
        Some("dataset,seed,month,nation,cities,generals,troops,gold,battles")
    );
    let rows: Vec<Vec<&str>> = rows.map(|r| r.split(',').collect()).collect();
    assert!(rows.iter().all(|r| r.len() == 9 && r[1] == "1"), "{csv}");
    let battles: u64 = rows
        .iter()
        .filter(|r| r[3] == "north" && r[2] != "end")
        .map(|r| r[8].parse::<u64>().unwrap())
        .sum();
    assert_eq!(battles, happened["battles"].as_u64().unwrap(), "{csv}");
    let end: Vec<&Vec<&str>> = rows.iter().filter(|r| r[2] == "end").collect();
    assert_eq!(end.len(), 3, "{csv}");
    assert!(end.iter().all(|r| r[8].is_empty()), "{csv}");
}

/// A designer's data change measured over four seeds: the copy's AI never attacks, so it
/// fights fewer battles, and the report says so the same way on every run, whatever the
/// threads did.
#[test]
fn simulate_seeds_compare_is_deterministic_and_plots_with_axes() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("assets-b");
    copy_dir(&assets(), &copy);
    let balance = copy.join("balance.toml");
    let text = std::fs::read_to_string(&balance).unwrap();
    assert!(text.contains("attack_ratio = 1.5"), "{text}");
    std::fs::write(
        &balance,
        text.replace("attack_ratio = 1.5", "attack_ratio = 100.0"),
    )
    .unwrap();
    let assets = assets();
    let simulate = |name: &str| {
        let csv = dir.path().join(format!("{name}.csv"));
        let svg = dir.path().join(format!("{name}.svg"));
        let output = run(
            &[
                "simulate",
                "--scenario",
                "tiny",
                "--days",
                "60",
                "--seeds",
                "1..4",
                "--assets",
                assets.to_str().unwrap(),
                "--compare",
                copy.to_str().unwrap(),
                "--csv",
                csv.to_str().unwrap(),
                "--plot",
                svg.to_str().unwrap(),
            ],
            &[],
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert!(
            output.status.success(),
            "simulate failed: {}\n{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
        (
            stdout,
            std::fs::read_to_string(csv).unwrap(),
            std::fs::read_to_string(svg).unwrap(),
        )
    };
    let (stdout, csv, svg) = simulate("a");
    let (again, csv_again, svg_again) = simulate("b");
    assert_eq!(stdout, again);
    assert_eq!(csv, csv_again);
    assert_eq!(svg, svg_again);

    let report: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(report["simulate"], "done", "{report}");
    assert_eq!(report["seeds"], serde_json::json!([1, 4]), "{report}");
    let datasets = report["datasets"].as_array().unwrap();
    assert_eq!(datasets.len(), 2, "{report}");
    for dataset in datasets {
        assert_eq!(dataset["consistent"], true, "{report}");
        let nations: BTreeSet<&str> = dataset["nations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["nation"].as_str().unwrap())
            .collect();
        assert_eq!(
            nations,
            BTreeSet::from(["east", "north", "west"]),
            "{report}"
        );
        for nation in dataset["nations"].as_array().unwrap() {
            let cities = &nation["cities"];
            for key in ["mean", "min", "median", "max", "sd"] {
                assert!(cities[key].is_number(), "{key}: {report}");
            }
            assert!(cities["min"].as_f64() <= cities["max"].as_f64(), "{report}");
            assert!(nation["survival"].is_number(), "{report}");
            assert!(nation["battles_won"]["mean"].is_number(), "{report}");
        }
    }
    let battles = |dataset: &Value| -> f64 {
        dataset["battles_per_month"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_f64().unwrap())
            .sum()
    };
    assert!(battles(&datasets[0]) > battles(&datasets[1]), "{report}");
    let differences = report["differences"].as_array().unwrap();
    assert!(
        differences
            .iter()
            .any(|d| d["measure"] == "battles_fought" && d["b"].as_f64() < d["a"].as_f64()),
        "{report}"
    );
    assert!(stdout.contains("A against B"), "{stdout}");
    assert!(
        stdout.contains("exceeds the seed-to-seed spread"),
        "{stdout}"
    );

    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("dataset,seed,month,nation,cities,generals,troops,gold,battles")
    );
    let runs: BTreeSet<(&str, &str)> = lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 9, "{line}");
            (fields[0], fields[1])
        })
        .collect();
    let (a, b) = (assets.to_str().unwrap(), copy.to_str().unwrap());
    let expected: BTreeSet<(&str, &str)> = [a, b]
        .into_iter()
        .flat_map(|set| ["1", "2", "3", "4"].map(|seed| (set, seed)))
        .collect();
    assert_eq!(runs, expected);

    assert!(
        svg.starts_with("<svg") && svg.ends_with("</svg>\n"),
        "{svg}"
    );
    assert_eq!(svg.matches(r#"class="axis""#).count(), 4, "{svg}");
    assert_eq!(svg.matches(r#"class="legend""#).count(), 4, "{svg}");
    for title in [
        "<title>",
        "Territory: cities per nation",
        "Troops per nation",
        "Gold per nation",
        "Battles per month",
        "solid: A (assets)",
        "dashed: B (assets-b)",
        "stroke-dasharray",
    ] {
        assert!(svg.contains(title), "no {title}: {svg}");
    }
}

#[test]
fn simulate_refuses_bad_options() {
    let output = run(&["simulate", "--days", "0"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--days"));
    for bad in [
        &["--seeds", "5..2"][..],
        &["--seeds", "1..1001"],
        &["--seeds", "one..two"],
        &["--seed", "3", "--seeds", "1..2"],
        &["--compare", "assets"],
    ] {
        let args: Vec<&str> = ["simulate", "--days", "1"]
            .iter()
            .chain(bad)
            .copied()
            .collect();
        let output = run(&args, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{bad:?}: {stderr}");
        assert!(stderr.contains("--seed"), "{bad:?}: {stderr}");
    }
}

#[test]
fn chart_ticks_are_round_and_cover_the_range() {
    for (min, max) in [
        (0.0, 47.0),
        (0.0, 3.0),
        (0.0, 1.0),
        (0.0, 0.0),
        (5.0, 5.0),
        (12.0, 13.0),
        (-5.0, 5.0),
        (-3.2, 0.7),
        (0.0, 0.004),
        (1_234.0, 98_765.0),
        (0.0, 1e7),
    ] {
        let ticks = nice_ticks(min, max);
        assert!((4..=6).contains(&ticks.len()), "{min}..{max}: {ticks:?}");
        assert!(
            ticks[0] <= min && ticks[ticks.len() - 1] >= max,
            "{min}..{max}: {ticks:?}"
        );
        let step = ticks[1] - ticks[0];
        assert!(
            ticks
                .windows(2)
                .all(|w| (w[1] - w[0] - step).abs() < step * 1e-6),
            "{min}..{max}: {ticks:?}"
        );
        // 1, 2, 2.5 or 5 times a power of ten, and every tick a multiple of it.
        let mantissa = step / 10f64.powf(step.log10().floor());
        assert!(
            [1.0, 2.0, 2.5, 5.0, 10.0]
                .iter()
                .any(|m| (mantissa - m).abs() < 1e-6),
            "{min}..{max}: {ticks:?}"
        );
        assert!(
            ticks
                .iter()
                .all(|t| ((t / step) - (t / step).round()).abs() < 1e-6),
            "{min}..{max}: {ticks:?}"
        );
    }
    assert_eq!(nice_ticks(0.0, 47.0), [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]);
    assert_eq!(nice_ticks(0.0, 3.0), [0.0, 1.0, 2.0, 3.0]);
    assert_eq!(
        nice_ticks(1_234.0, 98_765.0),
        [0.0, 20_000.0, 40_000.0, 60_000.0, 80_000.0, 100_000.0]
    );
}

#[test]
fn chart_text_is_escaped_and_the_heat_map_has_its_scale() {
    assert_eq!(
        escape(r#"<a & "b"> 'c'"#),
        "&lt;a &amp; &quot;b&quot;&gt; &apos;c&apos;"
    );
    assert_eq!(escape("wei 魏\u{7}"), "wei 魏");

    assert_eq!(diverging_color(0.0, 0.0, 100.0), "#b2182b");
    assert_eq!(diverging_color(50.0, 0.0, 100.0), "#f7f7f7");
    assert_eq!(diverging_color(100.0, 0.0, 100.0), "#2166ac");
    let rows = ["infantry".to_string(), "cavalry <heavy>".to_string()];
    let cols = ["infantry".to_string(), "archers & crossbows".to_string()];
    let svg = heat_map(
        "Attacker wins",
        Axis {
            title: "attacker",
            labels: &rows,
        },
        Axis {
            title: "defender",
            labels: &cols,
        },
        &[vec![Some(50.0), Some(72.5)], vec![Some(12.0), None]],
        0.0,
        100.0,
        "%",
    );
    assert!(
        svg.starts_with("<svg") && svg.ends_with("</svg>\n"),
        "{svg}"
    );
    assert!(
        svg.contains("cavalry &lt;heavy&gt;") && !svg.contains("<heavy>"),
        "{svg}"
    );
    assert!(svg.contains("archers &amp; crossbows"), "{svg}");
    for text in [
        "<title>Attacker wins</title>",
        r#"class="axis""#,
        r#"class="legend""#,
        ">attacker<",
        ">defender<",
        ">50%<",
        ">72.5%<",
        ">12%<",
        ">0%<",
        ">100%<",
        "#f7f7f7",
    ] {
        assert!(svg.contains(text), "no {text}: {svg}");
    }
}
