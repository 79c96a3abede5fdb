//! long_conversation: TTFT per turn over long multi-turn conversations,
//! and its degradation from the first third of the turns (1–5 of 15) to
//! the last third (11–15).
//!
//! A failed turn ends its conversation (it is not continued with an empty
//! assistant turn): the turns before it still count for their turn
//! positions, the later ones have no sample from it, and the report lists
//! the conversation with the turn and the reason.

use serde::{Deserialize, Serialize};

use super::{Cancelled, Context, FailedTurn, filler, required_samples};
use crate::client::RequestRecord;
use crate::config::BenchmarkName;
use crate::openai::{ChatMessage, ChatRequest};
use crate::summary::{LatencyOrigin, ServeSummary};
use grid_core::{mean, median, relative_change};

const NAME: BenchmarkName = BenchmarkName::LongConversation;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnResult {
    pub turn: usize,
    /// Median TTFT of this turn over the iterations.
    pub median_ttft_ms: Option<f64>,
    pub successful: usize,
    pub median_prompt_tokens: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LongConversationReport {
    pub turns: Vec<TurnResult>,
    /// Turns compared: `early_turns` against `late_turns` (1-based).
    pub early_turns: [usize; 2],
    pub late_turns: [usize; 2],
    pub early_mean_ttft_ms: Option<f64>,
    pub late_mean_ttft_ms: Option<f64>,
    /// (late − early) / early, as a fraction: 0.2 = 20 % slower.
    pub ttft_degradation: Option<f64>,
    /// Conversations a failed turn ended early (1-based iteration).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stopped_conversations: Vec<StoppedConversation>,
    pub summary: ServeSummary,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoppedConversation {
    pub iteration: usize,
    #[serde(flatten)]
    pub failed_turn: FailedTurn,
}

pub async fn run(
    context: &Context<'_>,
) -> Result<(LongConversationReport, usize, usize), Cancelled> {
    let config = &context.config.long_conversation;
    let mut rng = context.rng(2);
    // records_by_turn[turn - 1] holds that turn's records of all iterations.
    let mut records_by_turn: Vec<Vec<RequestRecord>> = vec![Vec::new(); config.turns];
    let mut stopped_conversations = Vec::new();
    'iterations: for iteration in 1..=config.iterations {
        let nonce = context.nonce(NAME, &format!("i{iteration}"));
        let mut messages = vec![ChatMessage::system(format!(
            "Session {nonce}. You are a helpful assistant in a long conversation."
        ))];
        for turn in 1..=config.turns {
            if context.expired() {
                break 'iterations;
            }
            messages.push(ChatMessage::user(format!(
                "Turn {turn}: consider these notes and reply briefly. {}",
                filler(&mut rng, config.user_words)
            )));
            let request = ChatRequest {
                messages: messages.clone(),
                max_tokens: config.max_tokens,
                temperature: Some(0.0),
                ..ChatRequest::default()
            };
            let exchange = context
                .send(NAME, &request, format!("iteration {iteration} turn {turn}"))
                .await?;
            let failed = FailedTurn::from_record(turn, &exchange.record);
            records_by_turn[turn - 1].push(exchange.record);
            if let Some(failed_turn) = failed {
                stopped_conversations.push(StoppedConversation {
                    iteration,
                    failed_turn,
                });
                continue 'iterations;
            }
            messages.push(ChatMessage::assistant(exchange.reply.answer.clone()));
        }
    }
    let window = (config.turns / 3).max(1);
    let early = [1, window];
    let late = [config.turns - window + 1, config.turns];
    let ttfts_in = |range: [usize; 2]| -> Vec<f64> {
        records_by_turn[range[0] - 1..range[1]]
            .iter()
            .flatten()
            .filter(|r| r.succeeded())
            .filter_map(|r| r.ttft_ms)
            .collect()
    };
    let early_ttfts = ttfts_in(early);
    let late_ttfts = ttfts_in(late);
    let early_mean = mean(&early_ttfts);
    let late_mean = mean(&late_ttfts);
    let turns = records_by_turn
        .iter()
        .enumerate()
        .map(|(index, records)| {
            let ok: Vec<&RequestRecord> = records.iter().filter(|r| r.succeeded()).collect();
            let ttfts: Vec<f64> = ok.iter().filter_map(|r| r.ttft_ms).collect();
            let prompts: Vec<f64> = ok
                .iter()
                .filter_map(|r| r.usage.and_then(|u| u.prompt_tokens).map(|n| n as f64))
                .collect();
            TurnResult {
                turn: index + 1,
                median_ttft_ms: median(&ttfts),
                successful: ok.len(),
                median_prompt_tokens: median(&prompts),
            }
        })
        .collect();
    let all: Vec<RequestRecord> = records_by_turn.into_iter().flatten().collect();
    let good = early_ttfts.len().min(late_ttfts.len());
    let required = required_samples(context.config, window * config.iterations);
    Ok((
        LongConversationReport {
            turns,
            early_turns: early,
            late_turns: late,
            early_mean_ttft_ms: early_mean,
            late_mean_ttft_ms: late_mean,
            ttft_degradation: early_mean
                .zip(late_mean)
                .and_then(|(early, late)| relative_change(early, late)),
            stopped_conversations,
            summary: ServeSummary::from_records(&all, LatencyOrigin::Send, None),
        },
        good,
        required,
    ))
}
