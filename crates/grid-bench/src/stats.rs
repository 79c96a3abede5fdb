//! Descriptive statistics and the bootstrap.
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
    /// `None` when no finite value is given.
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
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

/// Linear-interpolation percentile of an ascending, non-empty slice.
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

pub fn median(values: &[f64]) -> Option<f64> {
    Distribution::of(values).map(|d| d.median)
}

pub fn mean(values: &[f64]) -> Option<f64> {
    Distribution::of(values).map(|d| d.mean)
}

/// A point estimate with its bootstrap 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub median: f64,
    pub ci95_low: f64,
    pub ci95_high: f64,
    pub samples: usize,
}

/// Median of `values` with a percentile-bootstrap 95% interval of the
/// median (`resamples` resamples with replacement, seeded so a report can
/// be reproduced from its seed). `None` for an empty sample.
pub fn bootstrap_median(values: &[f64], resamples: usize, seed: u64) -> Option<Estimate> {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let point = median(&finite)?;
    if finite.len() == 1 {
        return Some(Estimate {
            median: point,
            ci95_low: point,
            ci95_high: point,
            samples: 1,
        });
    }
    let mut rng = SplitMix64::new(seed);
    let mut medians = Vec::with_capacity(resamples.max(1));
    let mut resample = vec![0.0; finite.len()];
    for _ in 0..resamples.max(1) {
        for slot in resample.iter_mut() {
            *slot = finite[rng.below(finite.len() as u64) as usize];
        }
        resample.sort_by(f64::total_cmp);
        medians.push(percentile_sorted(&resample, 50.0));
    }
    medians.sort_by(f64::total_cmp);
    Some(Estimate {
        median: point,
        ci95_low: percentile_sorted(&medians, 2.5),
        ci95_high: percentile_sorted(&medians, 97.5),
        samples: finite.len(),
    })
}

/// Relative change from `before` to `after` (0.2 = 20 % slower when the
/// values are latencies). `None` when `before` is not positive.
pub fn relative_change(before: f64, after: f64) -> Option<f64> {
    (before > 0.0 && before.is_finite() && after.is_finite()).then(|| (after - before) / before)
}

/// A small deterministic generator (SplitMix64): enough for resampling and
/// filler text, and it keeps the crate free of an RNG dependency.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound` > 0), without modulo bias worth
    /// caring about for these sizes.
    pub fn below(&mut self, bound: u64) -> u64 {
        ((self.next_u64() as u128 * bound as u128) >> 64) as u64
    }

    /// Uniform in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        low + self.below(high - low + 1)
    }
}
