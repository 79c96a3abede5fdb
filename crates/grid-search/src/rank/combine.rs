//! Repeats combined into one figure per metric (see the module docs of
//! [`crate::rank`]).

use grid_core::{Estimate, median};
use grid_plan::ConfigId;

use crate::store::Measurement;

/// The seed of a config's pooled acceleration interval: FNV-1a of its ID,
/// so a re-rendered report gives the same interval.
pub fn acceleration_seed(id: &ConfigId) -> u64 {
    grid_core::fnv1a64(id.0.as_bytes())
}

/// The acceleration over repeats (see the module docs).
pub fn combine_acceleration(measurements: &[&Measurement], seed: u64) -> Option<Estimate> {
    let estimates: Vec<Estimate> = measurements
        .iter()
        .filter_map(|m| m.kv_cache_acceleration)
        .collect();
    if estimates.is_empty() || estimates.len() < measurements.len() {
        return None;
    }
    if estimates.len() == 1 {
        return Some(estimates[0]);
    }
    if measurements
        .iter()
        .all(|m| !m.acceleration_samples.is_empty())
    {
        let pooled: Vec<f64> = measurements
            .iter()
            .flat_map(|m| m.acceleration_samples.iter().copied())
            .collect();
        // The battery's own bootstrap and resample count, so one seed gives
        // one interval in the battery's report and here.
        let resamples = measurements
            .iter()
            .find_map(|m| m.bootstrap_resamples)
            .unwrap_or(grid_core::DEFAULT_RESAMPLES);
        return grid_core::bootstrap_median(&pooled, resamples, seed);
    }
    let k = estimates.len() as f64;
    let medians: Vec<f64> = estimates.iter().map(|e| e.median).collect();
    let center = median(&medians)?;
    let lower = estimates
        .iter()
        .map(|e| (e.median - e.ci95_low).max(0.0).powi(2))
        .sum::<f64>()
        .sqrt()
        / k;
    let upper = estimates
        .iter()
        .map(|e| (e.ci95_high - e.median).max(0.0).powi(2))
        .sum::<f64>()
        .sqrt()
        / k;
    Some(Estimate {
        median: center,
        ci95_low: center - lower,
        ci95_high: center + upper,
        samples: estimates.iter().map(|e| e.samples).sum(),
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
