//! Tool calls and reasoning.

use serde_json::{Value, json};

use crate::common::{post, sse_json, start};

fn tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "search_flights", "parameters": {"type": "object",
            "properties": {"origin": {"type": "string"}, "destination": {"type": "string"},
                "date": {"type": "string", "format": "date"}, "passengers": {"type": "integer", "minimum": 1, "maximum": 9}},
            "required": ["origin", "destination", "date", "passengers"]}}},
        {"type": "function", "function": {"name": "book_flight", "parameters": {"type": "object",
            "properties": {"flight_id": {"type": "string"}, "seat": {"type": "string", "enum": ["window", "aisle"]},
                "extras": {"type": "object", "properties": {"bags": {"type": "integer"}}, "required": ["bags"]}},
            "required": ["flight_id", "seat", "extras"]}}},
        {"type": "function", "function": {"name": "send_email", "parameters": {"type": "object",
            "properties": {"to": {"type": "array", "items": {"type": "string", "format": "email"}}, "subject": {"type": "string"}},
            "required": ["to", "subject"]}}}
    ])
}

/// Streams a tool request; returns (tool calls as (id, name, args), content, finish_reason).
async fn stream_turn(
    server: &vllm_sim::TestServer,
    messages: &Value,
) -> (Vec<(String, String, String)>, String, String) {
    let body = json!({"model": "tiny", "stream": true, "messages": messages, "tools": tools()});
    let (status, text) = post(server, "/v1/chat/completions", &body, None).await;
    assert_eq!(status, 200, "{text}");
    let mut calls: Vec<(String, String, String)> = Vec::new();
    let mut content = String::new();
    let mut finish = String::new();
    for chunk in sse_json(&text) {
        let Some(choice) = chunk["choices"].get(0) else {
            continue;
        };
        if let Some(f) = choice["finish_reason"].as_str() {
            finish = f.to_owned();
        }
        if let Some(c) = choice["delta"]["content"].as_str() {
            content.push_str(c);
        }
        for tc in choice["delta"]["tool_calls"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            if let Some(name) = tc["function"]["name"].as_str() {
                assert_eq!(tc["type"], "function");
                calls.push((
                    tc["id"].as_str().expect("id").to_owned(),
                    name.to_owned(),
                    String::new(),
                ));
            }
            if let Some(a) = tc["function"]["arguments"].as_str() {
                calls.last_mut().expect("name delta first").2.push_str(a);
            }
        }
    }
    (calls, content, finish)
}

fn assert_valid(name: &str, args: &Value) {
    match name {
        "search_flights" => {
            assert!(args["origin"].is_string() && args["destination"].is_string());
            assert!(args["date"].as_str().is_some_and(|d| d.len() == 10));
            assert!((1..=9).contains(&args["passengers"].as_i64().expect("passengers")));
        }
        "book_flight" => {
            assert!(args["seat"] == "window" || args["seat"] == "aisle");
            assert!(args["extras"]["bags"].is_i64());
        }
        "send_email" => {
            assert!(!args["to"].as_array().expect("to").is_empty());
            assert!(args["subject"].is_string());
        }
        other => panic!("unexpected tool {other}"),
    }
}

async fn chain(parser: &str, format: &str) {
    let server = start(&[
        "tiny",
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        parser,
        "--sim-tool-format",
        format,
        "--sim-time-scale",
        "0.01",
    ])
    .await;
    let mut messages =
        json!([{"role": "user", "content": "Find a flight to Paris, book it, email me."}]);
    let mut names = Vec::new();
    for _ in 0..3 {
        let (calls, content, finish) = stream_turn(&server, &messages).await;
        assert_eq!(finish, "tool_calls");
        assert!(!content.contains("<tool_call>"), "{content}");
        assert_eq!(calls.len(), 1);
        let (id, name, args) = calls[0].clone();
        let parsed: Value = serde_json::from_str(&args).unwrap_or_else(|e| panic!("{args}: {e}"));
        assert_valid(&name, &parsed);
        names.push(name.clone());
        let arr = messages.as_array_mut().expect("array");
        arr.push(json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": id, "type": "function", "function": {"name": name, "arguments": args}}]}));
        arr.push(json!({"role": "tool", "tool_call_id": id, "content": "{\"ok\": true}"}));
    }
    assert_eq!(names, ["search_flights", "book_flight", "send_email"]);
    let (calls, content, finish) = stream_turn(&server, &messages).await;
    assert!(calls.is_empty());
    assert!(!content.trim().is_empty());
    assert_eq!(finish, "stop");
}

#[tokio::test]
async fn hermes_chain_of_three_calls_ends_in_prose() {
    chain("hermes", "hermes").await;
}

#[tokio::test]
async fn qwen3_xml_chain_of_three_calls_ends_in_prose() {
    chain("qwen3_coder", "qwen3_xml").await;
}

#[tokio::test]
async fn mismatched_parser_leaks_tags_into_content() {
    let server = start(&[
        "tiny",
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        "qwen3_xml",
        "--sim-time-scale",
        "0.01",
    ])
    .await;
    let (calls, content, _) =
        stream_turn(&server, &json!([{"role": "user", "content": "go"}])).await;
    assert!(calls.is_empty());
    assert!(
        content.contains("<tool_call>") && content.contains("\"name\""),
        "{content}"
    );
}

#[tokio::test]
async fn auto_tool_choice_without_the_flag_is_vllms_400() {
    let server = start(&["tiny", "--sim-time-scale", "0.01"]).await;
    let body = json!({"model": "tiny", "messages": [{"role": "user", "content": "go"}], "tools": tools(), "tool_choice": "auto"});
    let (status, text) = post(&server, "/v1/chat/completions", &body, None).await;
    assert_eq!(status, 400);
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(
        v["error"]["message"],
        "\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set"
    );
    // A named choice works without auto tool choice (guided decoding).
    let body = json!({"model": "tiny", "messages": [{"role": "user", "content": "go"}], "tools": tools(),
        "tool_choice": {"type": "function", "function": {"name": "send_email"}}});
    let (status, text) = post(&server, "/v1/chat/completions", &body, None).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).expect("json");
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "send_email");
    let args: Value = serde_json::from_str(call["function"]["arguments"].as_str().expect("args"))
        .expect("json args");
    assert_valid("send_email", &args);
}

#[tokio::test]
async fn reasoning_parser_streams_reasoning_before_content() {
    let server = start(&[
        "tiny",
        "--reasoning-parser",
        "qwen3",
        "--sim-time-scale",
        "0.01",
    ])
    .await;
    let body = json!({"model": "tiny", "stream": true, "max_tokens": 60, "messages": [{"role": "user", "content": "think"}]});
    let (_, text) = post(&server, "/v1/chat/completions", &body, None).await;
    let mut saw_reasoning = false;
    let mut saw_content_after = false;
    for chunk in sse_json(&text) {
        let delta = &chunk["choices"][0]["delta"];
        if let Some(r) = delta["reasoning"].as_str() {
            // vLLM 0.32 sends `reasoning` only (no `reasoning_content` mirror).
            assert!(delta.get("reasoning_content").is_none(), "{delta}");
            let _ = r;
            assert!(!saw_content_after, "reasoning after content");
            saw_reasoning = true;
        }
        if delta["content"].as_str().is_some_and(|c| !c.is_empty()) {
            assert!(saw_reasoning);
            assert!(!delta["content"].as_str().unwrap_or("").contains("think>"));
            saw_content_after = true;
        }
    }
    assert!(saw_reasoning && saw_content_after, "{text}");
    // Without a reasoning parser but a thinking model, the tags leak.
    let server = start(&["tiny", "--sim-thinking", "on", "--sim-time-scale", "0.01"]).await;
    let body = json!({"model": "tiny", "max_tokens": 60, "messages": [{"role": "user", "content": "think"}]});
    let (_, text) = post(&server, "/v1/chat/completions", &body, None).await;
    let v: Value = serde_json::from_str(&text).expect("json");
    assert!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .expect("content")
            .starts_with("<think>")
    );
}
