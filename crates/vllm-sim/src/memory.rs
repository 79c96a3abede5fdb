//! The memory model: how much KV cache a configuration gets, and the startup
//! failures vLLM reports when it gets too little.
//!
//! Per GPU (all sizes in GiB, `G = 2^30` bytes):
//!
//! ```text
//! gpus            = tensor_parallel_size × pipeline_parallel_size      (≤ --sim-gpu-count)
//! total           = --sim-gpu-memory-gib
//! free            = total − --sim-gpu-memory-used-gib                 (other processes)
//! requested       = total × --gpu-memory-utilization
//! weights         = --sim-weights-gib / gpus
//! activation      = --sim-activation-base-gib
//!                   + max_num_batched_tokens × --sim-activation-kib-per-token / 2^20
//! non_torch       = --sim-non-torch-gib                               (CUDA context, graphs)
//! kv_memory       = requested − weights − activation − non_torch       (or --kv-cache-memory-bytes)
//! kv_heads_gpu    = max(1, --sim-num-kv-heads / tensor_parallel_size)
//! layers_gpu      = --sim-num-layers / pipeline_parallel_size
//! bytes_per_token = 2 (K and V) × layers_gpu × kv_heads_gpu × --sim-head-dim × dtype_bytes
//!                   dtype_bytes = 1 for fp8* / int8* kv-cache dtypes, else 2
//! num_gpu_blocks  = floor(kv_memory / (block_size × bytes_per_token))
//! kv_tokens       = num_gpu_blocks × block_size
//! ```
//!
//! Startup checks, in vLLM's order, each with vLLM's own error text:
//! 1. `max_model_len > --sim-model-max-len` (config validation);
//! 2. chunked prefill off and an explicit `--max-num-batched-tokens <
//!    max_model_len` (scheduler config validation; without an explicit value
//!    vLLM sets it to `max_model_len`);
//! 3. `free < requested`: "Free memory on device ... is less than desired GPU
//!    memory utilization" (also with `--kv-cache-memory-bytes`, as vLLM's
//!    `request_memory`);
//! 4. `weights + non_torch > free`: CUDA out of memory while loading weights;
//!    `weights + non_torch + activation > free`: the same in the profile run;
//! 5. `kv_memory − one block ≤ 0`: "No available memory for the cache
//!    blocks" (vLLM holds one block back, the null block);
//! 6. `(num_gpu_blocks − 1) × block_size < max_model_len`: "To serve at
//!    least one request with the model's max seq len ...".
//!
//! With the defaults (two 24 GiB GPUs, 18 GiB of weights, tensor parallel 2,
//! 64 layers, 8 KV heads, head dim 128: 128 KiB per token per GPU), the
//! free-memory check fails when `utilization > (24 − used) / 24`: with
//! `--sim-gpu-memory-used-gib 2` that is above 0.9167, so 0.92 (vLLM's
//! default) and 0.95 fail while 0.85 and 0.90 start. The KV-cache check fails
//! below utilization ≈ 0.63 with the default max-model-len 40960, and nothing
//! is left for the KV cache below ≈ 0.42.

use crate::config::{ServeConfig, StartupFailure};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// The outcome of the memory model for a configuration that starts.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryPlan {
    pub gpus: usize,
    pub total_gib: f64,
    pub free_gib: f64,
    pub requested_gib: f64,
    pub weights_gib_per_gpu: f64,
    pub activation_gib: f64,
    pub non_torch_gib: f64,
    pub kv_cache_gib: f64,
    pub kv_bytes_per_token: u64,
    pub block_size: usize,
    pub num_gpu_blocks: usize,
    pub max_model_len: usize,
    pub max_num_batched_tokens: usize,
    pub max_num_seqs: usize,
}

impl MemoryPlan {
    pub fn kv_cache_tokens(&self) -> usize {
        self.num_gpu_blocks * self.block_size
    }

    /// vLLM's "Maximum concurrency for N tokens per request" figure.
    pub fn max_concurrency(&self) -> f64 {
        self.kv_cache_tokens() as f64 / self.max_model_len.max(1) as f64
    }
}

/// Why the simulated server did not start. Display gives vLLM's error line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StartupError {
    #[error(
        "ValueError: User-specified max_model_len ({requested}) is greater than the derived max_model_len (max_position_embeddings={derived} or model_max_length=None in model's config.json). To allow overriding this maximum, set the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1. VLLM_ALLOW_LONG_MAX_MODEL_LEN must be used with extreme caution. If the model uses relative position encoding (RoPE), positions exceeding derived_max_model_len lead to nan. If the model uses absolute position encoding, positions exceeding derived_max_model_len will cause a CUDA array out-of-bounds error."
    )]
    MaxModelLenTooLarge { requested: usize, derived: usize },
    #[error(
        "ValueError: max_num_batched_tokens ({batched}) is smaller than max_model_len ({max_model_len}). This effectively limits the maximum sequence length to max_num_batched_tokens and makes vLLM reject longer sequences. Please increase max_num_batched_tokens or decrease max_model_len."
    )]
    BatchedTokensBelowModelLen {
        batched: usize,
        max_model_len: usize,
    },
    #[error(
        "ValueError: max_num_batched_tokens ({batched}) must be greater than or equal to max_num_seqs ({seqs})."
    )]
    BatchedTokensBelowNumSeqs { batched: usize, seqs: usize },
    #[error(
        "ValueError: The number of required GPUs ({required}) exceeds the total number of available GPUs ({available}). Reduce --tensor-parallel-size or --pipeline-parallel-size."
    )]
    NotEnoughGpus { required: usize, available: usize },
    #[error(
        "ValueError: Free memory on device cuda:0 ({free:.2}/{total:.2} GiB) on startup is less than desired GPU memory utilization ({utilization}, {requested:.2} GiB). Decrease GPU memory utilization or reduce GPU memory used by other processes."
    )]
    FreeMemory {
        free: f64,
        total: f64,
        utilization: f64,
        requested: f64,
    },
    #[error(
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate {tried_mib:.2} MiB. GPU 0 has a total capacity of {total:.2} GiB of which {free_mib:.2} MiB is free. Including non-PyTorch memory, this process has {in_use:.2} GiB memory in use. Of the allocated memory {in_use:.2} GiB is allocated by PyTorch, and 0 bytes is reserved by PyTorch but unallocated. If reserved but unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See documentation for Memory Management  (https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)"
    )]
    CudaOom {
        phase: &'static str,
        tried_mib: f64,
        total: f64,
        free_mib: f64,
        in_use: f64,
    },
    #[error(
        "ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine."
    )]
    NoKvMemory,
    #[error(
        "ValueError: To serve at least one request with the model's max seq len ({max_model_len}), ({needed:.2} GiB KV cache is needed, which is larger than the available KV cache memory ({available:.2} GiB). Based on the available memory, the estimated maximum model length is {estimated}. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine."
    )]
    KvCacheTooSmall {
        max_model_len: usize,
        needed: f64,
        available: f64,
        estimated: usize,
    },
    #[error(
        "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {{'EngineCore_DP0': 1}}"
    )]
    EngineCrash,
}

impl StartupError {
    /// The phase vLLM is in when this error appears (for the log).
    pub fn phase(&self) -> &'static str {
        match self {
            StartupError::MaxModelLenTooLarge { .. }
            | StartupError::BatchedTokensBelowModelLen { .. }
            | StartupError::BatchedTokensBelowNumSeqs { .. }
            | StartupError::NotEnoughGpus { .. } => "config",
            StartupError::FreeMemory { .. } => "worker init",
            StartupError::CudaOom { phase, .. } => phase,
            StartupError::NoKvMemory | StartupError::KvCacheTooSmall { .. } => "kv cache init",
            StartupError::EngineCrash => "engine start",
        }
    }
}

fn kv_dtype_bytes(dtype: &str) -> u64 {
    // 8-bit dtypes take one byte; packed 4-bit ones plus their scales are
    // also counted as one byte per element.
    let one_byte = ["fp8", "int8", "int4", "nvfp4"]
        .iter()
        .any(|p| dtype.starts_with(p))
        || dtype.contains("4bit");
    if one_byte { 1 } else { 2 }
}

/// Runs the memory model for a configuration; Err is the startup failure.
pub fn plan(cfg: &ServeConfig) -> Result<MemoryPlan, StartupError> {
    let sim = &cfg.sim;
    let tp = cfg.effective_tensor_parallel_size();
    let pp = cfg.pipeline_parallel_size.max(1);
    let gpus = tp * pp;
    let max_model_len = cfg.max_model_len.unwrap_or(sim.model_max_len);
    if max_model_len > sim.model_max_len {
        return Err(StartupError::MaxModelLenTooLarge {
            requested: max_model_len,
            derived: sim.model_max_len,
        });
    }
    // vLLM's defaults for the OpenAI server by device memory
    // (vllm/engine/arg_utils.py `get_batch_defaults`), and with chunked
    // prefill off the budget becomes at least max_model_len unless given
    // explicitly (`_set_default_max_num_seqs_and_batched_tokens_args`).
    let (default_batched, default_seqs) = if sim.gpu_memory_gib >= 160.0 {
        (16384, 1024)
    } else if sim.gpu_memory_gib >= 70.0 {
        (8192, 1024)
    } else {
        (2048, 256)
    };
    let max_num_seqs = cfg.max_num_seqs.unwrap_or(default_seqs);
    let max_num_batched_tokens = match (cfg.max_num_batched_tokens, cfg.enable_chunked_prefill) {
        (Some(n), _) => n,
        (None, true) => default_batched,
        (None, false) => max_model_len.max(default_batched),
    };
    if !cfg.enable_chunked_prefill && max_num_batched_tokens < max_model_len {
        return Err(StartupError::BatchedTokensBelowModelLen {
            batched: max_num_batched_tokens,
            max_model_len,
        });
    }
    if max_num_batched_tokens < max_num_seqs {
        return Err(StartupError::BatchedTokensBelowNumSeqs {
            batched: max_num_batched_tokens,
            seqs: max_num_seqs,
        });
    }
    if gpus > sim.gpu_count {
        return Err(StartupError::NotEnoughGpus {
            required: gpus,
            available: sim.gpu_count,
        });
    }
    let total = sim.gpu_memory_gib;
    let free = (total - sim.gpu_memory_used_gib).max(0.0);
    let utilization = cfg.gpu_memory_utilization;
    let requested = total * utilization;
    // vLLM checks the share even when --kv-cache-memory-bytes is given
    // (`request_memory` runs at every GPU worker's init).
    if sim.startup_failure == StartupFailure::FreeMemory || free < requested {
        return Err(StartupError::FreeMemory {
            free,
            total,
            utilization,
            requested,
        });
    }
    let weights = sim.weights_gib / gpus as f64;
    if weights + sim.non_torch_gib > free {
        return Err(StartupError::CudaOom {
            phase: "model loading",
            tried_mib: (weights / 20.0 * 1024.0).max(1.0),
            total,
            free_mib: ((free - sim.non_torch_gib).max(0.0) % 1.0) * 1024.0,
            in_use: (free - sim.non_torch_gib).max(0.0),
        });
    }
    let activation = sim.activation_base_gib
        + max_num_batched_tokens as f64 * sim.activation_kib_per_token / (1024.0 * 1024.0);
    // The profile run's activations come on top of the weights whatever
    // the share: past the free memory, torch runs out.
    if weights + sim.non_torch_gib + activation > free {
        return Err(StartupError::CudaOom {
            phase: "profiling",
            tried_mib: activation * 1024.0,
            total,
            free_mib: (free - weights - sim.non_torch_gib).max(0.0) * 1024.0,
            in_use: weights + sim.non_torch_gib,
        });
    }
    if sim.startup_failure == StartupFailure::CudaOom {
        return Err(StartupError::CudaOom {
            phase: "profiling",
            tried_mib: activation * 1024.0,
            total,
            free_mib: (total - requested).max(0.0) * 1024.0 * 0.1,
            in_use: weights + sim.non_torch_gib,
        });
    }
    if sim.startup_failure == StartupFailure::Crash {
        return Err(StartupError::EngineCrash);
    }
    let kv_memory = match cfg.kv_cache_memory_bytes {
        Some(bytes) => bytes as f64 / GIB,
        None => requested - weights - activation - sim.non_torch_gib,
    };
    let kv_heads = (sim.num_kv_heads / tp).max(1) as u64;
    let layers = (sim.num_layers / pp).max(1) as u64;
    let kv_bytes_per_token =
        2 * layers * kv_heads * sim.head_dim as u64 * kv_dtype_bytes(&cfg.kv_cache_dtype);
    let block_size = cfg.block_size.max(1);
    let block_bytes = kv_bytes_per_token as f64 * block_size as f64;
    // vLLM checks the memory less one block, the null block the block pool
    // holds back (`get_kv_cache_configs`); the capacity counts it.
    let check_memory = kv_memory - block_bytes / GIB;
    if check_memory <= 0.0 {
        return Err(StartupError::NoKvMemory);
    }
    let num_gpu_blocks = (kv_memory * GIB / block_bytes).floor() as usize;
    let usable_tokens = num_gpu_blocks.saturating_sub(1) * block_size;
    if sim.startup_failure == StartupFailure::KvCache || usable_tokens < max_model_len {
        let needed = max_model_len.div_ceil(block_size) as f64 * block_bytes / GIB;
        let estimated = usable_tokens.min(max_model_len);
        return Err(StartupError::KvCacheTooSmall {
            max_model_len,
            needed,
            available: check_memory,
            estimated,
        });
    }
    Ok(MemoryPlan {
        gpus,
        total_gib: total,
        free_gib: free,
        requested_gib: requested,
        weights_gib_per_gpu: weights,
        activation_gib: activation,
        non_torch_gib: sim.non_torch_gib,
        kv_cache_gib: kv_memory,
        kv_bytes_per_token,
        block_size,
        num_gpu_blocks,
        max_model_len,
        max_num_batched_tokens,
        max_num_seqs,
    })
}
