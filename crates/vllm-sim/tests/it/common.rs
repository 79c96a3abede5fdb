//! Helpers shared by the test modules.

use serde_json::Value;
use vllm_sim::TestServer;

pub async fn start(args: &[&str]) -> TestServer {
    match TestServer::start_args(args).await {
        Ok(s) => s,
        Err(e) => panic!("simulator did not start with {args:?}: {e:?}"),
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

/// Starts a chat completion in its own task, so several run at once; the
/// task yields the body text. Used where a test needs concurrent requests.
pub fn spawn_chat(server: &TestServer, body: Value) -> tokio::task::JoinHandle<String> {
    let url = format!("{}/v1/chat/completions", server.base_url());
    tokio::spawn(async move {
        client()
            .post(url)
            .json(&body)
            .send()
            .await
            .expect("sent")
            .text()
            .await
            .expect("body")
    })
}

/// POSTs JSON, returns (status, body text).
pub async fn post(
    server: &TestServer,
    path: &str,
    body: &Value,
    key: Option<&str>,
) -> (u16, String) {
    let mut req = client()
        .post(format!("{}{path}", server.base_url()))
        .json(body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

pub async fn get(server: &TestServer, path: &str) -> (u16, String) {
    let resp = client()
        .get(format!("{}{path}", server.base_url()))
        .send()
        .await
        .expect("request sent");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

/// The `data:` payloads of an SSE body, in order (including `[DONE]`).
pub fn sse_data(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

/// Parsed JSON chunks of an SSE body (without `[DONE]`).
pub fn sse_json(body: &str) -> Vec<Value> {
    sse_data(body)
        .into_iter()
        .filter(|d| d != "[DONE]")
        .map(|d| {
            serde_json::from_str(&d).unwrap_or_else(|e| panic!("chunk is not JSON ({e}): {d}"))
        })
        .collect()
}

pub fn chat(content: &str, max_tokens: u64, stream: bool) -> Value {
    let mut body = serde_json::json!({
        "model": "tiny",
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "stream": stream,
    });
    if stream {
        body["stream_options"] = serde_json::json!({"include_usage": true});
    }
    body
}

/// A prompt of about `tokens` tokens (each word below is one token).
pub fn long_prompt(tokens: usize, salt: &str) -> String {
    let mut s = format!("{salt} ");
    for i in 0..tokens {
        s.push_str(["alpha ", "beta ", "gamma ", "delta "][i % 4]);
    }
    s
}

/// Ground-truth records from /sim/requests.
pub async fn truth(server: &TestServer) -> Vec<Value> {
    let (_, body) = get(server, "/sim/requests").await;
    let v: Value = serde_json::from_str(&body).expect("truth JSON");
    v["requests"].as_array().cloned().unwrap_or_default()
}

/// A metric's value (first sample whose name matches exactly).
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.split(['{', ' ']).next() == Some(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing"))
}
