//! The Prometheus recorder behind `GET /metrics` (docs/operations.md#metrics), installed once
//! per process.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Bucket bounds of tick durations, in seconds: from well under a millisecond to overruns.
const TICK_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Installs the global recorder and describes tianxia's metrics.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("tianxia_tick_duration_seconds".into()),
            TICK_BUCKETS,
        )?
        .install_recorder()?;
    describe_histogram!(
        "tianxia_tick_duration_seconds",
        Unit::Seconds,
        "Time one run of a schedule took, by schedule."
    );
    describe_counter!(
        "tianxia_tick_overruns_total",
        "Runs of a schedule that took longer than its period, by schedule."
    );
    describe_gauge!(
        "tianxia_game_clock_lag_seconds",
        Unit::Seconds,
        "Real time by which the strategy schedule is behind its due time."
    );
    describe_gauge!("tianxia_battles_active", "Battles under way.");
    describe_gauge!(
        "tianxia_battle_units",
        "Units on the field in battles under way."
    );
    describe_gauge!(
        "tianxia_lease_held",
        "Redis mode: 1 while this process holds the world's lease."
    );
    describe_counter!(
        "tianxia_lease_acquired_total",
        "Redis mode: times this process took the lease (again)."
    );
    describe_counter!(
        "tianxia_lease_lost_total",
        "Redis mode: times this process found its lease taken by another."
    );
    Ok(handle)
}
