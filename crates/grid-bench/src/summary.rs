//! The `vllm bench serve`-compatible summary of a set of request records.
//!
//! Field names are vLLM's (`mean_ttft_ms`, `p99_itl_ms`, `mean_e2el_ms`,
//! `request_throughput`, `output_throughput`, ...) so existing plots keep
//! working. A statistic without samples is absent (`null`), never zero.
//!
//! Token counts the server omitted stay unknown: a request without its
//! counts keeps its latencies, and the aggregate token figures are given
//! only when every successful request has its counts (a partial sum over
//! the shared duration would understate the rate). A zero-length duration
//! gives no rate at all, with the reason in `throughput_unavailable`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::client::RequestRecord;
use crate::config::SloConfig;
use grid_core::Distribution;

/// Where latencies count from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencyOrigin {
    /// From the send (closed-loop benchmarks, where schedule == send).
    Send,
    /// From the scheduled start (open-loop schedules: no coordinated
    /// omission). The queueing part is also reported on its own.
    ScheduledStart,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServeSummary {
    pub latency_origin: Option<LatencyOrigin>,
    pub completed: u64,
    pub failed: u64,
    /// First scheduled start to last completion, seconds; `None` when the
    /// records span no time (nothing completed).
    pub duration: Option<f64>,
    /// Sums over the successful requests; `None` when one of them lacked
    /// the count.
    pub total_input_tokens: Option<u64>,
    pub total_output_tokens: Option<u64>,
    pub total_cached_tokens: Option<u64>,
    /// Successful requests whose usage lacked prompt_tokens or
    /// completion_tokens.
    #[serde(default)]
    pub requests_without_token_counts: u64,
    /// Why the throughput figures are absent, when they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_unavailable: Option<String>,
    pub request_throughput: Option<f64>,
    pub request_goodput: Option<f64>,
    pub output_throughput: Option<f64>,
    pub total_token_throughput: Option<f64>,
    /// Mean of each request's completion tokens / E2E.
    pub mean_request_output_tokens_per_s: Option<f64>,
    pub mean_ttft_ms: Option<f64>,
    pub median_ttft_ms: Option<f64>,
    pub std_ttft_ms: Option<f64>,
    pub p90_ttft_ms: Option<f64>,
    pub p99_ttft_ms: Option<f64>,
    pub mean_ttfc_ms: Option<f64>,
    pub median_ttfc_ms: Option<f64>,
    pub std_ttfc_ms: Option<f64>,
    pub p90_ttfc_ms: Option<f64>,
    pub p99_ttfc_ms: Option<f64>,
    pub mean_tpot_ms: Option<f64>,
    pub median_tpot_ms: Option<f64>,
    pub std_tpot_ms: Option<f64>,
    pub p90_tpot_ms: Option<f64>,
    pub p99_tpot_ms: Option<f64>,
    pub mean_itl_ms: Option<f64>,
    pub median_itl_ms: Option<f64>,
    pub std_itl_ms: Option<f64>,
    pub p90_itl_ms: Option<f64>,
    pub p99_itl_ms: Option<f64>,
    pub mean_e2el_ms: Option<f64>,
    pub median_e2el_ms: Option<f64>,
    pub std_e2el_ms: Option<f64>,
    pub p90_e2el_ms: Option<f64>,
    pub p99_e2el_ms: Option<f64>,
    pub mean_client_queue_time_ms: Option<f64>,
    pub median_client_queue_time_ms: Option<f64>,
    pub std_client_queue_time_ms: Option<f64>,
    pub p90_client_queue_time_ms: Option<f64>,
    pub p99_client_queue_time_ms: Option<f64>,
    pub ttft_samples: usize,
    pub itl_samples: usize,
    /// Failed requests by reason (`timeout`, `http_status`, ...).
    pub failure_reasons: BTreeMap<String, u64>,
}

macro_rules! fill {
    ($summary:ident, $values:expr, $mean:ident, $median:ident, $std:ident, $p90:ident, $p99:ident) => {{
        let distribution = Distribution::of(&$values);
        $summary.$mean = distribution.map(|d| d.mean);
        $summary.$median = distribution.map(|d| d.median);
        $summary.$std = distribution.map(|d| d.std);
        $summary.$p90 = distribution.map(|d| d.p90);
        $summary.$p99 = distribution.map(|d| d.p99);
        distribution.map_or(0, |d| d.samples)
    }};
}

impl ServeSummary {
    pub fn from_records(
        records: &[RequestRecord],
        origin: LatencyOrigin,
        slo: Option<&SloConfig>,
    ) -> Self {
        let mut summary = ServeSummary {
            latency_origin: Some(origin),
            ..Default::default()
        };
        let ok: Vec<&RequestRecord> = records.iter().filter(|r| r.succeeded()).collect();
        summary.completed = ok.len() as u64;
        summary.failed = (records.len() - ok.len()) as u64;
        for record in records.iter().filter(|r| !r.succeeded()) {
            if let Some(failure) = &record.failure {
                *summary
                    .failure_reasons
                    .entry(failure.kind.as_str().to_string())
                    .or_insert(0) += 1;
            }
        }
        let start = records
            .iter()
            .map(|r| r.scheduled_ms.min(r.sent_ms))
            .reduce(f64::min);
        let end = records
            .iter()
            .map(|r| r.sent_ms + r.e2el_ms.unwrap_or(0.0))
            .reduce(f64::max);
        summary.duration = match (start, end) {
            (Some(start), Some(end)) if end > start => Some((end - start) / 1000.0),
            _ => None,
        };
        let shift = |record: &RequestRecord| match origin {
            LatencyOrigin::Send => 0.0,
            LatencyOrigin::ScheduledStart => record.queue_delay_ms,
        };
        let (mut input, mut output) = (Some(0u64), Some(0u64));
        for record in &ok {
            let usage = record.usage.unwrap_or_default();
            input = input.zip(usage.prompt_tokens).map(|(a, b)| a + b);
            output = output.zip(usage.completion_tokens).map(|(a, b)| a + b);
            if let Some(cached) = usage.cached_tokens {
                *summary.total_cached_tokens.get_or_insert(0) += cached;
            }
            if record.lacks_token_counts() {
                summary.requests_without_token_counts += 1;
            }
        }
        summary.total_input_tokens = input;
        summary.total_output_tokens = output;
        let ttft: Vec<f64> = ok
            .iter()
            .filter_map(|r| r.ttft_ms.map(|v| v + shift(r)))
            .collect();
        let ttfc: Vec<f64> = ok
            .iter()
            .filter_map(|r| r.ttfc_ms.map(|v| v + shift(r)))
            .collect();
        let tpot: Vec<f64> = ok.iter().filter_map(|r| r.tpot_ms).collect();
        let itl: Vec<f64> = ok.iter().flat_map(|r| r.itl_ms.iter().copied()).collect();
        let e2el: Vec<f64> = ok
            .iter()
            .filter_map(|r| r.e2el_ms.map(|v| v + shift(r)))
            .collect();
        let queue: Vec<f64> = ok.iter().map(|r| r.queue_delay_ms).collect();
        summary.ttft_samples = fill!(
            summary,
            ttft,
            mean_ttft_ms,
            median_ttft_ms,
            std_ttft_ms,
            p90_ttft_ms,
            p99_ttft_ms
        );
        let _ = fill!(
            summary,
            ttfc,
            mean_ttfc_ms,
            median_ttfc_ms,
            std_ttfc_ms,
            p90_ttfc_ms,
            p99_ttfc_ms
        );
        let _ = fill!(
            summary,
            tpot,
            mean_tpot_ms,
            median_tpot_ms,
            std_tpot_ms,
            p90_tpot_ms,
            p99_tpot_ms
        );
        summary.itl_samples = fill!(
            summary,
            itl,
            mean_itl_ms,
            median_itl_ms,
            std_itl_ms,
            p90_itl_ms,
            p99_itl_ms
        );
        let _ = fill!(
            summary,
            e2el,
            mean_e2el_ms,
            median_e2el_ms,
            std_e2el_ms,
            p90_e2el_ms,
            p99_e2el_ms
        );
        let _ = fill!(
            summary,
            queue,
            mean_client_queue_time_ms,
            median_client_queue_time_ms,
            std_client_queue_time_ms,
            p90_client_queue_time_ms,
            p99_client_queue_time_ms
        );
        let per_request: Vec<f64> = ok.iter().filter_map(|r| r.output_tokens_per_s()).collect();
        summary.mean_request_output_tokens_per_s = Distribution::of(&per_request).map(|d| d.mean);
        summary.throughput_unavailable = match summary.duration {
            _ if summary.completed == 0 => Some("no request completed".to_string()),
            None => Some("the records span no time (zero duration)".to_string()),
            Some(_) if summary.requests_without_token_counts > 0 => Some(format!(
                "{} of {} successful requests lacked a token count; the token rates that need it are not given",
                summary.requests_without_token_counts, summary.completed
            )),
            Some(_) => None,
        };
        if let Some(duration) = summary.duration.filter(|_| summary.completed > 0) {
            summary.request_throughput = Some(summary.completed as f64 / duration);
            summary.output_throughput = summary
                .total_output_tokens
                .map(|tokens| tokens as f64 / duration);
            summary.total_token_throughput = summary
                .total_input_tokens
                .zip(summary.total_output_tokens)
                .map(|(input, output)| (input + output) as f64 / duration);
            if let Some(slo) = slo.filter(|slo| {
                slo.ttft_ms.is_some() || slo.tpot_ms.is_some() || slo.e2el_ms.is_some()
            }) {
                let good = ok
                    .iter()
                    .filter(|r| {
                        let within = |limit: Option<f64>, value: Option<f64>| {
                            limit.is_none_or(|limit| value.is_some_and(|value| value <= limit))
                        };
                        // Like vLLM, a one-token reply has TPOT 0 for goodput.
                        within(slo.ttft_ms, r.ttft_ms.map(|v| v + shift(r)))
                            && within(slo.tpot_ms, Some(r.tpot_ms.unwrap_or(0.0)))
                            && within(slo.e2el_ms, r.e2el_ms.map(|v| v + shift(r)))
                    })
                    .count();
                summary.request_goodput = Some(good as f64 / duration);
            }
        }
        summary
    }
}
