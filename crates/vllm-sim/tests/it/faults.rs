//! Each injected fault does what it says.

use std::time::Duration;

use serde_json::Value;

use crate::common::{chat, client, get, post, sse_data, start, truth};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_500_rate_one_fails_every_request() {
    let server = start(&[
        "tiny",
        "--sim-http-500-rate",
        "1",
        "--sim-time-scale",
        "0.01",
    ])
    .await;
    let (status, body) = post(&server, "/v1/chat/completions", &chat("hi", 4, false), None).await;
    assert_eq!(status, 500);
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["error"]["code"], 500);
    assert_eq!(truth(&server).await[0]["fault"], "http_500");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_500_rate_half_fails_some() {
    let server = start(&[
        "tiny",
        "--sim-http-500-rate",
        "0.5",
        "--sim-time-scale",
        "0.001",
    ])
    .await;
    let mut failures = 0;
    for _ in 0..40 {
        if post(&server, "/v1/chat/completions", &chat("hi", 2, false), None)
            .await
            .0
            == 500
        {
            failures += 1;
        }
    }
    assert!((8..=32).contains(&failures), "{failures} of 40 failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_stream_never_reaches_done() {
    let server = start(&[
        "tiny",
        "--sim-drop-mid-stream-rate",
        "1",
        "--sim-time-scale",
        "0.01",
    ])
    .await;
    let resp = client()
        .post(format!("{}/v1/chat/completions", server.base_url()))
        .json(&chat("hi", 20, true))
        .send()
        .await
        .expect("headers arrive");
    assert_eq!(resp.status().as_u16(), 200);
    let body = resp.text().await;
    assert!(
        body.is_err(),
        "the body should fail mid-stream, got {body:?}"
    );
    assert_eq!(truth(&server).await[0]["fault"], "drop_mid_stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_chunk_appears_once() {
    let server = start(&[
        "tiny",
        "--sim-malformed-sse-rate",
        "1",
        "--sim-time-scale",
        "0.01",
    ])
    .await;
    let (status, body) = post(&server, "/v1/chat/completions", &chat("hi", 10, true), None).await;
    assert_eq!(status, 200);
    let data = sse_data(&body);
    let bad = data
        .iter()
        .filter(|d| *d != "[DONE]" && serde_json::from_str::<Value>(d).is_err())
        .count();
    assert_eq!(bad, 1, "{body}");
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_requests_stops_serving() {
    let server = start(&[
        "tiny",
        "--sim-crash-after-requests",
        "2",
        "--sim-time-scale",
        "0.01",
    ])
    .await;
    for _ in 0..2 {
        assert_eq!(
            post(&server, "/v1/chat/completions", &chat("hi", 2, false), None)
                .await
                .0,
            200
        );
    }
    // The listener closes: new connections fail.
    let mut refused = false;
    for _ in 0..50 {
        let r = client()
            .get(format!("{}/health", server.base_url()))
            .timeout(Duration::from_millis(200))
            .send()
            .await;
        match r {
            Err(_) => {
                refused = true;
                break;
            }
            Ok(r) if r.status().as_u16() == 503 => {}
            Ok(r) => panic!("health answered {} after the crash", r.status()),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        refused,
        "the server kept accepting connections after the crash"
    );
}

#[test]
fn crash_exits_the_process_with_1() {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vllm-sim"))
        .args([
            "serve",
            "tiny",
            "--port",
            "0",
            "--sim-time-scale",
            "0",
            "--sim-crash-after-requests",
            "1",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let mut port = 0u16;
    for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
        let line = line.expect("line");
        if let Some(rest) = line.strip_prefix("INFO:     Uvicorn running on http://127.0.0.1:") {
            port = rest
                .split(' ')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("port");
        }
        if line.starts_with("vllm-sim: ready") {
            break;
        }
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let _ = client()
            .post(format!("http://127.0.0.1:{port}/v1/completions"))
            .json(&serde_json::json!({"model": "tiny", "prompt": "hi", "max_tokens": 2}))
            .send()
            .await;
    });
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("no exit after the simulated crash");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_accepts_but_never_answers() {
    let server = start(&[
        "tiny",
        "--sim-hang-after-requests",
        "1",
        "--sim-time-scale",
        "0.01",
    ])
    .await;
    assert_eq!(
        post(&server, "/v1/chat/completions", &chat("hi", 2, false), None)
            .await
            .0,
        200
    );
    let r = client()
        .post(format!("{}/v1/chat/completions", server.base_url()))
        .json(&chat("hi", 2, false))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(
        r.is_err_and(|e| e.is_timeout()),
        "the second request should hang"
    );
    assert_eq!(get(&server, "/health").await.0, 200);
    assert_eq!(truth(&server).await[1]["status"], "hung");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn degradation_grows_latency_with_uptime() {
    // Fixed latency 100 ms TTFT at scale 0.1 (10 ms); 3600 per simulated
    // hour makes the factor 1 + 10 × real seconds of uptime.
    let server = start(&[
        "tiny",
        "--sim-fixed-ttft-ms",
        "100",
        "--sim-fixed-itl-ms",
        "10",
        "--sim-time-scale",
        "0.1",
        "--sim-degradation-per-hour",
        "3600",
    ])
    .await;
    let _ = post(&server, "/v1/chat/completions", &chat("hi", 2, false), None).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let _ = post(&server, "/v1/chat/completions", &chat("hi", 2, false), None).await;
    let records = truth(&server).await;
    let early = records[0]["true_ttft_us"].as_f64().expect("ttft");
    let late = records[1]["true_ttft_us"].as_f64().expect("ttft");
    assert!(
        late > 2.5 * early,
        "late TTFT {late} µs vs early {early} µs"
    );
}
