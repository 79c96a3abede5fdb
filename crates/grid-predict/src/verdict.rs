//! What a prediction says, in the form result files and `vllm-grid plan`
//! carry it.

use serde::{Deserialize, Serialize};

/// The startup failures the memory model predicts. The serde names are
/// grid-container's `FailureClass` names for the same failures, so a
/// prediction can be compared with a diagnosed launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    FreeMemoryBelowUtilization,
    KvCacheTooSmall,
    GpuOutOfMemory,
}

impl FailureClass {
    /// The snake-case name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::FreeMemoryBelowUtilization => "free_memory_below_utilization",
            FailureClass::KvCacheTooSmall => "kv_cache_too_small",
            FailureClass::GpuOutOfMemory => "gpu_out_of_memory",
        }
    }

    /// The human name (`free memory below utilization`).
    pub fn name(self) -> &'static str {
        match self {
            FailureClass::FreeMemoryBelowUtilization => "free memory below utilization",
            FailureClass::KvCacheTooSmall => "kv cache too small",
            FailureClass::GpuOutOfMemory => "gpu out of memory",
        }
    }
}

/// The verdict on one config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// vLLM's memory checks pass.
    Fits,
    /// A memory check fails; `message` is vLLM's error text with the
    /// predicted numbers.
    PredictedFailure {
        class: FailureClass,
        message: String,
    },
    /// An input is missing or the config is outside what the model covers;
    /// nothing is skipped on an unknown.
    Unknown { reasons: Vec<String> },
}

/// The predicted memory of one worker (the one with the least KV memory),
/// in bytes; signed where a shortfall goes below zero (i64: serde's
/// flattened maps carry no i128).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryPlan {
    /// `cuda` or `cpu`.
    pub device: String,
    pub total_bytes: u64,
    pub free_bytes: u64,
    /// `ceil(total × utilization)`.
    pub requested_bytes: u64,
    pub weights_bytes: u64,
    pub non_torch_bytes: u64,
    pub activation_bytes: u64,
    pub cuda_graph_bytes: u64,
    pub kv_cache_bytes: i64,
    pub kv_bytes_per_token: u64,
    pub block_size: u64,
    pub num_blocks: u64,
    pub max_model_len: u64,
    pub max_num_batched_tokens: u64,
    pub max_num_seqs: u64,
    /// Whether the KV size was given (`--kv-cache-memory-bytes`), so the
    /// estimated terms do not enter it.
    pub kv_cache_size_given: bool,
}

/// The prediction for one config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    #[serde(flatten)]
    pub verdict: Verdict,
    /// vLLM's logged "KV cache size: N tokens" (`get_kv_cache_capacity`),
    /// when the KV memory is known; for a KV cache too small, what it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_capacity_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Box<MemoryPlan>>,
}

impl Prediction {
    pub fn unknown(reasons: Vec<String>) -> Prediction {
        Prediction {
            verdict: Verdict::Unknown { reasons },
            kv_capacity_tokens: None,
            memory: None,
        }
    }

    /// The predicted failure's class, if it predicts one.
    pub fn failure_class(&self) -> Option<FailureClass> {
        match &self.verdict {
            Verdict::PredictedFailure { class, .. } => Some(*class),
            _ => None,
        }
    }

    /// `fits`, `predicted_failure` or `unknown`.
    pub fn verdict_name(&self) -> &'static str {
        match self.verdict {
            Verdict::Fits => "fits",
            Verdict::PredictedFailure { .. } => "predicted_failure",
            Verdict::Unknown { .. } => "unknown",
        }
    }

    /// Whether the server's actual start agrees: it started and `fits` was
    /// predicted, or it failed with the predicted class. `actual` is the
    /// diagnosed class of a failed start (`None`: it started). An unknown
    /// prediction holds no claim, so `None`.
    pub fn held(&self, actual: Option<&str>) -> Option<bool> {
        match (&self.verdict, actual) {
            (Verdict::Unknown { .. }, _) => None,
            (Verdict::Fits, None) => Some(true),
            (Verdict::Fits, Some(class)) => Some(
                // A fit says only that memory suffices.
                ![
                    FailureClass::FreeMemoryBelowUtilization,
                    FailureClass::KvCacheTooSmall,
                    FailureClass::GpuOutOfMemory,
                ]
                .iter()
                .any(|c| c.as_str() == class),
            ),
            (Verdict::PredictedFailure { class, .. }, Some(actual)) => {
                Some(class.as_str() == actual)
            }
            (Verdict::PredictedFailure { .. }, None) => Some(false),
        }
    }
}
