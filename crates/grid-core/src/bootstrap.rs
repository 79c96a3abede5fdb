//! The bootstrap: the one implementation behind every interval of a run.
//!
//! The battery computes a benchmark's interval with it, and the ranking,
//! where it has to combine repeats, calls the same function with the
//! battery's resample count, so one seed gives one interval wherever it is
//! shown.
//!
//! Resampling draws indices with [`SplitMix64::below`] (multiply-shift, no
//! modulo bias), one index per value per resample, in order; changing that
//! changes every recorded interval, so it is fixed here and asserted in the
//! tests.
//!
//! The two-level (cluster) bootstrap, whose unit is the server start, is
//! [`crate::cluster`]; it draws with the same generator and percentiles.

use crate::estimate::Estimate;
use crate::rng::SplitMix64;
use crate::stats::{finite, percentile_sorted};

/// Resamples used when a battery configuration does not say otherwise.
pub const DEFAULT_RESAMPLES: usize = 2000;

/// Median of `values` with a percentile-bootstrap 95 % interval of the
/// median: `resamples` resamples with replacement (at least one), seeded
/// so a report can be reproduced from its seed. Non-finite values are
/// ignored; `None` when no finite value is left.
pub fn bootstrap_median(values: &[f64], resamples: usize, seed: u64) -> Option<Estimate> {
    let mut sorted = finite(values);
    if sorted.is_empty() {
        return None;
    }
    if sorted.len() == 1 {
        return Some(Estimate::exact(sorted[0]));
    }
    // Resampling reads `values`' finite entries in their given order, so the
    // draws (and the interval) do not depend on how the caller sorted them.
    let sample = sorted.clone();
    sorted.sort_by(f64::total_cmp);
    let point = percentile_sorted(&sorted, 50.0);
    let mut rng = SplitMix64::new(seed);
    let rounds = resamples.max(1);
    let mut medians = Vec::with_capacity(rounds);
    let mut resample = vec![0.0; sample.len()];
    for _ in 0..rounds {
        for slot in resample.iter_mut() {
            *slot = sample[rng.below(sample.len() as u64) as usize];
        }
        resample.sort_by(f64::total_cmp);
        medians.push(percentile_sorted(&resample, 50.0));
    }
    medians.sort_by(f64::total_cmp);
    Some(Estimate {
        median: point,
        ci95_low: percentile_sorted(&medians, 2.5),
        ci95_high: percentile_sorted(&medians, 97.5),
        samples: sample.len(),
    })
}
