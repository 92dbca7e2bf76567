//! The benchmarks (`tianxia bench ...`, docs/operations.md#performance-targets): each runs
//! the real code beside a baseline measured in the same run, prints a table and one JSON
//! line, and says whether its targets were met. BENCHMARKS.md holds their figures with the
//! commands that produced them.
//!
//! - [`battle`]: battles against a bare rapier2d world stepped alongside.
//! - [`strategy`]: the strategy tick of the 190 scenario and of a scaled world.
//! - [`flush`]: checkpoint epochs of N changed entities, recovery, the tick while flushing.
//! - [`commands`]: commands from the Redis stream into the World, against a bare loop.
//! - [`ws`]: WebSocket fan-out against a bare broadcast server, memory per connection.
//! - [`reads`]: the read routes against a bare axum handler serving the same bytes.
//! - [`all`]: every one of them, each in its own process, and one summary of the targets.
//!
//! This module holds what their reports share: [`Samples`] and their percentiles, the
//! process's memory, the table of measures and the JSON line.

pub mod all;
pub mod battle;
pub mod commands;
pub mod flush;
pub mod reads;
pub mod strategy;
pub mod ws;

use serde::Serialize;

use crate::Failure;

/// Timing samples, sorted once. Percentiles are asked for in percent: `percentile(99.0)`
/// is the p99.
#[derive(Clone, Debug, Default)]
pub struct Samples(Vec<f64>);

impl Samples {
    pub fn new(mut samples: Vec<f64>) -> Samples {
        samples.sort_by(f64::total_cmp);
        Samples(samples)
    }

    /// The nearest-rank `percent`th percentile (0 for no samples).
    pub fn percentile(&self, percent: f64) -> f64 {
        assert!(
            (0.0..=100.0).contains(&percent),
            "a percentile is asked for in percent, 0 to 100"
        );
        if self.0.is_empty() {
            return 0.0;
        }
        let rank = ((percent / 100.0) * (self.0.len() - 1) as f64).round() as usize;
        self.0[rank.min(self.0.len() - 1)]
    }

    pub fn p50(&self) -> f64 {
        self.percentile(50.0)
    }

    pub fn p99(&self) -> f64 {
        self.percentile(99.0)
    }

    /// The largest sample (0 for none).
    pub fn max(&self) -> f64 {
        self.0.last().copied().unwrap_or(0.0)
    }
}

/// A memory figure of this process from the kernel (`VmHWM`, `VmRSS`, ...), in bytes; 0
/// where the kernel does not tell.
pub(crate) fn process_memory(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb * 1024.0)
}

/// A report's table: one row per measure, with its target where it has one.
pub(crate) struct Table;

impl Table {
    /// Prints the header and returns the table to print rows into.
    pub(crate) fn new() -> Table {
        println!("{:<34} {:>12} {:>12}", "measure", "value", "target");
        Table
    }

    pub(crate) fn row(&self, name: &str, value: String, target: String) {
        println!("{name:<34} {value:>12} {target:>12}");
    }
}

/// Prints the report as the one JSON line every benchmark ends with.
pub(crate) fn print_json(report: &impl Serialize) -> Result<(), Failure> {
    println!(
        "{}",
        serde_json::to_string(report).map_err(|e| Failure::Runtime(e.into()))?
    );
    Ok(())
}
