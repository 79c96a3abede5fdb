//! The two-level (cluster) bootstrap: intervals whose unit is the server
//! start.
//!
//! A repeat is a new server; the iterations measured on one server share
//! its warm-up, its host's load and its scheduler's luck, so they are not
//! independent of each other. Pooling them and resampling iterations (what
//! [`crate::bootstrap_median`] does) treats 2 × 10 iterations as 20
//! independent draws and gives an interval that ignores how far apart the
//! two servers landed. Here each resample first draws the groups (repeats)
//! with replacement, then values within each drawn group with replacement,
//! and takes the median of the pooled draw: the between-group spread enters
//! the interval, and with one group it reduces to within-run noise.
//!
//! Draws use [`SplitMix64::below`] in a fixed order (per resample: the
//! group indices, then each drawn group's values in turn), so a seed gives
//! one interval everywhere; the tests pin it.

use crate::estimate::Estimate;
use crate::rng::{GOLDEN_GAMMA, SplitMix64};
use crate::stats::{finite, percentile_sorted};

/// A pooled median with its cluster-bootstrap interval, and the median of
/// each group (repeat) beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterEstimate {
    /// Median of all values pooled; the interval from the two-level
    /// resampling; `samples` counts every value.
    pub pooled: Estimate,
    /// Each non-empty group's own median, in the given order.
    pub group_medians: Vec<f64>,
}

impl ClusterEstimate {
    /// Groups with at least one finite value.
    pub fn groups(&self) -> usize {
        self.group_medians.len()
    }
}

/// The groups' finite values; groups left empty are dropped.
fn clean(groups: &[Vec<f64>]) -> Vec<Vec<f64>> {
    groups
        .iter()
        .map(|group| finite(group))
        .filter(|group| !group.is_empty())
        .collect()
}

fn sorted_median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    percentile_sorted(values, 50.0)
}

/// One two-level resample's median: `groups.len()` groups drawn with
/// replacement, then each drawn group's values drawn with replacement.
fn resample_median(groups: &[Vec<f64>], rng: &mut SplitMix64, scratch: &mut Vec<f64>) -> f64 {
    scratch.clear();
    let count = groups.len() as u64;
    let drawn: Vec<usize> = (0..groups.len())
        .map(|_| rng.below(count) as usize)
        .collect();
    for index in drawn {
        let group = &groups[index];
        for _ in 0..group.len() {
            scratch.push(group[rng.below(group.len() as u64) as usize]);
        }
    }
    sorted_median(scratch)
}

/// The median of the pooled values with a two-level bootstrap 95 %
/// interval (`resamples` at least one; 0 means one), seeded. Non-finite
/// values are ignored; `None` when no finite value is left.
pub fn cluster_bootstrap_median(
    groups: &[Vec<f64>],
    resamples: usize,
    seed: u64,
) -> Option<ClusterEstimate> {
    let groups = clean(groups);
    if groups.is_empty() {
        return None;
    }
    let mut pooled: Vec<f64> = groups.iter().flatten().copied().collect();
    let samples = pooled.len();
    let point = sorted_median(&mut pooled);
    let group_medians = groups
        .iter()
        .map(|group| sorted_median(&mut group.clone()))
        .collect();
    let mut rng = SplitMix64::new(seed);
    let mut scratch = Vec::with_capacity(samples);
    let mut medians: Vec<f64> = (0..resamples.max(1))
        .map(|_| resample_median(&groups, &mut rng, &mut scratch))
        .collect();
    medians.sort_by(f64::total_cmp);
    Some(ClusterEstimate {
        pooled: Estimate {
            median: point,
            ci95_low: percentile_sorted(&medians, 2.5),
            ci95_high: percentile_sorted(&medians, 97.5),
            samples,
        },
        group_medians,
    })
}

/// The ratio of two pooled medians, `numerator / denominator`, with a 95 %
/// interval from the same two-level scheme applied to each side
/// independently (two streams from `seed`): the configs ran on different
/// servers, so their resamples are independent. `samples` counts both
/// sides' values. `None` when a side has no finite value, or its pooled
/// median is not positive (a ratio of accelerations needs a positive
/// denominator); resamples whose denominator median is not positive are
/// left out of the interval.
pub fn cluster_bootstrap_ratio(
    numerator: &[Vec<f64>],
    denominator: &[Vec<f64>],
    resamples: usize,
    seed: u64,
) -> Option<Estimate> {
    let top = clean(numerator);
    let bottom = clean(denominator);
    if top.is_empty() || bottom.is_empty() {
        return None;
    }
    let mut top_pooled: Vec<f64> = top.iter().flatten().copied().collect();
    let mut bottom_pooled: Vec<f64> = bottom.iter().flatten().copied().collect();
    let samples = top_pooled.len() + bottom_pooled.len();
    let bottom_point = sorted_median(&mut bottom_pooled);
    if bottom_point <= 0.0 {
        return None;
    }
    let point = sorted_median(&mut top_pooled) / bottom_point;
    let mut top_rng = SplitMix64::new(seed);
    let mut bottom_rng = SplitMix64::new(seed ^ GOLDEN_GAMMA);
    let mut scratch = Vec::with_capacity(samples);
    let mut ratios: Vec<f64> = (0..resamples.max(1))
        .filter_map(|_| {
            let t = resample_median(&top, &mut top_rng, &mut scratch);
            let b = resample_median(&bottom, &mut bottom_rng, &mut scratch);
            (b > 0.0).then_some(t / b)
        })
        .filter(|ratio| ratio.is_finite())
        .collect();
    if ratios.is_empty() {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    Some(Estimate {
        median: point,
        ci95_low: percentile_sorted(&ratios, 2.5),
        ci95_high: percentile_sorted(&ratios, 97.5),
        samples,
    })
}
