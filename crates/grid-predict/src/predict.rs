//! vLLM's startup memory logic, step by step, from the inputs.
//!
//! In vLLM's order (0.32.0; paths in the vLLM repository):
//! 1. batch defaults (`vllm/engine/arg_utils.py` `get_batch_defaults`,
//!    `_set_default_max_num_seqs_and_batched_tokens_args`), then the
//!    scheduler's validation (`vllm/config/scheduler.py`);
//! 2. GPU: each worker's free-memory check, `requested = ceil(total ×
//!    utilization)` against the free memory (`vllm/v1/worker/utils.py`
//!    `request_memory`, run even when `--kv-cache-memory-bytes` is given);
//!    CPU: `ceil(MemTotal × utilization)` against the available memory,
//!    only without an explicit KV size (`cpu_worker.py`);
//! 3. GPU: loading the weights, then the profile run (CUDA out of memory
//!    when they exceed the free memory);
//! 4. the KV memory: `requested − (weights + non-torch + activation peak) −
//!    CUDA graphs` (`gpu_worker.py` `determine_available_memory`), or on
//!    CPU `requested − worker RSS`; an explicit KV size as it is;
//! 5. `_check_enough_kv_cache_memory` (`kv_cache_utils.py`) on the memory
//!    less one block (the null block): nothing left, or less than one
//!    max-model-len request, `cdiv(max_model_len, block_size)` blocks;
//! 6. `num_blocks = available // bytes_per_block`; the logged capacity is
//!    `int(num_blocks / cdiv(max_model_len, block_size) × max_model_len)`
//!    (`get_kv_cache_capacity`). One block is the null block
//!    (`block_pool.py`), counted in the logged figure.

use crate::args::{MaxModelLen, ServeArgs};
use crate::estimate::{
    ActivationShape, DEFAULT_CPU_RUNTIME_BYTES, GIB, Overheads, default_activation_bytes,
    default_non_torch_bytes,
};
use crate::hardware::{CpuMemory, Gpu, Hardware};
use crate::model::ModelFacts;
use crate::verdict::{FailureClass, MemoryPlan, Prediction, Verdict};
use crate::wording;

/// vLLM 0.32's default `--gpu-memory-utilization` (0.9 before 0.11).
pub const DEFAULT_UTILIZATION: f64 = 0.92;
/// `CacheConfig.DEFAULT_BLOCK_SIZE`, what the CUDA attention backends use.
pub const GPU_BLOCK_SIZE: u64 = 16;
/// The CPU attention backend's block (recorded: `block_size="128"`).
pub const CPU_BLOCK_SIZE: u64 = 128;

/// Everything one prediction reads.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub args: ServeArgs,
    /// `None`: unknown, and `missing` says why.
    pub model: Option<ModelFacts>,
    pub hardware: Option<Hardware>,
    pub overheads: Overheads,
    /// `VLLM_CPU_KVCACHE_SPACE` of the server's environment, in GiB: on
    /// the CPU build it replaces `--kv-cache-memory-bytes`.
    pub cpu_kvcache_space_gib: Option<u64>,
    /// Why an input is missing (shown with an unknown verdict).
    pub missing: Vec<String>,
}

/// What the batch looks like once vLLM's defaults are applied.
struct Batch {
    max_model_len: u64,
    max_num_batched_tokens: u64,
    max_num_seqs: u64,
}

/// The KV cache's shape on one worker.
struct KvShape {
    block_size: u64,
    /// Bytes of one token over the worker's layers (K and V).
    bytes_per_token: u64,
}

impl KvShape {
    fn bytes_per_block(&self) -> u64 {
        self.block_size * self.bytes_per_token
    }
}

fn clamp(bytes: i128) -> i64 {
    bytes.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

fn cdiv(a: u64, b: u64) -> u64 {
    a.div_ceil(b.max(1))
}

/// Predicts the startup of one server.
pub fn predict(inputs: &Inputs) -> Prediction {
    let args = &inputs.args;
    let mut reasons = inputs.missing.clone();
    for flag in &args.unmodelled {
        reasons.push(format!(
            "{flag} changes the memory picture in ways the model leaves out"
        ));
    }
    if args.data_parallel_size.is_some_and(|dp| dp > 1) {
        reasons.push("data parallelism (--data-parallel-size > 1) is not modelled".to_string());
    }
    let (Some(model), Some(hardware)) = (&inputs.model, &inputs.hardware) else {
        if reasons.is_empty() {
            reasons.push("the model or the hardware is not known".to_string());
        }
        return Prediction::unknown(reasons);
    };
    if !reasons.is_empty() {
        return Prediction::unknown(reasons);
    }
    match plan(inputs, model, hardware) {
        Ok(prediction) | Err(prediction) => prediction,
    }
}

/// `Err` is an early verdict (unknown, or a failure before the KV cache).
fn plan(
    inputs: &Inputs,
    model: &ModelFacts,
    hardware: &Hardware,
) -> Result<Prediction, Prediction> {
    let args = &inputs.args;
    let unknown = |reason: String| Prediction::unknown(vec![reason]);
    let tp = args.tensor_parallel_size.unwrap_or(1);
    let pp = args.pipeline_parallel_size.unwrap_or(1);
    let batch = batch(args, model, hardware, tp * pp)?;
    let kv_bytes = kv_dtype_bytes(args, model).ok_or_else(|| {
        unknown(format!(
            "--kv-cache-dtype {} has a layout the model does not cover",
            args.kv_cache_dtype.as_deref().unwrap_or("auto")
        ))
    })?;
    let layers = cdiv(model.num_hidden_layers, pp);
    let kv_heads = (model.num_key_value_heads / tp).max(1);
    let shape = KvShape {
        block_size: args.block_size.unwrap_or(match hardware {
            Hardware::Gpus(_) => GPU_BLOCK_SIZE,
            Hardware::Cpu(_) => CPU_BLOCK_SIZE,
        }),
        bytes_per_token: 2 * layers * kv_heads * model.head_dim * kv_bytes,
    };
    let utilization = args.gpu_memory_utilization.unwrap_or(DEFAULT_UTILIZATION);
    let plan = match hardware {
        Hardware::Gpus(gpus) => {
            gpu_memory(inputs, model, gpus, &batch, &shape, tp, pp, utilization)?
        }
        Hardware::Cpu(memory) => cpu_memory(inputs, model, memory, &batch, &shape, utilization)?,
    };
    Ok(kv_verdict(plan, &batch, &shape))
}

/// vLLM's batch defaults and the scheduler's validation.
fn batch(
    args: &ServeArgs,
    model: &ModelFacts,
    hardware: &Hardware,
    world: u64,
) -> Result<Batch, Prediction> {
    let unknown = |reason: String| Prediction::unknown(vec![reason]);
    let max_model_len = match args.max_model_len {
        None => model.max_model_len,
        Some(MaxModelLen::Auto) => {
            return Err(unknown(
                "--max-model-len auto: vLLM fits the length to the memory it finds; nothing to predict".to_string(),
            ));
        }
        Some(MaxModelLen::Tokens(n)) if n > model.max_model_len => {
            return Err(unknown(format!(
                "--max-model-len {n} is above the model's derived maximum ({}): vLLM refuses it before memory matters",
                model.max_model_len
            )));
        }
        Some(MaxModelLen::Tokens(n)) => n,
    };
    let (mut batched, mut seqs) = match hardware {
        Hardware::Cpu(_) => (2048 * world, 128 * world),
        Hardware::Gpus(gpus) => {
            let first = gpus.first();
            let total = first.map_or(0, |g| g.total_bytes);
            let a100 = first
                .and_then(|g| g.name.as_deref())
                .is_some_and(|n| n.to_ascii_lowercase().contains("a100"));
            if total >= 160 * GIB {
                (16384, 1024)
            } else if total >= 70 * GIB && !a100 {
                (8192, 1024)
            } else {
                (2048, 256)
            }
        }
    };
    if args.performance_mode.as_deref() == Some("throughput") {
        batched *= 2;
        seqs *= 2;
    }
    let chunked = args.enable_chunked_prefill.unwrap_or(true);
    let max_num_seqs_given = args.max_num_seqs.is_some();
    let max_num_seqs = args.max_num_seqs.unwrap_or(seqs);
    let max_num_batched_tokens = match args.max_num_batched_tokens {
        Some(n) => n,
        None => {
            let budget = if chunked {
                batched
            } else {
                batched.max(max_model_len)
            };
            budget.min(max_num_seqs.saturating_mul(max_model_len))
        }
    };
    let max_num_seqs = if max_num_seqs_given {
        max_num_seqs
    } else {
        max_num_seqs.min(max_num_batched_tokens)
    };
    if !chunked && max_num_batched_tokens < max_model_len {
        return Err(unknown(format!(
            "max_num_batched_tokens ({max_num_batched_tokens}) is smaller than max_model_len ({max_model_len}) with chunked prefill off: vLLM refuses the arguments (invalid_argument) before its memory checks"
        )));
    }
    if max_num_batched_tokens < max_num_seqs {
        return Err(unknown(format!(
            "max_num_batched_tokens ({max_num_batched_tokens}) is smaller than max_num_seqs ({max_num_seqs}): vLLM refuses the arguments (invalid_argument) before its memory checks"
        )));
    }
    Ok(Batch {
        max_model_len,
        max_num_batched_tokens,
        max_num_seqs,
    })
}

/// Bytes per KV element; `None` for layouts the model does not cover.
fn kv_dtype_bytes(args: &ServeArgs, model: &ModelFacts) -> Option<u64> {
    let model_bytes = match args.dtype.as_deref() {
        Some("float32" | "float") => 4,
        Some("float16" | "half" | "bfloat16") => 2,
        _ => model.dtype_bytes,
    };
    match args.kv_cache_dtype.as_deref().unwrap_or("auto") {
        "auto" => Some(model_bytes),
        "float16" | "half" | "bfloat16" => Some(2),
        "float32" | "float" => Some(4),
        "fp8" | "fp8_e4m3" | "fp8_e5m2" | "fp8_inc" => Some(1),
        _ => None,
    }
}

/// One failure verdict.
fn failure(class: FailureClass, message: String, plan: Option<Box<MemoryPlan>>) -> Prediction {
    Prediction {
        verdict: Verdict::PredictedFailure { class, message },
        kv_capacity_tokens: None,
        memory: plan,
    }
}

/// The GPU path: each worker's checks, then the smallest KV memory.
#[allow(clippy::too_many_arguments)]
fn gpu_memory(
    inputs: &Inputs,
    model: &ModelFacts,
    gpus: &[Gpu],
    batch: &Batch,
    shape: &KvShape,
    tp: u64,
    pp: u64,
    utilization: f64,
) -> Result<MemoryPlan, Prediction> {
    let args = &inputs.args;
    let workers = (tp * pp) as usize;
    if gpus.len() < workers {
        return Err(Prediction::unknown(vec![format!(
            "tensor × pipeline parallel is {workers} GPUs and the hardware has {}: vLLM refuses it before memory matters",
            gpus.len()
        )]));
    }
    let gpus = &gpus[..workers];
    let requested = |gpu: &Gpu| (gpu.total_bytes as f64 * utilization).ceil() as u64;
    for (i, gpu) in gpus.iter().enumerate() {
        if gpu.free_bytes() < requested(gpu) {
            return Err(failure(
                FailureClass::FreeMemoryBelowUtilization,
                wording::gpu_free_memory(
                    i,
                    gpu.free_bytes(),
                    gpu.total_bytes,
                    utilization,
                    requested(gpu),
                ),
                None,
            ));
        }
    }
    // Online fp8 quantization of a 16-bit checkpoint halves its weights.
    let online_fp8 = args.quantization.as_deref() == Some("fp8") && model.quantization.is_none();
    let weights_total = if online_fp8 && model.dtype_bytes == 2 {
        model.weights_bytes / 2
    } else {
        model.weights_bytes
    };
    let weights = weights_total / workers as u64;
    let overheads = &inputs.overheads;
    let non_torch = overheads
        .non_torch_bytes
        .unwrap_or_else(|| default_non_torch_bytes(tp, pp));
    let activation = match overheads.activation {
        Some(line) => line.bytes(batch.max_num_batched_tokens),
        None => default_activation_bytes(&ActivationShape {
            batched_tokens: batch.max_num_batched_tokens,
            sampled_rows: batch.max_num_batched_tokens.min(batch.max_num_seqs),
            hidden_size: model.hidden_size,
            intermediate_size: model.intermediate_size,
            vocab_size: model.vocab_size,
            act_bytes: model.dtype_bytes.min(4),
            tensor_parallel_size: tp,
        }),
    };
    let cuda_graphs = if args.enforce_eager {
        0
    } else {
        overheads.cuda_graph_bytes.unwrap_or(0)
    };
    let mut smallest: Option<MemoryPlan> = None;
    for (i, gpu) in gpus.iter().enumerate() {
        let free = gpu.free_bytes();
        let oom = |phase: &str, needed: u64| {
            failure(
                FailureClass::GpuOutOfMemory,
                wording::cuda_oom(i, phase, needed, free, gpu.total_bytes),
                None,
            )
        };
        if weights + non_torch > free {
            return Err(oom("loading the weights", weights + non_torch));
        }
        if weights + non_torch + activation > free {
            return Err(oom("the profile run", weights + non_torch + activation));
        }
        let kv = match args.kv_cache_memory_bytes {
            Some(bytes) => {
                if weights + non_torch + bytes > free {
                    return Err(oom("allocating the KV cache", weights + non_torch + bytes));
                }
                i128::from(bytes)
            }
            None => {
                i128::from(requested(gpu))
                    - i128::from(weights)
                    - i128::from(non_torch)
                    - i128::from(activation)
                    - i128::from(cuda_graphs)
            }
        };
        let plan = MemoryPlan {
            total_bytes: gpu.total_bytes,
            free_bytes: free,
            requested_bytes: requested(gpu),
            weights_bytes: weights,
            non_torch_bytes: non_torch,
            activation_bytes: activation,
            cuda_graph_bytes: cuda_graphs,
            kv_cache_bytes: clamp(kv),
            kv_cache_size_given: args.kv_cache_memory_bytes.is_some(),
            ..blank_plan("cuda", batch, shape)
        };
        if smallest
            .as_ref()
            .is_none_or(|s| clamp(kv) < s.kv_cache_bytes)
        {
            smallest = Some(plan);
        }
    }
    smallest.ok_or_else(|| Prediction::unknown(vec!["no GPU to run on".to_string()]))
}

/// The CPU build's path (`cpu_worker.py`).
fn cpu_memory(
    inputs: &Inputs,
    model: &ModelFacts,
    memory: &CpuMemory,
    batch: &Batch,
    shape: &KvShape,
    utilization: f64,
) -> Result<MemoryPlan, Prediction> {
    let args = &inputs.args;
    let total = memory.total_bytes;
    let available = memory.available_bytes;
    let requested = (total as f64 * utilization).ceil() as u64;
    // VLLM_CPU_KVCACHE_SPACE replaces the flag (`vllm/platforms/cpu.py`).
    let explicit = inputs
        .cpu_kvcache_space_gib
        .map(|gib| gib * GIB)
        .or(args.kv_cache_memory_bytes);
    let runtime = inputs
        .overheads
        .cpu_runtime_bytes
        .unwrap_or(DEFAULT_CPU_RUNTIME_BYTES);
    let rss = runtime + model.weights_bytes;
    let free_memory =
        |message: String| failure(FailureClass::FreeMemoryBelowUtilization, message, None);
    let kv = match explicit {
        None if requested > available => {
            return Err(free_memory(wording::cpu_free_memory(
                available,
                total,
                utilization,
                requested,
            )));
        }
        Some(bytes) if bytes > available => {
            return Err(free_memory(wording::cpu_explicit_kv(
                available, total, bytes,
            )));
        }
        Some(bytes) => i128::from(bytes),
        None => {
            let kv = i128::from(requested) - i128::from(rss);
            if kv <= 0 || kv > i128::from(available) {
                return Err(free_memory(wording::cpu_auto_kv(
                    available, total, kv, requested,
                )));
            }
            kv
        }
    };
    Ok(MemoryPlan {
        total_bytes: total,
        free_bytes: available,
        requested_bytes: requested,
        weights_bytes: model.weights_bytes,
        non_torch_bytes: if explicit.is_some() { 0 } else { runtime },
        kv_cache_bytes: clamp(kv),
        kv_cache_size_given: explicit.is_some(),
        ..blank_plan("cpu", batch, shape)
    })
}

/// A plan with the batch and the KV shape filled in, the memory at zero.
fn blank_plan(device: &str, batch: &Batch, shape: &KvShape) -> MemoryPlan {
    MemoryPlan {
        device: device.to_string(),
        total_bytes: 0,
        free_bytes: 0,
        requested_bytes: 0,
        weights_bytes: 0,
        non_torch_bytes: 0,
        activation_bytes: 0,
        cuda_graph_bytes: 0,
        kv_cache_bytes: 0,
        kv_bytes_per_token: shape.bytes_per_token,
        block_size: shape.block_size,
        num_blocks: 0,
        max_model_len: batch.max_model_len,
        max_num_batched_tokens: batch.max_num_batched_tokens,
        max_num_seqs: batch.max_num_seqs,
        kv_cache_size_given: false,
    }
}

/// `_check_enough_kv_cache_memory`, then the block count and the capacity.
/// The check plans against the memory less one block, the null block the
/// block pool holds back (`get_kv_cache_configs`, "Reserve the null
/// block"); the allocation and the logged capacity use all of it.
fn kv_verdict(mut plan: MemoryPlan, batch: &Batch, shape: &KvShape) -> Prediction {
    let per_block = i128::from(shape.bytes_per_block());
    let available = i128::from(plan.kv_cache_bytes);
    let num_blocks = if available > 0 {
        (available / per_block) as u64
    } else {
        0
    };
    plan.num_blocks = num_blocks;
    let check_memory = available - per_block;
    if check_memory <= 0 {
        return Prediction {
            verdict: Verdict::PredictedFailure {
                class: FailureClass::KvCacheTooSmall,
                message: wording::no_kv_memory(),
            },
            kv_capacity_tokens: Some(num_blocks * shape.block_size),
            memory: Some(Box::new(plan)),
        };
    }
    let blocks_per_request = cdiv(batch.max_model_len, shape.block_size);
    let needed = i128::from(blocks_per_request) * per_block;
    if needed > check_memory {
        // estimate_max_model_len: the longest length whose blocks fit.
        let usable = (check_memory / per_block) as u64;
        let estimated = (usable * shape.block_size).min(batch.max_model_len);
        return Prediction {
            verdict: Verdict::PredictedFailure {
                class: FailureClass::KvCacheTooSmall,
                message: wording::kv_too_small(
                    batch.max_model_len,
                    needed,
                    check_memory,
                    estimated,
                ),
            },
            kv_capacity_tokens: Some(num_blocks * shape.block_size),
            memory: Some(Box::new(plan)),
        };
    }
    // Python: int(num_blocks / blocks_per_request * max_model_len).
    let capacity =
        (num_blocks as f64 / blocks_per_request as f64 * batch.max_model_len as f64) as u64;
    Prediction {
        verdict: Verdict::Fits,
        kv_capacity_tokens: Some(capacity),
        memory: Some(Box::new(plan)),
    }
}
