//! `tianxia bench all [--quick]`: every benchmark, each in a process of its own (so one's
//! threads, memory and peak resident size never weigh on the next), and one JSON summary of
//! every report with each of its targets and whether it was met.

use std::{
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

use crate::Failure;

/// Options of `bench all`.
#[derive(Clone, Debug, clap::Args)]
pub struct AllBench {
    /// Small sizes and short runs: a check that every bench works and of the ratios' trend,
    /// in a few minutes; the targets are judged at the full sizes.
    #[arg(long)]
    pub quick: bool,
    /// Only these benchmarks, by name (battle, battles, strategy, flush, commands, ws, reads).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// The Redis server `bench commands` uses; without one it is reported as not run.
    #[arg(
        long,
        env = "REDIS_URL",
        hide_env_values = true,
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,
    /// The designer data directory.
    #[arg(long, default_value = "assets")]
    pub assets: std::path::PathBuf,
}

/// One benchmark of the suite: its name and its arguments at full size and quick.
struct Entry {
    name: &'static str,
    full: &'static [&'static str],
    quick: &'static [&'static str],
}

const SUITE: &[Entry] = &[
    Entry {
        name: "battle",
        full: &["battle", "--units", "10000", "--threads", "2"],
        quick: &[
            "battle",
            "--units",
            "2000",
            "--ticks",
            "600",
            "--threads",
            "2",
        ],
    },
    Entry {
        name: "battles",
        full: &[
            "battle",
            "--units",
            "600",
            "--battles",
            "16",
            "--ticks",
            "3000",
            "--threads",
            "2",
        ],
        quick: &[
            "battle",
            "--units",
            "300",
            "--battles",
            "8",
            "--ticks",
            "300",
            "--threads",
            "2",
        ],
    },
    Entry {
        name: "strategy",
        full: &["strategy"],
        quick: &[
            "strategy",
            "--ticks",
            "120",
            "--cities",
            "1000",
            "--generals",
            "10000",
            "--nations",
            "25",
        ],
    },
    Entry {
        name: "flush",
        full: &["flush"],
        quick: &["flush", "--entities", "10000", "--ticks", "120"],
    },
    Entry {
        name: "commands",
        full: &["commands"],
        quick: &[
            "commands",
            "--count",
            "10000",
            "--latency-count",
            "2000",
            "--latency-rate",
            "2000",
        ],
    },
    Entry {
        name: "ws",
        full: &["ws"],
        quick: &[
            "ws",
            "--clients",
            "100",
            "--idle-clients",
            "500",
            "--seconds",
            "3",
        ],
    },
    Entry {
        name: "reads",
        full: &["reads"],
        quick: &[
            "reads",
            "--seconds",
            "1",
            "--rounds",
            "1",
            "--connections",
            "8",
        ],
    },
];

#[derive(Debug, Serialize)]
struct Summary {
    bench: &'static str,
    quick: bool,
    seconds: f64,
    /// Every target judged, over all the benchmarks.
    targets_met: usize,
    targets_missed: usize,
    /// `bench.target` of each target missed.
    missed: Vec<String>,
    /// Benchmarks that did not run to their report.
    failed: Vec<String>,
    benches: Vec<Ran>,
}

#[derive(Debug, Serialize)]
struct Ran {
    name: &'static str,
    /// The command line, after `tianxia`.
    command: String,
    seconds: f64,
    /// Why it gave no report: its exit status and the end of its error output.
    error: Option<String>,
    /// Each target of its report (`targets.cost_ratio_met`, ...) and whether it was met.
    targets: Vec<Target>,
    /// Its whole JSON line: every figure and ratio, with the targets beside them.
    report: Option<Value>,
}

#[derive(Debug, Serialize)]
pub struct Target {
    pub name: String,
    pub met: bool,
}

pub fn all(options: &AllBench) -> Result<(), Failure> {
    let known: Vec<&str> = SUITE.iter().map(|e| e.name).collect();
    if let Some(unknown) = options.only.iter().find(|n| !known.contains(&n.as_str())) {
        return Err(Failure::Usage(format!(
            "no benchmark named {unknown}: {}",
            known.join(", ")
        )));
    }
    let exe = std::env::current_exe()
        .context("cannot find this program to run the benchmarks")
        .map_err(Failure::Runtime)?;
    let assets = options.assets.to_string_lossy().into_owned();
    let started = Instant::now();
    let mut benches = Vec::new();
    for entry in SUITE {
        if !options.only.is_empty() && !options.only.iter().any(|n| n == entry.name) {
            continue;
        }
        let mut args: Vec<String> = std::iter::once("bench")
            .chain(
                if options.quick {
                    entry.quick
                } else {
                    entry.full
                }
                .iter()
                .copied(),
            )
            .map(String::from)
            .collect();
        args.extend(["--assets".to_string(), assets.clone()]);
        if entry.name == "commands" {
            args.extend(["--redis-url".to_string(), options.redis_url.clone()]);
        }
        let shown = args
            .iter()
            .filter(|a| !a.starts_with("redis://"))
            .cloned()
            .collect::<Vec<_>>()
            .join(" ");
        eprintln!("bench all: {shown}");
        let began = Instant::now();
        let output = Command::new(&exe)
            .args(&args)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .stdout(Stdio::piped())
            .output()
            .context("cannot start a benchmark")
            .map_err(Failure::Runtime)?;
        let seconds = began.elapsed().as_secs_f64();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let report = stdout
            .lines()
            .rev()
            .find_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(Value::is_object);
        let error = match (&report, output.status.success()) {
            (Some(_), true) => None,
            _ => {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
                Some(format!(
                    "{}: {}",
                    output.status,
                    tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
                ))
            }
        };
        let mut targets = Vec::new();
        if let Some(report) = &report {
            collect_targets(report, "", &mut targets);
        }
        eprintln!(
            "bench all: {} in {seconds:.0} s, {} of {} targets met{}",
            entry.name,
            targets.iter().filter(|t| t.met).count(),
            targets.len(),
            error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        );
        benches.push(Ran {
            name: entry.name,
            command: shown,
            seconds,
            error,
            targets,
            report,
        });
    }
    let mut missed = Vec::new();
    let mut met = 0;
    for ran in &benches {
        for target in &ran.targets {
            if target.met {
                met += 1;
            } else {
                missed.push(format!("{}.{}", ran.name, target.name));
            }
        }
    }
    let summary = Summary {
        bench: "all",
        quick: options.quick,
        seconds: started.elapsed().as_secs_f64(),
        targets_met: met,
        targets_missed: missed.len(),
        missed,
        failed: benches
            .iter()
            .filter(|r| r.error.is_some())
            .map(|r| r.name.to_string())
            .collect(),
        benches,
    };
    println!(
        "{:<12} {:>9} {:>8} {:>8}  missed",
        "bench", "seconds", "met", "judged"
    );
    for ran in &summary.benches {
        let missed: Vec<&str> = ran
            .targets
            .iter()
            .filter(|t| !t.met)
            .map(|t| t.name.as_str())
            .collect();
        println!(
            "{:<12} {:>9.0} {:>8} {:>8}  {}",
            ran.name,
            ran.seconds,
            ran.targets.iter().filter(|t| t.met).count(),
            ran.targets.len(),
            if ran.error.is_some() {
                "did not run to its report".to_string()
            } else {
                missed.join(", ")
            }
        );
    }
    super::print_json(&summary)?;
    if summary.failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Runtime(anyhow::anyhow!(
            "{} did not run to a report",
            summary.failed.join(", ")
        )))
    }
}

/// Every boolean whose key ends in `met` (`met`, `cost_ratio_met`, ...), by its path in the
/// report; targets not judged in this run are null and left out.
pub fn collect_targets(value: &Value, path: &str, out: &mut Vec<Target>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                let here = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match value {
                    Value::Bool(met) if key.ends_with("met") => out.push(Target {
                        name: here,
                        met: *met,
                    }),
                    _ => collect_targets(value, &here, out),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_targets(item, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}
