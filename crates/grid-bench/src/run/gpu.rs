//! gpu_profile inside a battery run: `nvidia-smi` sampled beside the
//! concurrency benchmark (or alone), and its outcome.

use std::collections::BTreeMap;

use tokio_util::sync::CancellationToken;

use crate::config::{BatteryConfig, BenchmarkName, duration};
use crate::gpu::{GpuAlertThresholds, GpuProfile, sample_until};
use crate::report::{BenchmarkDetails, BenchmarkOutcome, OutcomeStatus};

/// A running `nvidia-smi` sampler.
pub(super) struct Sampler {
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<GpuProfile>,
}

impl Sampler {
    /// Stops sampling without waiting for the profile.
    pub(super) fn cancel(&self) {
        self.stop.cancel();
    }

    /// Stops sampling and returns what it measured.
    pub(super) async fn stop(self) -> GpuProfile {
        self.stop.cancel();
        self.handle
            .await
            .unwrap_or_else(|error| GpuProfile::Unavailable {
                reason: format!("the nvidia-smi sampler stopped: {error}"),
            })
    }
}

pub(super) fn start_sampler(config: &BatteryConfig) -> Sampler {
    let stop = CancellationToken::new();
    let gpu = &config.gpu_profile;
    let handle = tokio::spawn(sample_until(
        gpu.command.clone(),
        duration(gpu.interval_s),
        GpuAlertThresholds {
            memory_fraction: gpu.memory_alert_fraction,
            temperature_c: gpu.temperature_alert_c,
            min_mean_utilization_percent: gpu.low_utilization_alert_percent,
        },
        stop.clone(),
    ));
    Sampler { stop, handle }
}

pub(super) fn outcome(profile: GpuProfile, config: &BatteryConfig) -> BenchmarkOutcome {
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
        top_failures: Vec::new(),
        requests_without_token_counts: 0,
        server_metrics: None,
        noise_guard: None,
        disturbed: false,
        details: Some(BenchmarkDetails::GpuProfile(profile)),
    }
}
