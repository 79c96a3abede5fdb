//! The memory model's startup outcomes for the settings the grid tunes.

use vllm_sim::{ServeConfig, StartupError, memory};

/// Expected outcome of a configuration.
#[derive(Debug, PartialEq)]
enum Outcome {
    Starts,
    FreeMemory,
    KvTooSmall,
    NoKvMemory,
    BatchedBelowModelLen,
    ModelLenTooLarge,
    CudaOom,
    NotEnoughGpus,
}

fn check(args: &[&str], expected: Outcome) {
    let mut full = vec!["Qwen/Qwen3-32B-AWQ", "--tensor-parallel-size", "2"];
    full.extend_from_slice(args);
    let cfg =
        ServeConfig::from_args_with_env(&full, None).unwrap_or_else(|e| panic!("{full:?}: {e}"));
    let got = match memory::plan(&cfg) {
        Ok(_) => Outcome::Starts,
        Err(StartupError::FreeMemory { .. }) => Outcome::FreeMemory,
        Err(StartupError::KvCacheTooSmall { .. }) => Outcome::KvTooSmall,
        Err(StartupError::NoKvMemory) => Outcome::NoKvMemory,
        Err(StartupError::BatchedTokensBelowModelLen { .. }) => Outcome::BatchedBelowModelLen,
        Err(StartupError::MaxModelLenTooLarge { .. }) => Outcome::ModelLenTooLarge,
        Err(StartupError::CudaOom { .. }) => Outcome::CudaOom,
        Err(StartupError::NotEnoughGpus { .. }) => Outcome::NotEnoughGpus,
        Err(other) => panic!("{args:?}: unexpected {other}"),
    };
    assert_eq!(got, expected, "{args:?}");
}

#[test]
fn utilization_against_memory_held_by_other_processes() {
    let used = ["--sim-gpu-memory-used-gib", "2"];
    for (util, expected) in [
        ("0.85", Outcome::Starts),
        ("0.90", Outcome::Starts),
        ("0.92", Outcome::FreeMemory),
        ("0.95", Outcome::FreeMemory),
    ] {
        let mut args = used.to_vec();
        args.extend(["--gpu-memory-utilization", util]);
        check(&args, expected);
    }
    // With the GPUs to itself, 0.95 starts.
    check(&["--gpu-memory-utilization", "0.95"], Outcome::Starts);
}

#[test]
fn kv_cache_capacity_against_max_model_len() {
    check(&["--gpu-memory-utilization", "0.6"], Outcome::KvTooSmall);
    check(
        &[
            "--gpu-memory-utilization",
            "0.6",
            "--max-model-len",
            "16384",
        ],
        Outcome::Starts,
    );
    check(&["--gpu-memory-utilization", "0.4"], Outcome::NoKvMemory);
    // fp8 KV halves the bytes per token, so the same memory holds 40960.
    check(
        &["--gpu-memory-utilization", "0.6", "--kv-cache-dtype", "fp8"],
        Outcome::Starts,
    );
    check(&["--max-model-len", "65536"], Outcome::ModelLenTooLarge);
}

#[test]
fn chunked_prefill_off_needs_the_budget_to_hold_max_model_len() {
    check(
        &["--no-enable-chunked-prefill", "--max-model-len", "8192"],
        Outcome::Starts,
    );
    check(
        &[
            "--no-enable-chunked-prefill",
            "--max-model-len",
            "8192",
            "--max-num-batched-tokens",
            "4096",
        ],
        Outcome::BatchedBelowModelLen,
    );
    check(
        &[
            "--max-model-len",
            "8192",
            "--max-num-batched-tokens",
            "4096",
        ],
        Outcome::Starts,
    );
}

#[test]
fn weights_that_do_not_fit_and_injected_failures() {
    check(&["--sim-weights-gib", "60"], Outcome::CudaOom);
    check(&["--sim-startup-failure", "cuda-oom"], Outcome::CudaOom);
    check(&["--sim-startup-failure", "kv-cache"], Outcome::KvTooSmall);
    check(
        &["--sim-startup-failure", "free-memory"],
        Outcome::FreeMemory,
    );
    check(&["--tensor-parallel-size", "4"], Outcome::NotEnoughGpus);
}

#[test]
fn capacity_follows_the_documented_formula() {
    let cfg =
        ServeConfig::from_args_with_env(&["m", "--tensor-parallel-size", "2"], None).expect("args");
    let plan = memory::plan(&cfg).expect("starts");
    // 2 × 64 layers × 4 KV heads per GPU × 128 × 2 bytes = 128 KiB per token.
    assert_eq!(plan.kv_bytes_per_token, 131_072);
    let kv = 24.0 * 0.92 - 9.0 - (0.5 + 2048.0 * 64.0 / 1048576.0) - 0.5;
    assert!((plan.kv_cache_gib - kv).abs() < 1e-9);
    assert_eq!(
        plan.num_gpu_blocks,
        (kv * 1024.0 * 1024.0 * 1024.0 / (131_072.0 * 16.0)) as usize
    );
    // Chunked prefill off: the budget becomes max_model_len, activations
    // grow, and the KV cache shrinks.
    let off = ServeConfig::from_args_with_env(
        &[
            "m",
            "--tensor-parallel-size",
            "2",
            "--no-enable-chunked-prefill",
        ],
        None,
    )
    .expect("args");
    let off_plan = memory::plan(&off).expect("starts");
    assert_eq!(off_plan.max_num_batched_tokens, 40960);
    assert!(off_plan.num_gpu_blocks < plan.num_gpu_blocks);
}

/// vLLM's checks the memory model follows (0.32.0): the share is checked
/// even with an explicit KV size (`request_memory`), the profile run's
/// activations can exhaust the free memory, one block is the null block
/// (`get_kv_cache_configs` plans against the rest), and the batch defaults
/// grow with the device memory.
#[test]
fn vllms_checks_beyond_the_grid() {
    // 22 GiB free < 0.92 × 24 GiB, KV size given or not.
    check(
        &[
            "--sim-gpu-memory-used-gib",
            "2",
            "--kv-cache-memory-bytes",
            "2G",
            "--max-model-len",
            "16384",
        ],
        Outcome::FreeMemory,
    );
    // 9 GiB of weights + 0.5 + (0.5 + 40960 × 320 KiB = 13 GiB) > 22 GiB free.
    check(
        &[
            "--sim-gpu-memory-used-gib",
            "2",
            "--gpu-memory-utilization",
            "0.9",
            "--no-enable-chunked-prefill",
            "--sim-activation-kib-per-token",
            "320",
        ],
        Outcome::CudaOom,
    );
    // 2 MiB blocks (128 KiB per token, 16 tokens): 1024 blocks hold 16384
    // tokens, but one of them is the null block.
    check(
        &["--kv-cache-memory-bytes", "2G", "--max-model-len", "16384"],
        Outcome::KvTooSmall,
    );
    check(
        &[
            "--kv-cache-memory-bytes",
            "2050M",
            "--max-model-len",
            "16384",
        ],
        Outcome::Starts,
    );
    let batched = |args: &[&str]| {
        let mut full = vec!["m", "--tensor-parallel-size", "2"];
        full.extend_from_slice(args);
        let cfg = ServeConfig::from_args_with_env(&full, None).expect("args");
        memory::plan(&cfg).expect("starts").max_num_batched_tokens
    };
    let large = ["--sim-gpu-memory-gib", "80", "--max-model-len", "4096"];
    assert_eq!(batched(&large), 8192);
    let mut off = large.to_vec();
    off.push("--no-enable-chunked-prefill");
    assert_eq!(batched(&off), 8192, "at least the device default, not 2048");
    assert_eq!(batched(&["--sim-gpu-memory-gib", "192"]), 16384);
}
