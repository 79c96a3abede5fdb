//! Ranking: gates, the champion, the significance of its lead, and
//! recommendations per use case. Reads result files only (the battery's
//! headline numbers copied into them); it never re-derives a metric from
//! raw records.
//!
//! # Combining repeats
//! * KV-cache acceleration (each workload: `kv_cache`, and the pressured
//!   one when the battery runs it): one repeat gives the battery's own
//!   figure, unchanged. Several repeats whose battery reports per-iteration
//!   values give grid-core's two-level (cluster) bootstrap: resample the
//!   repeats (server starts), then iterations within each, so the interval
//!   carries the spread between server starts; the point is the pooled
//!   median, with the battery's resample count and a seed derived from the
//!   config ID ([`acceleration_seed`]); each repeat's median is reported
//!   beside it. Several repeats without per-iteration values (results of
//!   older releases) give the median of their medians with a half-width of
//!   `sqrt(Σ hᵢ²) / k` on each side.
//! * Gate metrics take the worst repeat (highest error rate and
//!   degradation, lowest tool-call success); secondary columns the median.
//!
//! # An incomplete run
//! A config that was not measured for a reason outside it (its result is
//! `not_measured`, or an older result of an environment failure; see
//! [`ConfigResult::is_final`]) leaves the run incomplete: there is no
//! champion, no decision and no advice until `resume` measures it, and
//! [`Ranking::incomplete`] says why. Configs with no result yet (the run was
//! interrupted or is still running) do not block the champion, which is
//! then provisional, and the same field says so.
//!
//! # The champion
//! The plan's `ranking.champion_criterion` names the figure (`kv_cache`,
//! or `kv_cache_pressure`; when no valid config has the pressured figure,
//! `kv_cache`, and the decision says so). Valid configs are ranked: first
//! those whose cache effect on that figure is confirmed ([`evidence`]), then
//! those where it is not (a disagreement, unverified, none observed), then
//! those without the figure, each with a note saying why. Only a confirmed
//! config can be champion. Among the best confirmed config and the configs
//! equivalent to it (the 95 % interval of their acceleration ratio inside
//! `1 ± ranking.equivalence_margin`), the tie-break chain ([`tiebreak`])
//! chooses, each step recorded in the [`Decision`]. More repeats are asked
//! for only when a ratio's interval straddles the margin, their number from
//! the between-repeat variance ([`equivalence`]).

mod advice;
mod combine;
pub mod decision;
pub mod equivalence;
pub mod evidence;
mod gates;
pub mod tiebreak;

use std::collections::BTreeMap;

use grid_core::Estimate;
use grid_plan::{ChampionCriterion, ConfigId, Plan, RankingGates};
use serde::{Deserialize, Serialize};

pub use combine::{Combined, acceleration_seed, combine_acceleration};
pub use decision::{Decision, Equivalent, Noise, Unsettled};
pub use equivalence::{Standing, ratio, standing};
pub use evidence::CacheEvidence;
pub use tiebreak::{Candidate, TieBreak, TieBreakRule, TieBreakStep, tie_break};

use crate::store::{ConfigResult, Disturbance};

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

/// The pressured workload's other figures, over repeats.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PressureFigures {
    /// The smallest KV capacity (tokens) any repeat's server reported.
    pub kv_capacity_tokens: Option<u64>,
    /// Median share of warm-turn prompt tokens served from the cache.
    pub warm_hit_rate: Option<f64>,
    /// Most preemptions in any repeat.
    pub preemptions: Option<u64>,
}

/// One workload's figure over repeats with its cache-effect verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub figure: Combined,
    pub evidence: CacheEvidence,
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
    /// The pressured workload's acceleration; `None` when it did not run.
    #[serde(default)]
    pub kv_cache_pressure_acceleration: Option<Estimate>,
    /// Each repeat's median of the champion criterion's figure.
    #[serde(default)]
    pub per_repeat_medians: Vec<f64>,
    /// The cache-effect verdict on the champion criterion's figure.
    #[serde(default)]
    pub cache_evidence: Option<CacheEvidence>,
    #[serde(default)]
    pub pressure: Option<PressureFigures>,
    /// Benchmarks the noise guard marked, over all repeats.
    #[serde(default)]
    pub disturbed: Vec<Disturbance>,
    /// In the decision's equivalence set (the best and the configs
    /// equivalent to it), and not the champion.
    #[serde(default)]
    pub equivalent_to_champion: bool,
    /// Why a valid config is ranked after others (its cache effect is not
    /// confirmed, or it lacks the criterion's figure).
    #[serde(default)]
    pub rank_note: Option<String>,
    /// Gates that were not applied to a figure, and why (a stability
    /// figure the noise guard marked disturbed: the host, not the server,
    /// shaped it, so it is no verdict on the config).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gate_notes: Vec<String>,
    pub reasons: Vec<String>,
    pub failure_class: Option<String>,
    pub log_tail: Vec<String>,
    pub secondary: Secondary,
    pub repeats_done: usize,
    /// The criterion's figure with its per-repeat values, for ratios.
    #[serde(skip)]
    pub criterion_figure: Option<Combined>,
    #[serde(skip)]
    pub kv_cache_workload: Option<Workload>,
    #[serde(skip)]
    pub pressure_workload: Option<Workload>,
}

impl RankedConfig {
    /// Whether its cache effect on the criterion is confirmed.
    pub fn cache_evidence_confirmed(&self) -> bool {
        self.cache_evidence
            .as_ref()
            .is_some_and(CacheEvidence::confirmed)
    }

    /// The noise guard's marks in words, `;`-separated; empty when none:
    /// "kv_cache: client 12.0 ms, server 10.0 ms".
    pub fn disturbed_text(&self) -> String {
        self.disturbed
            .iter()
            .map(|d| {
                format!(
                    "{}: client {:.1} ms, server {:.1} ms",
                    d.benchmark, d.client_mean_ttft_ms, d.server_mean_ttft_ms
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The per-repeat medians, each after `prefix` ("×"), `, `-separated.
    pub fn per_repeat_text(&self, prefix: &str) -> String {
        self.per_repeat_medians
            .iter()
            .map(|m| format!("{prefix}{m:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The champion criterion's figure.
    pub fn criterion_acceleration(&self) -> Option<Estimate> {
        self.criterion_figure.as_ref().map(|f| f.estimate)
    }

    fn workload(&self, criterion: ChampionCriterion) -> Option<&Workload> {
        match criterion {
            ChampionCriterion::KvCache => self.kv_cache_workload.as_ref(),
            ChampionCriterion::KvCachePressure => self.pressure_workload.as_ref(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigRef {
    pub name: String,
    pub id: ConfigId,
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
    /// How the champion was chosen; `None` while the run is incomplete or
    /// no config is valid.
    pub decision: Option<Decision>,
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

/// The battery's effect threshold from the plan's battery parameters (the
/// search refused a plan whose battery does not parse, so the default only
/// stands in for a plan that never ran).
fn effect_threshold(plan: &Plan) -> f64 {
    crate::battery::battery_config(&plan.battery)
        .map(|battery| battery.kv_cache.effect_threshold)
        .unwrap_or_else(|_| {
            grid_bench::BatteryConfig::default()
                .kv_cache
                .effect_threshold
        })
}

/// The criterion actually used: the plan's, or `kv_cache` when no valid
/// config has the pressured figure.
fn effective_criterion(plan: &Plan, evaluated: &[RankedConfig]) -> ChampionCriterion {
    let requested = plan.ranking.champion_criterion;
    let has = |criterion| {
        evaluated
            .iter()
            .any(|c| c.status == ConfigStatus::Valid && c.workload(criterion).is_some())
    };
    if has(requested) || !has(ChampionCriterion::KvCache) {
        requested
    } else {
        ChampionCriterion::KvCache
    }
}

/// Where a config goes: valid and confirmed, valid and not confirmed, valid
/// without the criterion's figure, rejected, failed.
fn group(c: &RankedConfig) -> u8 {
    match c.status {
        ConfigStatus::Valid if c.criterion_figure.is_none() => 2,
        ConfigStatus::Valid if c.cache_evidence_confirmed() => 0,
        ConfigStatus::Valid => 1,
        ConfigStatus::Rejected => 3,
        ConfigStatus::Failed => 4,
    }
}

/// Rank a run's results against its plan.
pub fn rank(plan: &Plan, results: &BTreeMap<ConfigId, ConfigResult>) -> Ranking {
    let threshold = effect_threshold(plan);
    let mut evaluated: Vec<RankedConfig> = plan
        .configs
        .iter()
        .map(|c| gates::evaluate(c, results.get(&c.id), &plan.ranking, threshold))
        .collect();
    let criterion = effective_criterion(plan, &evaluated);
    for config in evaluated.iter_mut() {
        let workload = config.workload(criterion).cloned();
        config.per_repeat_medians = workload
            .as_ref()
            .map(|w| w.figure.per_repeat_medians.clone())
            .unwrap_or_default();
        config.cache_evidence = workload.as_ref().map(|w| w.evidence.clone());
        config.criterion_figure = workload.map(|w| w.figure);
        if config.status != ConfigStatus::Valid {
            continue;
        }
        config.rank_note = match &config.cache_evidence {
            None => Some(format!(
                "no {} figure (the workload did not run for it), so it is ranked after the configs that have one",
                criterion.figure()
            )),
            Some(evidence) => evidence.why_not_champion().map(|why| {
                format!("{why}; ranked after the configs with a confirmed cache effect, and it cannot be champion")
            }),
        };
    }
    let plan_index: BTreeMap<ConfigId, usize> = plan
        .configs
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id.clone(), i))
        .collect();
    // Valid configs by group, then median on the criterion (ties: lower
    // bound, then name, for determinism); rejected and failed in plan order.
    evaluated.sort_by(|a, b| {
        group(a).cmp(&group(b)).then_with(|| {
            match (
                a.status,
                a.criterion_acceleration(),
                b.criterion_acceleration(),
            ) {
                (ConfigStatus::Valid, Some(x), Some(y)) => y
                    .median
                    .total_cmp(&x.median)
                    .then(y.ci95_low.total_cmp(&x.ci95_low))
                    .then(a.name.cmp(&b.name)),
                _ => plan_index[&a.id].cmp(&plan_index[&b.id]),
            }
        })
    });
    let incomplete = incomplete(plan, results);
    let blocked = incomplete.as_ref().is_some_and(Incomplete::blocks_champion);
    let candidates: Vec<&RankedConfig> = evaluated
        .iter()
        .filter(|c| c.status == ConfigStatus::Valid && c.criterion_figure.is_some())
        .collect();
    // No champion, and nothing said as if there were one, while configs
    // are still unmeasured for reasons outside them.
    let decision = (!blocked && !candidates.is_empty()).then(|| {
        let gmu = |c: &RankedConfig| {
            plan.config(&c.id)
                .and_then(|p| p.settings.gpu_memory_utilization)
        };
        decision::decide(
            &candidates,
            criterion,
            plan.ranking.champion_criterion,
            plan.ranking.equivalence_margin.get(),
            &gmu,
        )
    });
    let champion = decision.as_ref().and_then(|d| d.champion.clone());
    if let (Some(decision), Some(champion)) = (&decision, &champion) {
        // The champion first; the rest of the order stands.
        if let Some(at) = evaluated.iter().position(|c| c.id == champion.id) {
            let chosen = evaluated.remove(at);
            evaluated.insert(0, chosen);
        }
        let mut set: Vec<&ConfigId> = decision.equivalents.iter().map(|e| &e.config.id).collect();
        set.extend(decision.best.as_ref().map(|b| &b.id));
        for config in evaluated.iter_mut() {
            config.equivalent_to_champion = config.id != champion.id && set.contains(&&config.id);
        }
    }
    let mut rank_number = 0;
    for config in evaluated.iter_mut() {
        if config.status == ConfigStatus::Valid {
            rank_number += 1;
            config.rank = Some(rank_number);
        }
    }
    let valid: Vec<&RankedConfig> = evaluated
        .iter()
        .filter(|c| c.status == ConfigStatus::Valid && !blocked)
        .collect();
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
        decision,
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
