//! `/metrics` scraping: a Prometheus text-format parser and the vLLM
//! counters the battery reports as before/after deltas.
//!
//! Only real vLLM V1 metric names are read (checked against a recorded
//! vLLM 0.32 `/metrics`). Any of them may be absent (older or newer builds,
//! other servers): absence gives `None`, never zero.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const PREFIX_CACHE_QUERIES: &str = "vllm:prefix_cache_queries_total";
pub const PREFIX_CACHE_HITS: &str = "vllm:prefix_cache_hits_total";
pub const KV_CACHE_USAGE: &str = "vllm:kv_cache_usage_perc";
pub const PREEMPTIONS: &str = "vllm:num_preemptions_total";
pub const REQUESTS_RUNNING: &str = "vllm:num_requests_running";
pub const REQUESTS_WAITING: &str = "vllm:num_requests_waiting";
pub const TTFT_SECONDS_SUM: &str = "vllm:time_to_first_token_seconds_sum";
pub const TTFT_SECONDS_COUNT: &str = "vllm:time_to_first_token_seconds_count";
pub const CACHE_CONFIG_INFO: &str = "vllm:cache_config_info";

/// One sample line: `name{labels} value [timestamp]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line} of the metrics text is not a Prometheus sample: {reason}: {text}")]
pub struct ParseError {
    pub line: usize,
    pub reason: &'static str,
    pub text: String,
}

/// Parses Prometheus text exposition format. Comment (`#`) and blank lines
/// are skipped; a malformed sample line is an error naming the line.
pub fn parse_prometheus(text: &str) -> Result<Vec<Sample>, ParseError> {
    let mut samples = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let error = |reason| ParseError {
            line: index + 1,
            reason,
            text: line.chars().take(200).collect(),
        };
        let name_end = line
            .find(|c: char| c == '{' || c.is_whitespace())
            .ok_or_else(|| error("no value after the metric name"))?;
        let name = &line[..name_end];
        if name.is_empty() {
            return Err(error("empty metric name"));
        }
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if rest.starts_with('{') {
            let (parsed, after) = parse_labels(&rest[1..]).ok_or_else(|| error("bad labels"))?;
            labels = parsed;
            rest = after;
        }
        let value_text = rest
            .split_whitespace()
            .next()
            .ok_or_else(|| error("no value"))?;
        let value = parse_value(value_text).ok_or_else(|| error("the value is not a number"))?;
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    Ok(samples)
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

/// Parses `key="value",...}` and returns the labels and the text after `}`.
fn parse_labels(mut text: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start();
        if let Some(after) = text.strip_prefix('}') {
            return Some((labels, after));
        }
        let equals = text.find('=')?;
        let key = text[..equals].trim().to_string();
        text = text[equals + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = text.char_indices();
        let end = loop {
            let (at, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break at,
                other => value.push(other),
            }
        };
        labels.push((key, value));
        text = text[end + 1..].trim_start();
        if let Some(after) = text.strip_prefix(',') {
            text = after;
        }
    }
}

/// The vLLM values the battery tracks at one instant. Each is the sum over
/// all label sets (engines, models) of that metric, or `None` when the
/// server does not export it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    pub prefix_cache_queries_total: Option<f64>,
    pub prefix_cache_hits_total: Option<f64>,
    pub kv_cache_usage_perc: Option<f64>,
    pub num_preemptions_total: Option<f64>,
    pub num_requests_running: Option<f64>,
    pub num_requests_waiting: Option<f64>,
    /// `vllm:time_to_first_token_seconds` sum and count: the server's own
    /// TTFT, for the noise guard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_seconds_sum: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_seconds_count: Option<f64>,
    /// `num_gpu_blocks × block_size` of `vllm:cache_config_info` (summed
    /// over engines): the tokens the KV cache holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_capacity_tokens: Option<u64>,
}

/// `num_gpu_blocks × block_size` from one `vllm:cache_config_info` sample;
/// `None` when a label is absent or not a number (`"None"` before the
/// engine has profiled).
fn kv_capacity(sample: &Sample) -> Option<u64> {
    let label = |key: &str| -> Option<u64> {
        sample
            .labels
            .iter()
            .find(|(name, _)| name == key)
            .and_then(|(_, value)| value.parse().ok())
    };
    label("num_gpu_blocks")?.checked_mul(label("block_size")?)
}

impl MetricsSnapshot {
    pub fn from_samples(samples: &[Sample]) -> Self {
        let mut sums: BTreeMap<&str, f64> = BTreeMap::new();
        for sample in samples {
            if matches!(
                sample.name.as_str(),
                PREFIX_CACHE_QUERIES
                    | PREFIX_CACHE_HITS
                    | KV_CACHE_USAGE
                    | PREEMPTIONS
                    | REQUESTS_RUNNING
                    | REQUESTS_WAITING
                    | TTFT_SECONDS_SUM
                    | TTFT_SECONDS_COUNT
            ) {
                *sums.entry(sample.name.as_str()).or_insert(0.0) += sample.value;
            }
        }
        // KV usage is a fraction per engine: report the largest engine, not
        // a sum that could exceed 1.
        let kv_usage = samples
            .iter()
            .filter(|s| s.name == KV_CACHE_USAGE)
            .map(|s| s.value)
            .reduce(f64::max);
        Self {
            prefix_cache_queries_total: sums.get(PREFIX_CACHE_QUERIES).copied(),
            prefix_cache_hits_total: sums.get(PREFIX_CACHE_HITS).copied(),
            kv_cache_usage_perc: kv_usage,
            num_preemptions_total: sums.get(PREEMPTIONS).copied(),
            num_requests_running: sums.get(REQUESTS_RUNNING).copied(),
            num_requests_waiting: sums.get(REQUESTS_WAITING).copied(),
            ttft_seconds_sum: sums.get(TTFT_SECONDS_SUM).copied(),
            ttft_seconds_count: sums.get(TTFT_SECONDS_COUNT).copied(),
            kv_capacity_tokens: samples
                .iter()
                .filter(|s| s.name == CACHE_CONFIG_INFO)
                .map(kv_capacity)
                .reduce(|a, b| a.zip(b).map(|(a, b)| a + b))
                .flatten(),
        }
    }

    pub fn parse(text: &str) -> Result<Self, ParseError> {
        Ok(Self::from_samples(&parse_prometheus(text)?))
    }
}

/// What the server's counters say happened during one benchmark.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsDelta {
    pub before: Option<MetricsSnapshot>,
    pub after: Option<MetricsSnapshot>,
    /// Prefix-cache lookups during the benchmark, in tokens.
    pub prefix_cache_queries: Option<f64>,
    /// Prefix-cache hits during the benchmark, in tokens.
    pub prefix_cache_hits: Option<f64>,
    /// hits / queries; `None` without queries.
    pub prefix_cache_hit_rate: Option<f64>,
    pub preemptions: Option<f64>,
    /// The server's mean TTFT over the benchmark, from the deltas of
    /// `vllm:time_to_first_token_seconds_sum` / `_count`; `None` without
    /// both or without a request counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_mean_ttft_ms: Option<f64>,
    /// Why a scrape failed, when one did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scrape_errors: Vec<String>,
}

impl MetricsDelta {
    pub fn between(before: Option<MetricsSnapshot>, after: Option<MetricsSnapshot>) -> Self {
        let counter = |pick: fn(&MetricsSnapshot) -> Option<f64>| -> Option<f64> {
            let start = pick(before.as_ref()?)?;
            let end = pick(after.as_ref()?)?;
            // A counter that went down means the server restarted: no delta.
            (end >= start).then_some(end - start)
        };
        let queries = counter(|s| s.prefix_cache_queries_total);
        let hits = counter(|s| s.prefix_cache_hits_total);
        let hit_rate = match (queries, hits) {
            (Some(queries), Some(hits)) if queries > 0.0 => Some(hits / queries),
            _ => None,
        };
        Self {
            prefix_cache_queries: queries,
            prefix_cache_hits: hits,
            prefix_cache_hit_rate: hit_rate,
            preemptions: counter(|s| s.num_preemptions_total),
            server_mean_ttft_ms: counter(|s| s.ttft_seconds_sum)
                .zip(counter(|s| s.ttft_seconds_count))
                .filter(|(_, count)| *count > 0.0)
                .map(|(sum, count)| sum / count * 1000.0),
            before,
            after,
            scrape_errors: Vec::new(),
        }
    }
}
