//! The GPU path: vLLM's checks in order and the KV capacity, on the
//! simulator's physics (two 24 GiB GPUs, Qwen3-32B-AWQ over TP 2, fp8 KV:
//! 64 KiB per token per GPU, 1 MiB blocks of 16 tokens). Expected tokens are
//! computed by hand from the formula in `grid_predict`'s documentation.

use grid_core::testing::check;
use grid_predict::{FailureClass, GIB, Gpu, Hardware, Overheads, Verdict};

use crate::{Outcome, gpus, outcome, predict, qwen3_32b, sim_overheads};

const FREE: Option<FailureClass> = Some(FailureClass::FreeMemoryBelowUtilization);
const KV: Option<FailureClass> = Some(FailureClass::KvCacheTooSmall);
const OOM: Option<FailureClass> = Some(FailureClass::GpuOutOfMemory);

/// The sim profile's command: TP 2, fp8 KV, 131072 tokens.
const BASE: &str = "Qwen/Qwen3-32B-AWQ --tensor-parallel-size 2 --quantization awq_marlin --kv-cache-dtype fp8 --max-model-len 131072";

#[derive(Debug)]
struct Case {
    hardware: Hardware,
    overheads: Overheads,
    weights_gib: u64,
    extra: &'static str,
}

fn case(used_gib: f64, extra: &'static str) -> Case {
    Case {
        hardware: gpus(2, 24.0, used_gib),
        overheads: sim_overheads(),
        weights_gib: 18,
        extra,
    }
}

fn run(case: &Case) -> Outcome {
    let mut model = qwen3_32b();
    model.weights_bytes = case.weights_gib * GIB;
    outcome(&predict(
        model,
        case.hardware.clone(),
        case.overheads,
        &format!("{BASE} {}", case.extra),
    ))
}

#[test]
fn the_default_grid_on_the_simulators_physics() {
    check(
        &[
            (
                "0.85 chunked",
                case(2.0, "--gpu-memory-utilization 0.85"),
                ("fits", None, Some(168_336)),
            ),
            (
                "0.90 chunked",
                case(2.0, "--gpu-memory-utilization 0.9"),
                ("fits", None, Some(188_000)),
            ),
            (
                "0.95 chunked",
                case(2.0, "--gpu-memory-utilization 0.95"),
                ("predicted_failure", FREE, None),
            ),
            // Chunked prefill off: the batch budget becomes max-model-len,
            // the activation 8.5 GiB, and 39312 tokens < 131072.
            (
                "0.85 chunked off",
                case(
                    2.0,
                    "--gpu-memory-utilization 0.85 --no-enable-chunked-prefill",
                ),
                ("predicted_failure", KV, Some(39_312)),
            ),
            (
                "0.90 chunked off",
                case(
                    2.0,
                    "--gpu-memory-utilization 0.9 --no-enable-chunked-prefill",
                ),
                ("predicted_failure", KV, Some(58_976)),
            ),
            (
                "0.95 chunked off",
                case(
                    2.0,
                    "--gpu-memory-utilization 0.95 --no-enable-chunked-prefill",
                ),
                ("predicted_failure", FREE, None),
            ),
            // vLLM's default share, 0.92, is above (24 - 2) / 24 too.
            (
                "default share",
                case(2.0, ""),
                ("predicted_failure", FREE, None),
            ),
            (
                "0.95 on idle GPUs",
                case(0.0, "--gpu-memory-utilization 0.95"),
                ("fits", None, Some(207_664)),
            ),
        ],
        run,
    );
}

#[test]
fn each_of_vllms_memory_checks() {
    let mut oversized = case(2.0, "--gpu-memory-utilization 0.9");
    oversized.weights_gib = 60;
    // The default estimate at 131072 batched tokens: an 11.9 GiB forward
    // peak on top of 9 GiB of weights and 2.1 GiB outside torch > 22 GiB.
    let mut profile_oom = case(
        2.0,
        "--gpu-memory-utilization 0.85 --no-enable-chunked-prefill",
    );
    profile_oom.overheads = Overheads::default();
    check(
        &[
            (
                "weights above the free memory",
                oversized,
                ("predicted_failure", OOM, None),
            ),
            (
                "the profile run above the free memory",
                profile_oom,
                ("predicted_failure", OOM, None),
            ),
            // 9.6 GiB requested < 9 + 0.5 + 0.625: nothing left for the cache.
            (
                "nothing left for the cache",
                case(0.0, "--gpu-memory-utilization 0.4"),
                ("predicted_failure", KV, Some(0)),
            ),
            // vLLM checks the share even when the KV size is given.
            (
                "an explicit KV size still needs the share free",
                case(2.0, "--kv-cache-memory-bytes 2G --max-model-len 16384"),
                ("predicted_failure", FREE, None),
            ),
            // 2 GiB / 1 MiB blocks = 2048 blocks of 16 tokens.
            (
                "an explicit KV size is the capacity",
                case(0.0, "--kv-cache-memory-bytes 2G --max-model-len 16384"),
                ("fits", None, Some(32_768)),
            ),
            (
                "an explicit KV size below one request",
                case(0.0, "--kv-cache-memory-bytes 2G"),
                ("predicted_failure", KV, Some(32_768)),
            ),
            // fp16 KV (the model's dtype): 128 KiB per token.
            (
                "kv dtype auto",
                case(
                    2.0,
                    "--gpu-memory-utilization 0.9 --kv-cache-dtype auto --max-model-len 40960",
                ),
                ("fits", None, Some(94_000)),
            ),
            // PP 2, TP 1: 32 layers and all 8 KV heads per GPU, the same bytes per token.
            (
                "pipeline parallel",
                case(
                    2.0,
                    "--gpu-memory-utilization 0.9 --tensor-parallel-size 1 --pipeline-parallel-size 2",
                ),
                ("fits", None, Some(188_000)),
            ),
        ],
        run,
    );
}

#[test]
fn what_the_model_does_not_cover_is_unknown() {
    let unknown = ("unknown", None, None);
    check(
        &[
            (
                "more GPUs than there are",
                case(0.0, "--tensor-parallel-size 4"),
                unknown,
            ),
            (
                "a draft model",
                case(0.0, "--speculative-config {}"),
                unknown,
            ),
            (
                "a packed KV layout",
                case(0.0, "--kv-cache-dtype turboquant_k8v4"),
                unknown,
            ),
            (
                "above the derived length",
                case(0.0, "--max-model-len 262144"),
                unknown,
            ),
            ("auto length", case(0.0, "--max-model-len auto"), unknown),
            (
                "vLLM refuses the batch before memory",
                case(
                    0.0,
                    "--no-enable-chunked-prefill --max-num-batched-tokens 2048",
                ),
                unknown,
            ),
        ],
        run,
    );
}

#[test]
fn batch_defaults_follow_the_gpu_and_the_default_estimate_is_documented() {
    let h100 = Hardware::Gpus(vec![Gpu {
        name: Some("NVIDIA H100 80GB HBM3".into()),
        total_bytes: 80 * GIB,
        used_bytes: 0,
    }]);
    let prediction = predict(
        qwen3_32b(),
        h100,
        Overheads::default(),
        "m --kv-cache-dtype fp8 --gpu-memory-utilization 0.9",
    );
    let plan = prediction.memory.as_ref().expect("a plan");
    assert_eq!(
        (plan.max_num_batched_tokens, plan.max_num_seqs),
        (8192, 1024)
    );
    // The sampler term: 1024 rows × 151936 logits × 16 B = 2.32 GiB.
    assert_eq!(plan.activation_bytes, 1024 * 151_936 * 16);
    assert_eq!(plan.non_torch_bytes, (0.27 * GIB as f64) as u64);
    assert_eq!(prediction.kv_capacity_tokens, Some(421_152));

    let a100 = Hardware::Gpus(vec![Gpu {
        name: Some("NVIDIA A100-SXM4-80GB".into()),
        total_bytes: 80 * GIB,
        used_bytes: 0,
    }]);
    let prediction = predict(
        qwen3_32b(),
        a100,
        Overheads::default(),
        "m --kv-cache-dtype fp8",
    );
    let plan = prediction.memory.as_ref().expect("a plan");
    assert_eq!(
        (plan.max_num_batched_tokens, plan.max_num_seqs),
        (2048, 256)
    );
}

#[test]
fn failures_carry_vllms_wording() {
    let free = predict(
        qwen3_32b(),
        gpus(2, 24.0, 2.0),
        sim_overheads(),
        &format!("{BASE} --gpu-memory-utilization 0.95"),
    );
    let Verdict::PredictedFailure { message, .. } = &free.verdict else {
        panic!("{free:?}");
    };
    assert_eq!(
        message,
        "ValueError: Free memory on device cuda:0 (22.0/24.0 GiB) on startup is less than desired GPU memory utilization (0.95, 22.8 GiB). Decrease GPU memory utilization or reduce GPU memory used by other processes."
    );
    let small = predict(
        qwen3_32b(),
        gpus(2, 24.0, 2.0),
        sim_overheads(),
        &format!("{BASE} --gpu-memory-utilization 0.85 --no-enable-chunked-prefill"),
    );
    let Verdict::PredictedFailure { message, .. } = &small.verdict else {
        panic!("{small:?}");
    };
    // 8192 blocks of 1 MiB needed; 2.4 GiB less the null block available.
    assert!(
        message.starts_with("ValueError: To serve at least one request with the model's max seq len (131072), (8.0 GiB KV cache is needed, which is larger than the available KV cache memory (2.4 GiB). Based on the available memory, the estimated maximum model length is 39296."),
        "{message}"
    );
}
