//! `/metrics`: the names the orchestrator reads, and the prefix-cache
//! counters (they move on a repeated prompt, and stay still with caching
//! off).

use std::time::Duration;

use serde_json::json;

use crate::probe::{Probe, parse, shape};
use crate::{ContractError, ServerFeatures};

/// Metric names vLLM 0.32 exposes that the orchestrator reads.
pub const REQUIRED_METRICS: &[&str] = &[
    "vllm:kv_cache_usage_perc",
    "vllm:prefix_cache_queries_total",
    "vllm:prefix_cache_hits_total",
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:num_preemptions_total",
    "vllm:time_to_first_token_seconds_bucket",
    // The noise guard's server-side mean TTFT: the deltas of sum over count.
    "vllm:time_to_first_token_seconds_sum",
    "vllm:time_to_first_token_seconds_count",
    // The KV capacity (num_gpu_blocks x block_size) the pressured
    // workload's report shows beside each config.
    "vllm:cache_config_info",
    "vllm:inter_token_latency_seconds_bucket",
    "vllm:e2e_request_latency_seconds_bucket",
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
];

pub(crate) async fn metric_names(p: &Probe<'_>) -> Result<(), ContractError> {
    const C: &str = "metric_names";
    let text = p.expect(C, "/metrics", None, false, 200).await?;
    let missing: Vec<&str> = REQUIRED_METRICS
        .iter()
        .copied()
        .filter(|m| !text.lines().any(|l| l.starts_with(m)))
        .collect();
    shape(C, missing.is_empty(), || {
        format!("missing metrics: {missing:?}")
    })?;
    // The capacity is read from two labels; both must be numbers.
    let info = text
        .lines()
        .find(|l| l.starts_with("vllm:cache_config_info{"))
        .unwrap_or_default();
    // Exact keys: `mamba_block_size` or `_block_size_resolved` are not it.
    let numeric = |key: &str| {
        info.split(['{', ',', '}'])
            .filter_map(|label| label.split_once('='))
            .find(|(name, _)| name.trim() == key)
            .is_some_and(|(_, value)| value.trim_matches('"').parse::<u64>().is_ok())
    };
    shape(
        C,
        numeric("num_gpu_blocks") && numeric("block_size"),
        || {
            format!(
                "vllm:cache_config_info lacks numeric num_gpu_blocks and block_size labels: {info}"
            )
        },
    )
}

/// Sums a counter's samples (all label sets) in a Prometheus text.
pub(crate) fn counter_value(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        let value = rest.rsplit(' ').next()?.parse::<f64>().ok()?;
        found = Some(found.unwrap_or(0.0) + value);
    }
    found
}

pub(crate) async fn prefix_cache_counters(
    p: &Probe<'_>,
    features: &ServerFeatures,
) -> Result<(), ContractError> {
    const C: &str = "prefix_cache_counters";
    const QUERIES: &str = "vllm:prefix_cache_queries_total";
    const HITS: &str = "vllm:prefix_cache_hits_total";
    let read = || async {
        let text = p.expect(C, "/metrics", None, false, 200).await?;
        let q = counter_value(&text, QUERIES);
        let h = counter_value(&text, HITS);
        match (q, h) {
            (Some(q), Some(h)) => Ok((q, h)),
            _ => Err(ContractError::Shape {
                check: C,
                detail: format!("{QUERIES} or {HITS} missing from /metrics"),
            }),
        }
    };
    let before = read().await?;
    // ~600 tokens: several full blocks at any block size (CPU: 128).
    let prompt = format!(
        "contract prefix probe {}",
        "the quick brown fox jumps ".repeat(120)
    );
    let body = json!({"model": p.target.model, "prompt": prompt, "max_tokens": 1});
    let mut cached = Vec::new();
    for _ in 0..2 {
        let v = parse(
            C,
            &p.expect(C, "/v1/completions", Some(&body), true, 200)
                .await?,
        )?;
        cached.push(v["usage"]["prompt_tokens_details"]["cached_tokens"].as_u64());
    }
    // The counters are published after the request finishes; allow a moment.
    let mut after = read().await?;
    for _ in 0..20 {
        // Caching on: wait until both counters grew. Off: a moved counter
        // already fails; otherwise keep watching for the whole moment.
        let settled = if features.prefix_caching_disabled {
            after != before
        } else {
            after.0 > before.0 && after.1 > before.1
        };
        if settled {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = read().await?;
    }
    if features.prefix_caching_disabled {
        shape(C, after == before, || {
            format!(
                "with prefix caching off the counters moved: (queries, hits) {before:?} -> {after:?}"
            )
        })?;
        if features.prompt_tokens_details {
            shape(C, cached.iter().all(|c| *c == Some(0)), || {
                format!("with prefix caching off cached_tokens was {cached:?}")
            })?;
        }
    } else {
        shape(C, after.0 > before.0 && after.1 > before.1, || {
            format!(
                "a repeated prompt did not move the counters: (queries, hits) {before:?} -> {after:?}"
            )
        })?;
        if features.prompt_tokens_details {
            shape(C, cached[1].is_some_and(|c| c > 0), || {
                format!("a repeated prompt had cached_tokens {cached:?}")
            })?;
        }
    }
    Ok(())
}
