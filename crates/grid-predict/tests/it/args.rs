//! The flags the prediction reads, as vLLM's argparse reads them.

use grid_core::testing::check;
use grid_predict::{MaxModelLen, ServeArgs, human_readable_int};

use crate::words;

#[test]
fn sizes_follow_vllms_human_readable_int() {
    check(
        &[
            ("plain", "4096", Some(4096)),
            ("decimal k", "32k", Some(32_000)),
            ("decimal with a fraction", "25.6k", Some(25_600)),
            ("binary K", "1K", Some(1024)),
            ("binary G", "1G", Some(1 << 30)),
            ("binary M", "64M", Some(64 << 20)),
            ("no decimals with a binary suffix", "1.5G", None),
            ("unknown suffix", "1x", None),
            ("empty", "", None),
            ("a word", "lots", None),
        ],
        |text| human_readable_int(text),
    );
}

#[test]
fn flags_are_read_in_every_spelling_and_the_last_wins() {
    let args = ServeArgs::parse(&words(
        "Qwen/Qwen3-32B-AWQ -tp 2 --pipeline_parallel_size=1 --kv-cache-dtype FP8 \
         --max-model-len 131072 --gpu-memory-utilization 0.9 --gpu-memory-utilization=0.95 \
         --no-enable-chunked-prefill --enable-prefix-caching --max-num-seqs 48 \
         --kv-cache-memory-bytes 1G --block-size 32 --enforce-eager --quantization awq_marlin",
    ))
    .expect("parses");
    assert_eq!(args.tensor_parallel_size, Some(2));
    assert_eq!(args.pipeline_parallel_size, Some(1));
    assert_eq!(args.kv_cache_dtype.as_deref(), Some("fp8"));
    assert_eq!(args.max_model_len, Some(MaxModelLen::Tokens(131_072)));
    assert_eq!(args.gpu_memory_utilization, Some(0.95));
    assert_eq!(args.enable_chunked_prefill, Some(false));
    assert_eq!(args.max_num_seqs, Some(48));
    assert_eq!(args.kv_cache_memory_bytes, Some(1 << 30));
    assert_eq!(args.block_size, Some(32));
    assert!(args.enforce_eager);
    assert_eq!(args.quantization.as_deref(), Some("awq_marlin"));
    assert!(args.unmodelled.is_empty());

    let auto = ServeArgs::parse(&words("m --max-model-len auto")).expect("parses");
    assert_eq!(auto.max_model_len, Some(MaxModelLen::Auto));
    let spec = ServeArgs::parse(&words("m --speculative-config {} --enable-lora")).expect("parses");
    assert_eq!(spec.unmodelled, ["--speculative-config", "--enable-lora"]);
}

#[test]
fn values_argparse_refuses_are_errors_naming_the_flag() {
    for (command, flag) in [
        ("m --max-num-seqs abc", "max-num-seqs"),
        ("m --gpu-memory-utilization 1.5", "gpu-memory-utilization"),
        ("m --max-model-len lots", "max-model-len"),
        ("m --tensor-parallel-size 0", "tensor-parallel-size"),
    ] {
        let err = ServeArgs::parse(&words(command)).expect_err(command);
        assert_eq!(err.flag, flag, "{command}");
        assert!(err.to_string().contains(&format!("--{flag}")), "{err}");
    }
}
