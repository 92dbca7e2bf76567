//! The benchmarks: the shared report helpers (percentiles are asked for in percent), and
//! `bench ws` run small.

use tianxia::bench::Samples;

#[test]
fn percentiles_are_in_percent() {
    let samples = Samples::new((1..=100).rev().map(f64::from).collect());
    assert_eq!(samples.p50(), 51.0);
    assert_eq!(samples.p99(), 99.0);
    assert_eq!(samples.percentile(0.0), 1.0);
    assert_eq!(samples.max(), 100.0);
    assert_eq!(Samples::default().p99(), 0.0);
}

/// `bench ws` as an operator runs it, at a small scale: every client connects, the events and
/// the battle's frames reach them from the server and from the baseline, nobody is closed, and
/// the report says how each target stands.
#[test]
fn bench_ws_reports_deliveries_latency_and_memory_against_a_bare_server() {
    let output = crate::support::run(
        &[
            "bench",
            "ws",
            "--clients",
            "20",
            "--idle-clients",
            "200",
            "--seconds",
            "1",
            "--rate",
            "50",
            "--assets",
            crate::support::assets().to_str().unwrap(),
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    assert_eq!(report["bench"], "ws");
    assert_eq!(report["idle_connected"], 200, "{report}");
    assert!(report["idle_bytes_per_connection"].as_f64().unwrap() > 0.0);
    assert_eq!(report["battle_fought_throughout"], true, "{report}");
    for side in ["server", "bare"] {
        let run = &report[side];
        assert_eq!(run["connected"], 20, "{side}: {report}");
        assert_eq!(run["failed"], 0, "{side}: {report}");
        for measure in [
            "published_events_per_s",
            "received_events_per_s",
            "frames_per_s",
            "latency_p50_ms",
            "tick_p99_ms",
        ] {
            let value = run[measure].as_f64().unwrap();
            assert!(value > 0.0, "{side} {measure}: {report}");
        }
        // Every client reads every event (each is on `world`), give or take the edges of
        // the run.
        let share = run["received_share"].as_f64().unwrap();
        assert!(share > 0.5, "{side}: {report}");
        assert_eq!(run["closed"], serde_json::json!({}), "{side}: {report}");
        assert_eq!(run["dropped"], 0, "{side}: {report}");
    }
    let server = &report["server"];
    assert!(server["latency_samples"].as_u64().unwrap() > 0, "{report}");
    // Every event the server pushed was one the World published after the client subscribed.
    assert_eq!(server["unmatched_events"], 0, "{report}");
    assert!(report["deliveries_ratio"].as_f64().unwrap() > 0.0);
    let targets = &report["targets"];
    for judged in [
        "clients_met",
        "idle_bytes_met",
        "deliveries_ratio_met",
        "tick_p99_met",
    ] {
        assert!(targets[judged].is_boolean(), "{judged}: {targets}");
    }
    // 20 clients connected idle are no test of 10,000, nor the latency of 1,000.
    assert_eq!(targets["clients_met"], false);
    assert!(targets["latency_p99_met"].is_null());
}

/// `bench all --quick` as an operator runs it, on two of the benchmarks: each in its own
/// process, the summary holding each report with its targets; a bench that cannot run (no
/// Redis where it is told to look) is named, and the run says so by its exit status.
#[test]
fn bench_all_runs_the_benchmarks_and_sums_up_their_targets() {
    let closed = crate::support::free_port();
    let redis = format!("redis://127.0.0.1:{closed}");
    let output = crate::support::run(
        &[
            "bench",
            "all",
            "--quick",
            "--only",
            "battles,commands",
            "--redis-url",
            &redis,
            "--assets",
            crate::support::assets().to_str().unwrap(),
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    assert_eq!(summary["bench"], "all");
    assert_eq!(summary["quick"], true);
    assert_eq!(
        summary["failed"],
        serde_json::json!(["commands"]),
        "{summary}"
    );
    let benches = summary["benches"].as_array().unwrap();
    assert_eq!(benches.len(), 2);
    let battles = &benches[0];
    assert_eq!(battles["name"], "battles");
    assert!(battles["error"].is_null(), "{summary}");
    assert_eq!(battles["report"]["battles"], 8);
    assert_eq!(battles["report"]["one_thread_same_hash"], true);
    let names: Vec<&str> = battles["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for judged in [
        "targets.cost_ratio_met",
        "targets.pass_p99_met",
        "targets.threads_speedup_met",
    ] {
        assert!(names.contains(&judged), "{names:?}");
    }
    // Not judged with several battles: left out rather than counted.
    assert!(!names.contains(&"targets.tick_p50_met"));
    let judged =
        summary["targets_met"].as_u64().unwrap() + summary["targets_missed"].as_u64().unwrap();
    assert_eq!(judged as usize, names.len());
    assert!(benches[1]["report"].is_null());
    assert!(
        benches[1]["error"]
            .as_str()
            .unwrap()
            .contains("exit status")
    );
    assert!(!benches[1]["command"].as_str().unwrap().contains("redis://"));
    // An unknown name is a usage error.
    let unknown = crate::support::run(&["bench", "all", "--only", "fastest"], &[]);
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn the_summary_finds_targets_at_any_depth_and_leaves_unjudged_ones_out() {
    let report: serde_json::Value = serde_json::from_str(
        r#"{"met":true,"targets":{"cost_ratio_met":false,"tick_p50_met":null,"x":1},
            "worlds":[{"met":true}],"unmet":3}"#,
    )
    .unwrap();
    let mut found = Vec::new();
    tianxia::bench::all::collect_targets(&report, "", &mut found);
    let names: Vec<(String, bool)> = found.into_iter().map(|t| (t.name, t.met)).collect();
    assert_eq!(
        names,
        [
            ("met".to_string(), true),
            ("targets.cost_ratio_met".to_string(), false),
            ("worlds[0].met".to_string(), true),
        ]
    );
}

/// `bench reads` as an operator runs it, small: both paths against the bare handler, every
/// answer a 200, and the JSON line saying how the target stands.
#[test]
fn bench_reads_compares_the_read_routes_with_a_bare_handler() {
    let output = crate::support::run(
        &[
            "bench",
            "reads",
            "--seconds",
            "1",
            "--rounds",
            "1",
            "--connections",
            "4",
            "--scenario",
            "tiny",
            "--assets",
            crate::support::assets().to_str().unwrap(),
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    assert_eq!(report["bench"], "reads");
    let paths = report["paths"].as_array().unwrap();
    assert_eq!(paths.len(), 2, "{report}");
    assert!(
        paths[0]["path"]
            .as_str()
            .unwrap()
            .starts_with("/api/generals/")
    );
    assert_eq!(paths[1]["path"], "/api/world");
    for path in paths {
        for side in ["server", "bare"] {
            assert_eq!(path[side]["errors"], 0, "{report}");
            assert!(
                path[side]["requests_per_second"].as_f64().unwrap() > 0.0,
                "{report}"
            );
            assert!(
                path[side]["p99_ms"].as_f64().unwrap() >= path[side]["p50_ms"].as_f64().unwrap()
            );
        }
        assert!(path["ratio"].as_f64().unwrap() > 0.0, "{report}");
        assert!(path["bytes"].as_u64().unwrap() > 100, "{report}");
    }
    assert_eq!(report["target_ratio"], 0.8);
    assert!(report["met"].is_boolean());
    let bad = crate::support::run(&["bench", "reads", "--connections", "0"], &[]);
    assert_eq!(bad.status.code(), Some(2));
}
