//! Measured TTFT, ITL, TPOT and E2E against the simulator's ground truth in
//! fixed-latency mode (token k written at received + T + k × I).
//!
//! Stated tolerances (client minus server truth, medians over 12
//! requests; the client clock starts at send, the server's once it has
//! read the request, so the client can only be later, by the loopback
//! round trip and the scheduling noise of a shared 2-core machine):
//! - TTFT and E2E: median difference between −0.5 ms and +5 ms.
//! - ITL: median over requests of (mean measured gap − mean true gap)
//!   within ±1 ms.
//! - TPOT: median difference within ±1 ms.
//! - Token counts: exactly the server's.

use std::collections::HashMap;
use std::time::Instant;

use grid_bench::client::{Client, ClientConfig};
use grid_bench::openai::{ChatMessage, ChatRequest};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::{endpoint, sim};

const TTFT_MS: f64 = 40.0;
const ITL_MS: f64 = 8.0;
const TOKENS: u32 = 16;

struct Truth {
    ttft_ms: f64,
    e2e_ms: f64,
    mean_gap_ms: f64,
    completion_tokens: u64,
}

async fn ground_truth(base_url: &str) -> HashMap<String, Truth> {
    let body: Value = reqwest::get(format!("{base_url}/sim/requests"))
        .await
        .expect("GET /sim/requests")
        .json()
        .await
        .expect("ground truth is JSON");
    let mut truth = HashMap::new();
    for request in body["requests"].as_array().expect("requests array") {
        let id = request["id"].as_str().expect("id").to_string();
        let received = request["received_us"].as_u64().expect("received_us") as f64;
        let gaps: Vec<f64> = request["gaps_us"]
            .as_array()
            .map(|g| g.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        truth.insert(
            id,
            Truth {
                ttft_ms: request["true_ttft_us"].as_f64().expect("true_ttft_us") / 1000.0,
                e2e_ms: (request["end_us"].as_f64().expect("end_us") - received) / 1000.0,
                mean_gap_ms: gaps.iter().sum::<f64>() / gaps.len().max(1) as f64 / 1000.0,
                completion_tokens: request["completion_tokens"]
                    .as_u64()
                    .expect("completion_tokens"),
            },
        );
    }
    truth
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measured_latencies_match_ground_truth_within_tolerance() {
    let ttft = TTFT_MS.to_string();
    let itl = ITL_MS.to_string();
    let server = sim(&[
        "tiny",
        "--api-key",
        "k",
        "--sim-fixed-ttft-ms",
        &ttft,
        "--sim-fixed-itl-ms",
        &itl,
    ])
    .await;
    let client = Client::new(
        &endpoint(&server, Some("k")),
        ClientConfig {
            request_timeout: std::time::Duration::from_secs(10),
            epoch: Instant::now(),
            keep_text: false,
            ..ClientConfig::default()
        },
    )
    .expect("client");
    let request = ChatRequest {
        messages: vec![ChatMessage::user("measure me please")],
        max_tokens: TOKENS,
        ignore_eos: Some(true),
        ..ChatRequest::default()
    };
    let cancel = CancellationToken::new();
    let mut records = Vec::new();
    // Three rounds of four concurrent requests.
    for round in 0..3 {
        let futures = (0..4).map(|i| {
            client.chat(
                &request,
                Instant::now(),
                &cancel,
                "accuracy",
                format!("round {round} request {i}"),
            )
        });
        for exchange in futures_util::future::join_all(futures).await {
            records.push(exchange.record);
        }
    }
    let truth = ground_truth(&server.base_url()).await;
    let mut problems = Vec::new();
    let (mut ttft_diffs, mut e2e_diffs, mut tpot_diffs) = (Vec::new(), Vec::new(), Vec::new());
    let mut itl_diffs = Vec::new();
    for record in &records {
        if let Some(failure) = &record.failure {
            problems.push(format!("request failed: {failure:?}"));
            continue;
        }
        let id = record.response_id.clone().expect("response id");
        let Some(t) = truth.get(&id) else {
            problems.push(format!("{id}: no ground truth"));
            continue;
        };
        let usage = record.usage.expect("usage");
        if usage.completion_tokens != Some(t.completion_tokens)
            || usage.completion_tokens != Some(TOKENS as u64)
        {
            problems.push(format!(
                "{id}: {:?} completion tokens, truth {}",
                usage.completion_tokens, t.completion_tokens
            ));
        }
        if record.itl_ms.len() != TOKENS as usize - 1 {
            problems.push(format!(
                "{id}: {} gaps for {TOKENS} tokens",
                record.itl_ms.len()
            ));
        }
        ttft_diffs.push(record.ttft_ms.expect("ttft") - t.ttft_ms);
        e2e_diffs.push(record.e2el_ms.expect("e2e") - t.e2e_ms);
        let true_tpot = (t.e2e_ms - t.ttft_ms) / (t.completion_tokens as f64 - 1.0);
        tpot_diffs.push(record.tpot_ms.expect("tpot") - true_tpot);
        let mean_itl = record.itl_ms.iter().sum::<f64>() / record.itl_ms.len().max(1) as f64;
        itl_diffs.push(mean_itl - t.mean_gap_ms);
    }
    let median = |values: &[f64]| grid_core::median(values).unwrap_or(f64::NAN);
    let checks = [
        ("median TTFT − truth", median(&ttft_diffs), -0.5, 5.0),
        ("median E2E − truth", median(&e2e_diffs), -0.5, 5.0),
        ("median TPOT − truth", median(&tpot_diffs), -1.0, 1.0),
        (
            "median of mean ITL − mean true gap",
            median(&itl_diffs),
            -1.0,
            1.0,
        ),
    ];
    for (what, value, low, high) in checks {
        if !(low..=high).contains(&value) {
            problems.push(format!("{what} = {value:.3} ms, allowed [{low}, {high}]"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
