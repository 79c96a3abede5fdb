//! Integration tests of the memory-model prediction: flags, config.json,
//! the GPU path's checks and capacity, and the CPU build's recorded cases.

mod args;
mod cpu_recorded;
mod gpu;
mod model;

use grid_predict::{
    FailureClass, GIB, Gpu, Hardware, Inputs, ModelFacts, Overheads, Prediction, ServeArgs,
};

/// The tiny Qwen3 of the real-vLLM tier (80,156,224 bytes of weights).
pub fn tiny() -> ModelFacts {
    let text = include_str!("../data/tiny-qwen3_config.json");
    let config: serde_json::Value = serde_json::from_str(text).expect("the fixture parses");
    ModelFacts::from_config(&config, 80_156_224).expect("the tiny model is supported")
}

/// Qwen3-32B-AWQ's shape as the simulator's defaults describe it (64
/// layers, 8 KV heads, head dim 128, 18 GiB of weights), with YaRN ×4.
pub fn qwen3_32b() -> ModelFacts {
    let config = serde_json::json!({
        "architectures": ["Qwen3ForCausalLM"],
        "num_hidden_layers": 64, "num_attention_heads": 64, "num_key_value_heads": 8,
        "head_dim": 128, "hidden_size": 5120, "intermediate_size": 25600,
        "vocab_size": 151936, "max_position_embeddings": 40960, "torch_dtype": "float16",
        "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768},
        "quantization_config": {"quant_method": "awq", "bits": 4}
    });
    ModelFacts::from_config(&config, 18 * GIB).expect("the 32B shape is supported")
}

/// Command-line words.
pub fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

/// `count` GPUs of `total_gib` with `used_gib` held by others.
pub fn gpus(count: usize, total_gib: f64, used_gib: f64) -> Hardware {
    Hardware::Gpus(
        (0..count)
            .map(|_| Gpu {
                name: None,
                total_bytes: (total_gib * GIB as f64) as u64,
                used_bytes: (used_gib * GIB as f64) as u64,
            })
            .collect(),
    )
}

/// The simulator's memory constants as a profile would declare them.
pub fn sim_overheads() -> Overheads {
    Overheads {
        non_torch_bytes: Some(GIB / 2),
        activation: Some(grid_predict::LinearActivation {
            fixed_bytes: GIB / 2,
            per_batched_token_bytes: 64 * 1024,
        }),
        cuda_graph_bytes: None,
        cpu_runtime_bytes: None,
    }
}

pub fn predict(
    model: ModelFacts,
    hardware: Hardware,
    overheads: Overheads,
    command: &str,
) -> Prediction {
    let inputs = Inputs {
        args: ServeArgs::parse(&words(command)).expect("the flags parse"),
        model: Some(model),
        hardware: Some(hardware),
        overheads,
        ..Inputs::default()
    };
    grid_predict::predict(&inputs)
}

/// What the tables compare: the verdict, its class, the predicted tokens.
pub type Outcome = (&'static str, Option<FailureClass>, Option<u64>);

pub fn outcome(prediction: &Prediction) -> Outcome {
    (
        prediction.verdict_name(),
        prediction.failure_class(),
        prediction.kv_capacity_tokens,
    )
}
