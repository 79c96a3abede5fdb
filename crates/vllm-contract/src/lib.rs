//! Contract checks for a live vLLM OpenAI-compatible server.
//!
//! Each check sends real requests to `base_url` and compares the replies with
//! vLLM's documented formats (the same ones recorded from vLLM 0.32.0):
//! SSE framing and `data: [DONE]`, `chat.completion.chunk` objects, the
//! usage chunk with `choices: []`, `prompt_tokens_details.cached_tokens`,
//! reasoning field names, tool-call delta shapes, error bodies, the 401 on
//! `/v1/*` with `/health` and `/metrics` open, and metric names.
//!
//! The checks know nothing about the simulator: point [`Target`] at a real
//! `vllm serve` and the same checks run. [`ServerFeatures`] says which
//! optional features the server was started with, so checks that need a
//! flag are only run when it is set.

use std::fmt;
use std::time::Duration;

use serde_json::{Value, json};

/// The server under test.
#[derive(Clone)]
pub struct Target {
    /// `http://127.0.0.1:8000` (no trailing `/v1`).
    pub base_url: String,
    /// The served model name.
    pub model: String,
    /// The `--api-key` the server was started with, if any.
    pub api_key: Option<String>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Which optional features the server was started with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerFeatures {
    /// `--enable-prompt-tokens-details`.
    pub prompt_tokens_details: bool,
    /// `--reasoning-parser ...` with a model that thinks.
    pub reasoning_parser: bool,
    /// `--enable-auto-tool-choice --tool-call-parser ...` matching the model.
    pub auto_tool_choice: bool,
    /// The server's `--max-model-len`, for the too-long-prompt check.
    pub max_model_len: Option<usize>,
    /// `--no-enable-prefix-caching`: the prefix-cache counters must not move
    /// (vLLM does not even count queries then). Off by default, as in vLLM.
    pub prefix_caching_disabled: bool,
    /// A `logit_bias` object sent with the tool-call check. A random-weight
    /// model loops on whitespace inside a strict tool-call grammar, so the
    /// real-vLLM run sends every whitespace-only token id at -100 (read from
    /// `VLLM_CONTRACT_TOOL_LOGIT_BIAS_FILE` by the test harness).
    pub tool_call_logit_bias: Option<Value>,
}

/// A failed check.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("{check}: request to {url} failed")]
    Request {
        check: &'static str,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{check}: {url} answered {got}, expected {expected}; body: {body}")]
    Status {
        check: &'static str,
        url: String,
        expected: u16,
        got: u16,
        body: String,
    },
    #[error("{check}: reply is not JSON ({detail}): {body}")]
    NotJson {
        check: &'static str,
        detail: String,
        body: String,
    },
    #[error("{check}: {detail}")]
    Shape { check: &'static str, detail: String },
}

/// One check's outcome.
#[derive(Debug)]
pub struct CheckResult {
    pub name: &'static str,
    pub outcome: Result<(), ContractError>,
}

/// A small client bound to one target.
struct Probe<'a> {
    target: &'a Target,
    http: reqwest::Client,
}

impl Probe<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.target.base_url.trim_end_matches('/'))
    }

    async fn send(
        &self,
        check: &'static str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        auth: bool,
    ) -> Result<(u16, String), ContractError> {
        let url = self.url(path);
        let mut req = self.http.request(method, &url);
        if let Some(b) = body {
            req = req.json(b);
        }
        if auth {
            if let Some(k) = &self.target.api_key {
                req = req.bearer_auth(k);
            }
        }
        let resp = req.send().await.map_err(|source| ContractError::Request {
            check,
            url: url.clone(),
            source,
        })?;
        let status = resp.status().as_u16();
        let text =
            resp.text()
                .await
                .map_err(|source| ContractError::Request { check, url, source })?;
        Ok((status, text))
    }

    async fn expect(
        &self,
        check: &'static str,
        path: &str,
        body: Option<&Value>,
        auth: bool,
        expected: u16,
    ) -> Result<String, ContractError> {
        let method = if body.is_some() {
            reqwest::Method::POST
        } else {
            reqwest::Method::GET
        };
        let (status, text) = self.send(check, method, path, body, auth).await?;
        if status != expected {
            return Err(ContractError::Status {
                check,
                url: self.url(path),
                expected,
                got: status,
                body: text.chars().take(500).collect(),
            });
        }
        Ok(text)
    }
}

fn parse(check: &'static str, text: &str) -> Result<Value, ContractError> {
    serde_json::from_str(text).map_err(|e| ContractError::NotJson {
        check,
        detail: e.to_string(),
        body: text.chars().take(500).collect(),
    })
}

fn shape(
    check: &'static str,
    ok: bool,
    detail: impl FnOnce() -> String,
) -> Result<(), ContractError> {
    if ok {
        Ok(())
    } else {
        Err(ContractError::Shape {
            check,
            detail: detail(),
        })
    }
}

/// Splits an SSE body into `data:` payloads; every event must be `data: ...`.
pub fn sse_events(check: &'static str, body: &str) -> Result<Vec<String>, ContractError> {
    let mut out = Vec::new();
    for event in body.split("\n\n").filter(|e| !e.trim().is_empty()) {
        let Some(data) = event.strip_prefix("data: ") else {
            return Err(ContractError::Shape {
                check,
                detail: format!("event without `data: ` prefix: {event:?}"),
            });
        };
        out.push(data.to_owned());
    }
    Ok(out)
}

/// Parses the JSON chunks of a stream that must end with `data: [DONE]`.
fn stream_chunks(check: &'static str, body: &str) -> Result<Vec<Value>, ContractError> {
    let events = sse_events(check, body)?;
    shape(
        check,
        events.last().map(String::as_str) == Some("[DONE]"),
        || "the stream does not end with `data: [DONE]`".into(),
    )?;
    events[..events.len() - 1]
        .iter()
        .map(|e| parse(check, e))
        .collect()
}

fn chat_body(model: &str, content: &str, max_tokens: u64, stream: bool) -> Value {
    let mut b = json!({"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens});
    if stream {
        b["stream"] = json!(true);
        b["stream_options"] = json!({"include_usage": true});
    }
    b
}

fn weather_tool() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
}

async fn health_and_metrics_need_no_key(p: &Probe<'_>) -> Result<(), ContractError> {
    const C: &str = "health_and_metrics_need_no_key";
    p.expect(C, "/health", None, false, 200).await?;
    p.expect(C, "/metrics", None, false, 200).await?;
    Ok(())
}

async fn unauthorized_body(p: &Probe<'_>) -> Result<(), ContractError> {
    const C: &str = "unauthorized_body";
    for path in ["/v1/models"] {
        let text = p.expect(C, path, None, false, 401).await?;
        let v = parse(C, &text)?;
        shape(C, v == json!({"error": "Unauthorized"}), || {
            format!("401 body is {v}")
        })?;
    }
    let body = chat_body(&p.target.model, "hi", 1, false);
    let text = p
        .expect(C, "/v1/chat/completions", Some(&body), false, 401)
        .await?;
    let v = parse(C, &text)?;
    shape(C, v == json!({"error": "Unauthorized"}), || {
        format!("401 body is {v}")
    })
}

async fn models_list(p: &Probe<'_>) -> Result<(), ContractError> {
    const C: &str = "models_list";
    let v = parse(C, &p.expect(C, "/v1/models", None, true, 200).await?)?;
    shape(C, v["object"] == "list", || {
        format!("object is {}", v["object"])
    })?;
    let data = v["data"].as_array().cloned().unwrap_or_default();
    shape(
        C,
        data.iter()
            .any(|m| m["id"] == p.target.model.as_str() && m["object"] == "model"),
        || format!("{} is not listed: {v}", p.target.model),
    )?;
    shape(C, data.iter().all(|m| m["max_model_len"].is_u64()), || {
        "max_model_len missing".into()
    })
}

fn error_object(check: &'static str, v: &Value, code: u16) -> Result<(), ContractError> {
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

async fn error_bodies(p: &Probe<'_>, features: &ServerFeatures) -> Result<(), ContractError> {
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
    let url = p.url("/v1/chat/completions");
    let mut req = p
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json");
    if let Some(k) = &p.target.api_key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.map_err(|source| ContractError::Request {
        check: C,
        url: url.clone(),
        source,
    })?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|source| ContractError::Request {
        check: C,
        url: url.clone(),
        source,
    })?;
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

async fn chat_stream(p: &Probe<'_>, features: &ServerFeatures) -> Result<(), ContractError> {
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

async fn non_streaming(p: &Probe<'_>) -> Result<(), ContractError> {
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

async fn reasoning_fields(p: &Probe<'_>) -> Result<(), ContractError> {
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

/// The weather tool of the tool-call check: `strict` with an enum parameter,
/// so that vLLM's guided decoding can only write one of a few valid calls.
fn strict_weather_tool() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
        "strict": true,
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "enum": ["London", "Paris"]}},
            "required": ["city"], "additionalProperties": false}}}])
}

fn tool_call_body(p: &Probe<'_>, features: &ServerFeatures, stream: bool) -> Value {
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

fn valid_weather_arguments(v: &Value) -> bool {
    v.as_object().is_some_and(|o| {
        o.len() == 1
            && ["London", "Paris"].contains(&o.get("city").and_then(Value::as_str).unwrap_or(""))
    })
}

async fn tool_call_deltas(p: &Probe<'_>, features: &ServerFeatures) -> Result<(), ContractError> {
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

/// Sums a counter's samples (all label sets) in a Prometheus text.
fn counter_value(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        let value = rest.rsplit(' ').next()?.parse::<f64>().ok()?;
        found = Some(found.unwrap_or(0.0) + value);
    }
    found
}

async fn prefix_cache_counters(
    p: &Probe<'_>,
    features: &ServerFeatures,
) -> Result<(), ContractError> {
    const C: &str = "prefix_cache_counters";
    const QUERIES: &str = "vllm:prefix_cache_queries_total";
    const HITS: &str = "vllm:prefix_cache_hits_total";
    let read = || async {
        let text = p.expect(C, "/metrics", None, false, 200).await?;
        let q = counter_value(&text, QUERIES);
        let h = counter_value(&text, HITS);
        match (q, h) {
            (Some(q), Some(h)) => Ok((q, h)),
            _ => Err(ContractError::Shape {
                check: C,
                detail: format!("{QUERIES} or {HITS} missing from /metrics"),
            }),
        }
    };
    let before = read().await?;
    // ~600 tokens: several full blocks at any block size (CPU: 128).
    let prompt = format!(
        "contract prefix probe {}",
        "the quick brown fox jumps ".repeat(120)
    );
    let body = json!({"model": p.target.model, "prompt": prompt, "max_tokens": 1});
    let mut cached = Vec::new();
    for _ in 0..2 {
        let v = parse(
            C,
            &p.expect(C, "/v1/completions", Some(&body), true, 200)
                .await?,
        )?;
        cached.push(v["usage"]["prompt_tokens_details"]["cached_tokens"].as_u64());
    }
    // The counters are published after the request finishes; allow a moment.
    let mut after = read().await?;
    for _ in 0..20 {
        // Caching on: wait until both counters grew. Off: a moved counter
        // already fails; otherwise keep watching for the whole moment.
        let settled = if features.prefix_caching_disabled {
            after != before
        } else {
            after.0 > before.0 && after.1 > before.1
        };
        if settled {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = read().await?;
    }
    if features.prefix_caching_disabled {
        shape(C, after == before, || {
            format!(
                "with prefix caching off the counters moved: (queries, hits) {before:?} -> {after:?}"
            )
        })?;
        if features.prompt_tokens_details {
            shape(C, cached.iter().all(|c| *c == Some(0)), || {
                format!("with prefix caching off cached_tokens was {cached:?}")
            })?;
        }
    } else {
        shape(C, after.0 > before.0 && after.1 > before.1, || {
            format!(
                "a repeated prompt did not move the counters: (queries, hits) {before:?} -> {after:?}"
            )
        })?;
        if features.prompt_tokens_details {
            shape(C, cached[1].is_some_and(|c| c > 0), || {
                format!("a repeated prompt had cached_tokens {cached:?}")
            })?;
        }
    }
    Ok(())
}

async fn auto_tool_choice_needs_flag(p: &Probe<'_>) -> Result<(), ContractError> {
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

/// Metric names vLLM 0.32 exposes that the orchestrator reads.
pub const REQUIRED_METRICS: &[&str] = &[
    "vllm:kv_cache_usage_perc",
    "vllm:prefix_cache_queries_total",
    "vllm:prefix_cache_hits_total",
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:num_preemptions_total",
    "vllm:time_to_first_token_seconds_bucket",
    "vllm:inter_token_latency_seconds_bucket",
    "vllm:e2e_request_latency_seconds_bucket",
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
];

async fn metric_names(p: &Probe<'_>) -> Result<(), ContractError> {
    const C: &str = "metric_names";
    let text = p.expect(C, "/metrics", None, false, 200).await?;
    let missing: Vec<&str> = REQUIRED_METRICS
        .iter()
        .copied()
        .filter(|m| !text.lines().any(|l| l.starts_with(m)))
        .collect();
    shape(C, missing.is_empty(), || {
        format!("missing metrics: {missing:?}")
    })
}

/// Runs every check that applies to the server's features, in order.
pub async fn run_all(target: &Target, features: &ServerFeatures) -> Vec<CheckResult> {
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
    {
        Ok(h) => h,
        Err(source) => {
            return vec![CheckResult {
                name: "client",
                outcome: Err(ContractError::Request {
                    check: "client",
                    url: target.base_url.clone(),
                    source,
                }),
            }];
        }
    };
    let p = Probe { target, http };
    let mut results = vec![
        CheckResult {
            name: "health_and_metrics_need_no_key",
            outcome: health_and_metrics_need_no_key(&p).await,
        },
        CheckResult {
            name: "models_list",
            outcome: models_list(&p).await,
        },
        CheckResult {
            name: "chat_stream",
            outcome: chat_stream(&p, features).await,
        },
        CheckResult {
            name: "non_streaming",
            outcome: non_streaming(&p).await,
        },
        CheckResult {
            name: "error_bodies",
            outcome: error_bodies(&p, features).await,
        },
        CheckResult {
            name: "tool_call_deltas",
            outcome: tool_call_deltas(&p, features).await,
        },
        CheckResult {
            name: "prefix_cache_counters",
            outcome: prefix_cache_counters(&p, features).await,
        },
        CheckResult {
            name: "metric_names",
            outcome: metric_names(&p).await,
        },
    ];
    if target.api_key.is_some() {
        results.push(CheckResult {
            name: "unauthorized_body",
            outcome: unauthorized_body(&p).await,
        });
    }
    if features.reasoning_parser {
        results.push(CheckResult {
            name: "reasoning_fields",
            outcome: reasoning_fields(&p).await,
        });
    }
    if !features.auto_tool_choice {
        results.push(CheckResult {
            name: "auto_tool_choice_needs_flag",
            outcome: auto_tool_choice_needs_flag(&p).await,
        });
    }
    results
}

/// Formats failures for an assertion message; empty when all passed.
pub fn failures(results: &[CheckResult]) -> String {
    results
        .iter()
        .filter_map(|r| r.outcome.as_ref().err().map(|e| format!("{}: {e}", r.name)))
        .collect::<Vec<_>>()
        .join("\n")
}
