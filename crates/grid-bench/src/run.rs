//! `run_battery`: runs the selected benchmarks in order against one
//! endpoint, scraping `/metrics` around each, and assembles the report.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::benchmarks::{self, Cancelled, Context};
use crate::client::{Client, ClientConfig, ClientError, RequestRecord};
use crate::config::{BatteryConfig, BenchmarkName, ConfigError};
use crate::endpoint::Endpoint;
use crate::gpu::{GpuAlertThresholds, GpuProfile, sample_until};
use crate::metrics::{MetricsDelta, MetricsSnapshot};
use crate::progress::{BatteryEvent, BatteryProgress};
use crate::report::{
    BatteryReport, BenchmarkDetails, BenchmarkOutcome, EndpointInfo, Headline, OutcomeStatus,
    WriteError, write_outputs,
};

/// How to run the battery (not what to measure: that is [`BatteryConfig`]).
#[derive(Clone, Default)]
pub struct RunOptions {
    /// Run only these benchmarks (intersected with `config.enabled`).
    pub only: Option<Vec<BenchmarkName>>,
    /// Write `battery.json`, one JSON per benchmark and `records.jsonl` here.
    pub out_dir: Option<PathBuf>,
    /// Receives a [`BatteryEvent`] per benchmark start, request and end.
    pub progress: Option<Arc<dyn BatteryProgress>>,
    /// Firing it drops in-flight requests and makes `run_battery` return
    /// [`BatteryError::Cancelled`].
    pub cancel: CancellationToken,
    /// Seeds the bootstrap and the filler text. Prompts also carry a per-run
    /// nonce, so two runs with one seed never share cached prefixes.
    pub seed: u64,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("only", &self.only)
            .field("out_dir", &self.out_dir)
            .field("progress", &self.progress.as_ref().map(|_| "a sink"))
            .field("cancel", &self.cancel)
            .field("seed", &self.seed)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BatteryError {
    #[error("the battery was cancelled")]
    Cancelled,
    #[error(transparent)]
    InvalidConfig(#[from] ConfigError),
    #[error("cannot prepare the client for {url}")]
    Client {
        url: String,
        #[source]
        source: ClientError,
    },
    #[error("cannot write the battery results")]
    Output(#[from] WriteError),
    #[error("cannot start the battery's own thread and runtime")]
    Runtime {
        #[source]
        source: std::io::Error,
    },
    #[error("the battery's thread stopped without a result (it panicked)")]
    ThreadLost,
}

/// The result of running the battery, with the raw records beside it.
pub struct BatteryRun {
    pub report: BatteryReport,
    pub records: Vec<RequestRecord>,
}

/// Runs the battery on a dedicated OS thread with its own current-thread
/// runtime, and awaits its report from any runtime.
///
/// Why: the measuring client then shares no scheduler with the caller's
/// other work (copying container logs, Docker events, journal fsyncs), which
/// would otherwise delay the reads whose instants we record; and a
/// single-thread runtime costs about half the client CPU per request of a
/// two-worker one (`cargo bench -p grid-bench --bench client`). Cancelling
/// `options.cancel` stops it as [`run_battery`] does.
pub async fn run_battery_isolated(
    endpoint: Endpoint,
    config: BatteryConfig,
    options: RunOptions,
) -> Result<BatteryReport, BatteryError> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("grid-bench".to_string())
        .spawn(move || {
            let result = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(run_battery(&endpoint, &config, options)),
                Err(source) => Err(BatteryError::Runtime { source }),
            };
            // The receiver is gone only when the caller stopped waiting.
            let _ = sender.send(result);
        })
        .map_err(|source| BatteryError::Runtime { source })?;
    receiver.await.unwrap_or(Err(BatteryError::ThreadLost))
}

/// Runs the battery and returns its report (see [`run_battery_with_records`]
/// for the raw records too).
pub async fn run_battery(
    endpoint: &Endpoint,
    config: &BatteryConfig,
    options: RunOptions,
) -> Result<BatteryReport, BatteryError> {
    run_battery_with_records(endpoint, config, options)
        .await
        .map(|run| run.report)
}

pub async fn run_battery_with_records(
    endpoint: &Endpoint,
    config: &BatteryConfig,
    options: RunOptions,
) -> Result<BatteryRun, BatteryError> {
    config.validate()?;
    let selected: Vec<BenchmarkName> = BenchmarkName::ALL
        .into_iter()
        .filter(|name| config.enabled.contains(name))
        .filter(|name| options.only.as_ref().is_none_or(|only| only.contains(name)))
        .collect();
    let epoch = Instant::now();
    let started_unix_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let client = Client::new(
        endpoint,
        ClientConfig {
            request_timeout: Duration::from_secs_f64(config.request_timeout_s),
            epoch,
            keep_text: true,
        },
    )
    .map_err(|source| BatteryError::Client {
        url: endpoint.root().to_string(),
        source,
    })?;
    let run_nonce = format!(
        "{:x}{:x}{:x}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
        std::process::id(),
        options.seed
    );
    // One aggregator collects every record of the run.
    let (record_sender, mut record_receiver) = mpsc::unbounded_channel::<RequestRecord>();
    let aggregator = tokio::spawn(async move {
        let mut records = Vec::new();
        while let Some(record) = record_receiver.recv().await {
            records.push(record);
        }
        records
    });

    let mut outcomes = Vec::new();
    let mut gpu_profile_pending = selected.contains(&BenchmarkName::GpuProfile);
    for &name in &selected {
        if name == BenchmarkName::GpuProfile {
            continue;
        }
        if options.cancel.is_cancelled() {
            return Err(BatteryError::Cancelled);
        }
        let progress = options.progress.clone();
        if let Some(progress) = &progress {
            progress.event(&BatteryEvent::BenchmarkStarted {
                benchmark: name,
                expected_requests: expected_requests(config, name),
            });
        }
        let context = Context {
            client: client.clone(),
            config,
            cancel: options.cancel.clone(),
            seed: options.seed,
            run_nonce: run_nonce.clone(),
            records: record_sender.clone(),
            benchmark: name,
            progress: progress.clone(),
        };
        // gpu_profile samples while the concurrency benchmark runs.
        let sampler = (name == BenchmarkName::Concurrency && gpu_profile_pending).then(|| {
            gpu_profile_pending = false;
            start_gpu_sampler(config)
        });
        let outcome = run_one(&context, name).await;
        let gpu = match sampler {
            Some((stop, handle)) => {
                stop.cancel();
                Some(
                    handle
                        .await
                        .unwrap_or_else(|error| GpuProfile::Unavailable {
                            reason: format!("the nvidia-smi sampler stopped: {error}"),
                        }),
                )
            }
            None => None,
        };
        if let Some(progress) = &progress {
            progress.event(&match &outcome {
                Ok(outcome) => BatteryEvent::BenchmarkFinished {
                    benchmark: name,
                    requests_total: outcome.requests_total,
                    requests_failed: outcome.requests_failed,
                    status: outcome.status.clone(),
                },
                Err(Cancelled) => BatteryEvent::BenchmarkCancelled { benchmark: name },
            });
        }
        let outcome = outcome.map_err(|Cancelled| BatteryError::Cancelled)?;
        outcomes.push(outcome);
        if let Some(profile) = gpu {
            outcomes.push(gpu_outcome(profile, config));
        }
    }
    if gpu_profile_pending {
        // No concurrency benchmark to sample during: sample on its own.
        let (stop, handle) = start_gpu_sampler(config);
        tokio::select! {
            _ = options.cancel.cancelled() => {
                stop.cancel();
                return Err(BatteryError::Cancelled);
            }
            _ = tokio::time::sleep(Duration::from_secs_f64(config.gpu_profile.standalone_duration_s)) => {}
        }
        stop.cancel();
        let profile = handle
            .await
            .unwrap_or_else(|error| GpuProfile::Unavailable {
                reason: format!("the nvidia-smi sampler stopped: {error}"),
            });
        outcomes.push(gpu_outcome(profile, config));
    }
    drop(record_sender);
    let records = aggregator.await.unwrap_or_default();
    let report = BatteryReport {
        endpoint: EndpointInfo {
            base_url: endpoint.root().to_string(),
            model: endpoint.model.clone(),
        },
        seed: options.seed,
        started_unix_s,
        duration_s: epoch.elapsed().as_secs_f64(),
        config: config.clone(),
        headline: Headline::from_outcomes(&outcomes),
        benchmarks: outcomes,
    };
    if let Some(out_dir) = &options.out_dir {
        write_outputs(out_dir, &report, &records)?;
    }
    Ok(BatteryRun { report, records })
}

fn start_gpu_sampler(
    config: &BatteryConfig,
) -> (CancellationToken, tokio::task::JoinHandle<GpuProfile>) {
    let stop = CancellationToken::new();
    let gpu = &config.gpu_profile;
    let handle = tokio::spawn(sample_until(
        gpu.command.clone(),
        Duration::from_secs_f64(gpu.interval_s),
        GpuAlertThresholds {
            memory_fraction: gpu.memory_alert_fraction,
            temperature_c: gpu.temperature_alert_c,
            min_mean_utilization_percent: gpu.low_utilization_alert_percent,
        },
        stop.clone(),
    ));
    (stop, handle)
}

fn gpu_outcome(profile: GpuProfile, config: &BatteryConfig) -> BenchmarkOutcome {
    let status = match &profile {
        GpuProfile::Unavailable { reason } => OutcomeStatus::Unavailable {
            reason: reason.clone(),
        },
        GpuProfile::Sampled { .. } => OutcomeStatus::Completed,
    };
    let duration_s = match &profile {
        GpuProfile::Sampled { sample_rounds, .. } => {
            *sample_rounds as f64 * config.gpu_profile.interval_s
        }
        GpuProfile::Unavailable { .. } => 0.0,
    };
    BenchmarkOutcome {
        name: BenchmarkName::GpuProfile,
        status,
        duration_s,
        requests_total: 0,
        requests_failed: 0,
        failure_reasons: BTreeMap::new(),
        server_metrics: None,
        details: Some(BenchmarkDetails::GpuProfile(profile)),
    }
}

fn expected_requests(config: &BatteryConfig, name: BenchmarkName) -> u64 {
    let count = match name {
        BenchmarkName::KvCache => {
            config.kv_cache.iterations
                * (config.kv_cache.turns
                    + if config.kv_cache.equal_length_variant {
                        2
                    } else {
                        0
                    })
        }
        BenchmarkName::LongConversation => {
            config.long_conversation.iterations * config.long_conversation.turns
        }
        BenchmarkName::Reasoning => 3 * config.reasoning.repetitions,
        BenchmarkName::ToolCalling => 5 * config.tool_calling.repetitions,
        BenchmarkName::Stability => config.stability.requests,
        BenchmarkName::Concurrency => {
            config.concurrency.max_requests_per_level * config.concurrency.levels.len()
        }
        BenchmarkName::GpuProfile => 0,
    };
    count as u64
}

async fn scrape(client: &Client) -> Result<MetricsSnapshot, String> {
    let text = client.scrape_metrics().await.map_err(|error| {
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        message
    })?;
    MetricsSnapshot::parse(&text).map_err(|error| error.to_string())
}

async fn run_one(
    context: &Context<'_>,
    name: BenchmarkName,
) -> Result<BenchmarkOutcome, Cancelled> {
    let started = Instant::now();
    let before = scrape(&context.client).await;
    // Collect this benchmark's records through a forwarding sink, so the
    // outcome can count failures without re-reading the global list.
    let (sender, mut receiver) = mpsc::unbounded_channel::<RequestRecord>();
    let global = context.records.clone();
    let forwarder = tokio::spawn(async move {
        let mut total = 0u64;
        let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
        while let Some(record) = receiver.recv().await {
            total += 1;
            if let Some(failure) = &record.failure {
                *reasons
                    .entry(failure.kind.as_str().to_string())
                    .or_insert(0) += 1;
            }
            let _ = global.send(record);
        }
        (total, reasons)
    });
    let local = Context {
        client: context.client.clone(),
        config: context.config,
        cancel: context.cancel.clone(),
        seed: context.seed,
        run_nonce: context.run_nonce.clone(),
        records: sender,
        benchmark: name,
        progress: context.progress.clone(),
    };
    let cancel = context.cancel.clone();
    let result = tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(Cancelled),
        result = run_details(&local, name) => result,
    };
    drop(local);
    let (requests_total, failure_reasons) = forwarder.await.unwrap_or_default();
    let (details, successful, required) = result?;
    let after = scrape(&context.client).await;
    let mut errors = Vec::new();
    let before = before
        .map_err(|error| errors.push(format!("before: {error}")))
        .ok();
    let after = after
        .map_err(|error| errors.push(format!("after: {error}")))
        .ok();
    let mut delta = MetricsDelta::between(before, after);
    delta.scrape_errors = errors;
    let mut details = details;
    if let BenchmarkDetails::KvCache(report) = &mut details {
        report.cross_check(Some(&delta));
    }
    let status = if successful >= required {
        OutcomeStatus::Completed
    } else {
        OutcomeStatus::InsufficientSamples {
            successful,
            required,
        }
    };
    let requests_failed = failure_reasons.values().sum();
    Ok(BenchmarkOutcome {
        name,
        status,
        duration_s: started.elapsed().as_secs_f64(),
        requests_total,
        requests_failed,
        failure_reasons,
        server_metrics: Some(delta),
        details: Some(details),
    })
}

async fn run_details(
    context: &Context<'_>,
    name: BenchmarkName,
) -> Result<(BenchmarkDetails, usize, usize), Cancelled> {
    Ok(match name {
        BenchmarkName::KvCache => {
            let (report, good, required) = benchmarks::kv_cache::run(context).await?;
            (BenchmarkDetails::KvCache(report), good, required)
        }
        BenchmarkName::LongConversation => {
            let (report, good, required) = benchmarks::long_conversation::run(context).await?;
            (
                BenchmarkDetails::LongConversation(Box::new(report)),
                good,
                required,
            )
        }
        BenchmarkName::Reasoning => {
            let (report, good, required) = benchmarks::reasoning::run(context).await?;
            (BenchmarkDetails::Reasoning(report), good, required)
        }
        BenchmarkName::ToolCalling => {
            let (report, good, required) = benchmarks::tool_calling::run(context).await?;
            (BenchmarkDetails::ToolCalling(report), good, required)
        }
        BenchmarkName::Stability => {
            let (report, good, required) = benchmarks::stability::run(context).await?;
            (
                BenchmarkDetails::Stability(Box::new(report)),
                good,
                required,
            )
        }
        BenchmarkName::Concurrency => {
            let (report, good, required) = benchmarks::concurrency::run(context).await?;
            (BenchmarkDetails::Concurrency(report), good, required)
        }
        BenchmarkName::GpuProfile => unreachable_gpu(),
    })
}

/// gpu_profile never goes through `run_details`: it samples beside the
/// concurrency benchmark or alone. Reaching here is a logic error, made
/// into an empty result rather than a panic.
fn unreachable_gpu() -> (BenchmarkDetails, usize, usize) {
    (
        BenchmarkDetails::GpuProfile(GpuProfile::Unavailable {
            reason: "gpu_profile is sampled beside the concurrency benchmark".into(),
        }),
        0,
        1,
    )
}
