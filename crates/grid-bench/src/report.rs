//! The battery report, the headline the ranking reads, the human table,
//! and the atomic output files.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::benchmarks::concurrency::ConcurrencyReport;
use crate::benchmarks::kv_cache::KvCacheReport;
use crate::benchmarks::long_conversation::LongConversationReport;
use crate::benchmarks::reasoning::ReasoningReport;
use crate::benchmarks::stability::StabilityReport;
use crate::benchmarks::tool_calling::ToolCallingReport;
use crate::client::RequestRecord;
use crate::config::{BatteryConfig, BenchmarkName};
use crate::gpu::GpuProfile;
use crate::metrics::MetricsDelta;
use grid_core::Estimate;

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
    /// The benchmark could not run (for gpu_profile: no nvidia-smi).
    Unavailable {
        reason: String,
    },
    Failed {
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "benchmark", rename_all = "snake_case")]
pub enum BenchmarkDetails {
    KvCache(KvCacheReport),
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
    pub failure_reasons: BTreeMap<String, u64>,
    /// `/metrics` before/after deltas; `None` when not scraped.
    pub server_metrics: Option<MetricsDelta>,
    pub details: Option<BenchmarkDetails>,
}

impl BenchmarkOutcome {
    pub fn completed(&self) -> bool {
        matches!(self.status, OutcomeStatus::Completed)
    }
}

/// The numbers the ranking reads. `None` means "not measured" (benchmark
/// not run, failed, or too few samples), never zero.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    pub benchmarks_failed: Vec<(BenchmarkName, String)>,
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
}

impl Headline {
    pub fn from_outcomes(outcomes: &[BenchmarkOutcome]) -> Self {
        let mut headline = Headline::default();
        for outcome in outcomes {
            headline.requests_total += outcome.requests_total;
            headline.requests_failed += outcome.requests_failed;
            match &outcome.status {
                OutcomeStatus::Completed => headline.benchmarks_completed.push(outcome.name),
                OutcomeStatus::InsufficientSamples {
                    successful,
                    required,
                } => headline.benchmarks_failed.push((
                    outcome.name,
                    format!("insufficient samples: {successful} successful, {required} required"),
                )),
                OutcomeStatus::Unavailable { reason } => headline
                    .benchmarks_failed
                    .push((outcome.name, format!("unavailable: {reason}"))),
                OutcomeStatus::Failed { error } => headline
                    .benchmarks_failed
                    .push((outcome.name, error.clone())),
            }
            if !outcome.completed() {
                continue;
            }
            match &outcome.details {
                Some(BenchmarkDetails::KvCache(report)) => {
                    headline.kv_cache_acceleration = report.acceleration;
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

fn number(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.decimals$}"))
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
            OutcomeStatus::Unavailable { .. } => "unavailable".to_string(),
            OutcomeStatus::Failed { .. } => "failed".to_string(),
        };
        let key = match (&outcome.details, &outcome.status) {
            (_, OutcomeStatus::Unavailable { reason }) => reason.clone(),
            (_, OutcomeStatus::Failed { error }) => error.clone(),
            (Some(BenchmarkDetails::KvCache(r)), _) => format!(
                "accel x{} [{}, {}] miss {} ms hit {} ms, server hits: {}",
                number(r.acceleration.map(|e| e.median), 2),
                number(r.acceleration.map(|e| e.ci95_low), 2),
                number(r.acceleration.map(|e| e.ci95_high), 2),
                number(r.ttft_miss_ms, 1),
                number(r.ttft_hit_ms, 1),
                r.server_confirms_hits
                    .map_or("unknown", |c| if c { "yes" } else { "no" })
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
    out
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot create the output directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serialise {what} to JSON")]
    Serialize {
        what: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Writes `bytes` to `path` atomically ([`grid_sys::write_atomic`]: a
/// reader sees the old file or the new one, never half of it).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    grid_sys::write_atomic(path, bytes).map_err(|source| WriteError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes the report files into `out_dir`: `battery.json` (the whole
/// report), one `<benchmark>.json` summary per benchmark, and
/// `records.jsonl` with every request record.
pub fn write_outputs(
    out_dir: &Path,
    report: &BatteryReport,
    records: &[RequestRecord],
) -> Result<(), WriteError> {
    std::fs::create_dir_all(out_dir).map_err(|source| WriteError::CreateDir {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let to_json = |what: &str, value: &dyn erased::Serializable| {
        value
            .to_pretty_json()
            .map_err(|source| WriteError::Serialize {
                what: what.to_string(),
                source,
            })
    };
    for outcome in &report.benchmarks {
        let bytes = to_json(outcome.name.as_str(), outcome)?;
        write_atomic(
            &out_dir.join(format!("{}.json", outcome.name.as_str())),
            &bytes,
        )?;
    }
    let mut lines = Vec::new();
    for record in records {
        serde_json::to_writer(&mut lines, record).map_err(|source| WriteError::Serialize {
            what: "a request record".into(),
            source,
        })?;
        lines.push(b'\n');
    }
    write_atomic(&out_dir.join("records.jsonl"), &lines)?;
    let bytes = to_json("the battery report", report)?;
    write_atomic(&out_dir.join("battery.json"), &bytes)
}

mod erased {
    /// Object-safe pretty JSON, so one closure serialises any report part.
    pub trait Serializable {
        fn to_pretty_json(&self) -> Result<Vec<u8>, serde_json::Error>;
    }
    impl<T: serde::Serialize> Serializable for T {
        fn to_pretty_json(&self) -> Result<Vec<u8>, serde_json::Error> {
            serde_json::to_vec_pretty(self)
        }
    }
}
