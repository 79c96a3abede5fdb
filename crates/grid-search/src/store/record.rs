//! The result file of one config (`results/<id>.json`) and its parts.

use std::collections::BTreeMap;

use grid_core::Estimate;
use grid_plan::PlannedConfig;
use serde::{Deserialize, Serialize};

/// A failure of a config: a launch attempt, a server that died, a deadline,
/// or a cause outside the config that stopped the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// The diagnosed class, snake case (`gpu_out_of_memory`, `exited_with_code`).
    pub class: String,
    /// Human name of the class (`gpu out of memory`, `exited with code 1`).
    pub class_name: String,
    /// Readable text; the typed cause went to `run.log` whole.
    pub message: String,
    /// Last lines of the (redacted) server log.
    #[serde(default)]
    pub log_tail: Vec<String>,
    /// Whether retrying the same config could succeed.
    pub transient: bool,
    /// True when the config itself cannot run (memory, arguments): a gate
    /// rejection. False when the environment failed (image, daemon, secret).
    pub config_fault: bool,
}

/// The classes of the two deadlines: not the config's fault, yet a final
/// result (the plan's own limits cut the work short).
pub const DEADLINE_CLASSES: [&str; 2] = ["config_deadline", "search_deadline"];

/// One repeat's headline numbers, copied from the battery's headline so a
/// report can be re-rendered from result files alone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub kv_cache_acceleration: Option<Estimate>,
    pub ttft_miss_ms: Option<f64>,
    pub ttft_hit_ms: Option<f64>,
    pub cache_confirmed_by_server: Option<bool>,
    pub output_throughput: Option<f64>,
    pub mean_itl_ms: Option<f64>,
    pub mean_e2e_ms: Option<f64>,
    pub request_error_rate: Option<f64>,
    pub stability_degradation: Option<f64>,
    pub tool_call_success_rate: Option<f64>,
    pub vram_peak_mib: Option<f64>,
    #[serde(default)]
    pub benchmarks_completed: Vec<String>,
    /// Benchmark name → why it failed.
    #[serde(default)]
    pub benchmarks_failed: BTreeMap<String, String>,
    /// Per-iteration accelerations when the battery reports them, pooled
    /// across repeats for the interval.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acceleration_samples: Vec<f64>,
    /// The resamples the battery's bootstrap used, so the ranking pools
    /// repeats with the same count (results written before it was recorded
    /// read as [`grid_core::DEFAULT_RESAMPLES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_resamples: Option<usize>,
    /// The KV-cache benchmark under pressure (many concurrent conversations
    /// with long histories), when the plan's battery runs it. Absent in
    /// results written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_cache_pressure: Option<PressureMeasurement>,
    /// Benchmarks whose client-side TTFT exceeded the server's own by more
    /// than the noise guard allows: the host, not the server, shaped them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disturbed: Vec<Disturbance>,
}

/// The pressured KV-cache workload's figures for one repeat.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PressureMeasurement {
    /// Cold over warm TTFT (median with its interval), as for `kv_cache`.
    pub acceleration: Option<Estimate>,
    /// Per-sample accelerations, for pooling repeats (cluster bootstrap).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acceleration_samples: Vec<f64>,
    /// Share of warm-turn prompt tokens the server served from its cache.
    pub warm_hit_rate: Option<f64>,
    pub warm_ttft_ms: Option<f64>,
    pub cold_ttft_ms: Option<f64>,
    /// `vllm:num_preemptions_total` delta over the benchmark.
    pub preemptions: Option<u64>,
    /// The server's KV capacity in tokens (`vllm:cache_config_info`, or the
    /// startup log), so the reader sees which configs the workload spills.
    pub kv_capacity_tokens: Option<u64>,
    pub cache_confirmed_by_server: Option<bool>,
}

/// A benchmark whose client-side mean TTFT exceeded the server's own by
/// more than the guard's share: both figures, for the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disturbance {
    pub benchmark: String,
    pub client_mean_ttft_ms: f64,
    pub server_mean_ttft_ms: f64,
}

/// One repeat of a config: a server start and a full battery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepeatResult {
    pub repeat: u32,
    pub seed: u64,
    pub measurement: Measurement,
    /// Battery output directory, relative to the run directory.
    pub output_dir: String,
    pub server_start_s: f64,
    pub battery_s: f64,
    pub teardown_s: f64,
    /// The GPU slot the repeat ran on, when configs ran side by side
    /// (`--gpu-slots`); absent for one slot (the profile as written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<grid_container::GpuSlot>,
    /// The configs (names) that ran on other slots at some time during this
    /// repeat: they shared the host's CPU, PCIe and memory bandwidth.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub neighbours: Vec<String>,
}

/// How a config's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Every repeat ran its battery (benchmarks may still have failed).
    Completed,
    /// The server never became ready (after retries for transient causes).
    LaunchFailed,
    /// Something else stopped it: the server died, the config's deadline.
    Failed,
    /// Never started: the search deadline passed first.
    Skipped,
    /// Not measured for a reason outside the config (a full disk, a taken
    /// port, the Docker daemon gone, a bug of ours): no verdict. The run
    /// stopped there; `resume` runs the config again.
    NotMeasured,
    /// Never started: the memory prediction says vLLM refuses it
    /// (`failure` holds the class and vLLM's text, `prediction` the rest);
    /// `--verify-predictions` starts it anyway.
    PredictedInfeasible,
}

/// A config's memory prediction, and once its server was started whether
/// the start agreed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionRecord {
    #[serde(flatten)]
    pub prediction: grid_predict::Prediction,
    /// `Some(true)`: the server started as predicted, or failed with the
    /// predicted class; `Some(false)`: it did not; `None`: not started, or
    /// the prediction was `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigTiming {
    /// Wall time from the config's start to its result.
    pub wall_s: f64,
    pub server_start_s: f64,
    pub battery_s: f64,
    pub teardown_s: f64,
    /// What the orchestrator itself spent: wall − start − battery − teardown
    /// − retry backoff.
    pub overhead_s: f64,
    #[serde(default)]
    pub backoff_s: f64,
}

/// The result file of one config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigResult {
    pub format_version: u32,
    pub config: PlannedConfig,
    pub outcome: RunOutcome,
    /// The rendered server command, `${VAR}` unexpanded.
    pub command: Vec<String>,
    /// Every failed launch attempt, in order.
    #[serde(default)]
    pub failed_attempts: Vec<FailureRecord>,
    #[serde(default)]
    pub repeats: Vec<RepeatResult>,
    /// Why the config did not complete (the last failure).
    pub failure: Option<FailureRecord>,
    pub timing: ConfigTiming,
    pub started_unix_ms: u64,
    pub finished_unix_ms: u64,
    /// The memory prediction made before the config ran (absent in results
    /// written before predictions existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<PredictionRecord>,
}

impl ConfigResult {
    /// Whether this result is a verdict that `resume` keeps: measured, or
    /// failed for the config's own reasons, or cut short by the plan's
    /// deadlines. A config not measured because of the environment is run
    /// again. Results written before [`RunOutcome::NotMeasured`] existed
    /// recorded such failures as `launch_failed`/`failed` with
    /// `config_fault: false` (a taken port, a missing image, a full disk
    /// during the battery); they are recognised here and run again too.
    pub fn is_final(&self) -> bool {
        match self.outcome {
            RunOutcome::Completed | RunOutcome::Skipped | RunOutcome::PredictedInfeasible => true,
            RunOutcome::NotMeasured => false,
            RunOutcome::LaunchFailed | RunOutcome::Failed => match &self.failure {
                Some(failure) => {
                    failure.config_fault || DEADLINE_CLASSES.contains(&failure.class.as_str())
                }
                None => true,
            },
        }
    }
}
