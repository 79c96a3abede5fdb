//! vLLM's own error texts (0.32.0), filled with the predicted numbers, so a
//! predicted failure reads like the log line the server would print (and
//! grid-container's diagnosis would classify it the same way).

use crate::estimate::GIB;

/// vLLM's `format_gib`: `f"{round(b / GiB_bytes, 2)}"`, so `1.0`, `23.54`,
/// `0.03` (Python prints a float's shortest repr, with `.0` when whole).
pub fn format_gib(bytes: i128) -> String {
    let gib = bytes as f64 / GIB as f64;
    let rounded = (gib * 100.0).round() / 100.0;
    let text = format!("{rounded}");
    if text.contains('.') || text.contains("inf") || text.contains("NaN") {
        text
    } else {
        format!("{text}.0")
    }
}

/// Python's `str(float)` for a utilization share (`0.9`, `0.95`, `1.0`).
fn share(value: f64) -> String {
    let text = format!("{value}");
    if text.contains('.') {
        text
    } else {
        format!("{text}.0")
    }
}

/// `vllm/v1/worker/utils.py` `request_memory`.
pub fn gpu_free_memory(
    device: usize,
    free: u64,
    total: u64,
    utilization: f64,
    requested: u64,
) -> String {
    format!(
        "ValueError: Free memory on device cuda:{device} ({}/{} GiB) on startup is less than desired GPU memory utilization ({}, {} GiB). Decrease GPU memory utilization or reduce GPU memory used by other processes.",
        format_gib(free.into()),
        format_gib(total.into()),
        share(utilization),
        format_gib(requested.into()),
    )
}

/// `vllm/v1/worker/cpu_worker.py`, worker init (no explicit KV size).
pub fn cpu_free_memory(available: u64, total: u64, utilization: f64, requested: u64) -> String {
    format!(
        "ValueError: Available memory on node 0 ({}/{} GiB) on startup is less than desired CPU memory utilization ({}, {} GiB). On the CPU backend, the `--gpu-memory-utilization` flag controls the fraction of CPU memory reserved (despite its name). To resolve: decrease `--gpu-memory-utilization` (e.g. `--gpu-memory-utilization 0.5`) or reduce CPU memory used by other processes.",
        format_gib(available.into()),
        format_gib(total.into()),
        share(utilization),
        format_gib(requested.into()),
    )
}

/// `cpu_worker.py` `determine_available_memory`, an explicit KV size.
pub fn cpu_explicit_kv(available: u64, total: u64, kv: u64) -> String {
    format!(
        "ValueError: Available memory on node 0 ({}/{} GiB) on kv cache allocation is less than requested memory for kv ({} GiB). Decrease --kv-cache-memory-bytes, VLLM_CPU_KVCACHE_SPACE, or reduce CPU memory used by other processes.",
        format_gib(available.into()),
        format_gib(total.into()),
        format_gib(kv.into()),
    )
}

/// `cpu_worker.py` `determine_available_memory`, the share minus the RSS.
pub fn cpu_auto_kv(available: u64, total: u64, kv: i128, requested: u64) -> String {
    format!(
        "ValueError: Available memory on node 0 ({}/{} GiB) on kv cache allocation is less than requested memory for kv ({}/{} GiB). Reduce CPU memory used by other processes.",
        format_gib(available.into()),
        format_gib(total.into()),
        format_gib(kv),
        format_gib(requested.into()),
    )
}

/// `vllm/v1/core/kv_cache_utils.py` `_check_enough_kv_cache_memory`.
pub fn no_kv_memory() -> String {
    "ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine (this flag also controls CPU memory reservation on the CPU backend, despite its name). See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details.".to_string()
}

/// `_check_enough_kv_cache_memory`, the KV cache smaller than one request.
pub fn kv_too_small(max_model_len: u64, needed: i128, available: i128, estimated: u64) -> String {
    let estimated = if estimated > 0 {
        format!(
            "Based on the available memory, the estimated maximum model length is {estimated}. "
        )
    } else {
        String::new()
    };
    format!(
        "ValueError: To serve at least one request with the model's max seq len ({max_model_len}), ({} GiB KV cache is needed, which is larger than the available KV cache memory ({} GiB). {estimated}Try increasing `gpu_memory_utilization` (which also controls CPU memory on the CPU backend) or decreasing `max_model_len` when initializing the engine. See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details.",
        format_gib(needed),
        format_gib(available),
    )
}

/// torch's out-of-memory error; torch prints the failing allocation, which
/// cannot be predicted, so the text names the predicted need instead.
pub fn cuda_oom(device: usize, phase: &str, needed: u64, free: u64, total: u64) -> String {
    format!(
        "torch.OutOfMemoryError: CUDA out of memory. GPU {device} has a total capacity of {} GiB of which {} GiB is free; {phase} needs about {} GiB (predicted).",
        format_gib(total.into()),
        format_gib(free.into()),
        format_gib(needed.into()),
    )
}
