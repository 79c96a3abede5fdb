//! vLLM's error objects: 404 for an unknown model, FastAPI's 400 for a body
//! that is not JSON, 400s for `stream_options` without `stream`, a prompt
//! over `--max-model-len`, and `tool_choice: "auto"` without the flags.

use serde_json::{Value, json};

use crate::probe::{Payload, Probe, chat_body, parse, shape};
use crate::{ContractError, ServerFeatures};

pub(crate) fn error_object(check: &'static str, v: &Value, code: u16) -> Result<(), ContractError> {
    let e = &v["error"];
    shape(
        check,
        e["message"].is_string()
            && e["type"].is_string()
            && e.get("param").is_some()
            && e["code"] == code,
        || format!("not vLLM's error object: {v}"),
    )
}

pub(crate) async fn error_bodies(
    p: &Probe<'_>,
    features: &ServerFeatures,
) -> Result<(), ContractError> {
    const C: &str = "error_bodies";
    let mut body = chat_body("no-such-model", "hi", 1, false);
    let v = parse(
        C,
        &p.expect(C, "/v1/chat/completions", Some(&body), true, 404)
            .await?,
    )?;
    error_object(C, &v, 404)?;
    shape(C, v["error"]["type"] == "NotFoundError", || {
        format!("404 type: {v}")
    })?;
    // Malformed JSON.
    let (status, text) = p
        .send(C, "/v1/chat/completions", Payload::Raw("{not json"), true)
        .await?;
    shape(C, status == 400, || {
        format!("bad JSON answered {status}: {text}")
    })?;
    let v = parse(C, &text)?;
    error_object(C, &v, 400)?;
    // FastAPI's request-validation error: type "Bad Request" (with a space)
    // and the location of the decode error as `param`.
    shape(
        C,
        v["error"]["type"] == "Bad Request"
            && v["error"]["param"] == "body.1"
            && v["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("'json_invalid'") && m.contains("'loc': 'body.1'")),
        || format!("malformed-JSON error: {v}"),
    )?;
    // stream_options without stream.
    body = chat_body(&p.target.model, "hi", 1, false);
    body["stream_options"] = json!({"include_usage": true});
    let v = parse(
        C,
        &p.expect(C, "/v1/chat/completions", Some(&body), true, 400)
            .await?,
    )?;
    error_object(C, &v, 400)?;
    shape(
        C,
        v["error"]["param"] == "stream_options"
            && v["error"]["type"] == "BadRequestError"
            && v["error"]["message"].as_str().is_some_and(|m| {
                m.contains("Stream options can only be defined when `stream=True`")
            }),
        || format!("stream_options-without-stream error: {v}"),
    )?;
    // A prompt over max-model-len.
    if let Some(max) = features.max_model_len {
        let prompt = "hello ".repeat(max + 16);
        let body = json!({"model": p.target.model, "prompt": prompt, "max_tokens": 1});
        let v = parse(
            C,
            &p.expect(C, "/v1/completions", Some(&body), true, 400)
                .await?,
        )?;
        error_object(C, &v, 400)?;
        let msg = v["error"]["message"].as_str().unwrap_or("");
        // vLLM 0.32 stops counting at max_model_len + 1: the message says
        // "at least {max+1}" whatever the real prompt length.
        shape(
            C,
            msg.contains(&format!("maximum context length is {max} tokens"))
                && msg.contains(&format!("at least {} input tokens", max + 1))
                && msg.contains(&format!("(parameter=input_tokens, value={})", max + 1))
                && v["error"]["param"] == "input_tokens",
            || format!("too-long error: {v}"),
        )?;
    }
    Ok(())
}

pub(crate) fn weather_tool() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
}

pub(crate) async fn auto_tool_choice_needs_flag(p: &Probe<'_>) -> Result<(), ContractError> {
    const C: &str = "auto_tool_choice_needs_flag";
    let mut body = chat_body(&p.target.model, "Weather?", 16, false);
    body["tools"] = weather_tool();
    body["tool_choice"] = json!("auto");
    let v = parse(
        C,
        &p.expect(C, "/v1/chat/completions", Some(&body), true, 400)
            .await?,
    )?;
    error_object(C, &v, 400)?;
    let msg = v["error"]["message"].as_str().unwrap_or("");
    shape(C, msg.contains("--enable-auto-tool-choice"), || {
        format!("message: {msg}")
    })
}
