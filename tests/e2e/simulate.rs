//! `tianxia simulate` (docs/operations.md#subcommands): a game year of the 190 scenario with
//! the AI on all sides, headless, as an operator runs it: the world stays consistent (every
//! city held by one active nation or none, no negative stocks, command points within bounds,
//! events in sequence) and things happen (marches, battles, captures, wars declared and
//! ended, a nation destroyed); and the first month of `tiny`.

use serde_json::Value;

use crate::support::{assets, run};

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
    assert!(svg.starts_with("<svg") && svg.contains("<polygon"), "{svg}");
}

/// The small world sees battles and a capture in its first game month, with every event of
/// the run written as JSON lines.
#[test]
fn the_first_month_of_the_tiny_scenario_has_battles() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
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
}

#[test]
fn simulate_refuses_bad_options() {
    let output = run(&["simulate", "--days", "0"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--days"));
}
