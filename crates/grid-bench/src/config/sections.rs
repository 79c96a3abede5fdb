//! The per-benchmark sections of the battery config, with the study's
//! defaults.

use serde::{Deserialize, Serialize};

/// Goodput SLOs in milliseconds, `vllm bench serve --goodput` style; an
/// absent value is not checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SloConfig {
    pub ttft_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
    pub e2el_ms: Option<f64>,
}

impl Default for SloConfig {
    fn default() -> Self {
        Self {
            ttft_ms: Some(2000.0),
            tpot_ms: Some(100.0),
            e2el_ms: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KvCacheConfig {
    /// Fresh conversations, each with its own nonce.
    pub iterations: usize,
    /// Turns per conversation: turn 1 is cold, turns 2.. are warm.
    pub turns: usize,
    /// Words of shared context in turn 1 (about 1.3 tokens per word).
    pub prefix_words: usize,
    /// Words of each later user message.
    pub turn_words: usize,
    pub max_tokens: u32,
    /// Also send one long prompt cold and then again unchanged.
    pub equal_length_variant: bool,
    /// An acceleration whose 95% interval lies above this counts as a
    /// cache effect (when the server confirms hits).
    pub effect_threshold: f64,
}

impl Default for KvCacheConfig {
    fn default() -> Self {
        Self {
            iterations: 5,
            turns: 5,
            prefix_words: 1500,
            turn_words: 20,
            max_tokens: 32,
            equal_length_variant: true,
            effect_threshold: 1.2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LongConversationConfig {
    pub iterations: usize,
    pub turns: usize,
    pub user_words: usize,
    pub max_tokens: u32,
}

impl Default for LongConversationConfig {
    fn default() -> Self {
        Self {
            iterations: 3,
            turns: 15,
            user_words: 120,
            max_tokens: 128,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReasoningConfig {
    pub max_tokens: u32,
    /// Times each of the three tasks is asked.
    pub repetitions: usize,
    pub temperature: f32,
}

impl Default for ReasoningConfig {
    fn default() -> Self {
        Self {
            max_tokens: 4096,
            repetitions: 1,
            temperature: 0.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolCallingConfig {
    pub max_tokens: u32,
    /// Times each of the three scenarios runs.
    pub repetitions: usize,
    /// `"auto"` needs `--enable-auto-tool-choice`; `"required"` forces a call.
    pub tool_choice: String,
    pub temperature: f32,
}

impl Default for ToolCallingConfig {
    fn default() -> Self {
        Self {
            max_tokens: 512,
            repetitions: 1,
            tool_choice: "auto".into(),
            temperature: 0.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StabilityConfig {
    /// Requests in total, alternating short and long.
    pub requests: usize,
    /// Fixed interval between scheduled starts (open loop), seconds.
    pub interval_s: f64,
    /// Output length range of short requests, tokens.
    pub short_output_tokens: [u32; 2],
    /// Output length range of long requests, tokens.
    pub long_output_tokens: [u32; 2],
    /// Requests of each kind compared: first N against last N.
    pub compare_window: usize,
    pub prompt_words: usize,
}

impl Default for StabilityConfig {
    fn default() -> Self {
        Self {
            requests: 20,
            interval_s: 5.0,
            short_output_tokens: [50, 100],
            long_output_tokens: [800, 900],
            compare_window: 5,
            prompt_words: 60,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConcurrencyConfig {
    /// Simultaneous users per level.
    pub levels: Vec<usize>,
    /// Time bound per level, seconds.
    pub duration_s: f64,
    /// Count bound per level: no new request starts after this many.
    pub max_requests_per_level: usize,
    /// Turns of each user's conversation before it starts a new one.
    pub turns_per_conversation: usize,
    pub prompt_words: usize,
    pub max_tokens: u32,
    /// Send `ignore_eos` so every reply has `max_tokens` tokens, like
    /// `vllm bench serve --ignore-eos`.
    pub ignore_eos: bool,
}

impl Default for ConcurrencyConfig {
    fn default() -> Self {
        Self {
            levels: vec![1, 5, 10, 32],
            duration_s: 60.0,
            max_requests_per_level: 320,
            turns_per_conversation: 4,
            prompt_words: 200,
            max_tokens: 128,
            ignore_eos: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GpuProfileConfig {
    pub command: String,
    pub interval_s: f64,
    pub memory_alert_fraction: f64,
    pub temperature_alert_c: f64,
    pub low_utilization_alert_percent: f64,
    /// Sampling window when the concurrency benchmark does not run.
    pub standalone_duration_s: f64,
}

impl Default for GpuProfileConfig {
    fn default() -> Self {
        Self {
            command: "nvidia-smi".into(),
            interval_s: 1.0,
            memory_alert_fraction: 0.95,
            temperature_alert_c: 85.0,
            low_utilization_alert_percent: 50.0,
            standalone_duration_s: 10.0,
        }
    }
}
