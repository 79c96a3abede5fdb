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

/// The pressured KV-cache workload: many conversations at once, each with
/// a long, growing history, so the share of memory given to the KV cache
/// decides how much of each history is still cached at its next turn.
///
/// The text comes from `text_seed` alone (and a run tag of fixed length), so
/// every config of a search gets the same workload: the same prompts, the
/// same lengths, in the same order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KvCachePressureConfig {
    /// Conversations in flight at once (1..=64).
    pub conversations: usize,
    /// Rounds: in each, every conversation sends its whole history plus a
    /// new user message. Round 1 is cold, rounds 2.. are warm.
    pub turns: usize,
    /// Words of each conversation's opening message (about 1.3 tokens per
    /// word), unique per conversation.
    pub opening_words: usize,
    /// Words of each later user message.
    pub turn_words: usize,
    pub max_tokens: u32,
    /// Seeds the text; the battery's own seed does not enter it.
    pub text_seed: u64,
}

/// The most conversations the pressured workload runs at once.
pub const MAX_PRESSURE_CONVERSATIONS: usize = 64;

impl Default for KvCachePressureConfig {
    fn default() -> Self {
        // The study's use case in a size a GPU box runs in minutes: 16
        // agents, 12 turns, about 2.6k tokens of opening each and 200 per
        // turn, so the histories end near 100k tokens in all.
        Self {
            conversations: 16,
            turns: 12,
            opening_words: 2000,
            turn_words: 150,
            max_tokens: 64,
            text_seed: 20240601,
        }
    }
}

/// The noise guard: a benchmark whose client-side mean TTFT exceeds the
/// server's own (from `vllm:time_to_first_token_seconds` sum and count)
/// by more than both bounds is marked `disturbed`.
///
/// Both must be exceeded, because the client's path has a fixed cost and a
/// share: real vLLM's Python front end (HTTP, SSE, detokenising) adds
/// 17–45 ms to its own TTFT on an idle host, which is 1.5–9 % of the
/// pressured workload's 0.3–1.2 s TTFTs but 10–25 % of a 100 ms TTFT. So the
/// defaults (10 %, 50 ms) clear that path whatever the TTFT and still catch
/// a host that doubles it on long prompts. The simulator's front end costs
/// microseconds, so the dry run sets the floor to 2 ms
/// (`vllm_grid::dry_run`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NoiseGuardConfig {
    /// The client's excess over the server's mean, as a share of it.
    pub max_excess_share: f64,
    /// The client's excess over the server's mean, in milliseconds.
    pub max_excess_ms: f64,
}

impl Default for NoiseGuardConfig {
    fn default() -> Self {
        Self {
            max_excess_share: 0.10,
            max_excess_ms: 50.0,
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
