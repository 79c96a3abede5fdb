//! Peak memory of the client against a server that sends one 50 MiB SSE
//! event (issue 9: it once took the client to 1.5 GB).
//!
//! Run: `cargo run --release -p grid-bench --example oversized_event [MiB]`
//!
//! An in-process server streams `data: aaaa…` (the event's size in MiB,
//! default 50) in 64 KiB pieces from a static buffer, so the server holds
//! no copy. The client reads it once with the default cap (4 MiB) and once
//! with the largest cap the battery config allows (256 MiB, so the event is
//! buffered whole), and prints each request's outcome and the process's
//! peak RSS (`VmHWM`, reset between the runs through
//! `/proc/self/clear_refs`).

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::response::Response;
use axum::routing::post;
use futures_util::StreamExt as _;
use grid_bench::Endpoint;
use grid_bench::client::{Client, ClientConfig};
use grid_bench::openai::{ChatMessage, ChatRequest};
use grid_bench::sse::DEFAULT_MAX_EVENT_BYTES;
use tokio_util::sync::CancellationToken;

static PIECE: [u8; 64 << 10] = [b'a'; 64 << 10];

fn app(bytes: usize) -> Router {
    Router::new().route(
        "/v1/chat/completions",
        post(move || async move {
            let pieces = bytes.div_ceil(PIECE.len());
            let head = futures_util::stream::once(async { Ok(Bytes::from_static(b"data: ")) });
            let body = futures_util::stream::iter(0..pieces)
                .map(|_| Ok::<Bytes, Infallible>(Bytes::from_static(&PIECE)));
            let tail = futures_util::stream::once(async {
                Ok(Bytes::from_static(b"\n\ndata: [DONE]\n\n"))
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(head.chain(body).chain(tail)))
                .expect("response")
        }),
    )
}

/// A field of `/proc/self/status` in KiB (`VmHWM`, `VmRSS`).
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets the peak RSS to the current RSS (Linux 4.0+).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

async fn measure(base_url: &str, cap: usize) {
    let client = Client::new(
        &Endpoint {
            base_url: base_url.to_string(),
            model: "tiny".into(),
            api_key: None,
        },
        ClientConfig {
            max_event_bytes: cap,
            request_timeout: Duration::from_secs(120),
            ..ClientConfig::default()
        },
    )
    .expect("client");
    let request = ChatRequest {
        messages: vec![ChatMessage::user("hello")],
        max_tokens: 16,
        ..ChatRequest::default()
    };
    let reset = reset_peak();
    let before = status_kib("VmHWM:").unwrap_or(0);
    let started = Instant::now();
    let exchange = client
        .chat(
            &request,
            Instant::now(),
            &CancellationToken::new(),
            "example",
            String::new(),
        )
        .await;
    let elapsed = started.elapsed();
    let peak = status_kib("VmHWM:").unwrap_or(0);
    let failure = exchange
        .record
        .failure
        .map_or_else(|| "ok".to_string(), |f| f.kind.to_string());
    println!(
        "cap {:>4} MiB: {failure:<16} in {:>6.0} ms; peak RSS {:>6.1} MiB (before the request {:.1} MiB{})",
        cap >> 20,
        elapsed.as_secs_f64() * 1000.0,
        peak as f64 / 1024.0,
        before as f64 / 1024.0,
        if reset { "" } else { ", peak not reset" }
    );
}

#[tokio::main]
async fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(50);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app(mib << 20)).await;
    });
    let base_url = format!("http://{addr}");
    println!("one SSE event of {mib} MiB:");
    measure(&base_url, DEFAULT_MAX_EVENT_BYTES).await;
    measure(&base_url, 256 << 20).await;
}
