//! The battery section of the config file, with the study's defaults.
//!
//! Every count and duration is explicit, so a dry run against a
//! time-scaled simulator can shrink each benchmark to a few seconds
//! ([`BatteryConfig::quick`]) while a real run keeps the defaults.
//!
//! Durations are seconds in the file (`*_s`); [`BatteryConfig::validate`]
//! bounds them (finite, positive where needed, at most [`MAX_SECONDS`]), and
//! the typed accessors ([`BatteryConfig::request_timeout`], ...) turn them
//! into [`Duration`]s without a panic whatever the value.

mod sections;
mod validate;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use sections::{
    ConcurrencyConfig, GpuProfileConfig, KvCacheConfig, KvCachePressureConfig,
    LongConversationConfig, MAX_PRESSURE_CONVERSATIONS, NoiseGuardConfig, ReasoningConfig,
    SloConfig, StabilityConfig, ToolCallingConfig,
};
pub use validate::{ConfigError, MAX_CONCURRENCY_LEVEL, MAX_SECONDS};

/// The eight benchmarks, in the order the battery runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BenchmarkName {
    KvCache,
    KvCachePressure,
    LongConversation,
    Reasoning,
    ToolCalling,
    Stability,
    Concurrency,
    GpuProfile,
}

impl BenchmarkName {
    pub const ALL: [BenchmarkName; 8] = [
        BenchmarkName::KvCache,
        BenchmarkName::KvCachePressure,
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
            BenchmarkName::KvCachePressure => "kv_cache_pressure",
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
    "unknown benchmark {given:?}: expected one of kv_cache, kv_cache_pressure, long_conversation, reasoning, tool_calling, stability, concurrency, gpu_profile"
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
    /// Which benchmarks run (all eight by default). `RunOptions::only`
    /// narrows this further.
    pub enabled: Vec<BenchmarkName>,
    /// Send to `[DONE]`, at most, per request (seconds).
    pub request_timeout_s: f64,
    /// Longest wait for a token-bearing event, from the send to the first
    /// and between two (seconds). SSE keep-alive comments and events without
    /// a token do not reset it; a request past it fails as `idle_timeout`.
    pub idle_timeout_s: f64,
    /// Longest wait for a TCP (and TLS) connection (seconds).
    pub connect_timeout_s: f64,
    /// Wall-clock bound per benchmark (seconds): after it the benchmark
    /// starts no request, its requests in flight fail as
    /// `benchmark_timeout`, and it ends as `timed_out` with what it has.
    pub benchmark_timeout_s: f64,
    /// Cap on one SSE line and on one event's data (bytes); a reply past it
    /// fails as `oversized_event` without the client buffering more.
    pub max_event_bytes: usize,
    /// A benchmark reports numbers only with at least this many successful
    /// requests (per compared group); otherwise it says "insufficient
    /// samples".
    pub min_successful_samples: usize,
    /// Bootstrap resamples for confidence intervals.
    pub bootstrap_resamples: usize,
    /// Service-level objectives for goodput (requests meeting all of them).
    pub slo: SloConfig,
    /// When a benchmark's client TTFT is too far above the server's own.
    pub noise_guard: NoiseGuardConfig,
    pub kv_cache: KvCacheConfig,
    pub kv_cache_pressure: KvCachePressureConfig,
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
            idle_timeout_s: crate::client::DEFAULT_IDLE_TIMEOUT.as_secs_f64(),
            connect_timeout_s: crate::client::DEFAULT_CONNECT_TIMEOUT.as_secs_f64(),
            benchmark_timeout_s: DEFAULT_BENCHMARK_TIMEOUT_S,
            max_event_bytes: crate::sse::DEFAULT_MAX_EVENT_BYTES,
            min_successful_samples: 3,
            bootstrap_resamples: grid_core::DEFAULT_RESAMPLES,
            slo: SloConfig::default(),
            noise_guard: NoiseGuardConfig::default(),
            kv_cache: KvCacheConfig::default(),
            kv_cache_pressure: KvCachePressureConfig::default(),
            long_conversation: LongConversationConfig::default(),
            reasoning: ReasoningConfig::default(),
            tool_calling: ToolCallingConfig::default(),
            stability: StabilityConfig::default(),
            concurrency: ConcurrencyConfig::default(),
            gpu_profile: GpuProfileConfig::default(),
        }
    }
}

/// The default wall-clock bound per benchmark: 30 minutes, well above what
/// the default counts take on a GPU (the concurrency benchmark, the
/// longest, is bounded near 4 × 60 s plus its last replies), yet a bound on
/// a server that answers too slowly to finish.
pub const DEFAULT_BENCHMARK_TIMEOUT_S: f64 = 1800.0;

/// Seconds as a [`Duration`], for a value [`BatteryConfig::validate`] has
/// bounded; any other value saturates instead of panicking.
pub(crate) fn duration(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds).unwrap_or(if seconds > 0.0 {
        Duration::from_secs_f64(MAX_SECONDS)
    } else {
        Duration::ZERO
    })
}

impl BatteryConfig {
    pub fn request_timeout(&self) -> Duration {
        duration(self.request_timeout_s)
    }

    pub fn idle_timeout(&self) -> Duration {
        duration(self.idle_timeout_s)
    }

    pub fn connect_timeout(&self) -> Duration {
        duration(self.connect_timeout_s)
    }

    pub fn benchmark_timeout(&self) -> Duration {
        duration(self.benchmark_timeout_s)
    }

    /// A configuration that finishes in seconds against a fast (time-scaled)
    /// simulator: every benchmark runs, with the smallest counts that still
    /// give a number.
    pub fn quick() -> Self {
        Self {
            request_timeout_s: 30.0,
            idle_timeout_s: 10.0,
            benchmark_timeout_s: 120.0,
            bootstrap_resamples: 500,
            kv_cache: KvCacheConfig {
                iterations: 3,
                turns: 3,
                prefix_words: 400,
                turn_words: 10,
                max_tokens: 8,
                ..KvCacheConfig::default()
            },
            kv_cache_pressure: KvCachePressureConfig {
                conversations: 4,
                turns: 3,
                opening_words: 300,
                turn_words: 20,
                max_tokens: 8,
                ..KvCachePressureConfig::default()
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
}
