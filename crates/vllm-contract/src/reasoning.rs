//! Reasoning with a reasoning parser: `delta.reasoning` (0.32 dropped the
//! `reasoning_content` mirror), no think tags in `content`, and
//! `completion_tokens_details.reasoning_tokens` in the usage.

use serde_json::{Value, json};

use crate::ContractError;
use crate::probe::{Probe, chat_body, shape, stream_chunks};

pub(crate) async fn reasoning_fields(p: &Probe<'_>) -> Result<(), ContractError> {
    const C: &str = "reasoning_fields";
    let body = chat_body(&p.target.model, "Think, then answer.", 200, true);
    let text = p
        .expect(C, "/v1/chat/completions", Some(&body), true, 200)
        .await?;
    let chunks = stream_chunks(C, &text)?;
    // vLLM 0.32 sends `delta.reasoning` only; the older `reasoning_content`
    // name is gone.
    let reasoning = chunks
        .iter()
        .any(|c| c["choices"][0]["delta"]["reasoning"].is_string());
    shape(C, reasoning, || "no delta carries `reasoning`".into())?;
    let old_name = chunks
        .iter()
        .find(|c| c["choices"][0]["delta"].get("reasoning_content").is_some());
    shape(C, old_name.is_none(), || {
        format!(
            "a delta carries `reasoning_content`: {}",
            old_name.unwrap_or(&Value::Null)
        )
    })?;
    let leaked = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .any(|t| t.contains("<think>") || t.contains("</think>"));
    shape(C, !leaked, || "think tags leaked into content".into())?;
    let usage_chunk = chunks.last().unwrap_or(&Value::Null);
    shape(C, usage_chunk["choices"] == json!([]), || {
        format!("usage chunk choices: {usage_chunk}")
    })?;
    let usage = &usage_chunk["usage"];
    let completion = usage["completion_tokens"].as_u64().unwrap_or(0);
    let reasoning_tokens = usage["completion_tokens_details"]["reasoning_tokens"].as_u64();
    shape(
        C,
        reasoning_tokens.is_some_and(|r| r > 0 && r <= completion),
        || {
            format!(
                "usage.completion_tokens_details.reasoning_tokens missing or out of range: {usage}"
            )
        },
    )
}
