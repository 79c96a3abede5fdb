//! The OpenAI-compatible HTTP server, in vLLM's formats.
//!
//! Routes: `GET /health`, `GET /version`, `GET /v1/models`, `GET /metrics`,
//! `POST /v1/chat/completions`, `POST /v1/completions`, `POST /tokenize`,
//! `POST /reset_prefix_cache` (only with `VLLM_SERVER_DEV_MODE=1`, as in
//! vLLM), and the simulator's own `GET /sim/requests` (ground truth, see
//! [`crate::truth`]) and `GET /sim/info`. With `--api-key`, every `/v1/*`
//! path needs `Authorization: Bearer KEY` and answers 401
//! `{"error":"Unauthorized"}` otherwise; the other paths need no key.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use crate::config::{OutputLenMode, ReasoningField, ServeConfig};
use crate::engine::{EngineEvent, EngineHandle, EngineRequest};
use crate::log;
use crate::memory::{self, MemoryPlan, StartupError};
use crate::metrics::{Finished, Metrics};
use crate::script::{self, Delta, Script, ScriptInput, Tool, ToolChoice};
use crate::text::{self, IM_END, IM_START, Rng};
use crate::truth::{GroundTruth, RecordHandle, RequestRecord};

/// The fingerprint vLLM 0.32 puts in replies; the suffix marks the simulator.
pub const SYSTEM_FINGERPRINT: &str = "vllm-0.32.0-5133504d";

/// Errors while starting the simulator in-process.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("the simulated vLLM failed to start: {0}")]
    Startup(#[from] StartupError),
    #[error("cannot start the engine thread")]
    EngineThread(#[source] std::io::Error),
    #[error("cannot bind {addr}; pick another --port or free it")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// Shared state of one simulated server.
#[derive(Debug)]
pub struct SimState {
    pub cfg: Arc<ServeConfig>,
    pub plan: MemoryPlan,
    pub engine: EngineHandle,
    pub metrics: Metrics,
    pub truth: GroundTruth,
    /// False while "loading" (with `--sim-listen-during-load`) or after a crash.
    pub ready: AtomicBool,
    pub start: Instant,
    pub start_unix_ms: u64,
    /// Cancelled when the engine "crashes" (`--sim-crash-after-requests`).
    pub crashed: CancellationToken,
    received: AtomicU64,
    finished: AtomicU64,
    created: u64,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl SimState {
    /// Runs the memory model and starts the engine thread. Not ready yet:
    /// call [`SimState::set_ready`] once "loaded".
    pub fn new(cfg: ServeConfig) -> Result<Arc<SimState>, SimError> {
        let plan = memory::plan(&cfg)?;
        let engine = EngineHandle::start(&cfg, &plan).map_err(SimError::EngineThread)?;
        let start = Instant::now();
        let start_unix_ms = unix_ms();
        let cache_info = format!(
            "block_size=\"{}\",cache_dtype=\"{}\",enable_prefix_caching=\"{}\",engine=\"0\",gpu_memory_utilization=\"{}\",kv_cache_memory_bytes=\"{}\",kv_cache_size_tokens=\"{}\",num_gpu_blocks=\"{}\",prefix_caching_hash_algo=\"sha256\"",
            plan.block_size,
            cfg.kv_cache_dtype,
            if cfg.enable_prefix_caching {
                "True"
            } else {
                "False"
            },
            cfg.gpu_memory_utilization,
            (plan.kv_cache_gib * 1024.0 * 1024.0 * 1024.0) as u64,
            plan.kv_cache_tokens(),
            plan.num_gpu_blocks
        );
        let mut metrics = Metrics::new(cfg.served_model_name(), plan.max_model_len, cache_info);
        // vLLM does not count prefix-cache queries at all with caching off.
        metrics.prefix_caching = cfg.enable_prefix_caching;
        let truth = GroundTruth::new(start, start_unix_ms, cfg.sim.max_records);
        Ok(Arc::new(SimState {
            cfg: Arc::new(cfg),
            plan,
            engine,
            metrics,
            truth,
            ready: AtomicBool::new(false),
            start,
            start_unix_ms,
            crashed: CancellationToken::new(),
            received: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            created: start_unix_ms / 1000,
        }))
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    fn crash(&self) {
        if self.crashed.is_cancelled() {
            return;
        }
        self.ready.store(false, Ordering::SeqCst);
        log::error(
            "core.py:935",
            "EngineCore encountered a fatal error (simulated by --sim-crash-after-requests).",
        );
        log::error("async_llm.py:480", "AsyncLLM output_handler failed.");
        log::error(
            "async_llm.py:480",
            "vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue. See stack trace (above) for the root cause.",
        );
        self.crashed.cancel();
        self.engine.shutdown();
    }
}

/// The router for a started state.
pub fn app(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ping", get(health))
        .route("/version", get(version))
        .route("/v1/models", get(models))
        .route("/metrics", get(metrics))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/tokenize", post(tokenize))
        .route("/reset_prefix_cache", post(reset_prefix_cache))
        .route(
            "/sim/requests",
            get(sim_requests).delete(sim_requests_clear),
        )
        .route("/sim/info", get(sim_info))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&state), auth))
        .with_state(state)
}

async fn auth(State(state): State<Arc<SimState>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let protected = ["/v1", "/v2", "/inference"]
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")));
    if protected && !state.cfg.api_keys.is_empty() && req.method() != axum::http::Method::OPTIONS {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let ok = given.is_some_and(|g| state.cfg.api_keys.iter().any(|k| k.expose() == g));
        if !ok {
            return json_response(StatusCode::UNAUTHORIZED, json!({"error": "Unauthorized"}));
        }
    }
    next.run(req).await
}

fn json_response(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// vLLM's error body: `{"error": {"message", "type", "param", "code"}}`.
pub fn error_response(status: StatusCode, message: &str, param: Option<&str>) -> Response {
    let kind = match status {
        StatusCode::NOT_FOUND => "NotFoundError",
        StatusCode::BAD_REQUEST => "BadRequestError",
        StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailableError",
        _ => "InternalServerError",
    };
    json_response(
        status,
        json!({"error": {"message": message, "type": kind, "param": param, "code": status.as_u16()}}),
    )
}

/// FastAPI's request-validation reply to a body that is not JSON, as vLLM
/// 0.32 sends it: type `Bad Request`, `param` `body.OFFSET` (the character
/// offset of the decode error), and Python's json message in `ctx`.
fn malformed_json(body: &[u8], e: &serde_json::Error) -> Response {
    // serde_json reports a 1-based line and column; Python a 0-based offset.
    let line_start: usize = body
        .split(|b| *b == b'\n')
        .take(e.line().saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum();
    let offset = line_start + e.column().saturating_sub(1);
    let detail = e.to_string();
    let python = if detail.starts_with("key must be a string") {
        "Expecting property name enclosed in double quotes"
    } else if detail.starts_with("trailing characters") {
        "Extra data"
    } else {
        "Expecting value"
    };
    let loc = format!("body.{offset}");
    json_response(
        StatusCode::BAD_REQUEST,
        json!({"error": {
            "message": format!("1 validation error:\n  {{'type': 'json_invalid', 'loc': '{loc}', 'msg': 'JSON decode error', 'input': '<dict of 0 items>', 'ctx': {{'error': '{python}'}}}}"),
            "type": "Bad Request",
            "param": loc,
            "code": 400,
        }}),
    )
}

async fn not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, json!({"detail": "Not Found"}))
}

async fn health(State(state): State<Arc<SimState>>) -> Response {
    if state.ready.load(Ordering::SeqCst) {
        StatusCode::OK.into_response()
    } else {
        StatusCode::SERVICE_UNAVAILABLE.into_response()
    }
}

async fn version() -> Response {
    json_response(StatusCode::OK, json!({"version": "0.32.0"}))
}

async fn models(State(state): State<Arc<SimState>>) -> Response {
    let data: Vec<Value> = state
        .cfg
        .served_model_names
        .iter()
        .map(|name| {
            json!({
                "id": name, "object": "model", "created": state.created, "owned_by": "vllm",
                "root": state.cfg.model, "parent": null, "max_model_len": state.plan.max_model_len,
                "permission": [{
                    "id": format!("modelperm-{:016x}", grid_core::fnv1a64(name.as_bytes())),
                    "object": "model_permission", "created": state.created,
                    "allow_create_engine": false, "allow_sampling": true, "allow_logprobs": true,
                    "allow_search_indices": false, "allow_view": true, "allow_fine_tuning": false,
                    "organization": "*", "group": null, "is_blocking": false
                }]
            })
        })
        .collect();
    json_response(StatusCode::OK, json!({"object": "list", "data": data}))
}

async fn metrics(State(state): State<Arc<SimState>>) -> Response {
    let stats = state
        .engine
        .stats
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default();
    let mut resp = state.metrics.render(&stats).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

async fn sim_requests(State(state): State<Arc<SimState>>) -> Response {
    json_response(StatusCode::OK, state.truth.snapshot())
}

async fn sim_requests_clear(State(state): State<Arc<SimState>>) -> Response {
    state.truth.clear();
    StatusCode::OK.into_response()
}

async fn sim_info(State(state): State<Arc<SimState>>) -> Response {
    let p = &state.plan;
    json_response(
        StatusCode::OK,
        json!({
            "model": state.cfg.model,
            "served_model_name": state.cfg.served_model_name(),
            "server_start_unix_ms": state.start_unix_ms,
            "memory": {
                "gpus": p.gpus, "total_gib": p.total_gib, "free_gib": p.free_gib,
                "requested_gib": p.requested_gib, "weights_gib_per_gpu": p.weights_gib_per_gpu,
                "activation_gib": p.activation_gib, "non_torch_gib": p.non_torch_gib,
                "kv_cache_gib": p.kv_cache_gib, "kv_bytes_per_token": p.kv_bytes_per_token,
                "num_gpu_blocks": p.num_gpu_blocks, "block_size": p.block_size,
                "kv_cache_tokens": p.kv_cache_tokens(), "max_concurrency": p.max_concurrency(),
            },
            "scheduler": {
                "max_model_len": p.max_model_len, "max_num_batched_tokens": p.max_num_batched_tokens,
                "max_num_seqs": p.max_num_seqs, "enable_chunked_prefill": state.cfg.enable_chunked_prefill,
                "enable_prefix_caching": state.cfg.enable_prefix_caching,
            },
            "time_scale": state.cfg.sim.time_scale,
            "fixed_latency": state.cfg.sim.fixed_latency(),
        }),
    )
}

async fn reset_prefix_cache(State(state): State<Arc<SimState>>) -> Response {
    if std::env::var("VLLM_SERVER_DEV_MODE").as_deref() != Ok("1") {
        return not_found().await;
    }
    state.engine.reset_prefix_cache();
    StatusCode::OK.into_response()
}

async fn tokenize(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!("JSON decode error: {e}"),
                None,
            );
        }
    };
    let tokens = if let Some(messages) = value.get("messages").and_then(Value::as_array) {
        chat_prompt(messages, &[]).0
    } else {
        text::tokenize(value.get("prompt").and_then(Value::as_str).unwrap_or(""))
    };
    json_response(
        StatusCode::OK,
        json!({"count": tokens.len(), "max_model_len": state.plan.max_model_len, "tokens": tokens, "token_strs": null}),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Chat,
    Completion,
}

fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Token ids of a chat prompt under Qwen's ChatML template, and the names of
/// tools the history already called.
fn chat_prompt(messages: &[Value], tools: &[Value]) -> (Vec<u32>, Vec<String>) {
    let newline = text::tokenize("\n");
    let mut ids = Vec::new();
    let mut called = Vec::new();
    let push_message = |ids: &mut Vec<u32>, role: &str, body: &str| {
        ids.push(IM_START);
        ids.extend(text::tokenize(role));
        ids.extend(&newline);
        ids.extend(text::tokenize(body));
        ids.push(IM_END);
        ids.extend(&newline);
    };
    if !tools.is_empty() {
        let mut sys = String::from(
            "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>",
        );
        for t in tools {
            sys.push('\n');
            sys.push_str(&t.to_string());
        }
        sys.push_str("\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags.");
        push_message(&mut ids, "system", &sys);
    }
    for m in messages {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
        let mut body = m.get("content").map(content_text).unwrap_or_default();
        if let Some(calls) = m.get("tool_calls").and_then(Value::as_array) {
            for c in calls {
                let name = c
                    .pointer("/function/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let args = c
                    .pointer("/function/arguments")
                    .and_then(Value::as_str)
                    .unwrap_or("{}");
                called.push(name.to_owned());
                body.push_str(&format!(
                    "\n<tool_call>\n{{\"name\": \"{name}\", \"arguments\": {args}}}\n</tool_call>"
                ));
            }
        }
        if role == "tool" {
            push_message(
                &mut ids,
                "user",
                &format!("<tool_response>\n{body}\n</tool_response>"),
            );
        } else {
            push_message(&mut ids, role, &body);
        }
    }
    ids.push(IM_START);
    ids.extend(text::tokenize("assistant"));
    ids.extend(&newline);
    (ids, called)
}

fn bad_request(message: &str) -> Response {
    error_response(StatusCode::BAD_REQUEST, message, None)
}

async fn chat(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    generate(state, body, Endpoint::Chat).await
}

async fn completions(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    generate(state, body, Endpoint::Completion).await
}

/// A parsed, validated generation request.
struct Prepared {
    prompt: Vec<u32>,
    script: Script,
    stream: bool,
    include_usage: bool,
}

// The error is the finished HTTP reply, built once per failed request, so
// its size does not matter.
#[allow(clippy::result_large_err)]
fn prepare(
    state: &SimState,
    req: &Value,
    endpoint: Endpoint,
    n: u64,
) -> Result<Prepared, Response> {
    let cfg = &state.cfg;
    let Some(obj) = req.as_object() else {
        return Err(bad_request(
            "Input should be a valid dictionary or object to extract fields from",
        ));
    };
    if let Some(model) = obj.get("model").and_then(Value::as_str) {
        if !cfg.served_model_names.iter().any(|m| m == model) {
            return Err(error_response(
                StatusCode::NOT_FOUND,
                &format!(
                    "The model `{model}` does not exist. Valid aliases: {}.",
                    cfg.served_model_names.join(", ")
                ),
                Some("model"),
            ));
        }
    }
    let stream = obj.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let stream_options = obj.get("stream_options").filter(|v| !v.is_null());
    if stream_options.is_some() && !stream {
        return Err(error_response(
            StatusCode::BAD_REQUEST,
            "Stream options can only be defined when `stream=True`. (parameter=stream_options)",
            Some("stream_options"),
        ));
    }
    let include_usage = stream_options
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
        || cfg.enable_force_include_usage;
    let tools_json: Vec<Value> = obj
        .get("tools")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let (prompt, called) = match endpoint {
        Endpoint::Chat => {
            let Some(messages) = obj.get("messages").and_then(Value::as_array) else {
                return Err(bad_request("Field required: messages"));
            };
            chat_prompt(messages, &tools_json)
        }
        Endpoint::Completion => {
            let prompt = match obj.get("prompt") {
                Some(Value::String(s)) => text::tokenize(s),
                Some(Value::Array(items)) => match items.first() {
                    Some(Value::String(s)) => text::tokenize(s),
                    Some(Value::Number(_)) => items
                        .iter()
                        .filter_map(Value::as_u64)
                        .map(|t| t as u32)
                        .collect(),
                    Some(Value::Array(inner)) => inner
                        .iter()
                        .filter_map(Value::as_u64)
                        .map(|t| t as u32)
                        .collect(),
                    _ => return Err(bad_request("Field required: prompt")),
                },
                _ => return Err(bad_request("Field required: prompt")),
            };
            (prompt, Vec::new())
        }
    };
    // Tools and tool_choice (chat only). vLLM defaults tool_choice to "auto"
    // when tools are given.
    let tool_choice = match obj.get("tool_choice") {
        None | Some(Value::Null) => {
            if tools_json.is_empty() {
                ToolChoice::None
            } else {
                ToolChoice::Auto
            }
        }
        Some(Value::String(s)) if s == "none" => ToolChoice::None,
        Some(Value::String(s)) if s == "auto" => ToolChoice::Auto,
        Some(Value::String(s)) if s == "required" => ToolChoice::Required,
        Some(v) => match v.pointer("/function/name").and_then(Value::as_str) {
            Some(name) => ToolChoice::Named(name.to_owned()),
            None => return Err(bad_request(&format!("Invalid tool_choice: {v}"))),
        },
    };
    if endpoint == Endpoint::Chat
        && tool_choice == ToolChoice::Auto
        && !tools_json.is_empty()
        && (!cfg.enable_auto_tool_choice || cfg.tool_call_parser.is_none())
    {
        return Err(bad_request(
            "\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set",
        ));
    }
    let tools: Vec<Tool> = tools_json
        .iter()
        .filter_map(|t| {
            let f = t.get("function")?;
            Some(Tool {
                name: f.get("name")?.as_str()?.to_owned(),
                parameters: f
                    .get("parameters")
                    .cloned()
                    .unwrap_or(json!({"type": "object"})),
            })
        })
        .collect();
    if let ToolChoice::Named(name) = &tool_choice {
        if !tools.iter().any(|t| &t.name == name) {
            return Err(bad_request(&format!(
                "Tool '{name}' has not been passed in `tools`."
            )));
        }
    }
    let max_len = state.plan.max_model_len;
    if prompt.len() > max_len {
        return Err(error_response(
            StatusCode::BAD_REQUEST,
            &format!(
                // vLLM 0.32 stops tokenizing at max_model_len + 1, so the
                // count it reports is always that, not the real length.
                "This model's maximum context length is {max_len} tokens. However, your prompt contains at least {} input tokens, which exceeds this limit even without any output tokens. Please reduce the length of the input prompt. (parameter=input_tokens, value={})",
                max_len + 1,
                max_len + 1
            ),
            Some("input_tokens"),
        ));
    }
    let requested_max = obj
        .get("max_completion_tokens")
        .filter(|v| !v.is_null())
        .or_else(|| obj.get("max_tokens").filter(|v| !v.is_null()))
        .map(|v| v.as_u64().ok_or(()))
        .transpose()
        .map_err(|_| bad_request("max_tokens must be a non-negative integer"))?;
    let room = max_len - prompt.len();
    if let Some(m) = requested_max {
        if m as usize > room {
            return Err(error_response(
                StatusCode::BAD_REQUEST,
                &format!(
                    "This model's maximum context length is {max_len} tokens. However, you requested {m} output tokens and your prompt contains {} input tokens, for a total of {} tokens. Please reduce the length of the input prompt or the number of requested output tokens. (parameter=max_tokens, value={m})",
                    prompt.len(),
                    prompt.len() + m as usize
                ),
                Some("max_tokens"),
            ));
        }
    }
    if room == 0 {
        return Err(bad_request(&format!(
            "This model's maximum context length is {max_len} tokens and your prompt uses all of them."
        )));
    }
    let max_tokens = requested_max.map(|m| m as usize).unwrap_or(room).max(1);
    let ignore_eos = obj
        .get("ignore_eos")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let prompt_hash = grid_core::fnv1a64(
        &prompt
            .iter()
            .flat_map(|t| t.to_le_bytes())
            .collect::<Vec<_>>(),
    );
    let seed = match obj.get("seed").and_then(Value::as_u64) {
        Some(s) => text::mix(&[s]),
        None => text::mix(&[cfg.sim.seed, cfg.seed, prompt_hash]),
    };
    let mut rng = Rng::new(seed ^ 0x1e57);
    let prose_len = if ignore_eos || cfg.sim.output_len_mode == OutputLenMode::Max {
        max_tokens
    } else {
        rng.range(
            cfg.sim.output_len_min,
            cfg.sim.output_len_max.max(cfg.sim.output_len_min),
        )
    };
    let thinks = endpoint == Endpoint::Chat
        && cfg.model_thinks()
        && req
            .pointer("/chat_template_kwargs/enable_thinking")
            .and_then(Value::as_bool)
            != Some(false);
    let _ = n;
    let mut script = script::build(&ScriptInput {
        thinks,
        thinking_unclosed: cfg.sim.thinking_unclosed,
        reasoning_parser: cfg.reasoning_parser.is_some(),
        reasoning_tokens: cfg.sim.reasoning_tokens,
        tools: if endpoint == Endpoint::Chat {
            tools
        } else {
            Vec::new()
        },
        tool_choice,
        called_tools: called,
        tool_format: cfg.sim.tool_format,
        tool_call_parser: cfg.tool_call_parser.clone(),
        prose_len,
        max_tokens,
        seed,
    });
    if ignore_eos && script.tokens.len() < max_tokens && script.tool_calls.is_empty() {
        // ignore_eos: keep writing until max_tokens.
        let extra = text::prose_tokens(&mut rng, max_tokens - script.tokens.len());
        script
            .tokens
            .extend(extra.into_iter().map(|w| script::ScriptToken {
                delta: Delta::Content(w.clone()),
                text: w,
            }));
        script.finish_reason = "length";
    } else if script.finish_reason == "stop"
        && script.tokens.len() >= max_tokens
        && script.tool_calls.is_empty()
    {
        script.finish_reason = "length";
    }
    Ok(Prepared {
        prompt,
        script,
        stream,
        include_usage,
    })
}

fn fault_roll(state: &SimState, n: u64, salt: u64) -> f64 {
    Rng::new(text::mix(&[state.cfg.sim.seed, n, salt])).next_f64()
}

async fn generate(state: Arc<SimState>, body: Bytes, endpoint: Endpoint) -> Response {
    let received = Instant::now();
    if !state.ready.load(Ordering::SeqCst) {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "The server is not ready.",
            None,
        );
    }
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return malformed_json(&body, &e),
    };
    let n = state.received.fetch_add(1, Ordering::SeqCst) + 1;
    let prepared = match prepare(&state, &req, endpoint, n) {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let sim = &state.cfg.sim;
    let prefix = if endpoint == Endpoint::Chat {
        "chatcmpl"
    } else {
        "cmpl"
    };
    let id = format!("{prefix}-{:016x}", text::mix(&[state.start_unix_ms, n]));
    let record = state.truth.open(RequestRecord {
        id: id.clone(),
        endpoint: if endpoint == Endpoint::Chat {
            "chat"
        } else {
            "completion"
        },
        stream: prepared.stream,
        status: "in_flight",
        received_us: state.truth.us(received),
        prompt_tokens: prepared.prompt.len(),
        ..RequestRecord::default()
    });
    if sim.hang_after_requests.is_some_and(|h| n > h) {
        set_status(&record, "hung", Some("hang"));
        std::future::pending::<()>().await;
    }
    if sim.http_500_rate > 0.0 && fault_roll(&state, n, 500) < sim.http_500_rate {
        set_status(&record, "error", Some("http_500"));
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal server error (simulated by --sim-http-500-rate)",
            None,
        );
    }
    let drop_at = (sim.drop_mid_stream_rate > 0.0
        && fault_roll(&state, n, 0xd) < sim.drop_mid_stream_rate)
        .then_some(prepared.script.tokens.len() / 2);
    let malformed_at = (sim.malformed_sse_rate > 0.0
        && fault_roll(&state, n, 0xa) < sim.malformed_sse_rate)
        .then_some(prepared.script.tokens.len() / 2);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let output = prepared.script.token_ids();
    if !state.engine.submit(EngineRequest {
        id: n,
        prompt: prepared.prompt.clone(),
        output,
        received,
        events: tx,
    }) {
        set_status(&record, "error", None);
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The engine is not running.",
            None,
        );
    }
    let ctx = Ctx {
        state: Arc::clone(&state),
        endpoint,
        id,
        prompt_tokens: prepared.prompt.len(),
        script: prepared.script,
        include_usage: prepared.include_usage,
        rx,
        record,
        received,
        scheduled: None,
        cached_tokens: 0,
        token_instants: Vec::new(),
        preemptions: 0,
        done: false,
        drop_at,
        malformed_at,
        fail_next: false,
    };
    if prepared.stream {
        stream_response(ctx)
    } else {
        full_response(ctx).await
    }
}

fn set_status(record: &RecordHandle, status: &'static str, fault: Option<&'static str>) {
    if let Ok(mut r) = record.lock() {
        r.status = status;
        if fault.is_some() {
            r.fault = fault;
        }
    }
}

/// Per-request state shared by the streaming and non-streaming paths.
struct Ctx {
    state: Arc<SimState>,
    endpoint: Endpoint,
    id: String,
    prompt_tokens: usize,
    script: Script,
    include_usage: bool,
    rx: UnboundedReceiver<EngineEvent>,
    record: RecordHandle,
    received: Instant,
    scheduled: Option<Instant>,
    cached_tokens: usize,
    token_instants: Vec<Instant>,
    preemptions: u32,
    done: bool,
    drop_at: Option<usize>,
    malformed_at: Option<usize>,
    /// The simulated drop happens on the next poll (after a partial write).
    fail_next: bool,
}

impl Ctx {
    fn on_event(&mut self, ev: EngineEvent) -> Option<usize> {
        match ev {
            EngineEvent::Scheduled { cached_tokens, at } => {
                self.scheduled = Some(at);
                self.cached_tokens = cached_tokens;
                if let Ok(mut r) = self.record.lock() {
                    r.scheduled_us = Some(self.state.truth.us(at));
                    r.cached_tokens = cached_tokens;
                }
                None
            }
            EngineEvent::Preempted => {
                self.preemptions += 1;
                if let Ok(mut r) = self.record.lock() {
                    r.preemptions = self.preemptions;
                }
                None
            }
            EngineEvent::Token { index, at } => {
                self.token_instants.push(at);
                Some(index)
            }
        }
    }

    fn finish(&mut self, status: &'static str, fault: Option<&'static str>) {
        if self.done {
            return;
        }
        self.done = true;
        let now = Instant::now();
        if let Ok(mut r) = self.record.lock() {
            r.status = status;
            if fault.is_some() {
                r.fault = fault;
            }
            r.end_us = Some(self.state.truth.us(now));
            r.completion_tokens = self.token_instants.len();
        }
        if status != "finished" {
            return;
        }
        let secs = |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64();
        let first = self.token_instants.first().copied();
        let last = self.token_instants.last().copied().unwrap_or(now);
        let scheduled = self.scheduled.unwrap_or(self.received);
        self.state.metrics.record(&Finished {
            ttft: first.map(|f| secs(self.received, f)),
            itls: self
                .token_instants
                .windows(2)
                .map(|w| secs(w[0], w[1]))
                .collect(),
            e2e: secs(self.received, last),
            queue: secs(self.received, scheduled),
            prefill: first.map(|f| secs(scheduled, f)).unwrap_or(0.0),
            decode: first.map(|f| secs(f, last)).unwrap_or(0.0),
            prompt_tokens: self.prompt_tokens,
            cached_tokens: self.cached_tokens,
            generation_tokens: self.token_instants.len(),
            finish_reason: self.script.finish_reason,
        });
        let finished = self.state.finished.fetch_add(1, Ordering::SeqCst) + 1;
        if self
            .state
            .cfg
            .sim
            .crash_after_requests
            .is_some_and(|c| finished >= c)
        {
            self.state.crash();
        }
    }

    /// The usage object in vLLM's field order; `full` adds the fields the
    /// non-streaming body carries (`null` details, `multimodal_tokens`).
    fn usage_json(&self, full: bool) -> J {
        let completion = self.script.tokens.len();
        let mut fields = vec![
            ("prompt_tokens", J::from(self.prompt_tokens)),
            ("total_tokens", J::from(self.prompt_tokens + completion)),
            ("completion_tokens", J::from(completion)),
        ];
        if self.state.cfg.enable_prompt_tokens_details {
            // Tokens newly written to the prefix cache, in full blocks;
            // `/v1/completions` reports null (as vLLM 0.32).
            let created = match self.endpoint {
                Endpoint::Chat => J::from(self.created_cache_tokens()),
                Endpoint::Completion => J::null(),
            };
            let mut details = vec![
                ("cached_tokens", J::from(self.cached_tokens)),
                ("created_cache_tokens", created),
            ];
            if full {
                details.push(("multimodal_tokens", J::null()));
            }
            fields.push(("prompt_tokens_details", J::O(details)));
        } else if full {
            fields.push(("prompt_tokens_details", J::null()));
        }
        // With a reasoning parser, chat usage counts the reasoning tokens
        // (streaming and not); otherwise vLLM writes null (non-streaming only).
        if self.endpoint == Endpoint::Chat && self.state.cfg.reasoning_parser.is_some() {
            let reasoning = self
                .script
                .tokens
                .iter()
                .filter(|t| matches!(t.delta, Delta::Reasoning(_)))
                .count();
            fields.push((
                "completion_tokens_details",
                J::O(vec![("reasoning_tokens", J::from(reasoning))]),
            ));
        } else if full {
            fields.push(("completion_tokens_details", J::null()));
        }
        J::O(fields)
    }

    /// Prompt tokens this request added to the prefix cache: the full
    /// blocks of the prompt minus those it found cached; 0 with caching off.
    fn created_cache_tokens(&self) -> usize {
        if !self.state.cfg.enable_prefix_caching {
            return 0;
        }
        let block = self.state.plan.block_size.max(1);
        (self.prompt_tokens / block * block).saturating_sub(self.cached_tokens)
    }

    fn head(&self) -> String {
        let (object, created) = match self.endpoint {
            Endpoint::Chat => ("chat.completion.chunk", self.state.created),
            Endpoint::Completion => ("text_completion", self.state.created),
        };
        format!(
            "{{\"id\":{},\"object\":\"{object}\",\"created\":{created},\"model\":{}",
            json_str(&self.id),
            json_str(self.state.cfg.served_model_name())
        )
    }

    fn delta_json(&self, delta: &Delta) -> Option<String> {
        Some(match delta {
            Delta::Nothing => return None,
            Delta::Content(c) => format!("{{\"content\":{}}}", json_str(c)),
            Delta::Reasoning(r) => match self.state.cfg.sim.reasoning_field {
                ReasoningField::Both => format!(
                    "{{\"reasoning\":{0},\"reasoning_content\":{0}}}",
                    json_str(r)
                ),
                ReasoningField::Reasoning => format!("{{\"reasoning\":{}}}", json_str(r)),
                ReasoningField::ReasoningContent => {
                    format!("{{\"reasoning_content\":{}}}", json_str(r))
                }
            },
            Delta::ToolStart { index, id, name } => format!(
                "{{\"content\":null,\"tool_calls\":[{{\"id\":{},\"type\":\"function\",\"index\":{index},\"function\":{{\"name\":{}}}}}]}}",
                json_str(id),
                json_str(name)
            ),
            Delta::ToolArgs { index, text } => format!(
                "{{\"content\":null,\"tool_calls\":[{{\"index\":{index},\"function\":{{\"arguments\":{}}}}}]}}",
                json_str(text)
            ),
        })
    }

    fn finish_fields(&self) -> String {
        let stop = self
            .script
            .stop_reason
            .map(|s| s.to_string())
            .unwrap_or_else(|| "null".into());
        format!(
            "\"finish_reason\":\"{}\",\"stop_reason\":{stop}",
            self.script.finish_reason
        )
    }

    /// SSE bytes for output token `index` (may be empty).
    fn token_events(&self, index: usize) -> String {
        let last = index + 1 == self.script.tokens.len();
        let mut out = String::new();
        let token = &self.script.tokens[index];
        match self.endpoint {
            Endpoint::Chat => {
                if index == 0 {
                    out.push_str(&format!(
                        "data: {},\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}},\"logprobs\":null,\"finish_reason\":null}}],\"prompt_token_ids\":null,\"prompt_text\":null}}\n\n",
                        self.head()
                    ));
                }
                let delta = self.delta_json(&token.delta);
                match (delta, last) {
                    (Some(d), false) => out.push_str(&format!(
                        "data: {},\"choices\":[{{\"index\":0,\"delta\":{d},\"logprobs\":null,\"finish_reason\":null,\"token_ids\":null}}]}}\n\n",
                        self.head()
                    )),
                    (Some(d), true) if self.script.tool_calls.is_empty() => out.push_str(&format!(
                        "data: {},\"choices\":[{{\"index\":0,\"delta\":{d},\"logprobs\":null,{},\"token_ids\":null}}]}}\n\n",
                        self.head(),
                        self.finish_fields()
                    )),
                    (Some(d), true) => {
                        out.push_str(&format!(
                            "data: {},\"choices\":[{{\"index\":0,\"delta\":{d},\"logprobs\":null,\"finish_reason\":null,\"token_ids\":null}}]}}\n\n",
                            self.head()
                        ));
                        out.push_str(&self.final_empty_delta());
                    }
                    (None, true) => out.push_str(&self.final_empty_delta()),
                    (None, false) => {}
                }
            }
            Endpoint::Completion => {
                let fin = if last {
                    self.finish_fields()
                } else {
                    "\"finish_reason\":null,\"stop_reason\":null".into()
                };
                out.push_str(&format!(
                    "data: {},\"choices\":[{{\"index\":0,\"text\":{},\"logprobs\":null,{fin},\"token_ids\":null}}]}}\n\n",
                    self.head(),
                    json_str(&token.text)
                ));
            }
        }
        if last {
            if self.include_usage {
                out.push_str(&format!(
                    "data: {},\"choices\":[],\"usage\":{},\"system_fingerprint\":\"{SYSTEM_FINGERPRINT}\"}}\n\n",
                    self.head(),
                    self.usage_json(false).to_json()
                ));
            }
            out.push_str("data: [DONE]\n\n");
        }
        out
    }

    /// The closing `delta: {}` chunk of a streamed tool call; vLLM 0.32
    /// sends `stop_reason: null` there (the non-streaming reply has it).
    fn final_empty_delta(&self) -> String {
        format!(
            "data: {},\"choices\":[{{\"index\":0,\"delta\":{{}},\"logprobs\":null,\"finish_reason\":\"{}\",\"stop_reason\":null,\"token_ids\":null}}]}}\n\n",
            self.head(),
            self.script.finish_reason
        )
    }

    fn full_body(&self) -> String {
        let usage = self.usage_json(true);
        let stop_reason = self
            .script
            .stop_reason
            .map(|s| J::from(s as usize))
            .unwrap_or(J::null());
        let model = self.state.cfg.served_model_name();
        let created = J::from(self.state.created as usize);
        let body = match self.endpoint {
            Endpoint::Chat => {
                let reasoning = self.script.reasoning().map(J::from).unwrap_or(J::null());
                let text = self.script.content();
                // vLLM 0.32: a reasoning-only answer has `content: null`.
                let content = if text.is_empty()
                    && self.script.reasoning().is_some()
                    && self.script.tool_calls.is_empty()
                {
                    J::null()
                } else {
                    J::from(text)
                };
                let mut message = vec![
                    ("role", J::from("assistant")),
                    ("content", content),
                    ("refusal", J::null()),
                    ("annotations", J::null()),
                    ("audio", J::null()),
                    ("function_call", J::null()),
                ];
                if !self.script.tool_calls.is_empty() {
                    message.push((
                        "tool_calls",
                        J::A(
                            self.script
                                .tool_calls
                                .iter()
                                .map(|c| {
                                    J::O(vec![
                                        ("id", J::from(c.id.as_str())),
                                        ("type", J::from("function")),
                                        (
                                            "function",
                                            J::O(vec![
                                                ("name", J::from(c.name.as_str())),
                                                ("arguments", J::from(c.arguments.as_str())),
                                            ]),
                                        ),
                                    ])
                                })
                                .collect(),
                        ),
                    ));
                }
                match self.state.cfg.sim.reasoning_field {
                    ReasoningField::Both => {
                        message.push(("reasoning", reasoning.clone()));
                        message.push(("reasoning_content", reasoning));
                    }
                    ReasoningField::Reasoning => message.push(("reasoning", reasoning)),
                    ReasoningField::ReasoningContent => {
                        message.push(("reasoning_content", reasoning))
                    }
                }
                J::O(vec![
                    ("id", J::from(self.id.as_str())),
                    ("object", J::from("chat.completion")),
                    ("created", created),
                    ("model", J::from(model)),
                    (
                        "choices",
                        J::A(vec![J::O(vec![
                            ("index", J::from(0usize)),
                            ("message", J::O(message)),
                            ("logprobs", J::null()),
                            ("finish_reason", J::from(self.script.finish_reason)),
                            ("stop_reason", stop_reason),
                            ("token_ids", J::null()),
                        ])]),
                    ),
                    ("service_tier", J::null()),
                    ("system_fingerprint", J::from(SYSTEM_FINGERPRINT)),
                    ("usage", usage),
                    ("prompt_logprobs", J::null()),
                    ("prompt_token_ids", J::null()),
                    ("kv_transfer_params", J::null()),
                ])
            }
            Endpoint::Completion => {
                let text: String = self.script.tokens.iter().map(|t| t.text.as_str()).collect();
                J::O(vec![
                    ("id", J::from(self.id.as_str())),
                    ("object", J::from("text_completion")),
                    ("created", created),
                    ("model", J::from(model)),
                    (
                        "choices",
                        J::A(vec![J::O(vec![
                            ("index", J::from(0usize)),
                            ("text", J::from(text)),
                            ("logprobs", J::null()),
                            ("finish_reason", J::from(self.script.finish_reason)),
                            ("stop_reason", stop_reason),
                            ("token_ids", J::null()),
                            ("prompt_logprobs", J::null()),
                            ("prompt_token_ids", J::null()),
                        ])]),
                    ),
                    ("service_tier", J::null()),
                    ("system_fingerprint", J::from(SYSTEM_FINGERPRINT)),
                    ("usage", usage),
                    ("kv_transfer_params", J::null()),
                ])
            }
        };
        body.to_json()
    }
}

/// JSON with fields in a fixed order (vLLM's), without turning on
/// serde_json's `preserve_order` for the whole workspace.
#[derive(Debug, Clone)]
enum J {
    V(Value),
    O(Vec<(&'static str, J)>),
    A(Vec<J>),
}

impl J {
    fn null() -> J {
        J::V(Value::Null)
    }
    fn to_json(&self) -> String {
        match self {
            J::V(v) => v.to_string(),
            J::O(fields) => {
                let items: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{}:{}", json_str(k), v.to_json()))
                    .collect();
                format!("{{{}}}", items.join(","))
            }
            J::A(items) => format!(
                "[{}]",
                items.iter().map(J::to_json).collect::<Vec<_>>().join(",")
            ),
        }
    }
}

impl From<usize> for J {
    fn from(v: usize) -> J {
        J::V(Value::from(v))
    }
}
impl From<&str> for J {
    fn from(v: &str) -> J {
        J::V(Value::from(v))
    }
}
impl From<String> for J {
    fn from(v: String) -> J {
        J::V(Value::from(v))
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        // The client went away (or the server stopped) before the end.
        self.finish("aborted", None);
    }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn io_err(msg: &str) -> std::io::Error {
    std::io::Error::other(msg.to_owned())
}

enum Next_ {
    Event(Option<EngineEvent>),
    Crashed,
}

fn stream_response(ctx: Ctx) -> Response {
    let body = stream::unfold(ctx, |mut ctx| async move {
        if ctx.fail_next {
            ctx.fail_next = false;
            return Some((Err(io_err("connection dropped (simulated)")), ctx));
        }
        if ctx.done {
            return None;
        }
        loop {
            let crashed = ctx.state.crashed.clone();
            let next = tokio::select! {
                ev = ctx.rx.recv() => Next_::Event(ev),
                _ = crashed.cancelled() => Next_::Crashed,
            };
            let ev = match next {
                Next_::Crashed | Next_::Event(None) => {
                    ctx.finish(
                        "error",
                        if ctx.state.crashed.is_cancelled() {
                            Some("crash")
                        } else {
                            None
                        },
                    );
                    return Some((Err(io_err("engine stopped")), ctx));
                }
                Next_::Event(Some(ev)) => ev,
            };
            let Some(first_index) = ctx.on_event(ev) else {
                continue;
            };
            // Batch every token already available into one write.
            let mut indices = vec![first_index];
            while let Ok(ev) = ctx.rx.try_recv() {
                if let Some(i) = ctx.on_event(ev) {
                    indices.push(i);
                }
            }
            let mut out = String::new();
            let mut tokens_written = 0usize;
            let mut last = false;
            for index in indices {
                if ctx.drop_at.is_some_and(|d| index >= d) && index + 1 < ctx.script.tokens.len() {
                    ctx.finish("dropped", Some("drop_mid_stream"));
                    if !out.is_empty() {
                        // Write what we have, then drop on the next poll.
                        ctx.fail_next = true;
                        return Some((Ok(Bytes::from(out)), ctx));
                    }
                    return Some((Err(io_err("connection dropped (simulated)")), ctx));
                }
                if ctx.malformed_at == Some(index) {
                    out.push_str(&format!(
                        "data: {},\"choices\":[{{\"index\":0,\"del\n\n",
                        ctx.head()
                    ));
                    if let Ok(mut r) = ctx.record.lock() {
                        r.fault = Some("malformed_sse");
                    }
                }
                let events = ctx.token_events(index);
                if index == 0 && !events.is_empty() {
                    if let Ok(mut r) = ctx.record.lock() {
                        r.first_chunk_us = Some(ctx.state.truth.us(Instant::now()));
                    }
                }
                let carries_token = !matches!(ctx.script.tokens[index].delta, Delta::Nothing)
                    || (ctx.endpoint == Endpoint::Completion);
                tokens_written += usize::from(carries_token);
                out.push_str(&events);
                last |= index + 1 == ctx.script.tokens.len();
            }
            let now = Instant::now();
            if let Ok(mut r) = ctx.record.lock() {
                // Tokens batched into one write share its instant.
                let at = ctx.state.truth.us(now);
                r.token_write_us
                    .extend(std::iter::repeat_n(at, tokens_written));
            }
            if last {
                ctx.finish("finished", None);
            }
            if out.is_empty() {
                continue;
            }
            return Some((Ok::<Bytes, std::io::Error>(Bytes::from(out)), ctx));
        }
    });
    let mut resp = Response::new(Body::from_stream(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    resp
}

async fn full_response(mut ctx: Ctx) -> Response {
    let total = ctx.script.tokens.len();
    let mut produced = 0;
    while produced < total {
        let crashed = ctx.state.crashed.clone();
        let next = tokio::select! {
            ev = ctx.rx.recv() => Next_::Event(ev),
            _ = crashed.cancelled() => Next_::Crashed,
        };
        match next {
            Next_::Event(Some(ev)) => {
                if let Some(index) = ctx.on_event(ev) {
                    produced = index + 1;
                    if let Ok(mut r) = ctx.record.lock() {
                        r.token_write_us.push(
                            ctx.state
                                .truth
                                .us(*ctx.token_instants.last().unwrap_or(&Instant::now())),
                        );
                    }
                }
            }
            _ => {
                let crashed = ctx.state.crashed.is_cancelled();
                ctx.finish("error", crashed.then_some("crash"));
                return dropped_connection();
            }
        }
    }
    if ctx.drop_at.is_some() {
        ctx.finish("dropped", Some("drop_mid_stream"));
        return dropped_connection();
    }
    let body = ctx.full_body();
    ctx.finish("finished", None);
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A 200 whose body fails at once: the client sees the connection drop.
fn dropped_connection() -> Response {
    let body = stream::once(async {
        Err::<Bytes, std::io::Error>(io_err("connection dropped (simulated)"))
    });
    let mut resp = Response::new(Body::from_stream(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
