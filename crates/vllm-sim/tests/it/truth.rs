//! The fixed-latency mode and the ground-truth records.

use serde_json::Value;

use crate::common::{chat, post, spawn_chat, sse_json, start, truth};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_latency_mode_gives_constant_ttft_and_gaps() {
    let server = start(&[
        "tiny",
        "--sim-fixed-ttft-ms",
        "30",
        "--sim-fixed-itl-ms",
        "5",
    ])
    .await;
    // Concurrency does not change the timings in this mode.
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let mut body = chat(&format!("q{i}"), 10, true);
            body["ignore_eos"] = Value::Bool(true);
            spawn_chat(&server, body)
        })
        .collect();
    for t in tasks {
        let body = t.await.expect("task");
        assert_eq!(
            sse_json(&body).last().expect("usage")["usage"]["completion_tokens"],
            10
        );
    }
    for r in truth(&server).await {
        let ttft = r["true_ttft_us"].as_f64().expect("ttft");
        assert!((29_000.0..36_000.0).contains(&ttft), "ttft {ttft} µs");
        let gaps: Vec<f64> = r["gaps_us"]
            .as_array()
            .expect("gaps")
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        assert_eq!(gaps.len(), 9);
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        assert!((4_000.0..6_500.0).contains(&mean), "mean gap {mean} µs");
        assert_eq!(r["status"], "finished");
        assert_eq!(r["completion_tokens"], 10);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_carry_tokens_and_derived_fields() {
    let server = start(&["tiny", "--sim-time-scale", "0.01"]).await;
    let (_, body) = post(
        &server,
        "/v1/chat/completions",
        &chat("hello", 6, true),
        None,
    )
    .await;
    let usage = sse_json(&body).last().expect("usage")["usage"].clone();
    let records = truth(&server).await;
    let r = &records[0];
    assert_eq!(r["prompt_tokens"], usage["prompt_tokens"]);
    assert_eq!(r["completion_tokens"], 6);
    let writes: Vec<u64> = r["token_write_us"]
        .as_array()
        .expect("writes")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(writes.len(), 6);
    assert!(writes.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(r["first_token_us"].as_u64(), writes.first().copied());
    assert_eq!(
        r["true_ttft_us"].as_u64(),
        Some(writes[0] - r["received_us"].as_u64().expect("received"))
    );
    assert!(r["end_us"].as_u64().expect("end") >= writes[5]);
}
