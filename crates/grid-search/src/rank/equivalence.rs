//! Two configs compared on the champion criterion: the ratio of their
//! accelerations with its 95 % interval, whether that interval lies inside
//! the equivalence margin, and how many repeats would settle it when it
//! straddles the margin.
//!
//! The ratio's interval comes from grid-core's cluster bootstrap of each
//! config's per-repeat values, resampled independently (they ran on
//! different servers). Results without per-iteration values fall back to
//! the two intervals combined on the log scale (independent estimates:
//! `ln r ± sqrt(h₁² + h₂²)`, `h` the log half-widths).
//!
//! Repeats to settle: the per-repeat medians give each config's
//! between-repeat coefficient of variation `cv`; the ratio of two means of
//! `n` repeats has a relative standard error of about
//! `sqrt((cv₁² + cv₂²) / n)` (delta method), so its 95 % interval clears a
//! margin boundary at distance `d` from the ratio once
//! `n ≥ (1.96 · r / d)² · (cv₁² + cv₂²)`. One repeat has no between-repeat
//! variance, so no such number is given.

use grid_core::{Estimate, cluster_bootstrap_ratio};

use super::RankedConfig;
use super::combine::{Combined, acceleration_seed};

/// No estimate beyond this many repeats: the gap is negligible.
pub const MAX_REPEATS_TO_SETTLE: u32 = 10_000;

/// The ratio `a / b` of two configs' criterion figures, with its 95 %
/// interval; `None` when either lacks the figure or a median is not
/// positive.
pub fn ratio(a: &RankedConfig, b: &RankedConfig) -> Option<Estimate> {
    let (x, y) = (a.criterion_figure.as_ref()?, b.criterion_figure.as_ref()?);
    let seed = acceleration_seed(&a.id) ^ acceleration_seed(&b.id).rotate_left(1);
    ratio_of(x, y, seed)
}

fn ratio_of(a: &Combined, b: &Combined, seed: u64) -> Option<Estimate> {
    if let (Some(top), Some(bottom)) = (&a.groups, &b.groups) {
        return cluster_bootstrap_ratio(top, bottom, a.resamples.max(b.resamples), seed);
    }
    let (x, y) = (a.estimate, b.estimate);
    if [x.median, x.ci95_low, y.median, y.ci95_low]
        .iter()
        .any(|v| *v <= 0.0 || !v.is_finite())
    {
        return None;
    }
    let r = x.median / y.median;
    let low = ((x.median / x.ci95_low).ln().powi(2) + (y.ci95_high / y.median).ln().powi(2)).sqrt();
    let high =
        ((x.ci95_high / x.median).ln().powi(2) + (y.median / y.ci95_low).ln().powi(2)).sqrt();
    Some(Estimate {
        median: r,
        ci95_low: r * (-low).exp(),
        ci95_high: r * high.exp(),
        samples: x.samples + y.samples,
    })
}

/// Where a config stands against the best, by its ratio's interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Inside `1 ± margin`.
    Equivalent,
    /// Entirely below `1 − margin`.
    Behind,
    /// Entirely above `1 + margin` (only a config that cannot be champion
    /// can be ahead of the best).
    Ahead,
    /// Straddles a margin boundary: the data do not decide.
    Unsettled,
}

pub fn standing(ratio: &Estimate, margin: f64) -> Standing {
    let (low, high) = (1.0 - margin, 1.0 + margin);
    if ratio.ci95_low >= low && ratio.ci95_high <= high {
        Standing::Equivalent
    } else if ratio.ci95_high < low {
        Standing::Behind
    } else if ratio.ci95_low > high {
        Standing::Ahead
    } else {
        Standing::Unsettled
    }
}

/// Why no number of repeats is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// About this many repeats (more than now) would settle it.
    Repeats(u32),
    /// One repeat: no between-repeat variance to extrapolate from.
    OneRepeat,
    /// The repeats agree exactly: the width is within-run noise, which more
    /// iterations per repeat narrow, not more repeats.
    NoBetweenVariance,
}

/// Coefficient of variation of per-repeat medians (sample variance).
fn cv2(medians: &[f64]) -> Option<f64> {
    if medians.len() < 2 {
        return None;
    }
    let n = medians.len() as f64;
    let mean = medians.iter().sum::<f64>() / n;
    if mean <= 0.0 {
        return None;
    }
    let variance = medians.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Some(variance / (mean * mean))
}

/// Repeats that would move the ratio's interval off the nearest margin
/// boundary (see the module docs).
pub fn repeats_to_settle(ratio: &Estimate, a: &[f64], b: &[f64], margin: f64) -> Settle {
    let (Some(cv_a), Some(cv_b)) = (cv2(a), cv2(b)) else {
        return Settle::OneRepeat;
    };
    let spread = cv_a + cv_b;
    if spread <= 0.0 {
        return Settle::NoBetweenVariance;
    }
    let r = ratio.median;
    let distance = ((1.0 - margin) - r).abs().min(((1.0 + margin) - r).abs());
    let now = a.len().min(b.len()) as f64;
    let needed = if distance > 0.0 {
        (1.96 * r / distance).powi(2) * spread
    } else {
        f64::INFINITY
    };
    let needed = needed
        .ceil()
        .clamp(now + 1.0, f64::from(MAX_REPEATS_TO_SETTLE));
    Settle::Repeats(needed as u32)
}
