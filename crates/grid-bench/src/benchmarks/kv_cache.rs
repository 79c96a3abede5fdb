//! kv_cache: cold versus warm time to first token.
//!
//! Each iteration opens a conversation whose first message starts with a
//! unique nonce, so nothing of it can be cached from earlier work. Turn 1
//! is cold (TTFT_miss); turns 2..T re-send the whole history plus a short
//! new message (TTFT_hit). Per iteration, acceleration = TTFT_miss /
//! median(TTFT_hit); the report gives the median over iterations with a
//! bootstrap 95% interval. The equal-length variant sends one long prompt
//! cold and then again unchanged. The server's `cached_tokens` and prefix
//! cache counters are the cross-check: an acceleration is only called a
//! cache effect when the server confirms hits.
//!
//! A failed turn ends its iteration: the conversation is not continued with
//! an empty assistant turn (a history the model never wrote), the
//! iteration is marked with the turn and the reason, and it gives no
//! acceleration (its warm median would rest on fewer turns than the
//! others'). The wall-clock bound ends the benchmark the same way, with
//! the iterations it finished.

use serde::{Deserialize, Serialize};

use super::{Cancelled, Context, FailedTurn, filler, required_samples};
use crate::config::BenchmarkName;
use crate::metrics::MetricsDelta;
use crate::openai::{ChatMessage, ChatRequest};
use grid_core::{Estimate, bootstrap_median, median};

const NAME: BenchmarkName = BenchmarkName::KvCache;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IterationResult {
    pub ttft_miss_ms: Option<f64>,
    pub ttft_hit_ms: Vec<f64>,
    pub acceleration: Option<f64>,
    pub cold_prompt_tokens: Option<u64>,
    pub cold_cached_tokens: Option<u64>,
    /// Prompt tokens of the warm turns whose prompt and cached counts
    /// the server both reported (the base of `warm_cached_fraction`).
    pub warm_prompt_tokens: u64,
    pub warm_cached_tokens: Option<u64>,
    /// Set when a turn failed and ended the iteration: which turn, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_turn: Option<FailedTurn>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EqualLengthResult {
    pub ttft_cold_ms: Option<f64>,
    pub ttft_repeat_ms: Option<f64>,
    pub acceleration: Option<f64>,
    pub repeat_cached_tokens: Option<u64>,
    pub prompt_tokens: Option<u64>,
}

/// The verdict on whether a prefix-cache effect was measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum CacheEffect {
    /// Warm turns are faster and the server reports the cache hits.
    Confirmed,
    /// No acceleration beyond the threshold; no effect is claimed.
    NotObserved,
    /// Faster warm turns, but the server exposes neither `cached_tokens`
    /// nor prefix-cache counters, so the cause is unverified.
    Unverified,
    /// The latency and the server disagree; the explanation says how.
    Disagreement { explanation: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KvCacheReport {
    pub iterations: Vec<IterationResult>,
    pub acceleration: Option<Estimate>,
    pub ttft_miss_ms: Option<f64>,
    pub ttft_hit_ms: Option<f64>,
    pub equal_length: Vec<EqualLengthResult>,
    pub equal_length_acceleration: Option<Estimate>,
    /// Cached share of the warm turns' prompt tokens, from `usage`.
    pub warm_cached_fraction: Option<f64>,
    /// Whether the server's own numbers show prefix-cache hits (`None`:
    /// the server reports neither cached tokens nor prefix-cache metrics).
    pub server_confirms_hits: Option<bool>,
    pub cache_effect: CacheEffect,
    pub effect_threshold: f64,
    /// The resamples of the bootstrap behind `acceleration`.
    #[serde(default = "default_resamples")]
    pub bootstrap_resamples: usize,
}

fn default_resamples() -> usize {
    grid_core::DEFAULT_RESAMPLES
}

/// Runs the benchmark. The metrics delta is taken by the caller; it is
/// passed in afterwards through [`KvCacheReport::cross_check`].
pub async fn run(context: &Context<'_>) -> Result<(KvCacheReport, usize, usize), Cancelled> {
    let config = &context.config.kv_cache;
    let mut rng = context.rng(1);
    let mut iterations = Vec::new();
    for iteration in 1..=config.iterations {
        if context.expired() {
            break;
        }
        let nonce = context.nonce(NAME, &format!("i{iteration}"));
        let mut messages = vec![
            ChatMessage::system(format!(
                "Session {nonce}. You are a careful assistant. Reference material follows.\n{}",
                filler(&mut rng, config.prefix_words)
            )),
            ChatMessage::user(format!(
                "Summarise the reference material in one sentence. {}",
                filler(&mut rng, config.turn_words)
            )),
        ];
        let mut result = IterationResult {
            ttft_miss_ms: None,
            ttft_hit_ms: Vec::new(),
            acceleration: None,
            cold_prompt_tokens: None,
            cold_cached_tokens: None,
            warm_prompt_tokens: 0,
            warm_cached_tokens: None,
            failed_turn: None,
        };
        for turn in 1..=config.turns {
            if turn > 1 && context.expired() {
                break;
            }
            if turn > 1 {
                messages.push(ChatMessage::user(format!(
                    "Now add one detail. {}",
                    filler(&mut rng, config.turn_words)
                )));
            }
            let request = ChatRequest {
                messages: messages.clone(),
                max_tokens: config.max_tokens,
                temperature: Some(0.0),
                ..ChatRequest::default()
            };
            let label = format!(
                "iteration {iteration} turn {turn}{}",
                if turn == 1 { " cold" } else { " warm" }
            );
            let exchange = context.send(NAME, &request, label).await?;
            let record = &exchange.record;
            if let Some(failed) = FailedTurn::from_record(turn, record) {
                // Stop here: going on would send the model a history with an
                // empty assistant turn it never wrote.
                result.failed_turn = Some(failed);
                break;
            }
            let usage = record.usage.unwrap_or_default();
            if turn == 1 {
                result.ttft_miss_ms = record.ttft_ms;
                result.cold_prompt_tokens = usage.prompt_tokens;
                result.cold_cached_tokens = usage.cached_tokens;
            } else if let Some(ttft) = record.ttft_ms {
                result.ttft_hit_ms.push(ttft);
                if let (Some(prompt), Some(cached)) = (usage.prompt_tokens, usage.cached_tokens) {
                    result.warm_prompt_tokens += prompt;
                    *result.warm_cached_tokens.get_or_insert(0) += cached;
                }
            }
            messages.push(ChatMessage::assistant(exchange.reply.answer.clone()));
        }
        let complete = result.failed_turn.is_none() && result.ttft_hit_ms.len() + 1 == config.turns;
        result.acceleration = match (result.ttft_miss_ms, median(&result.ttft_hit_ms)) {
            (Some(miss), Some(hit)) if hit > 0.0 && complete => Some(miss / hit),
            _ => None,
        };
        iterations.push(result);
    }

    let mut equal_length = Vec::new();
    if config.equal_length_variant {
        for iteration in 1..=config.iterations {
            if context.expired() {
                break;
            }
            let nonce = context.nonce(NAME, &format!("e{iteration}"));
            let request = ChatRequest {
                messages: vec![
                    ChatMessage::system(format!(
                        "Session {nonce}. You are a careful assistant. Reference material follows.\n{}",
                        filler(&mut rng, config.prefix_words)
                    )),
                    ChatMessage::user("Summarise the reference material in one sentence."),
                ],
                max_tokens: config.max_tokens,
                temperature: Some(0.0),
                ..ChatRequest::default()
            };
            let cold = context
                .send(NAME, &request, format!("equal-length {iteration} cold"))
                .await?;
            // After a failed cold request the repeat would be cold itself.
            let repeat = if cold.record.succeeded() && !context.expired() {
                Some(
                    context
                        .send(NAME, &request, format!("equal-length {iteration} repeat"))
                        .await?,
                )
            } else {
                None
            };
            let ttft = |exchange: &crate::client::Exchange| {
                exchange
                    .record
                    .succeeded()
                    .then_some(exchange.record.ttft_ms)
                    .flatten()
            };
            let (cold_ttft, repeat_ttft) = (ttft(&cold), repeat.as_ref().and_then(ttft));
            equal_length.push(EqualLengthResult {
                ttft_cold_ms: cold_ttft,
                ttft_repeat_ms: repeat_ttft,
                acceleration: match (cold_ttft, repeat_ttft) {
                    (Some(cold), Some(repeat)) if repeat > 0.0 => Some(cold / repeat),
                    _ => None,
                },
                repeat_cached_tokens: repeat
                    .as_ref()
                    .and_then(|repeat| repeat.record.usage)
                    .and_then(|u| u.cached_tokens),
                prompt_tokens: cold.record.usage.and_then(|u| u.prompt_tokens),
            });
        }
    }

    let accelerations: Vec<f64> = iterations.iter().filter_map(|i| i.acceleration).collect();
    let equal_accelerations: Vec<f64> =
        equal_length.iter().filter_map(|e| e.acceleration).collect();
    let resamples = context.config.bootstrap_resamples;
    let misses: Vec<f64> = iterations.iter().filter_map(|i| i.ttft_miss_ms).collect();
    let hits: Vec<f64> = iterations
        .iter()
        .flat_map(|i| i.ttft_hit_ms.iter().copied())
        .collect();
    let warm_prompt: u64 = iterations.iter().map(|i| i.warm_prompt_tokens).sum();
    let warm_cached: Option<u64> = iterations
        .iter()
        .filter_map(|i| i.warm_cached_tokens)
        .reduce(|a, b| a + b);
    let report = KvCacheReport {
        acceleration: bootstrap_median(&accelerations, resamples, context.seed),
        equal_length_acceleration: bootstrap_median(
            &equal_accelerations,
            resamples,
            context.seed ^ 1,
        ),
        ttft_miss_ms: median(&misses),
        ttft_hit_ms: median(&hits),
        warm_cached_fraction: warm_cached
            .filter(|_| warm_prompt > 0)
            .map(|cached| cached as f64 / warm_prompt as f64),
        iterations,
        equal_length,
        server_confirms_hits: None,
        cache_effect: CacheEffect::NotObserved,
        effect_threshold: config.effect_threshold,
        bootstrap_resamples: resamples,
    };
    let good = accelerations.len();
    let required = required_samples(context.config, config.iterations);
    Ok((report, good, required))
}

impl KvCacheReport {
    /// Combines the latency result with the server's own evidence.
    pub fn cross_check(&mut self, metrics: Option<&MetricsDelta>) {
        let from_usage = self.warm_cached_fraction.map(|fraction| fraction > 0.05);
        let from_metrics = metrics
            .and_then(|m| m.prefix_cache_hits.zip(m.prefix_cache_queries))
            .filter(|(_, queries)| *queries > 0.0)
            .map(|(hits, queries)| hits / queries > 0.05);
        // Usage is per request and exact; the counters include every
        // client of the server, so they only decide when usage is silent.
        self.server_confirms_hits = from_usage.or(from_metrics);
        self.cache_effect = verdict(
            self.acceleration,
            self.effect_threshold,
            self.server_confirms_hits,
        );
    }

    pub fn claims_cache_effect(&self) -> bool {
        matches!(self.cache_effect, CacheEffect::Confirmed)
    }
}

/// The verdict from the latency and the server's evidence, for both KV-cache
/// benchmarks: an effect is claimed only when the interval's low end clears
/// the threshold *and* the server reports hits.
pub(crate) fn verdict(
    acceleration: Option<Estimate>,
    threshold: f64,
    server_confirms_hits: Option<bool>,
) -> CacheEffect {
    let accelerated = acceleration.map(|estimate| estimate.ci95_low > threshold);
    let median = acceleration.map_or(f64::NAN, |e| e.median);
    match (accelerated, server_confirms_hits) {
        (Some(true), Some(true)) => CacheEffect::Confirmed,
        (Some(true), Some(false)) => CacheEffect::Disagreement {
            explanation: format!(
                "warm turns are x{median:.2} faster but the server reports no prefix-cache hits; the speed-up has another cause"
            ),
        },
        (Some(true), None) => CacheEffect::Unverified,
        (Some(false), Some(true)) => CacheEffect::Disagreement {
            explanation: format!(
                "the server reports prefix-cache hits but warm turns are only x{median:.2} faster (threshold x{threshold:.2})"
            ),
        },
        _ => CacheEffect::NotObserved,
    }
}
