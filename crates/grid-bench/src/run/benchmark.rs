//! One benchmark inside a battery run: its records counted as they pass,
//! `/metrics` scraped around it, its wall-clock bound, and its outcome.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::BatteryError;
use crate::benchmarks::{self, Cancelled, Context};
use crate::client::{Client, RequestRecord};
use crate::config::{BatteryConfig, BenchmarkName};
use crate::metrics::{MetricsDelta, MetricsSnapshot};
use crate::noise;
use crate::progress::BatteryProgress;
use crate::report::{BenchmarkDetails, BenchmarkOutcome, FailureTally, OutcomeStatus};

/// What every benchmark of one run shares.
pub(super) struct Shared<'a> {
    pub client: &'a Client,
    pub config: &'a BatteryConfig,
    pub cancel: &'a CancellationToken,
    pub seed: u64,
    pub run_nonce: &'a str,
    pub records: &'a mpsc::UnboundedSender<RequestRecord>,
    pub progress: Option<Arc<dyn BatteryProgress>>,
}

/// Why a benchmark gave no outcome.
pub(super) enum Stopped {
    Cancelled,
    /// A task of the battery was lost (see [`BatteryError::TaskLost`]).
    Lost(BatteryError),
}

/// What the record counter saw of one benchmark.
#[derive(Default)]
struct Counted {
    total: u64,
    failures: FailureTally,
    without_token_counts: u64,
    /// Successful requests with a TTFT, and their sum: the client's mean
    /// for the noise guard.
    ttft_count: u64,
    ttft_sum_ms: f64,
}

pub(super) async fn run_one(
    shared: &Shared<'_>,
    name: BenchmarkName,
) -> Result<BenchmarkOutcome, Stopped> {
    let started = Instant::now();
    let before = scrape(shared.client).await;
    // Collect this benchmark's records through a forwarding sink, so the
    // outcome can count failures without re-reading the global list.
    let (sender, mut receiver) = mpsc::unbounded_channel::<RequestRecord>();
    let global = shared.records.clone();
    let counter = tokio::spawn(async move {
        let mut counted = Counted::default();
        while let Some(record) = receiver.recv().await {
            counted.total += 1;
            if let Some(failure) = &record.failure {
                counted.failures.add(failure);
            }
            if record.lacks_token_counts() {
                counted.without_token_counts += 1;
            }
            if let Some(ttft) = record.ttft_ms.filter(|_| record.succeeded()) {
                counted.ttft_count += 1;
                counted.ttft_sum_ms += ttft;
            }
            // The aggregator outlives every benchmark; it is gone only when
            // the run itself is being torn down.
            let _ = global.send(record);
        }
        counted
    });
    let bound = shared.config.benchmark_timeout();
    let timed_out = Arc::new(AtomicBool::new(false));
    let context = Context {
        client: shared.client.clone(),
        config: shared.config,
        cancel: shared.cancel.clone(),
        seed: shared.seed,
        run_nonce: shared.run_nonce.to_string(),
        records: sender,
        benchmark: name,
        progress: shared.progress.clone(),
        deadline: started.checked_add(bound),
        timed_out: timed_out.clone(),
    };
    let cancel = shared.cancel.clone();
    let result = tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(Cancelled),
        result = run_details(&context, name) => result,
    };
    drop(context);
    let counted = super::join(counter, "record counter")
        .await
        .map_err(Stopped::Lost)?;
    let details = result?;
    let after = scrape(shared.client).await;
    let mut errors = Vec::new();
    let before = before
        .map_err(|error| errors.push(format!("before: {error}")))
        .ok();
    let after = after
        .map_err(|error| errors.push(format!("after: {error}")))
        .ok();
    let mut delta = MetricsDelta::between(before, after);
    delta.scrape_errors = errors;
    let (details, status) = match details {
        Ran::Measured {
            mut details,
            successful,
            required,
        } => {
            match details.as_mut() {
                BenchmarkDetails::KvCache(report) => report.cross_check(Some(&delta)),
                BenchmarkDetails::KvCachePressure(report) => report.cross_check(&delta),
                _ => {}
            }
            let status = if timed_out.load(Ordering::Relaxed) {
                OutcomeStatus::TimedOut {
                    after_s: bound.as_secs_f64(),
                    successful,
                    required,
                }
            } else if successful >= required {
                OutcomeStatus::Completed
            } else {
                OutcomeStatus::InsufficientSamples {
                    successful,
                    required,
                }
            };
            (Some(*details), status)
        }
        Ran::Failed { error } => (None, OutcomeStatus::Failed { error }),
    };
    let noise_guard = if noise::guarded(name) {
        noise::check(
            &shared.config.noise_guard,
            (counted.ttft_count > 0).then(|| counted.ttft_sum_ms / counted.ttft_count as f64),
            counted.ttft_count,
            delta.server_mean_ttft_ms,
        )
    } else {
        None
    };
    let failure_reasons = counted.failures.counts();
    Ok(BenchmarkOutcome {
        name,
        status,
        duration_s: started.elapsed().as_secs_f64(),
        requests_total: counted.total,
        requests_failed: failure_reasons.values().sum(),
        failure_reasons,
        top_failures: counted.failures.top(),
        requests_without_token_counts: counted.without_token_counts,
        server_metrics: Some(delta),
        disturbed: noise_guard.as_ref().is_some_and(|check| check.disturbed),
        noise_guard,
        details,
    })
}

/// What a benchmark's own code returned.
enum Ran {
    /// Its details, with the successful samples it got and the number it
    /// needs for its numbers to count.
    Measured {
        details: Box<BenchmarkDetails>,
        successful: usize,
        required: usize,
    },
    /// It could not run at all (a tool definition it cannot check).
    Failed { error: String },
}

fn measured(details: BenchmarkDetails, (successful, required): (usize, usize)) -> Ran {
    Ran::Measured {
        details: Box::new(details),
        successful,
        required,
    }
}

async fn run_details(context: &Context<'_>, name: BenchmarkName) -> Result<Ran, Cancelled> {
    Ok(match name {
        BenchmarkName::KvCache => {
            let (report, good, required) = benchmarks::kv_cache::run(context).await?;
            measured(BenchmarkDetails::KvCache(report), (good, required))
        }
        BenchmarkName::KvCachePressure => {
            let (report, good, required) = benchmarks::kv_cache_pressure::run(context).await?;
            measured(
                BenchmarkDetails::KvCachePressure(Box::new(report)),
                (good, required),
            )
        }
        BenchmarkName::LongConversation => {
            let (report, good, required) = benchmarks::long_conversation::run(context).await?;
            measured(
                BenchmarkDetails::LongConversation(Box::new(report)),
                (good, required),
            )
        }
        BenchmarkName::Reasoning => {
            let (report, good, required) = benchmarks::reasoning::run(context).await?;
            measured(BenchmarkDetails::Reasoning(report), (good, required))
        }
        BenchmarkName::ToolCalling => match benchmarks::tool_calling::run(context).await? {
            Ok((report, good, required)) => {
                measured(BenchmarkDetails::ToolCalling(report), (good, required))
            }
            Err(error) => Ran::Failed {
                error: error.to_string(),
            },
        },
        BenchmarkName::Stability => {
            let (report, good, required) = benchmarks::stability::run(context).await?;
            measured(
                BenchmarkDetails::Stability(Box::new(report)),
                (good, required),
            )
        }
        BenchmarkName::Concurrency => {
            let (report, good, required) = benchmarks::concurrency::run(context).await?;
            measured(BenchmarkDetails::Concurrency(report), (good, required))
        }
        // gpu_profile never comes here: it samples beside the concurrency
        // benchmark or alone (see `super::gpu`).
        BenchmarkName::GpuProfile => Ran::Failed {
            error: "gpu_profile is sampled beside the concurrency benchmark".into(),
        },
    })
}

pub(super) fn expected_requests(config: &BatteryConfig, name: BenchmarkName) -> u64 {
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
        BenchmarkName::KvCachePressure => {
            config.kv_cache_pressure.conversations * config.kv_cache_pressure.turns
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
    let text = client
        .scrape_metrics()
        .await
        .map_err(|error| crate::client::error_chain(&error))?;
    MetricsSnapshot::parse(&text).map_err(|error| error.to_string())
}
