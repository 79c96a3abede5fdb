//! Repeats combined into one figure per metric (see the module docs of
//! [`crate::rank`]).

use grid_core::{Estimate, cluster_bootstrap_median, median};
use grid_plan::ConfigId;

use crate::store::Measurement;

/// The seed of a config's acceleration interval: FNV-1a of its ID, so a
/// re-rendered report gives the same interval.
pub fn acceleration_seed(id: &ConfigId) -> u64 {
    grid_core::fnv1a64(id.0.as_bytes())
}

/// One workload's acceleration over a config's repeats.
#[derive(Debug, Clone, PartialEq)]
pub struct Combined {
    /// The pooled figure and its interval.
    pub estimate: Estimate,
    /// Each repeat's median, in repeat order.
    pub per_repeat_medians: Vec<f64>,
    /// Each repeat's per-iteration values, when every repeat carries them
    /// (what the ratio intervals resample); `None` for results written
    /// before they were recorded.
    pub groups: Option<Vec<Vec<f64>>>,
    /// The battery's resample count, for intervals derived from this one.
    pub resamples: usize,
}

/// A workload's figure in one repeat: its estimate and per-iteration values.
pub(super) type Pick = fn(&Measurement) -> (Option<Estimate>, &[f64]);

/// The `kv_cache` benchmark's figure.
pub(super) fn kv_cache(m: &Measurement) -> (Option<Estimate>, &[f64]) {
    (m.kv_cache_acceleration, &m.acceleration_samples)
}

/// The pressured workload's figure (absent when it did not run).
pub(super) fn kv_cache_pressure(m: &Measurement) -> (Option<Estimate>, &[f64]) {
    match &m.kv_cache_pressure {
        Some(p) => (p.acceleration, &p.acceleration_samples),
        None => (None, &[]),
    }
}

/// The `kv_cache` acceleration over repeats (see the module docs).
pub fn combine_acceleration(measurements: &[&Measurement], seed: u64) -> Option<Estimate> {
    combine(measurements, kv_cache, seed).map(|c| c.estimate)
}

/// A workload's acceleration over repeats: one repeat gives the battery's
/// figure unchanged; several with per-iteration values give grid-core's
/// cluster bootstrap (repeats, then iterations within each); several
/// without give the median of medians with `sqrt(Σ hᵢ²) / k` half-widths.
/// `None` when a repeat lacks the figure.
pub(super) fn combine(measurements: &[&Measurement], pick: Pick, seed: u64) -> Option<Combined> {
    let picked: Vec<(Option<Estimate>, &[f64])> = measurements.iter().map(|m| pick(m)).collect();
    let estimates: Vec<Estimate> = picked.iter().filter_map(|(e, _)| *e).collect();
    if estimates.is_empty() || estimates.len() < measurements.len() {
        return None;
    }
    // The battery's own resample count, so one seed gives one interval in
    // the battery's report and here.
    let resamples = measurements
        .iter()
        .find_map(|m| m.bootstrap_resamples)
        .unwrap_or(grid_core::DEFAULT_RESAMPLES);
    let groups: Option<Vec<Vec<f64>>> = picked
        .iter()
        .map(|(_, samples)| (!samples.is_empty()).then(|| samples.to_vec()))
        .collect();
    let per_repeat_medians: Vec<f64> = estimates.iter().map(|e| e.median).collect();
    if estimates.len() == 1 {
        return Some(Combined {
            estimate: estimates[0],
            per_repeat_medians,
            groups,
            resamples,
        });
    }
    if let Some(groups) = groups {
        let cluster = cluster_bootstrap_median(&groups, resamples, seed)?;
        return Some(Combined {
            estimate: cluster.pooled,
            per_repeat_medians: cluster.group_medians,
            groups: Some(groups),
            resamples,
        });
    }
    let k = estimates.len() as f64;
    let center = median(&per_repeat_medians)?;
    let half = |side: fn(&Estimate) -> f64| {
        estimates
            .iter()
            .map(|e| side(e).max(0.0).powi(2))
            .sum::<f64>()
            .sqrt()
            / k
    };
    let lower = half(|e| e.median - e.ci95_low);
    let upper = half(|e| e.ci95_high - e.median);
    Some(Combined {
        estimate: Estimate {
            median: center,
            ci95_low: center - lower,
            ci95_high: center + upper,
            samples: estimates.iter().map(|e| e.samples).sum(),
        },
        per_repeat_medians,
        groups: None,
        resamples,
    })
}

pub(super) fn med_of(
    measurements: &[&Measurement],
    pick: impl Fn(&Measurement) -> Option<f64>,
) -> Option<f64> {
    let values: Vec<f64> = measurements.iter().filter_map(|m| pick(m)).collect();
    median(&values)
}

pub(super) fn worst(
    measurements: &[&Measurement],
    pick: impl Fn(&Measurement) -> Option<f64>,
    highest: bool,
) -> Option<f64> {
    let values: Vec<f64> = measurements
        .iter()
        .map(|m| pick(m))
        .collect::<Option<Vec<_>>>()?;
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .reduce(|a, b| if (a > b) == highest { a } else { b })
}
