//! The benchmarks' shared report helpers: percentiles are asked for in percent.

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
