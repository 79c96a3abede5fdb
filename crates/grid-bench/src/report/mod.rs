//! The battery report, the headline the ranking reads, the human table,
//! and the atomic output files.

mod failures;
mod output;
mod table;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::benchmarks::concurrency::ConcurrencyReport;
use crate::benchmarks::kv_cache::KvCacheReport;
use crate::benchmarks::kv_cache_pressure::KvCachePressureReport;
use crate::benchmarks::long_conversation::LongConversationReport;
use crate::benchmarks::reasoning::ReasoningReport;
use crate::benchmarks::stability::StabilityReport;
use crate::benchmarks::tool_calling::ToolCallingReport;
use crate::config::{BatteryConfig, BenchmarkName};
use crate::gpu::GpuProfile;
use crate::metrics::MetricsDelta;
use crate::noise::NoiseCheck;
use grid_core::Estimate;

pub use failures::{FailureReason, FailureTally, TOP_FAILURE_REASONS};
pub use output::{WriteError, write_outputs};
pub use table::render_table;

/// How a benchmark ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum OutcomeStatus {
    Completed,
    /// Too few successful requests for the numbers to mean anything: the
    /// details are kept, but no headline number is taken from them.
    InsufficientSamples {
        successful: usize,
        required: usize,
    },
    /// The benchmark's wall-clock bound (`benchmark_timeout_s`) ended it:
    /// the details hold what it measured until then, but no headline
    /// number is taken from them.
    TimedOut {
        after_s: f64,
        successful: usize,
        required: usize,
    },
    /// The benchmark could not run (for gpu_profile: no nvidia-smi).
    Unavailable {
        reason: String,
    },
    Failed {
        error: String,
    },
}

impl OutcomeStatus {
    /// Whether the benchmark failed: it ran (or tried to) and gave no
    /// usable number. `Unavailable` (a missing tool such as nvidia-smi) is
    /// not a failure of the server under test.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            OutcomeStatus::InsufficientSamples { .. }
                | OutcomeStatus::TimedOut { .. }
                | OutcomeStatus::Failed { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "benchmark", rename_all = "snake_case")]
pub enum BenchmarkDetails {
    KvCache(KvCacheReport),
    KvCachePressure(Box<KvCachePressureReport>),
    LongConversation(Box<LongConversationReport>),
    Reasoning(ReasoningReport),
    ToolCalling(ToolCallingReport),
    Stability(Box<StabilityReport>),
    Concurrency(ConcurrencyReport),
    GpuProfile(GpuProfile),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkOutcome {
    pub name: BenchmarkName,
    #[serde(flatten)]
    pub status: OutcomeStatus,
    pub duration_s: f64,
    pub requests_total: u64,
    pub requests_failed: u64,
    /// Failed requests by reason (`connect`, `http_status`, ...).
    pub failure_reasons: BTreeMap<String, u64>,
    /// The most frequent failure reasons (at most [`TOP_FAILURE_REASONS`]),
    /// each with its count and one example message.
    #[serde(default)]
    pub top_failures: Vec<FailureReason>,
    /// Successful requests whose usage lacked a count (prompt_tokens or
    /// completion_tokens): their latencies count, their tokens are unknown
    /// and kept out of token throughput.
    #[serde(default)]
    pub requests_without_token_counts: u64,
    /// `/metrics` before/after deltas; `None` when not scraped.
    pub server_metrics: Option<MetricsDelta>,
    /// The client's mean TTFT against the server's own (the noise guard);
    /// `None` when the benchmark is not guarded or a mean is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_guard: Option<NoiseCheck>,
    /// Set when the noise guard found the client's TTFT too far above the
    /// server's: the host, not the server, shaped these latencies.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disturbed: bool,
    pub details: Option<BenchmarkDetails>,
}

impl BenchmarkOutcome {
    pub fn completed(&self) -> bool {
        matches!(self.status, OutcomeStatus::Completed)
    }

    /// Why the benchmark gave no number, in one line with its top failure
    /// reasons (`insufficient samples: 0 of 3; connect ×3`); `None` when it
    /// completed.
    pub fn failure_summary(&self) -> Option<String> {
        let what = match &self.status {
            OutcomeStatus::Completed => return None,
            OutcomeStatus::InsufficientSamples {
                successful,
                required,
            } => format!("insufficient samples: {successful} successful, {required} required"),
            OutcomeStatus::TimedOut {
                after_s,
                successful,
                required,
            } => format!(
                "timed out after {after_s:.0} s (benchmark_timeout_s): {successful} successful, {required} required"
            ),
            OutcomeStatus::Unavailable { reason } => format!("unavailable: {reason}"),
            OutcomeStatus::Failed { error } => error.clone(),
        };
        Some(match failures::counts_line(&self.top_failures) {
            Some(reasons) => format!("{what}; {reasons}"),
            None => what,
        })
    }
}

/// The numbers the ranking reads. `None` means "not measured" (benchmark
/// not run, failed, or too few samples), never zero.
///
/// Every field has a serde default, so a reader of an older report (or a
/// type that embeds the headline with `#[serde(flatten)]`) reads it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Headline {
    /// kv_cache: median over iterations of TTFT_miss / median(TTFT_hit),
    /// with its bootstrap 95% interval and number of iterations.
    pub kv_cache_acceleration: Option<Estimate>,
    pub ttft_miss_ms: Option<f64>,
    pub ttft_hit_ms: Option<f64>,
    /// Whether the server's `cached_tokens` / prefix-cache counters show
    /// hits (`None`: the server reports neither).
    pub cache_confirmed_by_server: Option<bool>,
    /// kv_cache: a prefix-cache effect is claimed (faster and confirmed).
    pub cache_effect_claimed: bool,
    /// concurrency, highest level: output tokens per second.
    pub output_throughput: Option<f64>,
    pub request_goodput: Option<f64>,
    pub mean_itl_ms: Option<f64>,
    pub mean_e2e_ms: Option<f64>,
    pub p99_ttft_ms: Option<f64>,
    /// The concurrency level these latency numbers come from.
    pub headline_concurrency: Option<usize>,
    pub requests_total: u64,
    pub requests_failed: u64,
    pub request_error_rate: f64,
    /// stability: worst of short/long, as a fraction (0.2 = 20 %).
    pub stability_degradation: Option<f64>,
    pub tool_call_success_rate: Option<f64>,
    pub reasoning_pass_rate: Option<f64>,
    /// gpu_profile: `None` when nvidia-smi is unavailable.
    pub vram_peak_mib: Option<f64>,
    pub benchmarks_completed: Vec<BenchmarkName>,
    /// Every benchmark without a number and why (`unavailable` included,
    /// with its reason; see [`OutcomeStatus::is_failure`] for which count as
    /// failures).
    pub benchmarks_failed: Vec<(BenchmarkName, String)>,
    /// Successful requests whose usage lacked a token count, over all
    /// benchmarks.
    pub requests_without_token_counts: u64,
    /// kv_cache: the per-iteration accelerations behind
    /// `kv_cache_acceleration` (finite values only), and the bootstrap
    /// resamples of its interval, so repeats can be pooled.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub acceleration_samples: Vec<f64>,
    pub bootstrap_resamples: Option<usize>,
    /// kv_cache_pressure: its acceleration (median over conversations with
    /// the bootstrap interval) and the per-conversation values behind it.
    pub pressure_acceleration: Option<Estimate>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pressure_acceleration_samples: Vec<f64>,
    pub pressure_warm_hit_rate: Option<f64>,
    pub pressure_warm_ttft_ms: Option<f64>,
    pub pressure_cold_ttft_ms: Option<f64>,
    pub pressure_preemptions: Option<u64>,
    pub pressure_cache_confirmed_by_server: Option<bool>,
    /// The server's KV capacity in tokens, and what the pressured workload
    /// needed to keep every history.
    pub kv_capacity_tokens: Option<u64>,
    pub pressure_workload_tokens: Option<u64>,
    /// The benchmarks the noise guard marked, with both means.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub disturbed: Vec<(BenchmarkName, NoiseCheck)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointInfo {
    pub base_url: String,
    pub model: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatteryReport {
    pub endpoint: EndpointInfo,
    pub seed: u64,
    pub started_unix_s: f64,
    pub duration_s: f64,
    pub config: BatteryConfig,
    pub benchmarks: Vec<BenchmarkOutcome>,
    pub headline: Headline,
}

impl BatteryReport {
    pub fn outcome(&self, name: BenchmarkName) -> Option<&BenchmarkOutcome> {
        self.benchmarks.iter().find(|outcome| outcome.name == name)
    }

    /// The benchmarks that failed (too few samples, timed out, could not
    /// run); a caller exits non-zero when this is not empty.
    pub fn failed_benchmarks(&self) -> Vec<&BenchmarkOutcome> {
        self.benchmarks
            .iter()
            .filter(|outcome| outcome.status.is_failure())
            .collect()
    }

    /// Whether every benchmark that ran gave its numbers.
    pub fn succeeded(&self) -> bool {
        self.failed_benchmarks().is_empty()
    }
}

impl Headline {
    pub fn from_outcomes(outcomes: &[BenchmarkOutcome]) -> Self {
        let mut headline = Headline::default();
        for outcome in outcomes {
            headline.requests_total += outcome.requests_total;
            headline.requests_failed += outcome.requests_failed;
            headline.requests_without_token_counts += outcome.requests_without_token_counts;
            match outcome.failure_summary() {
                None => headline.benchmarks_completed.push(outcome.name),
                Some(summary) => headline.benchmarks_failed.push((outcome.name, summary)),
            }
            // Any benchmark's scrape shows the capacity: it is the server's,
            // not the workload's.
            if headline.kv_capacity_tokens.is_none() {
                headline.kv_capacity_tokens = outcome
                    .server_metrics
                    .as_ref()
                    .and_then(|metrics| metrics.after.as_ref().or(metrics.before.as_ref()))
                    .and_then(|snapshot| snapshot.kv_capacity_tokens);
            }
            if let Some(check) = outcome.noise_guard.as_ref().filter(|_| outcome.disturbed) {
                headline.disturbed.push((outcome.name, check.clone()));
            }
            if !outcome.completed() {
                continue;
            }
            match &outcome.details {
                Some(BenchmarkDetails::KvCachePressure(report)) => {
                    headline.pressure_acceleration = report.acceleration;
                    headline.pressure_acceleration_samples = report
                        .conversations
                        .iter()
                        .filter_map(|conversation| conversation.acceleration)
                        .filter(|value| value.is_finite())
                        .collect();
                    headline.pressure_warm_hit_rate = report.warm_hit_rate;
                    headline.pressure_warm_ttft_ms = report.warm_ttft_ms;
                    headline.pressure_cold_ttft_ms = report.cold_ttft_ms;
                    headline.pressure_preemptions = report.preemptions;
                    headline.pressure_cache_confirmed_by_server = report.server_confirms_hits;
                    headline.pressure_workload_tokens = report.workload_tokens;
                }
                Some(BenchmarkDetails::KvCache(report)) => {
                    headline.kv_cache_acceleration = report.acceleration;
                    headline.acceleration_samples = report
                        .iterations
                        .iter()
                        .filter_map(|iteration| iteration.acceleration)
                        .filter(|value| value.is_finite())
                        .collect();
                    headline.bootstrap_resamples = Some(report.bootstrap_resamples);
                    headline.ttft_miss_ms = report.ttft_miss_ms;
                    headline.ttft_hit_ms = report.ttft_hit_ms;
                    headline.cache_confirmed_by_server = report.server_confirms_hits;
                    headline.cache_effect_claimed = report.claims_cache_effect();
                }
                Some(BenchmarkDetails::Concurrency(report)) => {
                    if let Some(level) = report
                        .levels
                        .iter()
                        .rev()
                        .find(|level| level.summary.completed > 0)
                    {
                        headline.headline_concurrency = Some(level.concurrency);
                        headline.output_throughput = level.summary.output_throughput;
                        headline.request_goodput = level.summary.request_goodput;
                        headline.mean_itl_ms = level.summary.mean_itl_ms;
                        headline.mean_e2e_ms = level.summary.mean_e2el_ms;
                        headline.p99_ttft_ms = level.summary.p99_ttft_ms;
                    }
                }
                Some(BenchmarkDetails::Stability(report)) => {
                    headline.stability_degradation = report.worst_degradation;
                }
                Some(BenchmarkDetails::ToolCalling(report)) => {
                    headline.tool_call_success_rate = report.success_rate;
                }
                Some(BenchmarkDetails::Reasoning(report)) => {
                    headline.reasoning_pass_rate = report.pass_rate;
                }
                Some(BenchmarkDetails::GpuProfile(profile)) => {
                    headline.vram_peak_mib = profile.vram_peak_mib();
                }
                Some(BenchmarkDetails::LongConversation(_)) | None => {}
            }
        }
        headline.request_error_rate = if headline.requests_total > 0 {
            headline.requests_failed as f64 / headline.requests_total as f64
        } else {
            0.0
        };
        headline
    }
}
