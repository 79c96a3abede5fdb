//! Extreme but accepted inputs: the simulator answers as vLLM would, or
//! waits "forever", and never panics or allocates what it will not send.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{chat, post, start, truth};

#[tokio::test]
async fn max_tokens_near_u64_max_gets_vllms_400_with_the_exact_total() {
    let s = start(&["tiny", "--sim-time-scale", "0"]).await;
    let mut body = chat("hi", 0, false);
    body["max_tokens"] = json!(u64::MAX);
    let (status, text) = post(&s, "/v1/chat/completions", &body, None).await;
    assert_eq!(status, 400, "{text}");
    let v: Value = serde_json::from_str(&text).expect("json");
    let msg = v["error"]["message"].as_str().expect("message");
    let prompt: u128 = msg
        .split("your prompt contains ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no prompt length in {msg}"));
    let total = u128::from(u64::MAX) + prompt;
    assert!(
        msg.contains(&format!("for a total of {total} tokens")),
        "{msg}"
    );
    assert_eq!(v["error"]["param"], "max_tokens", "{v}");
}

/// Sends a request that the server should still be working on when the
/// client gives up; true when it timed out (rather than failing at once).
async fn times_out(s: &vllm_sim::TestServer, body: &Value) -> bool {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let sent = client
        .post(format!("{}/v1/chat/completions", s.base_url()))
        .json(body)
        .send()
        .await;
    match sent {
        Ok(resp) => resp.text().await.is_err_and(|e| e.is_timeout()),
        Err(e) => e.is_timeout(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_simulated_latency_keeps_the_engine_running() {
    for knob in ["--sim-fixed-ttft-ms", "--sim-decode-base-ms"] {
        let s = start(&["tiny", knob, "1e300"]).await;
        // Twice: the first must not have stopped the engine thread.
        for round in 0..2 {
            assert!(
                times_out(&s, &chat("hi", 4, false)).await,
                "{knob} round {round}: the request failed instead of waiting"
            );
        }
        let records = truth(&s).await;
        assert_eq!(records.len(), 2, "{knob}: {records:?}");
        assert!(
            records.iter().all(|r| r["status"] != "error"),
            "{knob}: {records:?}"
        );
    }
}

#[tokio::test]
async fn a_huge_output_length_is_cut_at_max_tokens() {
    // Before: the script drew all 10^10 words before cutting it to
    // max_tokens, an allocation that aborts the process.
    for args in [
        vec![
            "--sim-output-len-min",
            "10000000000",
            "--sim-output-len-max",
            "10000000000",
        ],
        vec![
            "--reasoning-parser",
            "qwen3",
            "--sim-reasoning-tokens",
            "10000000000",
        ],
    ] {
        let mut all = vec!["tiny", "--sim-time-scale", "0"];
        all.extend_from_slice(&args);
        let s = start(&all).await;
        let (status, text) = post(&s, "/v1/chat/completions", &chat("hi", 4, false), None).await;
        assert_eq!(status, 200, "{args:?}: {text}");
        let v: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["usage"]["completion_tokens"], 4, "{args:?}: {v}");
        assert_eq!(v["choices"][0]["finish_reason"], "length", "{args:?}: {v}");
    }
}
