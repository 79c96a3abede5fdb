//! concurrency: K simultaneous multi-turn users per level, each a closed
//! loop (the next turn starts when the previous reply is done), bounded by
//! a duration and a request count per level. Workers send their records
//! over a channel to one aggregator.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{Cancelled, Context, filler, required_samples};
use crate::client::RequestRecord;
use crate::config::BenchmarkName;
use crate::openai::{ChatMessage, ChatRequest};
use crate::summary::{LatencyOrigin, ServeSummary};

const NAME: BenchmarkName = BenchmarkName::Concurrency;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelReport {
    pub concurrency: usize,
    /// Whether the level ended on its time bound (else its count bound).
    pub stopped_by_time: bool,
    pub summary: ServeSummary,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConcurrencyReport {
    pub levels: Vec<LevelReport>,
    /// The level with the highest output throughput.
    pub peak_output_throughput_level: Option<usize>,
}

pub async fn run(context: &Context<'_>) -> Result<(ConcurrencyReport, usize, usize), Cancelled> {
    let config = &context.config.concurrency;
    let mut levels = Vec::new();
    let mut fewest_good = usize::MAX;
    let bound = context.deadline;
    for (level_index, &level) in config.levels.iter().enumerate() {
        if context.expired() {
            break;
        }
        // A level ends on its own time bound or the benchmark's, whichever
        // comes first.
        let level_end = Instant::now()
            .checked_add(crate::config::duration(config.duration_s))
            .map_or(bound, |end| Some(bound.map_or(end, |bound| bound.min(end))));
        let started = Arc::new(AtomicUsize::new(0));
        let (sender, mut receiver) = mpsc::unbounded_channel::<RequestRecord>();
        let mut users = tokio::task::JoinSet::new();
        for user in 0..level {
            let client = context.client.clone();
            let cancel = context.cancel.clone();
            let sender = sender.clone();
            let started = started.clone();
            let mut rng = context.rng(1000 + (level_index * 10_000 + user) as u64);
            let nonce_base = context.nonce(NAME, &format!("c{level}-u{user}"));
            let prompt_words = config.prompt_words;
            let max_tokens = config.max_tokens;
            let ignore_eos = config.ignore_eos;
            let turns = config.turns_per_conversation;
            let max_requests = config.max_requests_per_level;
            users.spawn(async move {
                let mut conversation = 0usize;
                'conversations: loop {
                    conversation += 1;
                    let mut messages = vec![ChatMessage::system(format!(
                        "Session {nonce_base}-{conversation}. You are a helpful assistant."
                    ))];
                    for turn in 1..=turns {
                        if cancel.is_cancelled()
                            || level_end.is_some_and(|end| Instant::now() >= end)
                        {
                            break 'conversations;
                        }
                        if started.fetch_add(1, Ordering::Relaxed) >= max_requests {
                            break 'conversations;
                        }
                        messages.push(ChatMessage::user(filler(&mut rng, prompt_words)));
                        let request = ChatRequest {
                            messages: messages.clone(),
                            max_tokens,
                            temperature: Some(0.0),
                            ignore_eos: ignore_eos.then_some(true),
                            ..ChatRequest::default()
                        };
                        let label = format!(
                            "level {level} user {user} conversation {conversation} turn {turn}"
                        );
                        let exchange = client
                            .chat_until(
                                &request,
                                Instant::now(),
                                &cancel,
                                bound,
                                NAME.as_str(),
                                label,
                            )
                            .await;
                        let failed = !exchange.record.succeeded();
                        if sender.send(exchange.record).is_err() {
                            break 'conversations;
                        }
                        if failed {
                            // A new conversation rather than a history with
                            // an empty assistant turn.
                            continue 'conversations;
                        }
                        messages.push(ChatMessage::assistant(exchange.reply.answer));
                    }
                }
            });
        }
        drop(sender);
        let mut records = Vec::new();
        while let Some(record) = receiver.recv().await {
            context.record(&record);
            records.push(record);
        }
        while users.join_next().await.is_some() {}
        if context.cancel.is_cancelled() {
            return Err(Cancelled);
        }
        // Marks the benchmark timed out when its bound ended this level.
        let _ = context.expired();
        let summary =
            ServeSummary::from_records(&records, LatencyOrigin::Send, Some(&context.config.slo));
        fewest_good = fewest_good.min(summary.completed as usize);
        levels.push(LevelReport {
            concurrency: level,
            stopped_by_time: started.load(Ordering::Relaxed) < config.max_requests_per_level,
            summary,
        });
    }
    let peak = levels
        .iter()
        .filter_map(|level| {
            level
                .summary
                .output_throughput
                .map(|t| (level.concurrency, t))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(level, _)| level);
    let required = required_samples(context.config, config.max_requests_per_level);
    Ok((
        ConcurrencyReport {
            levels,
            peak_output_throughput_level: peak,
        },
        fewest_good,
        required,
    ))
}
