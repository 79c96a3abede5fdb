//! Ranking: gates, the champion, the significance of its lead, and
//! recommendations per use case. Reads result files only (the battery's
//! headline numbers copied into them); it never re-derives a metric from
//! raw records.
//!
//! # Combining repeats
//! * KV-cache acceleration: one repeat gives the battery's own figure,
//!   unchanged. Several repeats whose battery reports per-iteration values
//!   pool those values, and the interval is grid-core's one bootstrap of
//!   their median, with the battery's resample count and a seed derived
//!   from the config ID ([`acceleration_seed`]). Several repeats without
//!   per-iteration values give the median of their medians with a half-width
//!   of `sqrt(Σ hᵢ²) / k` on each side (the standard error of a mean of
//!   `k` independent estimates, applied to the 95 % half-widths).
//! * Gate metrics take the worst repeat (highest error rate and
//!   degradation, lowest tool-call success); secondary columns the median.
//!
//! # An incomplete run
//! A config that was not measured for a reason outside it (its result is
//! `not_measured`, or an older result of an environment failure; see
//! [`ConfigResult::is_final`]) leaves the run incomplete: there is no
//! champion, no significance and no advice until `resume` measures it, and
//! [`Ranking::incomplete`] says why. Configs with no result yet (the run was
//! interrupted or is still running) do not block the champion, which is
//! then provisional, and the same field says so.
//!
//! # Significance
//! The lead is significant when the runner-up's interval does not overlap
//! the champion's. Otherwise, with `n` repeats, half-widths `h_c` (the
//! champion's lower) and `h_r` (the runner-up's upper) and gap `d` between
//! medians, intervals shrink like `1/sqrt(n)`, so separating them needs about
//! `n' = ceil(n · ((h_c + h_r) / d)²)` repeats.

mod advice;
mod combine;
mod gates;
mod significance;

use std::collections::BTreeMap;

use grid_core::Estimate;
use grid_plan::{ConfigId, Plan, RankingGates};
use serde::{Deserialize, Serialize};

pub use combine::{acceleration_seed, combine_acceleration};

use crate::store::ConfigResult;

/// A config's place in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigStatus {
    /// Passed every gate; ranked.
    Valid,
    /// Ran (or tried to start) and failed a gate: the server did not start,
    /// a benchmark failed, too many errors...
    Rejected,
    /// Could not be measured for reasons outside the config: environment
    /// failure, deadline, or no result yet.
    Failed,
}

/// Secondary columns (medians over repeats).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Secondary {
    pub ttft_miss_ms: Option<f64>,
    pub ttft_hit_ms: Option<f64>,
    pub output_throughput: Option<f64>,
    pub mean_itl_ms: Option<f64>,
    pub mean_e2e_ms: Option<f64>,
    pub vram_peak_mib: Option<f64>,
    pub tool_call_success_rate: Option<f64>,
    pub request_error_rate: Option<f64>,
    pub stability_degradation: Option<f64>,
    pub cache_confirmed_by_server: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedConfig {
    pub name: String,
    pub id: ConfigId,
    pub settings: String,
    pub status: ConfigStatus,
    /// 1 for the champion; None when not valid.
    pub rank: Option<usize>,
    pub kv_cache_acceleration: Option<Estimate>,
    pub reasons: Vec<String>,
    pub failure_class: Option<String>,
    pub log_tail: Vec<String>,
    pub secondary: Secondary,
    pub repeats_done: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigRef {
    pub name: String,
    pub id: ConfigId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Significance {
    pub runner_up: ConfigRef,
    pub significant: bool,
    pub repeats_now: u32,
    /// Repeats that would separate the intervals; None when the medians tie.
    pub repeats_needed: Option<u32>,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub use_case: String,
    pub config: Option<ConfigRef>,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranking {
    /// Valid configs by rank, then rejected, then failed (plan order within).
    pub configs: Vec<RankedConfig>,
    pub champion: Option<ConfigRef>,
    pub significance: Option<Significance>,
    pub recommendations: Vec<Recommendation>,
    pub tradeoffs: Vec<String>,
    pub gates: RankingGates,
    /// Why the run is not complete, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<Incomplete>,
}

/// The configs without a verdict yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incomplete {
    /// Not measured for a reason outside the config: no champion until
    /// `resume` measures them.
    pub not_measured: Vec<ConfigRef>,
    /// No result yet (interrupted, or still running): the champion, if any,
    /// is provisional.
    pub not_run: Vec<ConfigRef>,
    pub text: String,
}

impl Incomplete {
    /// Whether it stops the run from having a champion.
    pub fn blocks_champion(&self) -> bool {
        !self.not_measured.is_empty()
    }
}

impl Ranking {
    pub fn get(&self, id: &ConfigId) -> Option<&RankedConfig> {
        self.configs.iter().find(|c| &c.id == id)
    }
}

/// Rank a run's results against its plan.
pub fn rank(plan: &Plan, results: &BTreeMap<ConfigId, ConfigResult>) -> Ranking {
    let mut evaluated: Vec<RankedConfig> = plan
        .configs
        .iter()
        .map(|c| gates::evaluate(c, results.get(&c.id), &plan.ranking))
        .collect();
    // Valid first by median acceleration (ties: lower bound, then name for
    // determinism), then rejected, then failed, each in plan order.
    let order = |c: &RankedConfig| match c.status {
        ConfigStatus::Valid => 0,
        ConfigStatus::Rejected => 1,
        ConfigStatus::Failed => 2,
    };
    let plan_index: BTreeMap<ConfigId, usize> = plan
        .configs
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.clone(), i))
        .collect();
    evaluated.sort_by(|a, b| {
        order(a).cmp(&order(b)).then_with(|| {
            // Valid configs always carry an acceleration (`evaluate` rejects
            // one without); matching on it keeps the sort free of panics.
            if let (ConfigStatus::Valid, Some(x), Some(y)) =
                (a.status, a.kv_cache_acceleration, b.kv_cache_acceleration)
            {
                y.median
                    .total_cmp(&x.median)
                    .then(y.ci95_low.total_cmp(&x.ci95_low))
                    .then(a.name.cmp(&b.name))
            } else {
                plan_index[&a.id].cmp(&plan_index[&b.id])
            }
        })
    });
    let mut rank_number = 0;
    for config in evaluated.iter_mut() {
        if config.status == ConfigStatus::Valid {
            rank_number += 1;
            config.rank = Some(rank_number);
        }
    }
    let incomplete = incomplete(plan, results);
    let blocked = incomplete.as_ref().is_some_and(Incomplete::blocks_champion);
    // No champion, and nothing said as if there were one, while configs
    // are still unmeasured for reasons outside them.
    let valid: Vec<&RankedConfig> = evaluated
        .iter()
        .filter(|c| c.status == ConfigStatus::Valid && !blocked)
        .collect();
    let champion = valid.first().map(|c| reference(c));
    let significance = match (valid.first(), valid.get(1)) {
        (Some(first), Some(second)) => Some(significance::significance(
            first,
            second,
            plan.repeats.get(),
        )),
        _ => None,
    };
    let (recommendations, tradeoffs) = if blocked {
        (Vec::new(), Vec::new())
    } else {
        (
            advice::recommend(&valid),
            advice::tradeoffs(plan, &evaluated),
        )
    };
    Ranking {
        configs: evaluated,
        champion,
        significance,
        recommendations,
        tradeoffs,
        gates: plan.ranking.clone(),
        incomplete,
    }
}

fn reference(config: &RankedConfig) -> ConfigRef {
    ConfigRef {
        name: config.name.clone(),
        id: config.id.clone(),
    }
}

fn incomplete(plan: &Plan, results: &BTreeMap<ConfigId, ConfigResult>) -> Option<Incomplete> {
    let mut not_measured = Vec::new();
    let mut causes = Vec::new();
    let mut not_run = Vec::new();
    for config in &plan.configs {
        let config_ref = ConfigRef {
            name: config.name.clone(),
            id: config.id.clone(),
        };
        match results.get(&config.id) {
            None => not_run.push(config_ref),
            Some(result) if !result.is_final() => {
                let cause = result
                    .failure
                    .as_ref()
                    .map(|f| f.class_name.clone())
                    .unwrap_or_else(|| "unknown cause".to_string());
                causes.push(format!("`{}` ({cause})", config.name));
                not_measured.push(config_ref);
            }
            Some(_) => {}
        }
    }
    let mut text = Vec::new();
    if !not_measured.is_empty() {
        text.push(format!(
            "The run is incomplete: {} config(s) could not be measured for reasons outside them: {}. That is no verdict on them, so there is no champion until `vllm-grid resume` measures them.",
            not_measured.len(),
            causes.join(", ")
        ));
    }
    if !not_run.is_empty() {
        text.push(format!(
            "{} of {} config(s) have no result yet (the run was interrupted or is still running){}.",
            not_run.len(),
            plan.configs.len(),
            if not_measured.is_empty() {
                "; the champion is provisional until they are measured"
            } else {
                ""
            }
        ));
    }
    (!text.is_empty()).then(|| Incomplete {
        not_measured,
        not_run,
        text: text.join(" "),
    })
}
