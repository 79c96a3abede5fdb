//! The memory-model prediction: whether `vllm serve` with a config's flags
//! starts on this hardware, and how many tokens its KV cache holds, before
//! anything is launched. Pure: the caller reads the files and asks
//! `nvidia-smi`; this crate computes.
//!
//! ```text
//! ServeArgs::parse(rendered command)  ─┐
//! ModelFacts::from_config(config.json) ├─► predict(&Inputs) ─► Prediction
//! Hardware (GPUs, or the CPU node)     │      fits | predicted_failure (class, vLLM's text) | unknown
//! Overheads (estimates, declared)     ─┘      + kv_capacity_tokens, memory breakdown
//! ```
//!
//! Per GPU worker (vLLM 0.32.0's logic, see [`predict`] for the steps and
//! source paths):
//!
//! ```text
//! requested       = ceil(total × gpu_memory_utilization)          (fails if free < requested)
//! weights         = weights on disk / (tp × pp)
//! kv_memory       = requested − weights − non_torch − activation − cuda_graphs
//!                   (or --kv-cache-memory-bytes as given)
//! bytes_per_token = 2 × ceil(layers / pp) × max(1, kv_heads / tp) × head_dim × kv_dtype_bytes
//! num_blocks      = kv_memory // (block_size × bytes_per_token)   (block 16 on CUDA, 128 on CPU)
//! fails if kv_memory − one block (the null block) is ≤ 0, or holds fewer
//!   than cdiv(max_model_len, block_size) blocks
//! kv_tokens       = int(num_blocks / cdiv(max_model_len, block_size) × max_model_len)
//! ```
//!
//! On vLLM's CPU build: `requested = ceil(MemTotal × utilization)` (fails
//! above the available memory), `kv_memory = requested − worker RSS`.
//!
//! `non_torch`, `activation`, `cuda_graphs` and the CPU worker's RSS are
//! measured by vLLM at startup and only estimated here ([`estimate`]); **the
//! activation peak is the least certain term**. With
//! `--kv-cache-memory-bytes` none of them enters the capacity, which is then
//! exact.

pub mod args;
pub mod estimate;
pub mod hardware;
pub mod model;
pub mod predict;
pub mod verdict;
pub mod wording;

pub use args::{ArgsError, MaxModelLen, ServeArgs, human_readable_int};
pub use estimate::{GIB, LinearActivation, Overheads};
pub use hardware::{CpuMemory, Gpu, Hardware, MeminfoError, cpu_memory_from_meminfo};
pub use model::{ModelError, ModelFacts};
pub use predict::{Inputs, predict};
pub use verdict::{FailureClass, MemoryPlan, Prediction, Verdict};
