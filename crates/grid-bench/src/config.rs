//! The battery section of the config file, with the study's defaults.
//!
//! Every count and duration is explicit, so a dry run against a
//! time-scaled simulator can shrink each benchmark to a few seconds
//! ([`BatteryConfig::quick`]) while a real run keeps the defaults.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The seven benchmarks, in the order the battery runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BenchmarkName {
    KvCache,
    LongConversation,
    Reasoning,
    ToolCalling,
    Stability,
    Concurrency,
    GpuProfile,
}

impl BenchmarkName {
    pub const ALL: [BenchmarkName; 7] = [
        BenchmarkName::KvCache,
        BenchmarkName::LongConversation,
        BenchmarkName::Reasoning,
        BenchmarkName::ToolCalling,
        BenchmarkName::Stability,
        BenchmarkName::Concurrency,
        BenchmarkName::GpuProfile,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BenchmarkName::KvCache => "kv_cache",
            BenchmarkName::LongConversation => "long_conversation",
            BenchmarkName::Reasoning => "reasoning",
            BenchmarkName::ToolCalling => "tool_calling",
            BenchmarkName::Stability => "stability",
            BenchmarkName::Concurrency => "concurrency",
            BenchmarkName::GpuProfile => "gpu_profile",
        }
    }
}

impl fmt::Display for BenchmarkName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown benchmark {given:?}: expected one of kv_cache, long_conversation, reasoning, tool_calling, stability, concurrency, gpu_profile"
)]
pub struct UnknownBenchmark {
    pub given: String,
}

impl FromStr for BenchmarkName {
    type Err = UnknownBenchmark;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let wanted = text.trim().replace('-', "_");
        BenchmarkName::ALL
            .into_iter()
            .find(|name| name.as_str() == wanted)
            .ok_or_else(|| UnknownBenchmark {
                given: text.to_string(),
            })
    }
}

/// The whole battery configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatteryConfig {
    /// Which benchmarks run (all seven by default). `RunOptions::only`
    /// narrows this further.
    pub enabled: Vec<BenchmarkName>,
    /// Send to `[DONE]`, at most, per request (seconds).
    pub request_timeout_s: f64,
    /// A benchmark reports numbers only with at least this many successful
    /// requests (per compared group); otherwise it says "insufficient
    /// samples".
    pub min_successful_samples: usize,
    /// Bootstrap resamples for confidence intervals.
    pub bootstrap_resamples: usize,
    /// Service-level objectives for goodput (requests meeting all of them).
    pub slo: SloConfig,
    pub kv_cache: KvCacheConfig,
    pub long_conversation: LongConversationConfig,
    pub reasoning: ReasoningConfig,
    pub tool_calling: ToolCallingConfig,
    pub stability: StabilityConfig,
    pub concurrency: ConcurrencyConfig,
    pub gpu_profile: GpuProfileConfig,
}

impl Default for BatteryConfig {
    fn default() -> Self {
        Self {
            enabled: BenchmarkName::ALL.to_vec(),
            request_timeout_s: 300.0,
            min_successful_samples: 3,
            bootstrap_resamples: grid_core::DEFAULT_RESAMPLES,
            slo: SloConfig::default(),
            kv_cache: KvCacheConfig::default(),
            long_conversation: LongConversationConfig::default(),
            reasoning: ReasoningConfig::default(),
            tool_calling: ToolCallingConfig::default(),
            stability: StabilityConfig::default(),
            concurrency: ConcurrencyConfig::default(),
            gpu_profile: GpuProfileConfig::default(),
        }
    }
}

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

/// The limits [`BatteryConfig::validate`] enforces.
pub const MAX_CONCURRENCY_LEVEL: usize = 4096;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid battery config: {field} {problem}")]
pub struct ConfigError {
    pub field: &'static str,
    pub problem: String,
}

impl BatteryConfig {
    /// A configuration that finishes in seconds against a fast (time-scaled)
    /// simulator: every benchmark runs, with the smallest counts that still
    /// give a number.
    pub fn quick() -> Self {
        Self {
            request_timeout_s: 30.0,
            bootstrap_resamples: 500,
            kv_cache: KvCacheConfig {
                iterations: 3,
                turns: 3,
                prefix_words: 400,
                turn_words: 10,
                max_tokens: 8,
                ..KvCacheConfig::default()
            },
            long_conversation: LongConversationConfig {
                iterations: 1,
                turns: 6,
                user_words: 30,
                max_tokens: 16,
            },
            reasoning: ReasoningConfig {
                max_tokens: 64,
                ..ReasoningConfig::default()
            },
            tool_calling: ToolCallingConfig {
                // Room for a thinking section before the call.
                max_tokens: 256,
                ..ToolCallingConfig::default()
            },
            stability: StabilityConfig {
                requests: 12,
                interval_s: 0.1,
                short_output_tokens: [5, 10],
                long_output_tokens: [40, 50],
                compare_window: 3,
                prompt_words: 20,
            },
            concurrency: ConcurrencyConfig {
                levels: vec![1, 4],
                duration_s: 2.0,
                max_requests_per_level: 24,
                turns_per_conversation: 2,
                prompt_words: 40,
                max_tokens: 16,
                ignore_eos: true,
            },
            gpu_profile: GpuProfileConfig {
                standalone_duration_s: 1.0,
                ..GpuProfileConfig::default()
            },
            ..Self::default()
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let error = |field, problem: &str| {
            Err(ConfigError {
                field,
                problem: problem.to_string(),
            })
        };
        let positive = |value: f64| value.is_finite() && value > 0.0;
        if !positive(self.request_timeout_s) {
            return error("request_timeout_s", "must be a positive number of seconds");
        }
        if self.min_successful_samples == 0 {
            return error("min_successful_samples", "must be at least 1");
        }
        if self.kv_cache.iterations == 0 || self.kv_cache.turns < 2 {
            return error(
                "kv_cache",
                "needs iterations >= 1 and turns >= 2 (turn 1 is the cold one)",
            );
        }
        if self.long_conversation.iterations == 0 || self.long_conversation.turns < 3 {
            return error(
                "long_conversation",
                "needs iterations >= 1 and turns >= 3 (first and last thirds are compared)",
            );
        }
        if self.reasoning.repetitions == 0 || self.tool_calling.repetitions == 0 {
            return error("reasoning/tool_calling", "repetitions must be at least 1");
        }
        if !matches!(self.tool_calling.tool_choice.as_str(), "auto" | "required") {
            return error(
                "tool_calling.tool_choice",
                "must be \"auto\" or \"required\"",
            );
        }
        let stability = &self.stability;
        if stability.requests < 2 || stability.compare_window == 0 {
            return error("stability", "needs requests >= 2 and compare_window >= 1");
        }
        if !(stability.interval_s.is_finite() && stability.interval_s >= 0.0) {
            return error("stability.interval_s", "must be zero or a positive number");
        }
        for (field, range) in [
            (
                "stability.short_output_tokens",
                stability.short_output_tokens,
            ),
            ("stability.long_output_tokens", stability.long_output_tokens),
        ] {
            if range[0] == 0 || range[0] > range[1] {
                return error(field, "must be [low, high] with 1 <= low <= high");
            }
        }
        let concurrency = &self.concurrency;
        if concurrency.levels.is_empty()
            || concurrency
                .levels
                .iter()
                .any(|&level| level == 0 || level > MAX_CONCURRENCY_LEVEL)
        {
            return error("concurrency.levels", "must list levels between 1 and 4096");
        }
        if !positive(concurrency.duration_s) || concurrency.max_requests_per_level == 0 {
            return error(
                "concurrency",
                "needs duration_s > 0 and max_requests_per_level >= 1 (both bound a level)",
            );
        }
        if concurrency.turns_per_conversation == 0 {
            return error("concurrency.turns_per_conversation", "must be at least 1");
        }
        if !positive(self.gpu_profile.interval_s) {
            return error(
                "gpu_profile.interval_s",
                "must be a positive number of seconds",
            );
        }
        Ok(())
    }
}
