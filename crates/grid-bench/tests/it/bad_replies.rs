//! Every bad reply becomes a failed request with its reason: never a panic,
//! never a silent zero.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::response::Response;
use axum::routing::post;
use grid_bench::Endpoint;
use grid_bench::client::{Client, ClientConfig, FailureKind};
use grid_bench::openai::{ChatMessage, ChatRequest};
use grid_core::Secret;
use tokio_util::sync::CancellationToken;

use crate::sim;

#[derive(Clone, Copy, Debug)]
enum Fake {
    Body(u16, &'static str, &'static str),
    /// Sends these events, then breaks the connection.
    ResetAfter(&'static str),
    /// Sends these events, then never finishes.
    HangAfter(&'static str),
}

async fn fake_server(fake: Fake) -> String {
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move || async move {
            match fake {
                Fake::Body(status, content_type, body) => Response::builder()
                    .status(status)
                    .header("content-type", content_type)
                    .body(Body::from(body))
                    .expect("response"),
                Fake::ResetAfter(events) => {
                    // The error comes after a pause, so the headers and the
                    // first events are on the wire before the connection dies.
                    let stream = futures_util::stream::once(async move {
                        Ok::<Bytes, std::io::Error>(Bytes::from_static(events.as_bytes()))
                    })
                    .chain(futures_util::stream::once(async {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Err(std::io::Error::new(
                            std::io::ErrorKind::ConnectionReset,
                            "reset",
                        ))
                    }));
                    Response::builder()
                        .header("content-type", "text/event-stream")
                        .body(Body::from_stream(stream))
                        .expect("response")
                }
                Fake::HangAfter(events) => {
                    let stream = futures_util::stream::once(async move {
                        Ok::<Bytes, Infallible>(Bytes::from_static(events.as_bytes()))
                    })
                    .chain(futures_util::stream::pending());
                    Response::builder()
                        .header("content-type", "text/event-stream")
                        .body(Body::from_stream(stream))
                        .expect("response")
                }
            }
        }),
    );
    crate::fakes::serve(app).await
}

use futures_util::StreamExt as _;

async fn send(
    base_url: &str,
    model: &str,
    key: Option<&str>,
    messages_words: usize,
    timeout: Duration,
) -> grid_bench::RequestRecord {
    let client = Client::new(
        &Endpoint {
            base_url: base_url.to_string(),
            model: model.to_string(),
            api_key: key.map(Secret::new),
        },
        ClientConfig {
            request_timeout: timeout,
            epoch: Instant::now(),
            keep_text: true,
            ..ClientConfig::default()
        },
    )
    .expect("client");
    let request = ChatRequest {
        messages: vec![ChatMessage::user("word ".repeat(messages_words))],
        max_tokens: 8,
        ..ChatRequest::default()
    };
    client
        .chat(
            &request,
            Instant::now(),
            &CancellationToken::new(),
            "test",
            "bad reply".into(),
        )
        .await
        .record
}

fn assert_failure(
    case: &str,
    record: &grid_bench::RequestRecord,
    kind: FailureKind,
    needle: &str,
) -> Result<(), String> {
    match &record.failure {
        Some(failure) if failure.kind == kind && failure.message.contains(needle) => Ok(()),
        other => Err(format!(
            "case {case:?}: expected {kind:?} containing {needle:?}, got {other:?}"
        )),
    }
}

#[tokio::test]
async fn fake_server_bad_replies_become_failures_with_reasons() {
    let vllm_400 = "{\"error\":{\"message\":\"This model's maximum context length is 4096 tokens. However, your prompt contains at least 4097 input tokens\",\"type\":\"BadRequestError\",\"param\":\"input_tokens\",\"code\":400}}";
    let cases: Vec<(&str, Fake, FailureKind, &str)> = vec![
        (
            "vLLM 400 error body",
            Fake::Body(400, "application/json", vllm_400),
            FailureKind::HttpStatus,
            "HTTP 400: This model's maximum context length is 4096",
        ),
        (
            "503 plain text",
            Fake::Body(503, "text/plain", "Service Unavailable"),
            FailureKind::HttpStatus,
            "HTTP 503: Service Unavailable",
        ),
        (
            "error event mid-stream",
            Fake::Body(
                200,
                "text/event-stream",
                concat!(
                    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n",
                    "data: {\"error\": {\"object\": \"error\", \"message\": \"engine dead\", \"type\": \"InternalServerError\", \"code\": 500}}\n\n",
                    "data: [DONE]\n\n"
                ),
            ),
            FailureKind::ServerError,
            "engine dead",
        ),
        (
            "malformed event",
            Fake::Body(
                200,
                "text/event-stream",
                concat!(
                    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n",
                    "data: {not json\n\n",
                    "data: [DONE]\n\n"
                ),
            ),
            FailureKind::MalformedEvent,
            "{not json",
        ),
        (
            "zero-token reply",
            Fake::Body(
                200,
                "text/event-stream",
                concat!(
                    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
                    "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":0}}\n\n",
                    "data: [DONE]\n\n"
                ),
            ),
            FailureKind::EmptyReply,
            "0 completion tokens",
        ),
        (
            "empty body",
            Fake::Body(200, "text/event-stream", ""),
            FailureKind::StreamInterrupted,
            "before [DONE]",
        ),
        (
            "tokens but no usage",
            Fake::Body(
                200,
                "text/event-stream",
                concat!(
                    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n",
                    "data: [DONE]\n\n"
                ),
            ),
            FailureKind::MissingUsage,
            "usage",
        ),
        (
            "usage without counts",
            Fake::Body(
                200,
                "text/event-stream",
                concat!(
                    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n",
                    "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"total_tokens\":4}}\n\n",
                    "data: [DONE]\n\n"
                ),
            ),
            FailureKind::MissingUsage,
            "lacks prompt_tokens or completion_tokens",
        ),
        (
            "ends mid-event",
            Fake::Body(
                200,
                "text/event-stream",
                "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: {\"id\"",
            ),
            FailureKind::StreamInterrupted,
            "in the middle of an event",
        ),
        (
            "reset mid-stream",
            Fake::ResetAfter(concat!(
                "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
                "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n"
            )),
            FailureKind::StreamInterrupted,
            "after 1 token chunks",
        ),
        (
            "hang after first token",
            Fake::HangAfter(
                "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n",
            ),
            FailureKind::Timeout,
            "(1 token chunks received)",
        ),
    ];
    let mut failures = Vec::new();
    for (name, fake, kind, needle) in cases {
        let url = fake_server(fake).await;
        let record = send(&url, "tiny", None, 3, Duration::from_millis(500)).await;
        if let Err(message) = assert_failure(name, &record, kind, needle) {
            failures.push(message);
        }
        if record.succeeded() || record.e2el_ms.is_some() && kind == FailureKind::Timeout {
            failures.push(format!(
                "case {name:?}: a failed request must not carry a completion time: {record:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn connection_refused_is_a_connect_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let record = send(
        &format!("http://{addr}"),
        "tiny",
        None,
        3,
        Duration::from_secs(5),
    )
    .await;
    assert_failure("refused", &record, FailureKind::Connect, "cannot send to")
        .expect("connect failure");
}

/// Name, extra simulator flags, model, API key, prompt words, expected
/// failure kind, expected message fragment.
type SimCase = (
    &'static str,
    Vec<&'static str>,
    &'static str,
    Option<&'static str>,
    usize,
    FailureKind,
    &'static str,
);

#[tokio::test]
async fn simulator_faults_and_vllm_errors_become_failures_with_reasons() {
    let cases: Vec<SimCase> = vec![
        (
            "wrong api key (401)",
            vec![],
            "tiny",
            Some("wrong"),
            3,
            FailureKind::HttpStatus,
            "HTTP 401: Unauthorized",
        ),
        (
            "unknown model (404)",
            vec![],
            "nope",
            Some("k"),
            3,
            FailureKind::HttpStatus,
            "HTTP 404: The model `nope` does not exist",
        ),
        (
            "prompt too long (400)",
            vec!["--max-model-len", "64"],
            "tiny",
            Some("k"),
            200,
            FailureKind::HttpStatus,
            "HTTP 400: This model's maximum context length is 64 tokens",
        ),
        (
            "injected 500",
            vec!["--sim-http-500-rate", "1"],
            "tiny",
            Some("k"),
            3,
            FailureKind::HttpStatus,
            "HTTP 500",
        ),
        (
            "dropped mid-stream",
            vec!["--sim-drop-mid-stream-rate", "1"],
            "tiny",
            Some("k"),
            3,
            FailureKind::StreamInterrupted,
            "",
        ),
        (
            "malformed SSE",
            vec!["--sim-malformed-sse-rate", "1"],
            "tiny",
            Some("k"),
            3,
            FailureKind::MalformedEvent,
            "not a JSON chunk",
        ),
        (
            "hung server",
            vec!["--sim-hang-after-requests", "0"],
            "tiny",
            Some("k"),
            3,
            FailureKind::Timeout,
            "no [DONE] within",
        ),
    ];
    let mut failures = Vec::new();
    for (name, extra, model, key, words, kind, needle) in cases {
        let mut args = vec!["tiny", "--api-key", "k", "--sim-time-scale", "0.01"];
        args.extend(extra);
        let server = sim(&args).await;
        let record = send(
            &server.base_url(),
            model,
            key,
            words,
            Duration::from_millis(800),
        )
        .await;
        if let Err(message) = assert_failure(name, &record, kind, needle) {
            failures.push(message);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
