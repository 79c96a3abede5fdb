//! What the model's `config.json` and its weight files say: the KV cache's
//! shape, the activation estimate's dimensions, the longest context, and
//! the bytes of weights to load.

use serde_json::Value;

/// The model facts the memory model needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFacts {
    /// `architectures[0]`, for messages.
    pub architecture: Option<String>,
    pub num_hidden_layers: u64,
    pub num_attention_heads: u64,
    pub num_key_value_heads: u64,
    pub head_dim: u64,
    pub hidden_size: u64,
    /// The MLP width (`intermediate_size`), for the activation estimate.
    pub intermediate_size: Option<u64>,
    pub vocab_size: Option<u64>,
    /// The longest context the model allows (vLLM's derived max_model_len).
    pub max_model_len: u64,
    /// Bytes per element of the checkpoint's dtype as vLLM serves it with
    /// `--dtype auto` (float32 checkpoints are served in 16 bits).
    pub dtype_bytes: u64,
    /// `quantization_config.quant_method`, when the checkpoint is quantized.
    pub quantization: Option<String>,
    /// The weights' size on disk (`*.safetensors`, else `*.bin`/`*.pt`).
    pub weights_bytes: u64,
}

/// Why a `config.json` cannot be used for a prediction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("config.json is not a JSON object")]
    NotAnObject,
    #[error("config.json has no usable `{key}` (a positive integer)")]
    Missing { key: &'static str },
    #[error(
        "config.json describes {what}; the memory model covers full-attention decoders only, so the prediction is unknown"
    )]
    Unsupported { what: String },
}

fn positive(config: &serde_json::Map<String, Value>, key: &str) -> Option<u64> {
    config.get(key).and_then(Value::as_u64).filter(|n| *n > 0)
}

impl ModelFacts {
    /// Reads `config.json` (multimodal configs: their `text_config`).
    pub fn from_config(config: &Value, weights_bytes: u64) -> Result<ModelFacts, ModelError> {
        let top = config.as_object().ok_or(ModelError::NotAnObject)?;
        let text = top
            .get("text_config")
            .and_then(Value::as_object)
            .unwrap_or(top);
        let get = |key: &'static str| positive(text, key).ok_or(ModelError::Missing { key });
        if text.contains_key("kv_lora_rank") {
            return Err(ModelError::Unsupported {
                what: "multi-head latent attention (kv_lora_rank)".to_string(),
            });
        }
        if let Some(kinds) = text.get("layer_types").and_then(Value::as_array) {
            if kinds.iter().any(|k| k.as_str() != Some("full_attention")) {
                return Err(ModelError::Unsupported {
                    what: "layers other than full attention (layer_types)".to_string(),
                });
            }
        }
        let sliding = text.get("sliding_window").is_some_and(|w| !w.is_null())
            && text.get("use_sliding_window").and_then(Value::as_bool) != Some(false);
        if sliding {
            return Err(ModelError::Unsupported {
                what: "sliding-window attention (sliding_window)".to_string(),
            });
        }
        let num_hidden_layers = get("num_hidden_layers")?;
        let num_attention_heads = get("num_attention_heads")?;
        let hidden_size = get("hidden_size")?;
        let num_key_value_heads =
            positive(text, "num_key_value_heads").unwrap_or(num_attention_heads);
        let head_dim = positive(text, "head_dim").unwrap_or(hidden_size / num_attention_heads);
        if head_dim == 0 {
            return Err(ModelError::Missing { key: "head_dim" });
        }
        let max_model_len = derived_max_model_len(text).ok_or(ModelError::Missing {
            key: "max_position_embeddings",
        })?;
        let dtype = text
            .get("torch_dtype")
            .or_else(|| text.get("dtype"))
            .or_else(|| top.get("torch_dtype"))
            .or_else(|| top.get("dtype"))
            .and_then(Value::as_str)
            .unwrap_or("bfloat16");
        // vLLM's `--dtype auto` downcasts float32 checkpoints to 16 bits
        // (`vllm/config/model.py`, "Downcast for float32 models").
        let dtype_bytes = if matches!(dtype, "float64" | "double") {
            8
        } else {
            2
        };
        let quantization = top
            .get("quantization_config")
            .and_then(|q| q.get("quant_method"))
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase);
        Ok(ModelFacts {
            architecture: top
                .get("architectures")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(Value::as_str)
                .map(str::to_string),
            num_hidden_layers,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            hidden_size,
            intermediate_size: positive(text, "intermediate_size"),
            vocab_size: positive(text, "vocab_size"),
            max_model_len,
            dtype_bytes,
            quantization,
            weights_bytes,
        })
    }
}

/// vLLM's derived max_model_len (`_get_and_verify_max_len`, simplified):
/// the smallest of the length keys a config sets, times a RoPE scaling
/// factor for the scaling types that extend the context.
fn derived_max_model_len(text: &serde_json::Map<String, Value>) -> Option<u64> {
    let keys = [
        "max_position_embeddings",
        "n_positions",
        "max_seq_len",
        "seq_length",
        "max_sequence_length",
        "max_seq_length",
        "seq_len",
    ];
    let mut derived = keys.iter().filter_map(|k| positive(text, k)).min()?;
    let scaling = text
        .get("rope_scaling")
        .or_else(|| text.get("rope_parameters"))
        .and_then(Value::as_object);
    if let Some(scaling) = scaling {
        let kind = scaling
            .get("rope_type")
            .or_else(|| scaling.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let factor = scaling.get("factor").and_then(Value::as_f64);
        // These types keep max_position_embeddings as the limit.
        let keeps = matches!(kind, "su" | "longrope" | "llama3" | "default" | "");
        if let (false, Some(factor)) = (keeps, factor) {
            let base = match kind {
                "yarn" => positive(scaling, "original_max_position_embeddings").unwrap_or(derived),
                _ => derived,
            };
            derived = (base as f64 * factor) as u64;
        }
    }
    Some(derived)
}
