//! `run_battery`: runs the selected benchmarks in order against one
//! endpoint, scraping `/metrics` around each, and assembles the report.

mod benchmark;
mod error;
mod gpu;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::benchmarks::Cancelled;
use crate::client::{Client, ClientConfig, RequestRecord};
use crate::config::{BatteryConfig, BenchmarkName};
use crate::endpoint::Endpoint;
use crate::progress::{BatteryEvent, BatteryProgress};
use crate::report::{BatteryReport, EndpointInfo, Headline, write_outputs};

pub use error::{BatteryError, BatteryErrorKind};

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

/// The client the battery measures with, from the config's bounds.
pub fn battery_client(
    endpoint: &Endpoint,
    config: &BatteryConfig,
    epoch: Instant,
) -> Result<Client, BatteryError> {
    Client::new(
        endpoint,
        ClientConfig {
            request_timeout: config.request_timeout(),
            idle_timeout: config.idle_timeout(),
            connect_timeout: config.connect_timeout(),
            max_event_bytes: config.max_event_bytes,
            epoch,
            keep_text: true,
        },
    )
    .map_err(|source| BatteryError::Client {
        url: endpoint.root().to_string(),
        source,
    })
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
    let client = battery_client(endpoint, config, epoch)?;
    let run_nonce = format!(
        "{:x}{:x}{:x}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
        std::process::id(),
        options.seed
    );
    // One aggregator collects every record of the run.
    let (record_sender, record_receiver) = mpsc::unbounded_channel::<RequestRecord>();
    let aggregator = tokio::spawn(collect(record_receiver));

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
                expected_requests: benchmark::expected_requests(config, name),
            });
        }
        let shared = benchmark::Shared {
            client: &client,
            config,
            cancel: &options.cancel,
            seed: options.seed,
            run_nonce: &run_nonce,
            records: &record_sender,
            progress: progress.clone(),
        };
        // gpu_profile samples while the concurrency benchmark runs.
        let sampler = (name == BenchmarkName::Concurrency && gpu_profile_pending).then(|| {
            gpu_profile_pending = false;
            gpu::start_sampler(config)
        });
        let outcome = benchmark::run_one(&shared, name).await;
        let gpu = match sampler {
            Some(sampler) => Some(sampler.stop().await),
            None => None,
        };
        if let Some(progress) = &progress {
            match &outcome {
                Ok(outcome) => progress.event(&BatteryEvent::BenchmarkFinished {
                    benchmark: name,
                    requests_total: outcome.requests_total,
                    requests_failed: outcome.requests_failed,
                    status: outcome.status.clone(),
                    top_failures: outcome.top_failures.clone(),
                }),
                Err(benchmark::Stopped::Cancelled) => {
                    progress.event(&BatteryEvent::BenchmarkCancelled { benchmark: name })
                }
                Err(benchmark::Stopped::Lost(_)) => {}
            }
        }
        let outcome = outcome.map_err(|stopped| match stopped {
            benchmark::Stopped::Cancelled => BatteryError::Cancelled,
            benchmark::Stopped::Lost(error) => error,
        })?;
        outcomes.push(outcome);
        if let Some(profile) = gpu {
            outcomes.push(gpu::outcome(profile, config));
        }
    }
    if gpu_profile_pending {
        // No concurrency benchmark to sample during: sample on its own.
        let sampler = gpu::start_sampler(config);
        tokio::select! {
            _ = options.cancel.cancelled() => {
                sampler.cancel();
                return Err(BatteryError::Cancelled);
            }
            _ = tokio::time::sleep(crate::config::duration(config.gpu_profile.standalone_duration_s)) => {}
        }
        outcomes.push(gpu::outcome(sampler.stop().await, config));
    }
    drop(record_sender);
    let records = join(aggregator, "record aggregator").await?;
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

/// The run's aggregator: every record, in arrival order.
async fn collect(mut receiver: mpsc::UnboundedReceiver<RequestRecord>) -> Vec<RequestRecord> {
    let mut records = Vec::new();
    while let Some(record) = receiver.recv().await {
        records.push(record);
    }
    records
}

/// Awaits a task that hands over records; a panicked one is an error
/// naming it, never an empty result.
async fn join<T>(
    handle: tokio::task::JoinHandle<T>,
    task: &'static str,
) -> Result<T, BatteryError> {
    handle
        .await
        .map_err(|source| BatteryError::TaskLost { task, source })
}

impl From<Cancelled> for benchmark::Stopped {
    fn from(_: Cancelled) -> Self {
        benchmark::Stopped::Cancelled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicked_aggregator_is_an_error_naming_it_not_zero_records() {
        let handle = tokio::spawn(async {
            if std::hint::black_box(true) {
                panic!("the aggregator broke");
            }
            vec![0u8]
        });
        let error = join(handle, "record aggregator")
            .await
            .expect_err("a lost task is an error");
        assert!(
            matches!(
                error,
                BatteryError::TaskLost {
                    task: "record aggregator",
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "the battery's record aggregator stopped without handing over its records (it panicked)"
        );
        assert_eq!(error.kind(), BatteryErrorKind::Internal);
    }
}
