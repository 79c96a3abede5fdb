//! The tie-break chain: among the best config and those equivalent to it on
//! the champion criterion, which one is the champion. Each step keeps the
//! candidates that are best on its rule (within the difference that counts)
//! and is recorded; the chain stops at the step that leaves one.
//!
//! 1. **Confirmed cache effect**: a config whose effect is not confirmed
//!    cannot be champion (issue 11).
//! 2. **Lower stability degradation**, by at least
//!    [`STABILITY_DIFFERENCE`] (10 percentage points, half the default
//!    20 % gate): the figure is a worst-of-two ratio of one run's windows,
//!    and host noise moves it a lot. In a default dry run on a loaded 2-core
//!    host (load average 11) configs with the same simulated physics gave
//!    −1.2 %, −0.3 %, 5.6 % and 8.4 %; a smaller threshold would let the
//!    host's scheduler pick the champion. A config that really degrades
//!    shows it near the gate.
//! 3. **Lower gpu-memory-utilization**, by at least
//!    [`GPU_MEMORY_DIFFERENCE`]: the setting is exact, written to two
//!    decimals, so any written difference counts. Less memory is more
//!    headroom for other processes, the study's own preference. A config
//!    without the setting counts as vLLM's default, 0.90.
//! 4. **Higher output throughput**, by at least [`THROUGHPUT_DIFFERENCE`]
//!    (5 %, the default equivalence margin): one concurrency level's
//!    tokens/s varies by a few percent between runs of the same server.
//! 5. **Stable config ID**: the lowest ID (its FNV-1a hex) wins, so the
//!    choice never depends on plan order or on names.

use grid_plan::ConfigId;
use serde::{Deserialize, Serialize};

use super::ConfigRef;

/// Stability degradations closer than this (a fraction) tie.
pub const STABILITY_DIFFERENCE: f64 = 0.10;
/// gpu-memory-utilization values closer than this tie.
pub const GPU_MEMORY_DIFFERENCE: f64 = 0.005;
/// Output throughputs within this share of the highest tie.
pub const THROUGHPUT_DIFFERENCE: f64 = 0.05;
/// A difference exactly at a threshold counts (0.15 − 0.05 is 0.1 less a
/// rounding error in binary).
const ROUNDING: f64 = 1e-9;
/// What a config without `gpu_memory_utilization` gets from vLLM.
pub const VLLM_DEFAULT_GPU_MEMORY_UTILIZATION: f64 = 0.90;

/// What the chain reads of one candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub config: ConfigRef,
    pub confirmed: bool,
    /// Worst over repeats; `None` counts as the worst of all.
    pub stability_degradation: Option<f64>,
    pub gpu_memory_utilization: Option<f64>,
    /// Median over repeats; `None` counts as the lowest of all.
    pub output_throughput: Option<f64>,
}

/// The rules, in the order they apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TieBreakRule {
    ConfirmedCacheEffect,
    LowerStabilityDegradation,
    LowerGpuMemoryUtilization,
    HigherOutputThroughput,
    StableConfigId,
}

impl TieBreakRule {
    /// The words after "champion `A` by".
    pub fn words(self) -> &'static str {
        match self {
            TieBreakRule::ConfirmedCacheEffect => "confirmed cache effect",
            TieBreakRule::LowerStabilityDegradation => "lower stability degradation",
            TieBreakRule::LowerGpuMemoryUtilization => "lower gpu-memory-utilization",
            TieBreakRule::HigherOutputThroughput => "higher output throughput",
            TieBreakRule::StableConfigId => "lowest stable config ID",
        }
    }
}

/// One applied step: who was still in, who it kept, and each one's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TieBreakStep {
    pub rule: TieBreakRule,
    /// Set when this step left one candidate.
    pub winner: Option<ConfigRef>,
    pub kept: Vec<ConfigRef>,
    pub dropped: Vec<ConfigRef>,
    /// Each candidate's value under the rule, in words (`0.85`, `3.1 %`).
    pub values: Vec<(String, String)>,
    pub text: String,
}

/// The chain's result: the champion and every step applied.
#[derive(Debug, Clone, PartialEq)]
pub struct TieBreak {
    pub champion: ConfigRef,
    pub steps: Vec<TieBreakStep>,
}

fn gmu(c: &Candidate) -> f64 {
    c.gpu_memory_utilization
        .unwrap_or(VLLM_DEFAULT_GPU_MEMORY_UTILIZATION)
}

/// Whether `c` survives the rule among `all`, and its value in words.
fn judge(rule: TieBreakRule, all: &[&Candidate]) -> Vec<(bool, String)> {
    let pct = |v: Option<f64>| {
        v.map_or("not measured".to_string(), |v| {
            format!("{:.1} %", v * 100.0)
        })
    };
    match rule {
        TieBreakRule::ConfirmedCacheEffect => all
            .iter()
            .map(|c| {
                (
                    c.confirmed,
                    if c.confirmed {
                        "confirmed"
                    } else {
                        "not confirmed"
                    }
                    .to_string(),
                )
            })
            .collect(),
        TieBreakRule::LowerStabilityDegradation => {
            let best = all
                .iter()
                .filter_map(|c| c.stability_degradation)
                .fold(f64::INFINITY, f64::min);
            all.iter()
                .map(|c| {
                    let keep = c
                        .stability_degradation
                        .is_some_and(|v| v - best < STABILITY_DIFFERENCE - ROUNDING)
                        || best.is_infinite();
                    (keep, pct(c.stability_degradation))
                })
                .collect()
        }
        TieBreakRule::LowerGpuMemoryUtilization => {
            let best = all.iter().map(|c| gmu(c)).fold(f64::INFINITY, f64::min);
            all.iter()
                .map(|c| {
                    let value = match c.gpu_memory_utilization {
                        Some(v) => format!("{v:.2}"),
                        None => {
                            format!("{VLLM_DEFAULT_GPU_MEMORY_UTILIZATION:.2} (vLLM's default)")
                        }
                    };
                    (gmu(c) - best < GPU_MEMORY_DIFFERENCE - ROUNDING, value)
                })
                .collect()
        }
        TieBreakRule::HigherOutputThroughput => {
            let best = all
                .iter()
                .filter_map(|c| c.output_throughput)
                .fold(f64::NEG_INFINITY, f64::max);
            all.iter()
                .map(|c| {
                    let keep = c
                        .output_throughput
                        .is_some_and(|v| v > best * (1.0 - THROUGHPUT_DIFFERENCE))
                        || best.is_infinite();
                    let value = c
                        .output_throughput
                        .map_or("not measured".to_string(), |v| format!("{v:.1} tok/s"));
                    (keep, value)
                })
                .collect()
        }
        TieBreakRule::StableConfigId => {
            let lowest: Option<&ConfigId> = all.iter().map(|c| &c.config.id).min();
            all.iter()
                .map(|c| (Some(&c.config.id) == lowest, c.config.id.0.clone()))
                .collect()
        }
    }
}

const RULES: [TieBreakRule; 5] = [
    TieBreakRule::ConfirmedCacheEffect,
    TieBreakRule::LowerStabilityDegradation,
    TieBreakRule::LowerGpuMemoryUtilization,
    TieBreakRule::HigherOutputThroughput,
    TieBreakRule::StableConfigId,
];

/// Runs the chain over `candidates` (at least one; the best first). A step
/// that would drop everyone (every candidate unconfirmed, say) keeps
/// everyone instead, so the chain always names one.
pub fn tie_break(candidates: &[Candidate]) -> Option<TieBreak> {
    let mut left: Vec<&Candidate> = candidates.iter().collect();
    let mut steps = Vec::new();
    for rule in RULES {
        if left.len() <= 1 {
            break;
        }
        let judged = judge(rule, &left);
        let values: Vec<(String, String)> = left
            .iter()
            .zip(&judged)
            .map(|(c, (_, value))| (c.config.name.clone(), value.clone()))
            .collect();
        let pick = |wanted: bool| -> Vec<&Candidate> {
            left.iter()
                .zip(&judged)
                .filter(|(_, (keep, _))| *keep == wanted)
                .map(|(c, _)| *c)
                .collect()
        };
        let (kept, dropped) = (pick(true), pick(false));
        let listing = values
            .iter()
            .map(|(name, value)| format!("`{name}` {value}"))
            .collect::<Vec<_>>()
            .join(", ");
        let (kept, dropped, text) = if kept.is_empty() || dropped.is_empty() {
            (
                left.clone(),
                Vec::new(),
                format!("{}: no difference that counts ({listing})", rule.words()),
            )
        } else {
            let names = |list: &[&Candidate]| {
                list.iter()
                    .map(|c| format!("`{}`", c.config.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let text = format!(
                "{}: {} kept, {} dropped ({listing})",
                rule.words(),
                names(&kept),
                names(&dropped)
            );
            (kept, dropped, text)
        };
        let refs = |list: &[&Candidate]| list.iter().map(|c| c.config.clone()).collect::<Vec<_>>();
        steps.push(TieBreakStep {
            rule,
            winner: (kept.len() == 1).then(|| kept[0].config.clone()),
            kept: refs(&kept),
            dropped: refs(&dropped),
            values,
            text,
        });
        left = kept;
    }
    let champion = left.first()?.config.clone();
    Some(TieBreak { champion, steps })
}
