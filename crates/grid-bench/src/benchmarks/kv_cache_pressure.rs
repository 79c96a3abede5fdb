//! kv_cache_pressure: many long conversations at once, so the KV cache
//! cannot hold every history and the memory given to it decides the hits.
//!
//! `conversations` conversations run in lockstep rounds. In round 1 each
//! sends its own opening (cold: nothing of it can be cached); in every later
//! round each sends its whole history plus a new user message, all at once.
//! What a warm turn finds cached is its own history, if the cache kept it
//! while the other conversations' turns ran: with a cache smaller than the
//! histories together, LRU eviction takes it and the warm turn recomputes.
//!
//! Per conversation, acceleration = cold TTFT / median(warm TTFTs); the
//! report gives the median over conversations with grid-core's bootstrap
//! interval, the per-conversation values (for pooling repeats), the warm
//! turns' hit rate from `usage.prompt_tokens_details.cached_tokens` and from
//! the prefix-cache counters over the warm rounds, the preemptions and the
//! server's KV capacity (`vllm:cache_config_info`).
//!
//! The text depends only on `text_seed` and a fixed-length tag of the run,
//! so every config of a search gets the same workload, and a later run on
//! the same server cannot hit this run's blocks.

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};

use super::kv_cache::{CacheEffect, verdict};
use super::{Cancelled, Context, FailedTurn, filler, required_samples};
use crate::config::BenchmarkName;
use crate::metrics::{MetricsDelta, MetricsSnapshot};
use crate::openai::{ChatMessage, ChatRequest};
use grid_core::{Estimate, SplitMix64, bootstrap_median, fnv1a64, median};

const NAME: BenchmarkName = BenchmarkName::KvCachePressure;

/// One conversation's turns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConversationResult {
    pub cold_ttft_ms: Option<f64>,
    pub warm_ttft_ms: Vec<f64>,
    /// Prompt tokens of the warm turns whose prompt and cached counts the
    /// server both reported.
    pub warm_prompt_tokens: u64,
    pub warm_cached_tokens: Option<u64>,
    /// Prompt tokens of the last turn sent: this conversation's history.
    pub last_prompt_tokens: Option<u64>,
    pub acceleration: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_turn: Option<FailedTurn>,
}

/// One round over all conversations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundResult {
    pub turn: usize,
    pub median_ttft_ms: Option<f64>,
    pub prompt_tokens: u64,
    pub cached_tokens: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KvCachePressureReport {
    pub conversations: Vec<ConversationResult>,
    pub rounds: Vec<RoundResult>,
    /// Median over conversations of cold / median(warm) TTFT.
    pub acceleration: Option<Estimate>,
    pub cold_ttft_ms: Option<f64>,
    pub warm_ttft_ms: Option<f64>,
    /// Cached share of the warm turns' prompt tokens, from `usage`.
    pub warm_hit_rate: Option<f64>,
    /// hits / queries of the prefix-cache counters over the warm rounds.
    pub warm_counter_hit_rate: Option<f64>,
    /// The prompt tokens of every conversation's last turn together: what
    /// the cache would have to hold to keep every history.
    pub workload_tokens: Option<u64>,
    /// `num_gpu_blocks × block_size` of `vllm:cache_config_info`.
    pub kv_capacity_tokens: Option<u64>,
    /// `vllm:num_preemptions_total` over the benchmark.
    pub preemptions: Option<u64>,
    pub server_confirms_hits: Option<bool>,
    pub cache_effect: CacheEffect,
    pub effect_threshold: f64,
    pub bootstrap_resamples: usize,
}

/// The prefix-cache counters after the cold round, so the warm rounds'
/// counter hit rate excludes the cold prefills.
struct AfterCold(Option<MetricsSnapshot>);

pub async fn run(
    context: &Context<'_>,
) -> Result<(KvCachePressureReport, usize, usize), Cancelled> {
    let config = &context.config.kv_cache_pressure;
    // Fixed length whatever the run nonce, so the prompts' lengths are the
    // same for every config; the value differs per run, so no run hits
    // another's blocks.
    let tag = format!("{:016x}", fnv1a64(context.run_nonce.as_bytes()));
    let mut histories: Vec<Vec<ChatMessage>> = (0..config.conversations)
        .map(|index| {
            let mut rng = SplitMix64::new(config.text_seed ^ fnv1a64(format!("c{index}").as_bytes()));
            vec![
                ChatMessage::system(format!(
                    "Agent {index} session {tag}. You are a careful assistant. Your notes follow.\n{}",
                    filler(&mut rng, config.opening_words)
                )),
                ChatMessage::user(format!(
                    "Summarise your notes in one sentence. {}",
                    filler(&mut rng, config.turn_words)
                )),
            ]
        })
        .collect();
    let mut turn_rng = SplitMix64::new(config.text_seed ^ 0x7475_726e);
    let mut results = vec![ConversationResult::default(); config.conversations];
    let mut rounds = Vec::new();
    let mut after_cold = AfterCold(None);
    for turn in 1..=config.turns {
        if turn > 1 && context.expired() {
            break;
        }
        let live: Vec<usize> = (0..config.conversations)
            .filter(|&index| results[index].failed_turn.is_none())
            .collect();
        if live.is_empty() {
            break;
        }
        if turn > 1 {
            // Drawn for every conversation in order, live or not, so the
            // text of a turn never depends on which ones failed.
            for history in &mut histories {
                history.push(ChatMessage::user(format!(
                    "Now add one detail. {}",
                    filler(&mut turn_rng, config.turn_words)
                )));
            }
        }
        let sends = live.iter().map(|&index| {
            let request = ChatRequest {
                messages: histories[index].clone(),
                max_tokens: config.max_tokens,
                temperature: Some(0.0),
                ..ChatRequest::default()
            };
            let label = format!(
                "conversation {index} turn {turn}{}",
                if turn == 1 { " cold" } else { " warm" }
            );
            async move { (index, context.send(NAME, &request, label).await) }
        });
        let mut round = RoundResult {
            turn,
            median_ttft_ms: None,
            prompt_tokens: 0,
            cached_tokens: None,
        };
        let mut ttfts = Vec::new();
        for (index, exchange) in join_all(sends).await {
            let exchange = exchange?;
            let record = &exchange.record;
            let result = &mut results[index];
            if let Some(failed) = FailedTurn::from_record(turn, record) {
                // The conversation ends: its history would hold an empty
                // assistant turn the model never wrote.
                result.failed_turn = Some(failed);
                continue;
            }
            let usage = record.usage.unwrap_or_default();
            result.last_prompt_tokens = usage.prompt_tokens;
            round.prompt_tokens += usage.prompt_tokens.unwrap_or(0);
            if let Some(cached) = usage.cached_tokens {
                *round.cached_tokens.get_or_insert(0) += cached;
            }
            if let Some(ttft) = record.ttft_ms {
                ttfts.push(ttft);
                if turn == 1 {
                    result.cold_ttft_ms = Some(ttft);
                } else {
                    result.warm_ttft_ms.push(ttft);
                    if let (Some(prompt), Some(cached)) = (usage.prompt_tokens, usage.cached_tokens)
                    {
                        result.warm_prompt_tokens += prompt;
                        *result.warm_cached_tokens.get_or_insert(0) += cached;
                    }
                }
            }
            histories[index].push(ChatMessage::assistant(exchange.reply.answer.clone()));
        }
        round.median_ttft_ms = median(&ttfts);
        rounds.push(round);
        if turn == 1 {
            after_cold = AfterCold(scrape(context).await);
        }
    }
    let warm_counters = match after_cold.0 {
        Some(start) => MetricsDelta::between(Some(start), scrape(context).await),
        None => MetricsDelta::default(),
    };

    let rounds_run = rounds.len();
    for result in &mut results {
        let complete = result.failed_turn.is_none() && result.warm_ttft_ms.len() + 1 == rounds_run;
        result.acceleration = match (result.cold_ttft_ms, median(&result.warm_ttft_ms)) {
            (Some(cold), Some(warm)) if warm > 0.0 && complete && rounds_run > 1 => {
                Some(cold / warm)
            }
            _ => None,
        };
    }
    let accelerations: Vec<f64> = results.iter().filter_map(|r| r.acceleration).collect();
    let colds: Vec<f64> = results.iter().filter_map(|r| r.cold_ttft_ms).collect();
    let warms: Vec<f64> = results
        .iter()
        .flat_map(|r| r.warm_ttft_ms.iter().copied())
        .collect();
    let warm_prompt: u64 = results.iter().map(|r| r.warm_prompt_tokens).sum();
    let warm_cached: Option<u64> = results
        .iter()
        .filter_map(|r| r.warm_cached_tokens)
        .reduce(|a, b| a + b);
    let last: Vec<u64> = results
        .iter()
        .filter_map(|r| r.last_prompt_tokens)
        .collect();
    let resamples = context.config.bootstrap_resamples;
    let report = KvCachePressureReport {
        acceleration: bootstrap_median(&accelerations, resamples, context.seed ^ 2),
        cold_ttft_ms: median(&colds),
        warm_ttft_ms: median(&warms),
        warm_hit_rate: warm_cached
            .filter(|_| warm_prompt > 0)
            .map(|cached| cached as f64 / warm_prompt as f64),
        warm_counter_hit_rate: warm_counters.prefix_cache_hit_rate,
        workload_tokens: (last.len() == results.len()).then(|| last.iter().sum()),
        kv_capacity_tokens: None,
        preemptions: None,
        conversations: results,
        rounds,
        server_confirms_hits: None,
        cache_effect: CacheEffect::NotObserved,
        effect_threshold: context.config.kv_cache.effect_threshold,
        bootstrap_resamples: resamples,
    };
    let good = accelerations.len();
    let required = required_samples(context.config, config.conversations);
    Ok((report, good, required))
}

async fn scrape(context: &Context<'_>) -> Option<MetricsSnapshot> {
    let text = context.client.scrape_metrics().await.ok()?;
    MetricsSnapshot::parse(&text).ok()
}

impl KvCachePressureReport {
    /// Adds the server's figures over the whole benchmark: capacity,
    /// preemptions, and whether it confirms the hits.
    pub fn cross_check(&mut self, metrics: &MetricsDelta) {
        self.kv_capacity_tokens = metrics
            .after
            .as_ref()
            .or(metrics.before.as_ref())
            .and_then(|snapshot| snapshot.kv_capacity_tokens);
        self.preemptions = metrics.preemptions.map(|count| count.round() as u64);
        let from_usage = self.warm_hit_rate.map(|rate| rate > 0.05);
        let from_counters = self.warm_counter_hit_rate.map(|rate| rate > 0.05);
        // As for kv_cache: usage is per request and exact; the counters
        // include every client of the server, so they decide only when
        // usage is silent.
        self.server_confirms_hits = from_usage.or(from_counters);
        self.cache_effect = verdict(
            self.acceleration,
            self.effect_threshold,
            self.server_confirms_hits,
        );
    }
}
