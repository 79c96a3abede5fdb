//! The engine model: prefix caching, chunked prefill, determinism, preemption.

use serde_json::{Value, json};

use crate::common::{chat, get, long_prompt, metric, post, spawn_chat, sse_json, start, truth};

fn ttft_of(records: &[Value], index: usize) -> f64 {
    records[index]["true_ttft_us"]
        .as_f64()
        .expect("ttft recorded")
}

async fn cached_tokens(server: &vllm_sim::TestServer, prompt: &str) -> (u64, u64) {
    let (status, body) = post(server, "/v1/chat/completions", &chat(prompt, 4, true), None).await;
    assert_eq!(status, 200, "{body}");
    let chunks = sse_json(&body);
    let usage = &chunks.last().expect("usage")["usage"];
    (
        usage["prompt_tokens"].as_u64().expect("prompt_tokens"),
        usage["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .expect("cached_tokens"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_cache_hit_cuts_ttft_and_shows_in_counters() {
    let server = start(&[
        "tiny",
        "--enable-prompt-tokens-details",
        "--sim-time-scale",
        "0.05",
    ])
    .await;
    let prompt = long_prompt(6000, "cache-test");
    let (prompt_tokens, cold_cached) = cached_tokens(&server, &prompt).await;
    let (_, warm_cached) = cached_tokens(&server, &prompt).await;
    assert_eq!(cold_cached, 0);
    assert!(
        warm_cached >= prompt_tokens - 16 && warm_cached % 16 == 0,
        "{warm_cached} of {prompt_tokens}"
    );
    let records = truth(&server).await;
    let (cold, warm) = (ttft_of(&records, 0), ttft_of(&records, 1));
    assert!(warm * 3.0 < cold, "warm TTFT {warm} µs vs cold {cold} µs");
    let (_, text) = get(&server, "/metrics").await;
    assert_eq!(
        metric(&text, "vllm:prefix_cache_hits_total"),
        warm_cached as f64
    );
    assert_eq!(
        metric(&text, "vllm:prefix_cache_queries_total"),
        2.0 * prompt_tokens as f64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caching_off_gives_no_reuse() {
    let server = start(&[
        "tiny",
        "--no-enable-prefix-caching",
        "--enable-prompt-tokens-details",
        "--sim-time-scale",
        "0.05",
    ])
    .await;
    let prompt = long_prompt(6000, "no-cache");
    let (_, first) = cached_tokens(&server, &prompt).await;
    let (_, second) = cached_tokens(&server, &prompt).await;
    assert_eq!((first, second), (0, 0));
    let records = truth(&server).await;
    let (a, b) = (ttft_of(&records, 0), ttft_of(&records, 1));
    assert!(
        b > a * 0.7,
        "second TTFT {b} µs should not drop like a hit (first {a} µs)"
    );
    let (_, text) = get(&server, "/metrics").await;
    assert_eq!(metric(&text, "vllm:prefix_cache_hits_total"), 0.0);
}

/// Max gap (µs) of the decode streams while a long prompt arrives.
async fn max_decode_gap(chunked: bool) -> f64 {
    // Scale 0.1 keeps the gaps (≥ 2.5 ms) well above scheduling noise on a
    // loaded 2-core machine.
    let mut args = vec!["tiny", "--sim-time-scale", "0.1"];
    if !chunked {
        args.push("--no-enable-chunked-prefill");
    }
    let server = start(&args).await;
    let decodes: Vec<_> = (0..3)
        .map(|i| {
            spawn_chat(
                &server,
                json!({"model": "tiny", "messages": [{"role": "user", "content": format!("stream {i}")}],
                    "max_tokens": 200, "ignore_eos": true, "stream": true}),
            )
        })
        .collect();
    // Let the decodes get going, then send the long prompt.
    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    let long = json!({"model": "tiny", "messages": [{"role": "user", "content": long_prompt(12000, "long")}],
        "max_tokens": 2});
    let (status, body) = post(&server, "/v1/chat/completions", &long, None).await;
    assert_eq!(status, 200, "{body}");
    for d in decodes {
        d.await.expect("decode task");
    }
    let records = truth(&server).await;
    records
        .iter()
        .filter(|r| r["stream"] == true)
        .flat_map(|r| r["gaps_us"].as_array().cloned().unwrap_or_default())
        .filter_map(|g| g.as_f64())
        .fold(0.0, f64::max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_prefill_spikes_gaps_only_without_chunked_prefill() {
    let chunked = max_decode_gap(true).await;
    let unchunked = max_decode_gap(false).await;
    // 12k tokens at 6000 tok/s is a 2 s step without chunking (40 ms at
    // scale 0.02); with 2048-token chunks no step exceeds ~0.37 s (7.4 ms).
    assert!(
        unchunked > 3.0 * chunked,
        "unchunked max gap {unchunked} µs vs chunked {chunked} µs"
    );
    assert!(unchunked > 25_000.0, "unchunked max gap {unchunked} µs");
}

async fn run_sequence(seed: &str) -> (Vec<String>, Vec<f64>) {
    // Scale 0.1: requests take a few hundred ms, so a loaded machine's
    // scheduling noise stays small against them.
    let server = start(&[
        "tiny",
        "--sim-seed",
        seed,
        "--sim-time-scale",
        "0.1",
        "--sim-output-len-max",
        "128",
    ])
    .await;
    let mut texts = Vec::new();
    for i in 0..2 {
        let body = json!({"model": "tiny", "messages": [{"role": "user", "content": format!("question {i}")}],
            "temperature": 0.7});
        let (_, text) = post(&server, "/v1/chat/completions", &body, None).await;
        let v: Value = serde_json::from_str(&text).expect("json");
        texts.push(
            v["choices"][0]["message"]["content"]
                .as_str()
                .expect("content")
                .to_owned(),
        );
    }
    let e2e = truth(&server)
        .await
        .iter()
        .map(|r| r["end_us"].as_f64().unwrap_or(0.0) - r["received_us"].as_f64().unwrap_or(0.0))
        .collect();
    (texts, e2e)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_same_outputs_and_timings() {
    let (a, ta) = run_sequence("42").await;
    let (b, tb) = run_sequence("42").await;
    let (c, _) = run_sequence("43").await;
    assert_eq!(a, b);
    assert_ne!(a, c);
    for (x, y) in ta.iter().zip(&tb) {
        // Scheduler jitter only: within 30% or 3 ms.
        assert!(
            (x - y).abs() < (0.3 * x.max(*y)).max(3000.0),
            "e2e {x} µs vs {y} µs"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_pressure_preempts_and_still_completes() {
    // 2 MiB... 200 MiB of KV at 128 KiB/token = 1600 tokens for four
    // sequences of 300 + 400 tokens: they cannot all stay resident.
    let server = start(&[
        "tiny",
        "--kv-cache-memory-bytes",
        "209715200",
        "--max-model-len",
        "1024",
        "--sim-time-scale",
        "0.005",
    ])
    .await;
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            spawn_chat(
                &server,
                json!({"model": "tiny", "max_tokens": 400, "ignore_eos": true,
                    "messages": [{"role": "user", "content": long_prompt(300, &format!("p{i}"))}]}),
            )
        })
        .collect();
    for t in tasks {
        let v: Value = serde_json::from_str(&t.await.expect("task")).expect("json");
        assert_eq!(v["usage"]["completion_tokens"].as_u64(), Some(400));
    }
    let (_, text) = get(&server, "/metrics").await;
    assert!(metric(&text, "vllm:num_preemptions_total") >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decode_steps_slow_down_with_batch_size() {
    // One stream alone vs the same stream among 63 others.
    let server = start(&[
        "tiny",
        "--sim-time-scale",
        "0.01",
        "--sim-decode-per-seq-ms",
        "1.0",
    ])
    .await;
    let solo = json!({"model": "tiny", "max_tokens": 200, "ignore_eos": true, "messages": [{"role": "user", "content": "solo"}]});
    let _ = post(&server, "/v1/chat/completions", &solo, None).await;
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            spawn_chat(
                &server,
                json!({"model": "tiny", "max_tokens": 200, "ignore_eos": true,
                    "messages": [{"role": "user", "content": format!("batch {i}")}]}),
            )
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let records = truth(&server).await;
    let mean_gap = |r: &Value| {
        let g: Vec<f64> = r["gaps_us"]
            .as_array()
            .expect("gaps")
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        g.iter().sum::<f64>() / g.len() as f64
    };
    let solo_gap = mean_gap(&records[0]);
    let batch_gap = records[1..].iter().map(mean_gap).sum::<f64>() / 64.0;
    // 25 ms + 1 ms × 64 ≈ 89 ms vs 26 ms per step.
    assert!(
        batch_gap > 2.0 * solo_gap,
        "batched {batch_gap} µs vs solo {solo_gap} µs"
    );
}
