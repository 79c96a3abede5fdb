//! stability: requests alternating short and long outputs at a fixed
//! interval (open loop: each request starts at its scheduled time whether
//! or not the previous one finished). Degradation is reported per kind:
//! the first N requests of a kind against the last N of the same kind.
//! Latencies count from the scheduled start; the queueing part is
//! reported on its own.

use std::sync::atomic::Ordering;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{Cancelled, Context, filler, required_samples};
use crate::client::{FailureKind, RequestRecord};
use crate::config::BenchmarkName;
use crate::openai::{ChatMessage, ChatRequest};
use crate::summary::{LatencyOrigin, ServeSummary};
use grid_core::{mean, relative_change};

const NAME: BenchmarkName = BenchmarkName::Stability;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    Short,
    Long,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindReport {
    pub kind: RequestKind,
    pub requests: usize,
    pub timeouts: usize,
    pub errors: usize,
    /// Mean E2E per output token (from the scheduled start), first window.
    pub first_ms_per_output_token: Option<f64>,
    pub last_ms_per_output_token: Option<f64>,
    /// (last − first) / first of the per-token latency: 0.2 = 20 % slower.
    pub degradation: Option<f64>,
    pub first_mean_ttft_ms: Option<f64>,
    pub last_mean_ttft_ms: Option<f64>,
    pub ttft_degradation: Option<f64>,
    pub summary: ServeSummary,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StabilityReport {
    pub interval_s: f64,
    pub compare_window: usize,
    pub short: KindReport,
    pub long: KindReport,
    /// The worse of the two kinds' degradations.
    pub worst_degradation: Option<f64>,
}

pub async fn run(context: &Context<'_>) -> Result<(StabilityReport, usize, usize), Cancelled> {
    let config = &context.config.stability;
    let mut rng = context.rng(5);
    let interval = crate::config::duration(config.interval_s);
    let deadline = context.deadline;
    let (sender, mut receiver) = mpsc::unbounded_channel::<(usize, RequestRecord)>();
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for index in 0..config.requests {
        let kind = if index % 2 == 0 {
            RequestKind::Short
        } else {
            RequestKind::Long
        };
        let range = match kind {
            RequestKind::Short => config.short_output_tokens,
            RequestKind::Long => config.long_output_tokens,
        };
        let max_tokens = rng.between(range[0] as u64, range[1] as u64) as u32;
        let nonce = context.nonce(NAME, &format!("r{index}"));
        let request = ChatRequest {
            messages: vec![ChatMessage::user(format!(
                "Request {nonce}. Write about the following topics. {}",
                filler(&mut rng, config.prompt_words)
            ))],
            max_tokens,
            temperature: Some(0.0),
            ignore_eos: Some(true),
            ..ChatRequest::default()
        };
        // Absolute schedule: request i starts at start + i × interval.
        let scheduled = interval
            .checked_mul(index as u32)
            .and_then(|offset| start.checked_add(offset));
        let Some(scheduled) = scheduled.filter(|at| deadline.is_none_or(|end| *at < end)) else {
            // Scheduled past the benchmark's bound: never sent.
            context.timed_out.store(true, Ordering::Relaxed);
            break;
        };
        let client = context.client.clone();
        let cancel = context.cancel.clone();
        let sender = sender.clone();
        let label = format!(
            "{} {}",
            if kind == RequestKind::Short {
                "short"
            } else {
                "long"
            },
            index + 1
        );
        workers.spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep_until(scheduled.into()) => {}
            }
            let exchange = client
                .chat_until(&request, scheduled, &cancel, deadline, NAME.as_str(), label)
                .await;
            let _ = sender.send((index, exchange.record));
        });
    }
    drop(sender);
    // The aggregator: every worker's record arrives here.
    let mut records: Vec<(usize, RequestRecord)> = Vec::with_capacity(config.requests);
    while let Some((index, record)) = receiver.recv().await {
        context.record(&record);
        records.push((index, record));
    }
    while workers.join_next().await.is_some() {}
    if context.cancel.is_cancelled() {
        return Err(Cancelled);
    }
    records.sort_by_key(|(index, _)| *index);
    let window = config.compare_window;
    let kind_report = |kind: RequestKind| -> (KindReport, usize) {
        let parity = if kind == RequestKind::Short { 0 } else { 1 };
        let of_kind: Vec<&RequestRecord> = records
            .iter()
            .filter(|(index, _)| index % 2 == parity)
            .map(|(_, record)| record)
            .collect();
        let window = window.min(of_kind.len() / 2).max(1);
        let per_token = |records: &[&RequestRecord]| -> Vec<f64> {
            records
                .iter()
                .filter(|r| r.succeeded())
                .filter_map(|r| {
                    let tokens = r.usage?.completion_tokens?;
                    (tokens > 0)
                        .then(|| r.e2el_from_schedule_ms().map(|e2e| e2e / tokens as f64))?
                })
                .collect()
        };
        let ttfts = |records: &[&RequestRecord]| -> Vec<f64> {
            records
                .iter()
                .filter(|r| r.succeeded())
                .filter_map(|r| r.ttft_from_schedule_ms())
                .collect()
        };
        let first = &of_kind[..window.min(of_kind.len())];
        let last = &of_kind[of_kind.len().saturating_sub(window)..];
        let first_per_token = per_token(first);
        let last_per_token = per_token(last);
        let good = first_per_token.len().min(last_per_token.len());
        let first_mean = mean(&first_per_token);
        let last_mean = mean(&last_per_token);
        let first_ttft = mean(&ttfts(first));
        let last_ttft = mean(&ttfts(last));
        let owned: Vec<RequestRecord> = of_kind.iter().map(|r| (*r).clone()).collect();
        let failures = |wanted: Option<FailureKind>| {
            of_kind
                .iter()
                .filter(|r| match (&r.failure, wanted) {
                    (Some(failure), Some(kind)) => failure.kind == kind,
                    (Some(failure), None) => failure.kind != FailureKind::Timeout,
                    (None, _) => false,
                })
                .count()
        };
        (
            KindReport {
                kind,
                requests: of_kind.len(),
                timeouts: failures(Some(FailureKind::Timeout)),
                errors: failures(None),
                first_ms_per_output_token: first_mean,
                last_ms_per_output_token: last_mean,
                degradation: first_mean
                    .zip(last_mean)
                    .and_then(|(a, b)| relative_change(a, b)),
                first_mean_ttft_ms: first_ttft,
                last_mean_ttft_ms: last_ttft,
                ttft_degradation: first_ttft
                    .zip(last_ttft)
                    .and_then(|(a, b)| relative_change(a, b)),
                summary: ServeSummary::from_records(&owned, LatencyOrigin::ScheduledStart, None),
            },
            good,
        )
    };
    let (short, short_good) = kind_report(RequestKind::Short);
    let (long, long_good) = kind_report(RequestKind::Long);
    let worst = match (short.degradation, long.degradation) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (one, other) => one.or(other),
    };
    let required = required_samples(context.config, window.min(config.requests / 4).max(1));
    Ok((
        StabilityReport {
            interval_s: config.interval_s,
            compare_window: window,
            short,
            long,
            worst_degradation: worst,
        },
        short_good.min(long_good),
        required,
    ))
}
