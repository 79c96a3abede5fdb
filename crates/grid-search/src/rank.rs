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
//! # Significance
//! The lead is significant when the runner-up's interval does not overlap
//! the champion's. Otherwise, with `n` repeats, half-widths `h_c` (the
//! champion's lower) and `h_r` (the runner-up's upper) and gap `d` between
//! medians, intervals shrink like `1/sqrt(n)`, so separating them needs about
//! `n' = ceil(n · ((h_c + h_r) / d)²)` repeats.

use std::collections::BTreeMap;

use grid_core::{Estimate, median};
use grid_plan::{ConfigId, Plan, PlannedConfig, RankingGates};
use serde::{Deserialize, Serialize};

use crate::store::{ConfigResult, Measurement, RunOutcome};

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
}

impl Ranking {
    pub fn get(&self, id: &ConfigId) -> Option<&RankedConfig> {
        self.configs.iter().find(|c| &c.id == id)
    }
}

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

fn med_of(
    measurements: &[&Measurement],
    pick: impl Fn(&Measurement) -> Option<f64>,
) -> Option<f64> {
    let values: Vec<f64> = measurements.iter().filter_map(|m| pick(m)).collect();
    median(&values)
}

fn worst(
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

fn pct(value: f64) -> String {
    format!("{:.1} %", value * 100.0)
}

/// Evaluate one config against the gates.
fn evaluate(
    config: &PlannedConfig,
    result: Option<&ConfigResult>,
    gates: &RankingGates,
) -> RankedConfig {
    let mut ranked = RankedConfig {
        name: config.name.clone(),
        id: config.id.clone(),
        settings: config.settings.summary(),
        status: ConfigStatus::Failed,
        rank: None,
        kv_cache_acceleration: None,
        reasons: Vec::new(),
        failure_class: None,
        log_tail: Vec::new(),
        secondary: Secondary::default(),
        repeats_done: 0,
    };
    let Some(result) = result else {
        ranked
            .reasons
            .push("no result: not run yet (run interrupted or still in progress)".to_string());
        return ranked;
    };
    ranked.repeats_done = result.repeats.len();
    if let Some(failure) = &result.failure {
        ranked.failure_class = Some(failure.class.clone());
        ranked.log_tail = failure.log_tail.clone();
    }
    match result.outcome {
        RunOutcome::Completed => {}
        RunOutcome::LaunchFailed => {
            let (class, message, config_fault) = result
                .failure
                .as_ref()
                .map(|f| (f.class_name.clone(), f.message.clone(), f.config_fault))
                .unwrap_or_else(|| ("unknown".to_string(), String::new(), false));
            ranked.status = if config_fault {
                ConfigStatus::Rejected
            } else {
                ConfigStatus::Failed
            };
            ranked
                .reasons
                .push(format!("server did not start ({class}): {message}"));
            return ranked;
        }
        RunOutcome::Failed | RunOutcome::Skipped => {
            let message = result
                .failure
                .as_ref()
                .map(|f| format!("{}: {}", f.class_name, f.message))
                .unwrap_or_else(|| "no reason recorded".to_string());
            // A server that died under load is the config's fault.
            if result.failure.as_ref().is_some_and(|f| f.config_fault) {
                ranked.status = ConfigStatus::Rejected;
            }
            ranked.reasons.push(match result.outcome {
                RunOutcome::Skipped => format!("not run: {message}"),
                _ => format!("failed: {message}"),
            });
            return ranked;
        }
    }
    let measurements: Vec<&Measurement> = result.repeats.iter().map(|r| &r.measurement).collect();
    if measurements.is_empty() {
        ranked
            .reasons
            .push("completed without any repeat recorded".to_string());
        return ranked;
    }
    let seed = acceleration_seed(&config.id);
    ranked.kv_cache_acceleration = combine_acceleration(&measurements, seed);
    let error_rate = worst(&measurements, |m| m.request_error_rate, true);
    let degradation = worst(&measurements, |m| m.stability_degradation, true);
    let tool_success = worst(&measurements, |m| m.tool_call_success_rate, false);
    ranked.secondary = Secondary {
        ttft_miss_ms: med_of(&measurements, |m| m.ttft_miss_ms),
        ttft_hit_ms: med_of(&measurements, |m| m.ttft_hit_ms),
        output_throughput: med_of(&measurements, |m| m.output_throughput),
        mean_itl_ms: med_of(&measurements, |m| m.mean_itl_ms),
        mean_e2e_ms: med_of(&measurements, |m| m.mean_e2e_ms),
        vram_peak_mib: med_of(&measurements, |m| m.vram_peak_mib),
        tool_call_success_rate: tool_success,
        request_error_rate: error_rate,
        stability_degradation: degradation,
        cache_confirmed_by_server: measurements
            .iter()
            .map(|m| m.cache_confirmed_by_server)
            .collect::<Option<Vec<bool>>>()
            .map(|all| all.iter().all(|b| *b)),
    };

    // The gates, in the documented order. Every failing gate is listed.
    let mut reasons = Vec::new();
    if gates.require_all_benchmarks {
        let mut failed: BTreeMap<&str, &str> = BTreeMap::new();
        for m in &measurements {
            for (name, why) in &m.benchmarks_failed {
                failed.entry(name).or_insert(why);
            }
        }
        if !failed.is_empty() {
            reasons.push(format!(
                "benchmark(s) did not complete: {}",
                failed
                    .iter()
                    .map(|(n, w)| format!("{n} ({w})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    match error_rate {
        None => reasons.push("request error rate not measured".to_string()),
        Some(rate) if rate > gates.max_request_error_rate => reasons.push(format!(
            "request error rate {} is above the {} gate",
            pct(rate),
            pct(gates.max_request_error_rate)
        )),
        Some(_) => {}
    }
    match degradation {
        None => reasons.push("stability degradation not measured".to_string()),
        Some(d) if d >= gates.max_stability_degradation => reasons.push(format!(
            "stability degradation {} is not below the {} gate",
            pct(d),
            pct(gates.max_stability_degradation)
        )),
        Some(_) => {}
    }
    if gates.require_tool_calling {
        match tool_success {
            None => reasons.push("tool calling is required but was not measured".to_string()),
            Some(rate) if rate < gates.min_tool_call_success_rate => reasons.push(format!(
                "tool-call success {} is below the required {}",
                pct(rate),
                pct(gates.min_tool_call_success_rate)
            )),
            Some(_) => {}
        }
    }
    if ranked.kv_cache_acceleration.is_none() {
        reasons.push("KV-cache acceleration not measured, so it cannot be ranked".to_string());
    }
    ranked.status = if reasons.is_empty() {
        ConfigStatus::Valid
    } else {
        ConfigStatus::Rejected
    };
    ranked.reasons = reasons;
    ranked
}

/// Rank a run's results against its plan.
pub fn rank(plan: &Plan, results: &BTreeMap<ConfigId, ConfigResult>) -> Ranking {
    let mut evaluated: Vec<RankedConfig> = plan
        .configs
        .iter()
        .map(|c| evaluate(c, results.get(&c.id), &plan.ranking))
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
    let valid: Vec<&RankedConfig> = evaluated
        .iter()
        .filter(|c| c.status == ConfigStatus::Valid)
        .collect();
    let champion = valid.first().map(|c| ConfigRef {
        name: c.name.clone(),
        id: c.id.clone(),
    });
    let significance = match (valid.first(), valid.get(1)) {
        (Some(first), Some(second)) => Some(significance(first, second, plan.repeats.get())),
        _ => None,
    };
    let recommendations = recommend(&valid);
    let tradeoffs = tradeoffs(plan, &evaluated);
    Ranking {
        configs: evaluated,
        champion,
        significance,
        recommendations,
        tradeoffs,
        gates: plan.ranking.clone(),
    }
}

fn significance(first: &RankedConfig, second: &RankedConfig, repeats: u32) -> Significance {
    let (c, r) = (
        first.kv_cache_acceleration.unwrap_or(Estimate {
            median: 0.0,
            ci95_low: 0.0,
            ci95_high: 0.0,
            samples: 0,
        }),
        second.kv_cache_acceleration.unwrap_or(Estimate {
            median: 0.0,
            ci95_low: 0.0,
            ci95_high: 0.0,
            samples: 0,
        }),
    );
    let runner_up = ConfigRef {
        name: second.name.clone(),
        id: second.id.clone(),
    };
    if !c.overlaps(&r) {
        return Significance {
            text: format!(
                "The lead is significant: `{}`'s 95 % interval ({:.2}–{:.2}) lies above the runner-up `{}`'s ({:.2}–{:.2}).",
                first.name, c.ci95_low, c.ci95_high, second.name, r.ci95_low, r.ci95_high
            ),
            runner_up,
            significant: true,
            repeats_now: repeats,
            repeats_needed: None,
        };
    }
    let gap = c.median - r.median;
    let spread = (c.median - c.ci95_low).max(0.0) + (r.ci95_high - r.median).max(0.0);
    let needed = if gap > 0.0 {
        let n = (f64::from(repeats) * (spread / gap).powi(2)).ceil();
        Some(n.clamp(f64::from(repeats) + 1.0, 10_000.0) as u32)
    } else {
        None
    };
    let advice = match needed {
        Some(n) if n >= 10_000 => format!(
            "even 10000 repeats (now {repeats}) would hardly settle it: the gap is negligible against the intervals"
        ),
        Some(n) => format!(
            "about {n} repeats (now {repeats}) would settle it, assuming intervals shrink like 1/sqrt(repeats)"
        ),
        None => "the medians are equal, so more repeats are unlikely to separate them".to_string(),
    };
    Significance {
        text: format!(
            "The lead is NOT significant: the runner-up `{}` ({:.2}, 95 % interval {:.2}–{:.2}) overlaps `{}` ({:.2}, {:.2}–{:.2}); {advice}.",
            second.name,
            r.median,
            r.ci95_low,
            r.ci95_high,
            first.name,
            c.median,
            c.ci95_low,
            c.ci95_high
        ),
        runner_up,
        significant: false,
        repeats_now: repeats,
        repeats_needed: needed,
    }
}

fn best_by<'a>(
    valid: &[&'a RankedConfig],
    metric: impl Fn(&RankedConfig) -> Option<f64>,
    higher_is_better: bool,
) -> Option<(&'a RankedConfig, f64)> {
    // `valid` is in rank order, so ties go to the better-ranked config.
    let mut best: Option<(&RankedConfig, f64)> = None;
    for config in valid {
        if let Some(value) = metric(config).filter(|v| v.is_finite()) {
            let better = match best {
                None => true,
                Some((_, current)) => {
                    if higher_is_better {
                        value > current
                    } else {
                        value < current
                    }
                }
            };
            if better {
                best = Some((config, value));
            }
        }
    }
    best
}

fn reference(config: &RankedConfig) -> ConfigRef {
    ConfigRef {
        name: config.name.clone(),
        id: config.id.clone(),
    }
}

fn recommend(valid: &[&RankedConfig]) -> Vec<Recommendation> {
    let mut out = Vec::new();
    let conversational = best_by(valid, |c| c.secondary.ttft_hit_ms, false);
    out.push(match conversational {
        Some((c, v)) => Recommendation {
            use_case: "conversational agents".to_string(),
            config: Some(reference(c)),
            why: format!(
                "lowest time to first token when the conversation's history is cached ({v:.1} ms); agents re-send their history every turn"
            ),
        },
        None => Recommendation {
            use_case: "conversational agents".to_string(),
            config: valid.first().map(|c| reference(c)),
            why: "TTFT on cache hits was not measured; falling back to the champion".to_string(),
        },
    });
    let reasoning = best_by(valid, |c| c.secondary.output_throughput, true);
    out.push(match reasoning {
        Some((c, v)) => Recommendation {
            use_case: "long reasoning".to_string(),
            config: Some(reference(c)),
            why: format!(
                "highest output throughput ({v:.1} tokens/s){}; long reasoning is bound by decoding speed",
                c.secondary
                    .mean_itl_ms
                    .map(|itl| format!(", mean ITL {itl:.1} ms"))
                    .unwrap_or_default()
            ),
        },
        None => Recommendation {
            use_case: "long reasoning".to_string(),
            config: None,
            why: "output throughput was not measured for any valid config".to_string(),
        },
    });
    let tools = best_by(valid, |c| c.secondary.tool_call_success_rate, true);
    out.push(match tools {
        // Recommending the "best" of configs that all failed every tool call
        // would read as an endorsement; say what was seen instead.
        Some((_, v)) if v <= 0.0 => Recommendation {
            use_case: "tool calling".to_string(),
            config: None,
            why: "no valid config completed a tool call (0 % success); check the tool-call parser and the model".to_string(),
        },
        Some((c, v)) => Recommendation {
            use_case: "tool calling".to_string(),
            config: Some(reference(c)),
            why: format!(
                "highest tool-call success ({}), ties broken by KV-cache acceleration",
                pct(v)
            ),
        },
        None => Recommendation {
            use_case: "tool calling".to_string(),
            config: None,
            why: "tool calling was not measured for any valid config".to_string(),
        },
    });
    out
}

fn tradeoffs(plan: &Plan, configs: &[RankedConfig]) -> Vec<String> {
    let mut lines = Vec::new();
    let valid: Vec<&RankedConfig> = configs
        .iter()
        .filter(|c| c.status == ConfigStatus::Valid)
        .collect();
    if let (Some(champion), Some((fastest, tput))) = (
        valid.first(),
        best_by(&valid, |c| c.secondary.output_throughput, true),
    ) {
        if fastest.id != champion.id {
            if let Some(champion_tput) = champion.secondary.output_throughput {
                if champion_tput > 0.0 {
                    lines.push(format!(
                        "`{}` has the best KV-cache acceleration, but `{}` streams {:.0} % more output tokens/s ({tput:.1} vs {champion_tput:.1}).",
                        champion.name,
                        fastest.name,
                        (tput / champion_tput - 1.0) * 100.0
                    ));
                }
            }
        } else {
            lines.push(format!(
                "`{}` leads on both KV-cache acceleration and output throughput.",
                champion.name
            ));
        }
    }
    if let (Some(champion), Some((lean, vram))) = (
        valid.first(),
        best_by(&valid, |c| c.secondary.vram_peak_mib, false),
    ) {
        if let Some(champion_vram) = champion.secondary.vram_peak_mib {
            if lean.id != champion.id && champion_vram > vram {
                lines.push(format!(
                    "`{}` peaks at {vram:.0} MiB of GPU memory against the champion's {champion_vram:.0} MiB.",
                    lean.name
                ));
            }
        }
    } else if !valid.is_empty() {
        lines.push(
            "GPU memory was not sampled (no nvidia-smi), so VRAM is not compared.".to_string(),
        );
    }
    // Effects of the two switches, averaged over measured configs.
    let settings_of = |id: &ConfigId| plan.config(id).map(|c| &c.settings);
    let average = |filter: &dyn Fn(&grid_plan::ServerSettings) -> bool,
                   metric: &dyn Fn(&RankedConfig) -> Option<f64>| {
        let values: Vec<f64> = configs
            .iter()
            .filter(|c| settings_of(&c.id).is_some_and(filter))
            .filter_map(metric)
            .collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    let accel = |c: &RankedConfig| c.kv_cache_acceleration.map(|a| a.median);
    if let (Some(on), Some(off)) = (
        average(&|s| s.enable_prefix_caching == Some(true), &accel),
        average(&|s| s.enable_prefix_caching == Some(false), &accel),
    ) {
        lines.push(format!(
            "Prefix caching: mean acceleration ×{on:.2} with it on against ×{off:.2} with it off; without it a repeated prefix is recomputed."
        ));
    }
    let itl = |c: &RankedConfig| c.secondary.mean_itl_ms;
    if let (Some(on), Some(off)) = (
        average(&|s| s.enable_chunked_prefill == Some(true), &itl),
        average(&|s| s.enable_chunked_prefill == Some(false), &itl),
    ) {
        lines.push(format!(
            "Chunked prefill: mean ITL {on:.1} ms with it on against {off:.1} ms with it off; without it a long prefill stalls running streams."
        ));
    }
    // Start failures, split by whether memory was the cause: only then is
    // the memory-share advice true.
    const MEMORY_CLASSES: [&str; 4] = [
        "gpu_out_of_memory",
        "kv_cache_too_small",
        "free_memory_below_utilization",
        "host_out_of_memory",
    ];
    let start_failures: Vec<&str> = configs
        .iter()
        .filter(|c| c.status == ConfigStatus::Rejected)
        .filter(|c| {
            c.reasons
                .iter()
                .any(|r| r.starts_with("server did not start"))
        })
        .map(|c| c.failure_class.as_deref().unwrap_or(""))
        .collect();
    let for_memory = start_failures
        .iter()
        .filter(|class| MEMORY_CLASSES.contains(class))
        .count();
    if for_memory > 0 {
        lines.push(format!(
            "{for_memory} config(s) could not start for lack of memory; a higher memory share buys KV cache only while the GPU has it free."
        ));
    }
    let for_other = start_failures.len() - for_memory;
    if for_other > 0 {
        lines.push(format!(
            "{for_other} config(s) could not start for another reason (see the rejected configs below)."
        ));
    }
    lines
}
