//! [`BatteryConfig::validate`]: the bounds every value must keep, each
//! refusal naming its field.

use super::BatteryConfig;

/// The limits [`BatteryConfig::validate`] enforces.
pub const MAX_CONCURRENCY_LEVEL: usize = 4096;

/// The longest duration any `*_s` value may give: one week. Larger values
/// (or `1e20`) are refused rather than overflowing a [`std::time::Duration`].
pub const MAX_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

/// The range `max_event_bytes` may take.
const MIN_EVENT_BYTES: usize = 64 << 10;
const MAX_EVENT_BYTES: usize = 256 << 20;

/// Open-loop requests the stability benchmark may schedule.
const MAX_STABILITY_REQUESTS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid battery config: {field} {problem}")]
pub struct ConfigError {
    pub field: &'static str,
    pub problem: String,
}

impl BatteryConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let error = |field, problem: &str| {
            Err(ConfigError {
                field,
                problem: problem.to_string(),
            })
        };
        let positive = |value: f64| value > 0.0 && value <= MAX_SECONDS;
        let non_negative = |value: f64| (0.0..=MAX_SECONDS).contains(&value);
        for (field, value) in [
            ("request_timeout_s", self.request_timeout_s),
            ("idle_timeout_s", self.idle_timeout_s),
            ("connect_timeout_s", self.connect_timeout_s),
            ("benchmark_timeout_s", self.benchmark_timeout_s),
        ] {
            if !positive(value) {
                return error(
                    field,
                    "must be a positive number of seconds, at most 604800 (one week)",
                );
            }
        }
        if self.max_event_bytes < MIN_EVENT_BYTES || self.max_event_bytes > MAX_EVENT_BYTES {
            return error(
                "max_event_bytes",
                "must be between 65536 (64 KiB, above any vLLM chunk) and 268435456 (256 MiB)",
            );
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
        let pressure = &self.kv_cache_pressure;
        if pressure.conversations == 0 || pressure.conversations > super::MAX_PRESSURE_CONVERSATIONS
        {
            return error(
                "kv_cache_pressure.conversations",
                "must be between 1 and 64",
            );
        }
        if pressure.turns < 2 {
            return error(
                "kv_cache_pressure.turns",
                "must be at least 2 (turn 1 is the cold one)",
            );
        }
        if pressure.max_tokens == 0 {
            return error("kv_cache_pressure.max_tokens", "must be at least 1");
        }
        let guard = &self.noise_guard;
        if !(guard.max_excess_share.is_finite() && guard.max_excess_share >= 0.0) {
            return error(
                "noise_guard.max_excess_share",
                "must be a finite share of at least 0 (0.1 = 10 %)",
            );
        }
        if !(guard.max_excess_ms.is_finite()
            && (0.0..=MAX_SECONDS * 1000.0).contains(&guard.max_excess_ms))
        {
            return error(
                "noise_guard.max_excess_ms",
                "must be a finite number of milliseconds of at least 0",
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
        if !non_negative(stability.interval_s) {
            return error(
                "stability.interval_s",
                "must be zero or a positive number of seconds, at most 604800",
            );
        }
        if stability.requests > MAX_STABILITY_REQUESTS {
            return error("stability.requests", "must be at most 100000");
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
                "needs 0 < duration_s <= 604800 and max_requests_per_level >= 1 (both bound a level)",
            );
        }
        if concurrency.turns_per_conversation == 0 {
            return error("concurrency.turns_per_conversation", "must be at least 1");
        }
        if !positive(self.gpu_profile.interval_s) {
            return error(
                "gpu_profile.interval_s",
                "must be a positive number of seconds, at most 604800",
            );
        }
        if !non_negative(self.gpu_profile.standalone_duration_s) {
            return error(
                "gpu_profile.standalone_duration_s",
                "must be zero or a positive number of seconds, at most 604800",
            );
        }
        Ok(())
    }
}
