//! The bridge to the battery: the plan's battery section as a
//! [`grid_bench::BatteryConfig`], the battery run with its events forwarded
//! to the search's [`Progress`], and a report's headline copied into a
//! [`Measurement`] for the result file.

use std::collections::BTreeMap;
use std::sync::Arc;

use grid_bench::{
    BatteryConfig, BatteryError, BatteryEvent, BatteryProgress, BatteryReport, BenchmarkDetails,
    BenchmarkName, Endpoint, OutcomeStatus, RunOptions,
};
use tokio::sync::mpsc;

use crate::SearchError;
use crate::progress::{Progress, SearchEvent};
use crate::store::{Disturbance, Measurement, PressureMeasurement};

/// Deserialise the plan's `battery` object; errors name the path as
/// `battery.<field>`.
pub fn battery_config(value: &serde_json::Value) -> Result<BatteryConfig, SearchError> {
    let config: BatteryConfig = serde_path_to_error::deserialize(value.clone()).map_err(|err| {
        let inner = err.path().to_string();
        SearchError::BatteryParse {
            path: if inner == "." || inner.is_empty() {
                "battery".to_string()
            } else {
                format!("battery.{inner}")
            },
            source: err.into_inner(),
        }
    })?;
    config
        .validate()
        .map_err(|source| SearchError::BatteryInvalid {
            path: format!("battery.{}", source.field),
            source,
        })?;
    Ok(config)
}

/// The numbers of one battery run that the ranking reads.
pub fn measurement(report: &BatteryReport) -> Measurement {
    let headline = &report.headline;
    let mut failed = BTreeMap::new();
    let mut completed = Vec::new();
    for outcome in &report.benchmarks {
        match &outcome.status {
            OutcomeStatus::Completed => completed.push(outcome.name.as_str().to_string()),
            // No nvidia-smi (or another missing tool) is not the config's
            // fault: it is recorded, and not counted against the gate.
            OutcomeStatus::Unavailable { .. } => {}
            OutcomeStatus::InsufficientSamples {
                successful,
                required,
            } => {
                failed.insert(
                    outcome.name.as_str().to_string(),
                    format!("insufficient samples: {successful} of {required}"),
                );
            }
            OutcomeStatus::Failed { error } => {
                failed.insert(outcome.name.as_str().to_string(), error.clone());
            }
            OutcomeStatus::TimedOut { .. } => {
                failed.insert(
                    outcome.name.as_str().to_string(),
                    outcome.failure_summary().unwrap_or_default(),
                );
            }
        }
    }
    let samples: Vec<f64> = report
        .benchmarks
        .iter()
        .filter_map(|o| match &o.details {
            Some(BenchmarkDetails::KvCache(kv)) => Some(kv),
            _ => None,
        })
        .flat_map(|kv| kv.iterations.iter().filter_map(|i| i.acceleration))
        .filter(|v| v.is_finite())
        .collect();
    Measurement {
        kv_cache_acceleration: headline.kv_cache_acceleration,
        ttft_miss_ms: headline.ttft_miss_ms,
        ttft_hit_ms: headline.ttft_hit_ms,
        cache_confirmed_by_server: headline.cache_confirmed_by_server,
        output_throughput: headline.output_throughput,
        mean_itl_ms: headline.mean_itl_ms,
        mean_e2e_ms: headline.mean_e2e_ms,
        // With no request at all the rate is unknown, not zero.
        request_error_rate: (headline.requests_total > 0).then_some(headline.request_error_rate),
        stability_degradation: headline.stability_degradation,
        tool_call_success_rate: headline.tool_call_success_rate,
        vram_peak_mib: headline.vram_peak_mib,
        benchmarks_completed: completed,
        benchmarks_failed: failed,
        acceleration_samples: samples,
        bootstrap_resamples: Some(report.config.bootstrap_resamples),
        kv_cache_pressure: pressure(report),
        disturbed: headline
            .disturbed
            .iter()
            .map(|(name, check)| Disturbance {
                benchmark: name.as_str().to_string(),
                client_mean_ttft_ms: check.client_mean_ttft_ms,
                server_mean_ttft_ms: check.server_mean_ttft_ms,
            })
            .collect(),
    }
}

/// The pressured workload's figures; `None` when it did not run. A run that
/// gave no number keeps what the server said (capacity, preemptions), with
/// the acceleration absent, never zero.
fn pressure(report: &BatteryReport) -> Option<PressureMeasurement> {
    let outcome = report.outcome(BenchmarkName::KvCachePressure)?;
    let Some(BenchmarkDetails::KvCachePressure(details)) = &outcome.details else {
        return None;
    };
    let headline = &report.headline;
    let completed = outcome.completed();
    Some(PressureMeasurement {
        acceleration: headline.pressure_acceleration.filter(|_| completed),
        acceleration_samples: if completed {
            headline.pressure_acceleration_samples.clone()
        } else {
            Vec::new()
        },
        warm_hit_rate: details.warm_hit_rate,
        warm_ttft_ms: details.warm_ttft_ms,
        cold_ttft_ms: details.cold_ttft_ms,
        preemptions: details.preemptions,
        kv_capacity_tokens: details.kv_capacity_tokens.or(headline.kv_capacity_tokens),
        cache_confirmed_by_server: details.server_confirms_hits,
    })
}

/// Runs the battery on its own thread ([`grid_bench::run_battery_isolated`])
/// and forwards its events to `progress` as [`SearchEvent::Battery`].
///
/// The events cross a channel and reach `progress` on this task, so the
/// battery's thread only sends and never waits on the terminal or a lock
/// of the caller's.
pub async fn run_battery_reporting(
    progress: &dyn Progress,
    config_name: &str,
    endpoint: Endpoint,
    battery: BatteryConfig,
    mut options: RunOptions,
) -> Result<BatteryReport, BatteryError> {
    let (sender, mut receiver) = mpsc::unbounded_channel();
    options.progress = Some(Arc::new(ChannelSink(sender)));
    let forward = |event: BatteryEvent| {
        progress.event(&SearchEvent::Battery {
            config: config_name.to_string(),
            event,
        })
    };
    let run = grid_bench::run_battery_isolated(endpoint, battery, options);
    tokio::pin!(run);
    let result = loop {
        tokio::select! {
            result = &mut run => break result,
            Some(event) = receiver.recv() => forward(event),
        }
    };
    // Events sent just before the battery returned.
    while let Ok(event) = receiver.try_recv() {
        forward(event);
    }
    result
}

/// The battery's side of the channel.
struct ChannelSink(mpsc::UnboundedSender<BatteryEvent>);

impl BatteryProgress for ChannelSink {
    fn event(&self, event: &BatteryEvent) {
        // Closed only once the search stopped listening.
        let _ = self.0.send(event.clone());
    }
}
