//! The router, the `--api-key` check, and the handlers of the routes that
//! do not generate (health, version, models, metrics, tokenize, the
//! prefix-cache reset and the simulator's `/sim/*`).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::Endpoint;
use super::prompt;
use super::reply::{error_response, json_response, not_found, with_content_type};
use super::request::generate;
use super::state::SimState;
use crate::text;

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
        .fallback(fallback)
        .layer(middleware::from_fn_with_state(Arc::clone(&state), auth))
        .with_state(state)
}

/// With `--api-key`, the paths vLLM protects need `Authorization: Bearer
/// KEY` (CORS preflights pass); the rest need none.
async fn auth(State(state): State<Arc<SimState>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let protected = ["/v1", "/v2", "/inference"]
        .iter()
        .any(|p| path == *p || path.strip_prefix(p).is_some_and(|r| r.starts_with('/')));
    if protected && !state.cfg.api_keys.is_empty() && req.method() != Method::OPTIONS {
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

async fn fallback() -> Response {
    not_found()
}

async fn chat(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    generate(state, body, Endpoint::Chat).await
}

async fn completions(State(state): State<Arc<SimState>>, body: Bytes) -> Response {
    generate(state, body, Endpoint::Completion).await
}

async fn health(State(state): State<Arc<SimState>>) -> Response {
    if state.is_ready() {
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
    with_content_type(
        state.metrics.render(&stats).into_response(),
        "text/plain; version=0.0.4; charset=utf-8",
    )
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

/// vLLM serves it only with `VLLM_SERVER_DEV_MODE=1`.
async fn reset_prefix_cache(State(state): State<Arc<SimState>>) -> Response {
    if std::env::var("VLLM_SERVER_DEV_MODE").as_deref() != Ok("1") {
        return not_found();
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
    let tokens = match value.get("messages").and_then(Value::as_array) {
        Some(messages) => prompt::chat_prompt(messages, &[]).ids,
        None => text::tokenize(value.get("prompt").and_then(Value::as_str).unwrap_or("")),
    };
    json_response(
        StatusCode::OK,
        json!({"count": tokens.len(), "max_model_len": state.plan.max_model_len, "tokens": tokens, "token_strs": null}),
    )
}
