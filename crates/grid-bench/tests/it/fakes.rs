//! In-process bad servers on 127.0.0.1 port 0: each answers `/v1/models`
//! and `/v1/chat/completions` in one wrong way (or one unusual right way),
//! as `fn app() -> Router` so the tests run them without a process.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::response::Response;
use axum::routing::{get, post};
use futures_util::StreamExt as _;

/// A closed port: bound, then released.
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}

/// Serves `app` on a free loopback port until the test's runtime ends.
pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

fn models_body(ids: &[&str]) -> String {
    let data: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| serde_json::json!({"id": id, "object": "model", "owned_by": "vllm"}))
        .collect();
    serde_json::json!({"object": "list", "data": data}).to_string()
}

/// `/v1/models` listing `tiny`.
fn with_models(router: Router) -> Router {
    router.route(
        "/v1/models",
        get(|| async {
            Response::builder()
                .header("content-type", "application/json")
                .body(Body::from(models_body(&["tiny"])))
                .expect("response")
        }),
    )
}

fn event_stream(body: Body) -> Response {
    Response::builder()
        .header("content-type", "text/event-stream; charset=utf-8")
        .body(body)
        .expect("response")
}

fn chunk(content: &str) -> String {
    format!(
        "data: {}\n\n",
        serde_json::json!({"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]})
    )
}

/// A well-formed reply of `tokens` one-word chunks, with `usage` as the
/// usage object's JSON.
fn reply_body(tokens: usize, usage: &str) -> String {
    let mut body = String::from(
        "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
    );
    for index in 0..tokens {
        body.push_str(&chunk(&format!("w{index} ")));
    }
    body.push_str(&format!(
        "data: {{\"id\":\"c1\",\"choices\":[],\"usage\":{usage}}}\n\ndata: [DONE]\n\n"
    ));
    body
}

/// Every page is the same HTML (a proxy's or a web server's), status 200.
pub fn html_page() -> Router {
    let page = || async {
        Response::builder()
            .header("content-type", "text/html; charset=utf-8")
            .body(Body::from(
                "<!DOCTYPE html><html><head><title>Welcome to nginx!</title></head><body>It works</body></html>",
            ))
            .expect("response")
    };
    Router::new()
        .route("/v1/models", get(page))
        .route("/v1/chat/completions", post(page))
}

/// The model is listed, but the chat stream's events are not JSON.
pub fn malformed_sse() -> Router {
    with_models(Router::new().route(
        "/v1/chat/completions",
        post(|| async {
            event_stream(Body::from(
                "data: {\"id\": \"c1\", oops\n\ndata: [DONE]\n\n",
            ))
        }),
    ))
}

/// Sends SSE keep-alive comments every 20 ms and never a token.
pub fn keep_alive_only() -> Router {
    with_models(Router::new().route(
        "/v1/chat/completions",
        post(|| async {
            let stream = futures_util::stream::unfold((), |()| async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Some((
                    Ok::<Bytes, Infallible>(Bytes::from_static(b": keep-alive\n\n")),
                    (),
                ))
            });
            event_stream(Body::from_stream(stream))
        }),
    ))
}

/// 64 KiB of `a`, the piece an oversized event is streamed in (static,
/// so the server itself holds no copy of the event).
static PIECE: [u8; 64 << 10] = [b'a'; 64 << 10];

/// One SSE event of `bytes` bytes of data (`data: aaaa…`), streamed in
/// 64 KiB pieces, then `[DONE]`.
pub fn one_huge_event(bytes: usize) -> Router {
    with_models(Router::new().route(
        "/v1/chat/completions",
        post(move || async move {
            let pieces = bytes.div_ceil(PIECE.len());
            let head = futures_util::stream::once(async { Ok(Bytes::from_static(b"data: ")) });
            let body = futures_util::stream::iter(0..pieces)
                .map(|_| Ok::<Bytes, Infallible>(Bytes::from_static(&PIECE)));
            let tail = futures_util::stream::once(async {
                Ok(Bytes::from_static(b"\n\ndata: [DONE]\n\n"))
            });
            event_stream(Body::from_stream(head.chain(body).chain(tail)))
        }),
    ))
}

/// An OpenAI-compatible gateway whose usage omits `prompt_tokens`.
pub fn gateway_without_prompt_tokens() -> Router {
    with_models(Router::new().route(
        "/v1/chat/completions",
        post(|| async {
            event_stream(Body::from(reply_body(
                3,
                "{\"completion_tokens\":3,\"total_tokens\":3}",
            )))
        }),
    ))
}

/// A tool-call chunk at `index`, then a normal end.
pub fn tool_call_at(index: u64) -> Router {
    with_models(Router::new().route(
        "/v1/chat/completions",
        post(move || async move {
            let call = serde_json::json!({"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": index, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]}}]});
            event_stream(Body::from(format!(
                "data: {call}\n\ndata: {{\"id\":\"c1\",\"choices\":[],\"usage\":{{\"prompt_tokens\":3,\"completion_tokens\":1}}}}\n\ndata: [DONE]\n\n"
            )))
        }),
    ))
}

/// A token every `every`, for a reply far longer than any test waits.
pub fn slow_tokens(every: Duration) -> Router {
    with_models(Router::new().route(
        "/v1/chat/completions",
        post(move || async move {
            let stream = futures_util::stream::unfold(0u64, move |index| async move {
                tokio::time::sleep(every).await;
                Some((
                    Ok::<Bytes, Infallible>(Bytes::from(chunk(&format!("w{index} ")))),
                    index + 1,
                ))
            });
            event_stream(Body::from_stream(stream))
        }),
    ))
}

/// The request bodies a [`flaky`] server received, in order.
pub type Bodies = Arc<Mutex<Vec<serde_json::Value>>>;

/// Answers request `n` (1-based) of every `period` with HTTP 500 and the
/// others with a good two-token reply; records every request body.
pub fn flaky(fail_at: usize, period: usize) -> (Router, Bodies) {
    let bodies: Bodies = Arc::default();
    let seen = bodies.clone();
    let app = with_models(Router::new().route(
        "/v1/chat/completions",
        post(move |body: Bytes| {
            let seen = seen.clone();
            async move {
                let value: serde_json::Value =
                    serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                let count = {
                    let mut bodies = seen.lock().expect("bodies");
                    bodies.push(value);
                    bodies.len()
                };
                if (count - 1) % period + 1 == fail_at {
                    Response::builder()
                        .status(500)
                        .header("content-type", "application/json")
                        .body(Body::from(
                            "{\"object\":\"error\",\"message\":\"engine hiccup\",\"code\":500}",
                        ))
                        .expect("response")
                } else {
                    event_stream(Body::from(reply_body(
                        2,
                        "{\"prompt_tokens\":5,\"completion_tokens\":2}",
                    )))
                }
            }
        }),
    ));
    (app, bodies)
}

/// The endpoint of a fake server for model `tiny`.
pub fn endpoint(base_url: &str) -> grid_bench::Endpoint {
    grid_bench::Endpoint {
        base_url: base_url.to_string(),
        model: "tiny".into(),
        api_key: None,
    }
}
