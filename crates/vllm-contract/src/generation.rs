//! Generation replies: the chat stream (SSE framing, chunk objects, the role
//! delta, one finish, the usage chunk with `choices: []`) and the
//! non-streaming chat and completion bodies.

use serde_json::{Value, json};

use crate::probe::{Probe, chat_body, parse, shape, stream_chunks};
use crate::{ContractError, ServerFeatures};

pub(crate) async fn chat_stream(
    p: &Probe<'_>,
    features: &ServerFeatures,
) -> Result<(), ContractError> {
    const C: &str = "chat_stream";
    let body = chat_body(&p.target.model, "Say something.", 8, true);
    let text = p
        .expect(C, "/v1/chat/completions", Some(&body), true, 200)
        .await?;
    let chunks = stream_chunks(C, &text)?;
    shape(C, chunks.len() >= 3, || {
        format!("only {} chunks", chunks.len())
    })?;
    let id = chunks[0]["id"].clone();
    for c in &chunks {
        shape(C, c["object"] == "chat.completion.chunk", || {
            format!("object: {c}")
        })?;
        shape(
            C,
            c["id"] == id && c["created"].is_u64() && c["model"].is_string(),
            || format!("header fields: {c}"),
        )?;
    }
    shape(
        C,
        chunks[0]["choices"][0]["delta"]["role"] == "assistant",
        || format!("first delta has no role: {}", chunks[0]),
    )?;
    let usage_chunk = chunks.last().expect("checked len");
    shape(C, usage_chunk["choices"] == json!([]), || {
        format!("usage chunk choices: {usage_chunk}")
    })?;
    let usage = &usage_chunk["usage"];
    let (pt, ct, tt) = (
        &usage["prompt_tokens"],
        &usage["completion_tokens"],
        &usage["total_tokens"],
    );
    shape(
        C,
        pt.is_u64()
            && ct.is_u64()
            && tt.as_u64() == Some(pt.as_u64().unwrap_or(0) + ct.as_u64().unwrap_or(0)),
        || format!("usage: {usage}"),
    )?;
    shape(C, ct.as_u64().is_some_and(|c| (1..=8).contains(&c)), || {
        format!("completion_tokens {ct} with max_tokens 8")
    })?;
    if features.prompt_tokens_details {
        shape(
            C,
            usage["prompt_tokens_details"]["cached_tokens"].is_u64(),
            || format!("prompt_tokens_details.cached_tokens missing: {usage}"),
        )?;
    }
    let finishes: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0))
        .filter(|c| !c["finish_reason"].is_null())
        .collect();
    shape(C, finishes.len() == 1, || {
        format!("{} chunks carry finish_reason", finishes.len())
    })?;
    shape(
        C,
        ["stop", "length"].contains(&finishes[0]["finish_reason"].as_str().unwrap_or("")),
        || format!("finish_reason {}", finishes[0]["finish_reason"]),
    )
}

pub(crate) async fn non_streaming(p: &Probe<'_>) -> Result<(), ContractError> {
    const C: &str = "non_streaming";
    let body = chat_body(&p.target.model, "Say something.", 4, false);
    let v = parse(
        C,
        &p.expect(C, "/v1/chat/completions", Some(&body), true, 200)
            .await?,
    )?;
    shape(C, v["object"] == "chat.completion", || {
        format!("object: {}", v["object"])
    })?;
    let msg = &v["choices"][0]["message"];
    // vLLM 0.32 answers `content: null` when everything the model wrote was
    // reasoning (a thinker cut by max_tokens before `</think>`).
    let reasoning_only = msg["content"].is_null() && msg["reasoning"].is_string();
    shape(
        C,
        msg["role"] == "assistant" && (msg["content"].is_string() || reasoning_only),
        || format!("message: {msg}"),
    )?;
    shape(
        C,
        v["usage"]["completion_tokens"]
            .as_u64()
            .is_some_and(|c| c <= 4),
        || format!("usage: {}", v["usage"]),
    )?;
    let body = json!({"model": p.target.model, "prompt": "Once upon a time", "max_tokens": 4});
    let v = parse(
        C,
        &p.expect(C, "/v1/completions", Some(&body), true, 200)
            .await?,
    )?;
    shape(
        C,
        v["object"] == "text_completion" && v["choices"][0]["text"].is_string(),
        || format!("completion: {v}"),
    )
}
