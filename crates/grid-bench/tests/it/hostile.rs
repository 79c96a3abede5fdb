//! One request against each bad server: it fails with its reason within
//! the client's bounds (or, for an unusual but honest reply, succeeds with
//! what is known), never holding the request or the memory for long.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use grid_bench::client::{Client, ClientConfig, FailureKind, MAX_TOOL_CALLS, RequestRecord};
use grid_bench::openai::{ChatMessage, ChatRequest};
use grid_bench::sse::SseDecoder;
use tokio_util::sync::CancellationToken;

use crate::check;
use crate::fakes::{self, endpoint, serve};

fn config() -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_secs(20),
        idle_timeout: Duration::from_millis(400),
        ..ClientConfig::default()
    }
}

async fn send(
    base_url: &str,
    config: ClientConfig,
    deadline: Option<Instant>,
) -> (RequestRecord, Duration, usize) {
    let client = Client::new(&endpoint(base_url), config).expect("client");
    let request = ChatRequest {
        messages: vec![ChatMessage::user("hello")],
        max_tokens: 16,
        ..ChatRequest::default()
    };
    let started = Instant::now();
    let exchange = client
        .chat_until(
            &request,
            Instant::now(),
            &CancellationToken::new(),
            deadline,
            "test",
            "hostile".into(),
        )
        .await;
    (
        exchange.record,
        started.elapsed(),
        exchange.reply.tool_calls.len(),
    )
}

/// The failure kind (or `ok`) and whether the request ended within `bound`.
type Outcome = (&'static str, bool);

#[tokio::test]
async fn every_bad_server_fails_the_request_with_its_reason_within_bounds() {
    let slow = serve(fakes::slow_tokens(Duration::from_millis(50))).await;
    let servers: Vec<(&str, String, Option<Duration>, Duration)> = vec![
        // (name, server, benchmark deadline, bound on the request's time)
        (
            "keep-alives only",
            serve(fakes::keep_alive_only()).await,
            None,
            Duration::from_secs(5),
        ),
        (
            "one 50 MiB event",
            serve(fakes::one_huge_event(50 << 20)).await,
            None,
            Duration::from_secs(10),
        ),
        (
            "an HTML page with status 200",
            serve(fakes::html_page()).await,
            None,
            Duration::from_secs(5),
        ),
        (
            "malformed SSE",
            serve(fakes::malformed_sse()).await,
            None,
            Duration::from_secs(5),
        ),
        (
            "tool-call index at the cap",
            serve(fakes::tool_call_at(MAX_TOOL_CALLS as u64)).await,
            None,
            Duration::from_secs(5),
        ),
        (
            "tool-call index 10^12",
            serve(fakes::tool_call_at(1_000_000_000_000)).await,
            None,
            Duration::from_secs(5),
        ),
        (
            "tool-call index just below the cap",
            serve(fakes::tool_call_at(MAX_TOOL_CALLS as u64 - 1)).await,
            None,
            Duration::from_secs(5),
        ),
        (
            "usage without prompt_tokens",
            serve(fakes::gateway_without_prompt_tokens()).await,
            None,
            Duration::from_secs(5),
        ),
        (
            "tokens past the benchmark's bound",
            slow.clone(),
            Some(Duration::from_millis(300)),
            Duration::from_secs(5),
        ),
        (
            "closed port",
            fakes::closed_port_url(),
            None,
            Duration::from_secs(5),
        ),
    ];
    let mut actual: BTreeMap<&str, Outcome> = BTreeMap::new();
    let mut records = BTreeMap::new();
    for (name, url, deadline, bound) in &servers {
        let (record, elapsed, tool_calls) =
            send(url, config(), deadline.map(|d| Instant::now() + d)).await;
        let kind = record.failure.as_ref().map_or("ok", |f| f.kind.as_str());
        actual.insert(name, (kind, elapsed < *bound));
        records.insert(*name, (record, tool_calls));
    }
    let cases: Vec<(&str, &str, Outcome)> = vec![
        (
            "keep-alives only",
            "keep-alives only",
            ("idle_timeout", true),
        ),
        (
            "one 50 MiB event",
            "one 50 MiB event",
            ("oversized_event", true),
        ),
        (
            "an HTML page with status 200",
            "an HTML page with status 200",
            ("not_event_stream", true),
        ),
        ("malformed SSE", "malformed SSE", ("malformed_event", true)),
        (
            "tool-call index at the cap",
            "tool-call index at the cap",
            ("bad_reply", true),
        ),
        (
            "tool-call index 10^12",
            "tool-call index 10^12",
            ("bad_reply", true),
        ),
        (
            "tool-call index just below the cap",
            "tool-call index just below the cap",
            ("ok", true),
        ),
        (
            "usage without prompt_tokens",
            "usage without prompt_tokens",
            ("ok", true),
        ),
        (
            "tokens past the benchmark's bound",
            "tokens past the benchmark's bound",
            ("benchmark_timeout", true),
        ),
        ("closed port", "closed port", ("connect", true)),
    ];
    check(&cases, |name| actual[name]);

    let message = |name: &str| {
        records[name]
            .0
            .failure
            .as_ref()
            .map_or_else(String::new, |f| f.message.clone())
    };
    assert!(
        message("keep-alives only").contains("keep-alives do not count"),
        "{}",
        message("keep-alives only")
    );
    assert!(
        message("an HTML page with status 200").contains("an HTML page"),
        "{}",
        message("an HTML page with status 200")
    );
    assert!(
        message("tool-call index 10^12").contains("exceeds the cap of 128"),
        "{}",
        message("tool-call index 10^12")
    );
    assert_eq!(
        records["tool-call index just below the cap"].1,
        MAX_TOOL_CALLS
    );
    // The bound cut a reply that was streaming: what arrived is kept.
    let cut = &records["tokens past the benchmark's bound"].0;
    assert!(cut.token_chunks >= 2 && cut.ttft_ms.is_some(), "{cut:?}");
}

#[tokio::test]
async fn a_usage_without_prompt_tokens_keeps_the_latencies_and_leaves_the_count_unknown() {
    let url = serve(fakes::gateway_without_prompt_tokens()).await;
    let (record, _, _) = send(&url, config(), None).await;
    assert!(record.succeeded(), "{record:?}");
    let usage = record.usage.expect("usage");
    assert_eq!(usage.prompt_tokens, None, "unknown, never zero");
    assert_eq!(usage.completion_tokens, Some(3));
    assert!(record.ttft_ms.is_some() && record.e2el_ms.is_some());
    assert_eq!(record.itl_ms.len(), 2);
    assert!(record.tpot_ms.is_some());
    assert!(record.lacks_token_counts());
    let line = serde_json::to_value(&record).expect("json");
    assert!(line["usage"].get("prompt_tokens").is_none(), "{line}");
}

/// A stream and the size of the pieces it is fed in.
type Split = (String, usize);
/// Events dispatched, and whether the decoder stopped as oversized.
type Decoded = (usize, bool);

#[test]
fn the_sse_decoder_drops_an_oversized_line_and_stops() {
    let cap = 1024;
    let good = "data: {\"a\":1}\n\n";
    let mut cases = Vec::new();
    for split in [1usize, 7, 100, 5000] {
        cases.push((
            format!("a data line over the cap, split every {split}"),
            (
                format!("{good}data: {}\n\n{good}", "x".repeat(cap + 1)),
                split,
            ),
            (1usize, true),
        ));
        cases.push((
            format!("a comment over the cap, split every {split}"),
            (format!("{good}:{}\n\n{good}", "x".repeat(cap + 1)), split),
            (1usize, true),
        ));
        cases.push((
            format!("two data lines together over the cap, split every {split}"),
            (
                format!(
                    "data: {}\ndata: {}\n\n{good}",
                    "x".repeat(cap / 2),
                    "x".repeat(cap / 2)
                ),
                split,
            ),
            (0usize, true),
        ));
        cases.push((
            format!("a line just under the cap, split every {split}"),
            (format!("data: {}\n\n{good}", "x".repeat(cap - 16)), split),
            (2usize, false),
        ));
    }
    let named: Vec<(&str, Split, Decoded)> = cases
        .iter()
        .map(|(name, input, output)| (name.as_str(), input.clone(), *output))
        .collect();
    check(&named, |(text, split)| {
        let mut decoder = SseDecoder::with_max_event_bytes(cap);
        let mut events = 0;
        for piece in text.as_bytes().chunks(*split) {
            decoder.feed(piece, |_| events += 1);
        }
        (events, decoder.oversized())
    });
}

#[test]
fn a_recorded_stream_with_an_oversized_event_fails_as_oversized_event() {
    let body = format!(
        "data: {{\"id\":\"c\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{}\"}}}}]}}\n\ndata: [DONE]\n\n",
        "y".repeat(100_000)
    );
    let mut decoder = SseDecoder::with_max_event_bytes(64 << 10);
    let exchange =
        grid_bench::client::parse_recorded_stream_with(body.as_bytes(), Some(4096), &mut decoder);
    let failure = exchange.record.failure.expect("a failure");
    assert_eq!(failure.kind, FailureKind::OversizedEvent, "{failure:?}");
    assert!(failure.message.contains("65536 bytes"), "{failure:?}");
}
