//! Descriptive statistics.
//!
//! Percentiles interpolate linearly between order statistics, like
//! `numpy.percentile` (which `vllm bench serve` uses), and the standard
//! deviation is the population one (`numpy.std`), so numbers line up with
//! vLLM's own benchmark on the same samples.

use serde::{Deserialize, Serialize};

/// Summary of a sample. Only built from at least one finite value: an
/// empty sample has no summary, never a zero.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    pub mean: f64,
    pub median: f64,
    pub std: f64,
    pub p90: f64,
    pub p99: f64,
    pub min: f64,
    pub max: f64,
    pub samples: usize,
}

impl Distribution {
    /// `None` when no finite value is given; non-finite values are ignored.
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut sorted = finite(values);
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let count = sorted.len() as f64;
        let mean = sorted.iter().sum::<f64>() / count;
        let variance = sorted.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / count;
        Some(Self {
            mean,
            median: percentile_sorted(&sorted, 50.0),
            std: variance.sqrt(),
            p90: percentile_sorted(&sorted, 90.0),
            p99: percentile_sorted(&sorted, 99.0),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            samples: sorted.len(),
        })
    }
}

/// The finite values of a sample, in their order.
pub(crate) fn finite(values: &[f64]) -> Vec<f64> {
    values.iter().copied().filter(|v| v.is_finite()).collect()
}

/// Linear-interpolation percentile of an ascending, non-empty slice
/// (`percent` is clamped to 0–100).
pub fn percentile_sorted(sorted: &[f64], percent: f64) -> f64 {
    debug_assert!(!sorted.is_empty());
    if sorted.len() == 1 {
        return sorted[0];
    }
    let rank = (percent / 100.0).clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lower = rank.floor() as usize;
    let upper = rank.ceil() as usize;
    let weight = rank - lower as f64;
    sorted[lower] + (sorted[upper] - sorted[lower]) * weight
}

/// Median of the finite values; `None` when there is none.
pub fn median(values: &[f64]) -> Option<f64> {
    Distribution::of(values).map(|d| d.median)
}

/// Mean of the finite values (summed in ascending order, as
/// [`Distribution`] does); `None` when there is none.
pub fn mean(values: &[f64]) -> Option<f64> {
    Distribution::of(values).map(|d| d.mean)
}

/// Relative change from `before` to `after` (0.2 = 20 % slower when the
/// values are latencies). `None` when `before` is not positive.
pub fn relative_change(before: f64, after: f64) -> Option<f64> {
    (before > 0.0 && before.is_finite() && after.is_finite()).then(|| (after - before) / before)
}
