//! The short human table for stdout, with each failing benchmark's top
//! failure reasons.

use std::fmt::Write as _;

use super::{BatteryReport, BenchmarkDetails, OutcomeStatus};
use crate::gpu::GpuProfile;

fn number(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.decimals$}"))
}

/// `x5.20 [4.10, 6.30]`, or dashes without an estimate.
fn acceleration(estimate: Option<grid_core::Estimate>) -> String {
    format!(
        "x{} [{}, {}]",
        number(estimate.map(|e| e.median), 2),
        number(estimate.map(|e| e.ci95_low), 2),
        number(estimate.map(|e| e.ci95_high), 2)
    )
}

/// The short human table for stdout.
pub fn render_table(report: &BatteryReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<18} {:<22} {:>9} {:>7}  key result",
        "benchmark", "status", "requests", "failed"
    );
    for outcome in &report.benchmarks {
        let status = match &outcome.status {
            OutcomeStatus::Completed => "ok".to_string(),
            OutcomeStatus::InsufficientSamples {
                successful,
                required,
            } => {
                format!("too few ({successful}/{required})")
            }
            OutcomeStatus::TimedOut {
                successful,
                required,
                ..
            } => format!("timed out ({successful}/{required})"),
            OutcomeStatus::Unavailable { .. } => "unavailable".to_string(),
            OutcomeStatus::Failed { .. } => "failed".to_string(),
        };
        let reasons = super::failures::counts_line(&outcome.top_failures)
            .filter(|_| outcome.status.is_failure());
        let key = match (&outcome.details, &outcome.status) {
            (_, OutcomeStatus::Unavailable { reason }) => reason.clone(),
            (_, OutcomeStatus::Failed { error }) => error.clone(),
            _ if reasons.is_some() => reasons.unwrap_or_default(),
            (Some(BenchmarkDetails::KvCache(r)), _) => format!(
                "accel {} miss {} ms hit {} ms, server hits: {}",
                acceleration(r.acceleration),
                number(r.ttft_miss_ms, 1),
                number(r.ttft_hit_ms, 1),
                r.server_confirms_hits
                    .map_or("unknown", |c| if c { "yes" } else { "no" })
            ),
            (Some(BenchmarkDetails::KvCachePressure(r)), _) => format!(
                "accel {} cold {} ms warm {} ms, warm hits {}%, {} of {} KV tokens, preemptions {}",
                acceleration(r.acceleration),
                number(r.cold_ttft_ms, 1),
                number(r.warm_ttft_ms, 1),
                number(r.warm_hit_rate.map(|rate| rate * 100.0), 1),
                r.workload_tokens.map_or("?".to_string(), |t| t.to_string()),
                r.kv_capacity_tokens
                    .map_or("?".to_string(), |t| t.to_string()),
                r.preemptions.map_or("?".to_string(), |t| t.to_string())
            ),
            (Some(BenchmarkDetails::LongConversation(r)), _) => format!(
                "TTFT turns {}-{} {} ms -> turns {}-{} {} ms ({}%)",
                r.early_turns[0],
                r.early_turns[1],
                number(r.early_mean_ttft_ms, 1),
                r.late_turns[0],
                r.late_turns[1],
                number(r.late_mean_ttft_ms, 1),
                number(r.ttft_degradation.map(|d| d * 100.0), 1)
            ),
            (Some(BenchmarkDetails::Reasoning(r)), _) => format!(
                "passed {}/{} (mean score {})",
                r.passed,
                r.graded,
                number(r.mean_score, 2)
            ),
            (Some(BenchmarkDetails::ToolCalling(r)), _) => format!(
                "success {}%, parser mismatches {}",
                number(r.success_rate.map(|s| s * 100.0), 0),
                r.parser_mismatches
            ),
            (Some(BenchmarkDetails::Stability(r)), _) => format!(
                "degradation short {}% long {}%",
                number(r.short.degradation.map(|d| d * 100.0), 1),
                number(r.long.degradation.map(|d| d * 100.0), 1)
            ),
            (Some(BenchmarkDetails::Concurrency(r)), _) => r
                .levels
                .iter()
                .map(|level| {
                    format!(
                        "c={}: {} tok/s p99 TTFT {} ms",
                        level.concurrency,
                        number(level.summary.output_throughput, 0),
                        number(level.summary.p99_ttft_ms, 0)
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
            (Some(BenchmarkDetails::GpuProfile(profile)), _) => match profile {
                GpuProfile::Unavailable { reason } => reason.clone(),
                GpuProfile::Sampled {
                    gpus,
                    alerts,
                    vram_peak_mib,
                    ..
                } => format!(
                    "{} GPU(s), VRAM peak {} MiB, {} alert(s)",
                    gpus.len(),
                    number(*vram_peak_mib, 0),
                    alerts.len()
                ),
            },
            (None, _) => String::new(),
        };
        let _ = writeln!(
            out,
            "{:<18} {:<22} {:>9} {:>7}  {}",
            outcome.name.as_str(),
            status,
            outcome.requests_total,
            outcome.requests_failed,
            key
        );
    }
    let headline = &report.headline;
    let _ = writeln!(
        out,
        "requests: {} total, {} failed ({:.1}% errors)",
        headline.requests_total,
        headline.requests_failed,
        headline.request_error_rate * 100.0
    );
    for (name, check) in &headline.disturbed {
        let _ = writeln!(
            out,
            "disturbed: {name}: client mean TTFT {:.1} ms against the server's {:.1} ms; its latencies reflect the host",
            check.client_mean_ttft_ms, check.server_mean_ttft_ms
        );
    }
    if headline.requests_without_token_counts > 0 {
        let _ = writeln!(
            out,
            "token counts: {} successful requests had a usage without prompt_tokens or completion_tokens; their latencies count, token throughput leaves them out",
            headline.requests_without_token_counts
        );
    }
    let failing: Vec<_> = report
        .benchmarks
        .iter()
        .filter(|outcome| outcome.status.is_failure() && !outcome.top_failures.is_empty())
        .collect();
    if !failing.is_empty() {
        let _ = writeln!(out, "failure reasons:");
        for outcome in failing {
            for reason in &outcome.top_failures {
                let _ = writeln!(
                    out,
                    "  {}: {} ×{}: {}",
                    outcome.name, reason.kind, reason.count, reason.example
                );
            }
        }
    }
    out
}
