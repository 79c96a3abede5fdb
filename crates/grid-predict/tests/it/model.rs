//! What config.json gives the prediction, and what makes it unknown.

use grid_predict::{ModelError, ModelFacts};
use serde_json::json;

use crate::{qwen3_32b, tiny};

#[test]
fn the_kv_shape_comes_from_config_json() {
    let tiny = tiny();
    assert_eq!(
        (
            tiny.num_hidden_layers,
            tiny.num_key_value_heads,
            tiny.head_dim
        ),
        (2, 2, 64)
    );
    assert_eq!(tiny.max_model_len, 32_768);
    assert_eq!(tiny.dtype_bytes, 2);
    assert_eq!(tiny.vocab_size, Some(151_936));
    // YaRN ×4 over 32768 original positions extends the context to 131072.
    let big = qwen3_32b();
    assert_eq!(big.max_model_len, 131_072);
    assert_eq!(big.quantization.as_deref(), Some("awq"));
}

#[test]
fn head_dim_and_kv_heads_fall_back_as_vllm_does() {
    let facts = ModelFacts::from_config(
        &json!({"num_hidden_layers": 4, "num_attention_heads": 8, "hidden_size": 512,
                "max_position_embeddings": 2048, "torch_dtype": "float32",
                "text_config": null}),
        1,
    )
    .expect("supported");
    assert_eq!(facts.head_dim, 64);
    assert_eq!(
        facts.num_key_value_heads, 8,
        "no num_key_value_heads: one per head"
    );
    assert_eq!(
        facts.dtype_bytes, 2,
        "float32 checkpoints are served in 16 bits"
    );
}

#[test]
fn unsupported_attention_and_missing_keys_are_errors() {
    let base = json!({"num_hidden_layers": 2, "num_attention_heads": 4, "hidden_size": 256,
                      "max_position_embeddings": 4096});
    let with = |key: &str, value: serde_json::Value| {
        let mut config = base.clone();
        config[key] = value;
        ModelFacts::from_config(&config, 1)
    };
    assert!(matches!(
        with("kv_lora_rank", json!(512)),
        Err(ModelError::Unsupported { .. })
    ));
    assert!(matches!(
        with(
            "layer_types",
            json!(["full_attention", "sliding_attention"])
        ),
        Err(ModelError::Unsupported { .. })
    ));
    assert!(matches!(
        with("sliding_window", json!(4096)),
        Err(ModelError::Unsupported { .. })
    ));
    assert!(with("sliding_window", json!(null)).is_ok());
    let mut no_layers = base.clone();
    no_layers
        .as_object_mut()
        .expect("an object")
        .remove("num_hidden_layers");
    assert_eq!(
        ModelFacts::from_config(&no_layers, 1),
        Err(ModelError::Missing {
            key: "num_hidden_layers"
        })
    );
    assert_eq!(
        ModelFacts::from_config(&json!([1]), 1),
        Err(ModelError::NotAnObject)
    );
}
