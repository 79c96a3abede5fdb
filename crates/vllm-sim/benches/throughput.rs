//! How fast the simulator serves at zero delay, so it is never the
//! bottleneck when a client is measured. Prints numbers; asserts nothing.
//!
//!   cargo bench -p vllm-sim --bench throughput
//!
//! The client (reqwest) runs in the same process and shares the CPU, so the
//! figures are a lower bound on what the server alone can do.

use std::time::{Duration, Instant};

use vllm_sim::TestServer;

async fn streamed_tokens(
    server: &TestServer,
    concurrency: usize,
    requests: usize,
    tokens: u64,
) -> (f64, f64) {
    let client = reqwest::Client::new();
    let url = format!("{}/v1/chat/completions", server.base_url());
    let start = Instant::now();
    let per_worker = requests / concurrency;
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut chunks = 0usize;
            for i in 0..per_worker {
                let body = serde_json::json!({"model": "tiny", "stream": true, "max_tokens": tokens, "ignore_eos": true,
                    "messages": [{"role": "user", "content": format!("worker {w} request {i}")}]});
                let text = client.post(&url).json(&body).send().await.expect("sent").text().await.expect("body");
                chunks += text.matches("\"content\":\"").count().saturating_sub(1);
            }
            chunks
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("worker");
    }
    let secs = start.elapsed().as_secs_f64();
    (
        total as f64 / secs,
        (per_worker * concurrency) as f64 / secs,
    )
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let server = TestServer::start_args(&["tiny", "--sim-fixed-ttft-ms", "0", "--sim-fixed-itl-ms", "0"])
            .await
            .expect("simulator");
        // Warm up connections and code paths.
        let _ = streamed_tokens(&server, 8, 64, 16).await;
        for (concurrency, requests, tokens) in [(1, 200, 256), (16, 640, 256), (64, 1280, 256), (64, 6400, 1)] {
            let (tps, rps) = streamed_tokens(&server, concurrency, requests, tokens).await;
            println!(
                "concurrency {concurrency:>3}, {requests:>5} streamed requests of {tokens:>3} tokens: {tps:>10.0} tokens/s, {rps:>8.0} requests/s"
            );
        }
        server.stop().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    });
}
