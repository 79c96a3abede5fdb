//! Tool calls: the streamed delta shapes (id, type and name first, then
//! argument fragments) and the non-streaming call, with the recipe that
//! makes a random-weight model write a valid call.

use serde_json::{Value, json};

use crate::probe::{Probe, chat_body, parse, shape, stream_chunks};
use crate::{ContractError, ServerFeatures};

/// The weather tool of the tool-call check: `strict` with an enum parameter,
/// so that vLLM's guided decoding can only write one of a few valid calls.
pub(crate) fn strict_weather_tool() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
        "strict": true,
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "enum": ["London", "Paris"]}},
            "required": ["city"], "additionalProperties": false}}}])
}

pub(crate) fn tool_call_body(p: &Probe<'_>, features: &ServerFeatures, stream: bool) -> Value {
    let mut body = chat_body(
        &p.target.model,
        "What is the weather in London?",
        200,
        stream,
    );
    body["tools"] = strict_weather_tool();
    body["tool_choice"] = json!("required");
    // vLLM applies the tool grammar only after `</think>`: a model that never
    // closes its thinking would give no call, so thinking is switched off.
    body["chat_template_kwargs"] = json!({"enable_thinking": false});
    // Without it, `required` writes call after call until max_tokens.
    body["parallel_tool_calls"] = json!(false);
    if let Some(bias) = &features.tool_call_logit_bias {
        body["logit_bias"] = bias.clone();
    }
    body
}

pub(crate) fn valid_weather_arguments(v: &Value) -> bool {
    v.as_object().is_some_and(|o| {
        o.len() == 1
            && ["London", "Paris"].contains(&o.get("city").and_then(Value::as_str).unwrap_or(""))
    })
}

pub(crate) async fn tool_call_deltas(
    p: &Probe<'_>,
    features: &ServerFeatures,
) -> Result<(), ContractError> {
    const C: &str = "tool_call_deltas";
    let body = tool_call_body(p, features, true);
    let text = p
        .expect(C, "/v1/chat/completions", Some(&body), true, 200)
        .await?;
    let chunks = stream_chunks(C, &text)?;
    let deltas: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array())
        .flatten()
        .collect();
    shape(C, !deltas.is_empty(), || {
        format!(
            "no tool_calls deltas; stream: {}",
            text.chars().take(1500).collect::<String>()
        )
    })?;
    let first = deltas[0];
    shape(
        C,
        first["id"].is_string()
            && first["type"] == "function"
            && first["index"].is_u64()
            && first["function"]["name"] == "get_weather",
        || format!("first tool delta: {first}"),
    )?;
    shape(
        C,
        deltas.iter().skip(1).all(|d| d["index"].is_u64()),
        || "a later delta has no index".into(),
    )?;
    // Real vLLM streams raw fragments, whitespace included (`{`, `\n\n"c`,
    // ...): only the parsed concatenation is comparable.
    let args: String = deltas
        .iter()
        .filter_map(|d| d["function"]["arguments"].as_str())
        .collect();
    let parsed = parse(C, &args)?;
    shape(C, valid_weather_arguments(&parsed), || {
        format!("streamed arguments are not a valid call: {args}")
    })?;
    let finish = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0))
        .find_map(|c| c["finish_reason"].as_str());
    shape(C, finish == Some("tool_calls"), || {
        format!("finish_reason {finish:?}, expected tool_calls")
    })?;
    // The same request, non-streaming: one call with canonical JSON arguments.
    let body = tool_call_body(p, features, false);
    let v = parse(
        C,
        &p.expect(C, "/v1/chat/completions", Some(&body), true, 200)
            .await?,
    )?;
    let calls = v["choices"][0]["message"]["tool_calls"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    shape(C, calls.len() == 1, || {
        format!("non-streaming tool_calls: {v}")
    })?;
    let call = &calls[0];
    let arguments = call["function"]["arguments"].as_str().unwrap_or("");
    shape(
        C,
        call["id"].is_string()
            && call["type"] == "function"
            && call["function"]["name"] == "get_weather"
            && serde_json::from_str::<Value>(arguments).is_ok_and(|a| valid_weather_arguments(&a))
            && v["choices"][0]["finish_reason"] == "tool_calls",
        || format!("non-streaming tool call: {v}"),
    )
}
