//! Recommendations per use case and the trade-offs between configs.

use grid_plan::{ConfigId, Plan};

use super::gates::pct;
use super::{ConfigStatus, RankedConfig, Recommendation, reference};

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

pub(super) fn recommend(valid: &[&RankedConfig]) -> Vec<Recommendation> {
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

pub(super) fn tradeoffs(plan: &Plan, configs: &[RankedConfig]) -> Vec<String> {
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
                        "`{}` is the champion on KV-cache acceleration, but `{}` streams {:.0} % more output tokens/s ({tput:.1} vs {champion_tput:.1}).",
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
