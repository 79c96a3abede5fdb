//! Plain JSON replies and vLLM's error bodies.
//!
//! These small bodies are built with `json!`, whose objects serialise with
//! sorted keys; the simulator has always sent them so (vLLM writes
//! `message, type, param, code`), and no client depends on the order.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A JSON reply with vLLM's `content-type`.
pub(super) fn json_response(status: StatusCode, body: Value) -> Response {
    with_content_type(
        (status, body.to_string()).into_response(),
        "application/json",
    )
}

pub(super) fn with_content_type(mut resp: Response, content_type: &'static str) -> Response {
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
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

/// FastAPI's reply to an unknown path.
pub(super) fn not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, json!({"detail": "Not Found"}))
}

/// FastAPI's request-validation reply to a body that is not JSON, as vLLM
/// 0.32 sends it: type `Bad Request`, `param` `body.OFFSET` (the character
/// offset of the decode error), and Python's json message in `ctx`.
pub(super) fn malformed_json(body: &[u8], e: &serde_json::Error) -> Response {
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
