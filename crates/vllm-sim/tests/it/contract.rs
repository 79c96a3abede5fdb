//! Shapes checked against the recording of a real vLLM 0.32.0 server.

use std::collections::BTreeSet;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Value, json};

use crate::common::{chat, get, post, sse_data, sse_json, start};

const FIXTURE_CHAT: &str = include_str!("../data/sse_chat_stream.txt");
const FIXTURE_TOOL: &str = include_str!("../data/sse_tool_stream.txt");
const FIXTURE_METRICS: &str = include_str!("../data/metrics_sample.txt");
const FIXTURE_ENDPOINTS: &str = include_str!("../data/endpoints_sample.txt");

/// Key paths of a JSON value (objects recursively, arrays by first element).
fn shape(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = format!("{prefix}.{k}");
                out.insert(p.clone());
                shape(v, &p, out);
            }
        }
        Value::Array(a) => {
            if let Some(first) = a.first() {
                shape(first, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

fn shape_of(v: &Value) -> BTreeSet<String> {
    let mut s = BTreeSet::new();
    shape(v, "", &mut s);
    s
}

/// Classifies a chat chunk: role, content, final (finish_reason set), usage.
fn kind(chunk: &Value) -> &'static str {
    let choices = chunk["choices"].as_array().expect("choices array");
    match choices.first() {
        None => "usage",
        Some(c) if c["delta"].get("role").is_some() => "role",
        Some(c) if !c["finish_reason"].is_null() => "final",
        Some(c) if c["delta"].get("tool_calls").is_some() => "tool",
        Some(_) => "content",
    }
}

fn check_same_shapes(ours: &[Value], theirs: &[Value], kinds: &[&str]) {
    for k in kinds {
        let a = ours
            .iter()
            .find(|c| kind(c) == *k)
            .unwrap_or_else(|| panic!("no {k} chunk in ours"));
        let b = theirs
            .iter()
            .find(|c| kind(c) == *k)
            .unwrap_or_else(|| panic!("no {k} chunk in fixture"));
        assert_eq!(
            shape_of(a),
            shape_of(b),
            "{k} chunk shape differs:\nours {a}\nvLLM {b}"
        );
    }
}

#[tokio::test]
async fn chat_stream_matches_the_recorded_shape() {
    let server = start(&[
        "tiny",
        "--enable-prompt-tokens-details",
        "--sim-time-scale",
        "0.01",
    ])
    .await;
    let (status, body) = post(&server, "/v1/chat/completions", &chat("hi", 8, true), None).await;
    assert_eq!(status, 200);
    let data = sse_data(&body);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let ours = sse_json(&body);
    let theirs = sse_json(FIXTURE_CHAT);
    check_same_shapes(&ours, &theirs, &["role", "content", "final", "usage"]);
    let usage = &ours.last().expect("usage chunk")["usage"];
    assert_eq!(usage["completion_tokens"], 8);
    assert_eq!(ours.last().expect("usage")["choices"], json!([]));
    assert!(usage["prompt_tokens_details"]["cached_tokens"].is_u64());
}

#[tokio::test]
async fn tool_stream_matches_the_recorded_shape() {
    let server = start(&[
        "tiny",
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        "hermes",
        "--enable-prompt-tokens-details",
        "--sim-time-scale",
        "0.01",
    ])
    .await;
    let body = json!({
        "model": "tiny", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Weather in London?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
    });
    let (status, text) = post(&server, "/v1/chat/completions", &body, None).await;
    assert_eq!(status, 200, "{text}");
    let ours = sse_json(&text);
    let theirs = sse_json(FIXTURE_TOOL);
    check_same_shapes(&ours, &theirs, &["role", "final", "usage"]);
    // Tool chunks: the first carries id/type/name, later ones argument text.
    let tools: Vec<&Value> = ours.iter().filter(|c| kind(c) == "tool").collect();
    let fixture_tools: Vec<&Value> = theirs.iter().filter(|c| kind(c) == "tool").collect();
    assert_eq!(shape_of(tools[0]), shape_of(fixture_tools[0]));
    assert_eq!(shape_of(tools[1]), shape_of(fixture_tools[1]));
}

fn fixture_body(section: &str) -> (u16, Value) {
    let (status, json) = fixture_line(section);
    (status, serde_json::from_str(json).expect("fixture JSON"))
}

#[tokio::test]
async fn error_bodies_match_vllm() {
    let server = start(&[
        "tiny",
        "--api-key",
        "sk-test",
        "--max-model-len",
        "4096",
        "--sim-time-scale",
        "0.01",
    ])
    .await;
    // 401 without a key, exactly vLLM's body.
    let (status, body) = post(&server, "/v1/chat/completions", &chat("hi", 4, false), None).await;
    let (fs, fb) = fixture_body("unauth");
    assert_eq!(
        (status, serde_json::from_str::<Value>(&body).expect("json")),
        (fs, fb)
    );
    // /health and /metrics need no key.
    assert_eq!(get(&server, "/health").await.0, 200);
    assert_eq!(get(&server, "/metrics").await.0, 200);
    // 404 for an unknown model.
    let mut req = chat("hi", 4, false);
    req["model"] = json!("nope");
    let (status, body) = post(&server, "/v1/chat/completions", &req, Some("sk-test")).await;
    let (fs, fb) = fixture_body("unknown_model");
    assert_eq!(
        (status, serde_json::from_str::<Value>(&body).expect("json")),
        (fs, fb)
    );
    // 400 for a prompt over max-model-len: same message template.
    let (status, body) = post(
        &server,
        "/v1/completions",
        &json!({"model": "tiny", "prompt": crate::common::long_prompt(5000, "x"), "max_tokens": 1}),
        Some("sk-test"),
    )
    .await;
    assert_eq!(status, 400);
    let ours: Value = serde_json::from_str(&body).expect("json");
    let (_, theirs) = fixture_body("too_long");
    assert_eq!(shape_of(&ours), shape_of(&theirs));
    let msg = ours["error"]["message"].as_str().expect("message");
    assert!(msg.starts_with("This model's maximum context length is 4096 tokens. However, your prompt contains at least "), "{msg}");
    // 400 for bad JSON, with vLLM's error object.
    let resp = crate::common::client()
        .post(format!("{}/v1/chat/completions", server.base_url()))
        .bearer_auth("sk-test")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 400);
    let v: Value = resp.json().await.expect("json");
    // FastAPI's validation error, as vLLM 0.32 sends it (with a space).
    assert_eq!(v["error"]["type"], "Bad Request");
    assert_eq!(v["error"]["code"], 400);
}

#[tokio::test]
async fn models_and_non_streaming_bodies_match_vllm() {
    let server = start(&[
        "tiny",
        "--enable-prompt-tokens-details",
        "--sim-time-scale",
        "0.01",
    ])
    .await;
    let (_, body) = get(&server, "/v1/models").await;
    let (_, fixture) = fixture_body("models");
    assert_eq!(
        shape_of(&serde_json::from_str(&body).expect("json")),
        shape_of(&fixture)
    );
    let (_, body) = post(&server, "/v1/chat/completions", &chat("hi", 8, false), None).await;
    let ours: Value = serde_json::from_str(&body).expect("json");
    let (_, theirs) = fixture_body("chat");
    let ignore = |s: BTreeSet<String>| -> BTreeSet<String> {
        // vLLM 0.32 adds experimental fields the simulator leaves out.
        s.into_iter()
            .filter(|k| {
                ![
                    "routed_experts",
                    "prompt_text",
                    "ec_transfer_params",
                    "metrics",
                ]
                .iter()
                .any(|x| k.contains(x))
            })
            .filter(|k| !k.contains("reasoning_content"))
            .collect()
    };
    assert_eq!(ignore(shape_of(&ours)), ignore(shape_of(&theirs)));
    assert_eq!(ours["usage"]["completion_tokens"], 8);
}

#[tokio::test]
async fn metrics_carry_vllm_names() {
    let server = start(&["tiny", "--sim-time-scale", "0.01"]).await;
    let _ = post(&server, "/v1/chat/completions", &chat("hi", 4, false), None).await;
    let (_, text) = get(&server, "/metrics").await;
    // The names the orchestrator reads (one list, vllm-contract's), and the
    // ones the simulator also exposes as vLLM does.
    for name in vllm_contract::REQUIRED_METRICS.iter().copied().chain([
        "vllm:request_queue_time_seconds_bucket",
        "vllm:request_prefill_time_seconds_bucket",
        "vllm:request_decode_time_seconds_bucket",
        "vllm:cache_config_info",
    ]) {
        assert!(
            FIXTURE_METRICS.contains(name),
            "{name} is not in the vLLM recording"
        );
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} missing from /metrics"
        );
    }
    assert_eq!(
        crate::common::metric(&text, "vllm:generation_tokens_total"),
        4.0
    );
    // HELP lines are vLLM's.
    for line in text
        .lines()
        .filter(|l| l.starts_with("# HELP vllm:time_to_first_token_seconds "))
    {
        assert!(FIXTURE_METRICS.contains(line), "{line}");
    }
}

/// A JSON value with its object keys in the order they were sent
/// (`serde_json::Value` sorts them).
enum Ordered {
    Leaf,
    List(Vec<Ordered>),
    Object(Vec<(String, Ordered)>),
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Ordered, E> {
                Ok(Ordered::Leaf)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Ordered, E> {
                Ok(Ordered::Leaf)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Ordered, E> {
                Ok(Ordered::Leaf)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Ordered, E> {
                Ok(Ordered::Leaf)
            }
            fn visit_str<E>(self, _: &str) -> Result<Ordered, E> {
                Ok(Ordered::Leaf)
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Leaf)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Ordered, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Ordered::List(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut fields = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    fields.push((key, map.next_value()?));
                }
                Ok(Ordered::Object(fields))
            }
        }
        d.deserialize_any(V)
    }
}

/// Key paths in the order they were sent (arrays by their first element),
/// leaving out the keys `skip` names.
fn key_order(text: &str, skip: &[&str]) -> Vec<String> {
    fn walk(v: &Ordered, prefix: &str, skip: &[&str], out: &mut Vec<String>) {
        match v {
            Ordered::Object(fields) => {
                for (k, v) in fields.iter().filter(|(k, _)| !skip.contains(&k.as_str())) {
                    let p = format!("{prefix}.{k}");
                    out.push(p.clone());
                    walk(v, &p, skip, out);
                }
            }
            Ordered::List(items) => {
                if let Some(first) = items.first() {
                    walk(first, &format!("{prefix}[]"), skip, out);
                }
            }
            Ordered::Leaf => {}
        }
    }
    let v: Ordered =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    let mut out = Vec::new();
    walk(&v, "", skip, &mut out);
    out
}

/// The first `data:` payload of each chunk kind, as sent.
fn first_of_each_kind<'a>(data: &'a [String], kinds: &[&str]) -> Vec<(String, &'a str)> {
    kinds
        .iter()
        .map(|k| {
            let text = data
                .iter()
                .filter(|d| *d != "[DONE]")
                .find(|d| kind(&serde_json::from_str(d).expect("chunk JSON")) == *k)
                .unwrap_or_else(|| panic!("no {k} chunk"));
            ((*k).to_owned(), text.as_str())
        })
        .collect()
}

fn check_same_key_order(ours: &str, theirs: &str, kinds: &[&str]) {
    let (ours, theirs) = (sse_data(ours), sse_data(theirs));
    for ((k, a), (_, b)) in first_of_each_kind(&ours, kinds)
        .into_iter()
        .zip(first_of_each_kind(&theirs, kinds))
    {
        assert_eq!(
            key_order(a, &[]),
            key_order(b, &[]),
            "{k} chunk keys are in another order:\nours {a}\nvLLM {b}"
        );
    }
}

/// Keys vLLM 0.32 adds that the simulator leaves out (experimental, or
/// always null in the recording); see `models_and_non_streaming_bodies_match_vllm`.
const NOT_SIMULATED: &[&str] = &[
    "routed_experts",
    "prompt_text",
    "ec_transfer_params",
    "metrics",
    "reasoning_content",
];

#[tokio::test]
async fn chunks_and_bodies_keep_vllms_key_order() {
    let server = start(&[
        "tiny",
        "--enable-prompt-tokens-details",
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        "hermes",
        "--sim-time-scale",
        "0.01",
    ])
    .await;
    let (_, text) = post(&server, "/v1/chat/completions", &chat("hi", 8, true), None).await;
    check_same_key_order(&text, FIXTURE_CHAT, &["role", "content", "final", "usage"]);
    let tool = json!({
        "model": "tiny", "stream": true, "stream_options": {"include_usage": true}, "tool_choice": "required",
        "messages": [{"role": "user", "content": "Weather in London?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
    });
    let (_, text) = post(&server, "/v1/chat/completions", &tool, None).await;
    check_same_key_order(&text, FIXTURE_TOOL, &["role", "final", "usage"]);
    let ours = sse_data(&text);
    let theirs = sse_data(FIXTURE_TOOL);
    let tool_chunks = |data: &[String]| -> Vec<String> {
        data.iter()
            .filter(|d| *d != "[DONE]")
            .filter(|d| kind(&serde_json::from_str(d).expect("chunk")) == "tool")
            .take(2)
            .cloned()
            .collect()
    };
    for (a, b) in tool_chunks(&ours).iter().zip(tool_chunks(&theirs).iter()) {
        assert_eq!(key_order(a, &[]), key_order(b, &[]), "ours {a}\nvLLM {b}");
    }
    // Non-streaming bodies: the same order once vLLM's extra keys are left out.
    let (_, ours) = post(&server, "/v1/chat/completions", &chat("hi", 8, false), None).await;
    let (_, theirs) = fixture_line("chat");
    assert_eq!(
        key_order(&ours, NOT_SIMULATED),
        key_order(theirs, NOT_SIMULATED),
        "ours {ours}\nvLLM {theirs}"
    );
    let body = json!({"model": "tiny", "prompt": "Once upon a time", "max_tokens": 4});
    let (_, ours) = post(&server, "/v1/completions", &body, None).await;
    let (_, theirs) = fixture_line("completions");
    assert_eq!(
        key_order(&ours, NOT_SIMULATED),
        key_order(theirs, NOT_SIMULATED),
        "ours {ours}\nvLLM {theirs}"
    );
}

/// A fixture section's status (200 unless the line starts with one) and
/// JSON text, as recorded.
fn fixture_line(section: &str) -> (u16, &'static str) {
    let text = FIXTURE_ENDPOINTS
        .split("### ")
        .find(|s| s.starts_with(section))
        .unwrap_or_else(|| panic!("fixture section {section}"));
    let line = text.lines().nth(1).expect("body line");
    match line.split_once(' ') {
        Some((code, rest)) if code.len() == 3 && code.chars().all(|c| c.is_ascii_digit()) => {
            (code.parse().expect("status"), rest)
        }
        _ => (200, line),
    }
}
