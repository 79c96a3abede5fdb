//! One config against the gates: valid, rejected (a verdict), or failed
//! (not measured, for reasons outside it or not yet).

use std::collections::BTreeMap;

use grid_plan::{PlannedConfig, RankingGates};

use super::combine::{acceleration_seed, combine, kv_cache, kv_cache_pressure, med_of, worst};
use super::evidence::evidence;
use super::{ConfigStatus, PressureFigures, RankedConfig, Secondary, Workload};
use crate::store::{ConfigResult, Measurement, RunOutcome};

pub(super) fn pct(value: f64) -> String {
    format!("{:.1} %", value * 100.0)
}

/// Evaluate one config against the gates.
pub(super) fn evaluate(
    config: &PlannedConfig,
    result: Option<&ConfigResult>,
    gates: &RankingGates,
    effect_threshold: f64,
) -> RankedConfig {
    let mut ranked = RankedConfig {
        name: config.name.clone(),
        id: config.id.clone(),
        settings: config.settings.summary(),
        status: ConfigStatus::Failed,
        rank: None,
        kv_cache_acceleration: None,
        kv_cache_pressure_acceleration: None,
        per_repeat_medians: Vec::new(),
        cache_evidence: None,
        pressure: None,
        disturbed: Vec::new(),
        equivalent_to_champion: false,
        rank_note: None,
        gate_notes: Vec::new(),
        reasons: Vec::new(),
        failure_class: None,
        log_tail: Vec::new(),
        secondary: Secondary::default(),
        repeats_done: 0,
        criterion_figure: None,
        kv_cache_workload: None,
        pressure_workload: None,
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
    // Not a verdict: said as such, whatever its outcome says.
    let no_verdict = if result.is_final() {
        ""
    } else {
        "; this is no verdict on the config, and `vllm-grid resume` runs it again"
    };
    let failure_text = || {
        result
            .failure
            .as_ref()
            .map(|f| format!("{}: {}", f.class_name, f.message))
            .unwrap_or_else(|| "no reason recorded".to_string())
    };
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
            ranked.reasons.push(format!(
                "server did not start ({class}): {message}{no_verdict}"
            ));
            return ranked;
        }
        RunOutcome::Failed | RunOutcome::Skipped => {
            // A server that died under load is the config's fault.
            if result.failure.as_ref().is_some_and(|f| f.config_fault) {
                ranked.status = ConfigStatus::Rejected;
            }
            ranked.reasons.push(match result.outcome {
                RunOutcome::Skipped => format!("not run: {}", failure_text()),
                _ => format!("failed: {}{no_verdict}", failure_text()),
            });
            return ranked;
        }
        RunOutcome::NotMeasured => {
            ranked
                .reasons
                .push(format!("not measured: {}{no_verdict}", failure_text()));
            return ranked;
        }
        // Rejected like a config whose server refused to start, without
        // starting it (`--verify-predictions` starts it).
        RunOutcome::PredictedInfeasible => {
            ranked.status = ConfigStatus::Rejected;
            ranked
                .reasons
                .push(format!("predicted infeasible ({})", failure_text()));
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
    // Each workload's figure over repeats, and whether its cache effect is
    // confirmed; the ranking picks the criterion's.
    ranked.kv_cache_workload = combine(&measurements, kv_cache, seed).map(|figure| Workload {
        evidence: evidence(
            &figure.estimate,
            &measurements
                .iter()
                .map(|m| m.cache_confirmed_by_server)
                .collect::<Vec<_>>(),
            effect_threshold,
        ),
        figure,
    });
    // Its own seed, so the two workloads' resamples are not the same draws.
    ranked.pressure_workload =
        combine(&measurements, kv_cache_pressure, seed.rotate_left(17)).map(|figure| Workload {
            evidence: evidence(
                &figure.estimate,
                &measurements
                    .iter()
                    .map(|m| {
                        m.kv_cache_pressure
                            .as_ref()
                            .and_then(|p| p.cache_confirmed_by_server)
                    })
                    .collect::<Vec<_>>(),
                effect_threshold,
            ),
            figure,
        });
    ranked.kv_cache_acceleration = ranked.kv_cache_workload.as_ref().map(|w| w.figure.estimate);
    ranked.kv_cache_pressure_acceleration =
        ranked.pressure_workload.as_ref().map(|w| w.figure.estimate);
    let pressured: Vec<&crate::store::PressureMeasurement> = measurements
        .iter()
        .filter_map(|m| m.kv_cache_pressure.as_ref())
        .collect();
    if !pressured.is_empty() {
        // The capacity is the server's (one figure per config: the smallest
        // seen, the one the workload had to fit); the hit rate the median;
        // preemptions the most in any repeat.
        ranked.pressure = Some(PressureFigures {
            kv_capacity_tokens: pressured.iter().filter_map(|p| p.kv_capacity_tokens).min(),
            warm_hit_rate: grid_core::median(
                &pressured
                    .iter()
                    .filter_map(|p| p.warm_hit_rate)
                    .collect::<Vec<_>>(),
            ),
            preemptions: pressured.iter().filter_map(|p| p.preemptions).max(),
        });
    }
    ranked.disturbed = measurements
        .iter()
        .flat_map(|m| m.disturbed.iter().cloned())
        .collect();
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
    match stability_gate(&measurements, gates.max_stability_degradation) {
        StabilityGate::Passed => {}
        StabilityGate::NotMeasured => {
            reasons.push("stability degradation not measured".to_string())
        }
        StabilityGate::Failed(d) => reasons.push(format!(
            "stability degradation {} is not below the {} gate",
            pct(d),
            pct(gates.max_stability_degradation)
        )),
        StabilityGate::NotJudged(d) => ranked.gate_notes.push(format!(
            "stability degradation {} is over the {} gate, but only in repeats whose stability \
             benchmark the noise guard marked disturbed (the client saw more TTFT than the \
             server): not judged, since the host shaped the figure",
            pct(d),
            pct(gates.max_stability_degradation)
        )),
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

/// The stability gate over repeats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum StabilityGate {
    Passed,
    NotMeasured,
    /// The worst undisturbed repeat's degradation is over the gate.
    Failed(f64),
    /// Over the gate only in disturbed repeats: no verdict on the config.
    NotJudged(f64),
}

/// The worst degradation of the repeats the noise guard left alone decides;
/// a repeat whose stability benchmark was disturbed cannot fail the gate
/// (an environment effect is never a verdict on a config), but it still
/// counts when the figure is missing everywhere.
pub(super) fn stability_gate(measurements: &[&Measurement], max: f64) -> StabilityGate {
    let disturbed = |m: &Measurement| m.disturbed.iter().any(|d| d.benchmark == "stability");
    let Some(all) = worst(measurements, |m| m.stability_degradation, true) else {
        return StabilityGate::NotMeasured;
    };
    if all < max {
        return StabilityGate::Passed;
    }
    let clean: Vec<&Measurement> = measurements
        .iter()
        .copied()
        .filter(|m| !disturbed(m))
        .collect();
    match worst(&clean, |m| m.stability_degradation, true) {
        Some(d) if d >= max => StabilityGate::Failed(d),
        _ if clean.len() == measurements.len() => StabilityGate::Failed(all),
        _ => StabilityGate::NotJudged(all),
    }
}
