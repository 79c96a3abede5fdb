//! The SSE decoder and chunk parsing, on real recorded vLLM streams and on
//! the transport variants a stream can take.

use grid_bench::client::parse_recorded_stream;
use grid_bench::sse::SseDecoder;
use serde_json::Value;

use crate::{check, data};

/// The answer text and chunk count read independently of the client, with
/// plain string splitting on the recorded LF file.
fn naive_answer(body: &str) -> (String, usize) {
    let mut answer = String::new();
    let mut chunks = 0;
    for event in body.split("\n\n") {
        let Some(data) = event.trim().strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            continue;
        }
        let value: Value = serde_json::from_str(data).expect("fixture event is JSON");
        if let Some(text) = value
            .pointer("/choices/0/delta/content")
            .and_then(Value::as_str)
        {
            if !text.is_empty() {
                answer.push_str(text);
                chunks += 1;
            }
        }
    }
    (answer, chunks)
}

fn variants(body: &str) -> Vec<(&'static str, String)> {
    let with_keepalives = body.replace("\n\ndata: ", "\n\n: keep-alive\n\n:ping\ndata: ");
    vec![
        ("as recorded (LF)", body.to_string()),
        ("CRLF line endings", body.replace('\n', "\r\n")),
        ("lone CR line endings", body.replace('\n', "\r")),
        ("keep-alive comments between events", with_keepalives),
        ("no space after data:", body.replace("data: ", "data:")),
        (
            "leading comment and blank lines",
            format!(": hello\n\n\n{body}"),
        ),
    ]
}

#[test]
fn recorded_chat_stream_parses_identically_under_every_transport_variant_and_split() {
    let body = data("sse_chat_stream.txt");
    let (expected_answer, expected_chunks) = naive_answer(&body);
    assert_eq!(expected_chunks, 8, "the fixture has 8 token chunks");
    let mut cases = Vec::new();
    for (name, text) in variants(&body) {
        for split in [0usize, 1, 2, 3, 7, 64, 511] {
            cases.push((
                format!("{name}, split every {split} bytes"),
                (text.clone(), split),
                (
                    expected_answer.clone(),
                    8u32,
                    Some(8u64),
                    Some(14u64),
                    Some(0u64),
                    None::<String>,
                ),
            ));
        }
    }
    let named: Vec<(&str, (String, usize), _)> = cases
        .iter()
        .map(|(n, i, o)| (n.as_str(), i.clone(), o.clone()))
        .collect();
    check(&named, |(text, split)| {
        let exchange = parse_recorded_stream(text.as_bytes(), (*split > 0).then_some(*split));
        let usage = exchange.record.usage;
        (
            exchange.reply.answer,
            exchange.record.token_chunks,
            usage.and_then(|u| u.completion_tokens),
            usage.and_then(|u| u.prompt_tokens),
            usage.and_then(|u| u.cached_tokens),
            exchange.record.failure.map(|f| f.message),
        )
    });
}

/// Function name, call id, cached tokens, arguments equal the expected JSON.
type ToolExpectation = (String, String, Option<u64>, bool);

#[test]
fn recorded_tool_stream_assembles_the_call_under_every_split() {
    let body = data("sse_tool_stream.txt");
    let mut cases = Vec::new();
    for split in [0usize, 1, 5, 13, 100] {
        cases.push((split, ()));
    }
    let named: Vec<(&str, usize, ToolExpectation)> = cases
        .iter()
        .map(|(split, _)| {
            (
                "tool stream",
                *split,
                (
                    "get_weather".to_string(),
                    "chatcmpl-tool-b7c65acf6c9edc75".to_string(),
                    Some(128u64),
                    true,
                ),
            )
        })
        .collect();
    check(&named, |split| {
        let exchange = parse_recorded_stream(body.as_bytes(), (*split > 0).then_some(*split));
        let call = exchange
            .reply
            .tool_calls
            .first()
            .cloned()
            .unwrap_or_default();
        let arguments: Result<Value, _> = serde_json::from_str(&call.arguments);
        (
            call.name,
            call.id,
            exchange.record.usage.and_then(|u| u.cached_tokens),
            arguments.is_ok_and(|value| value == serde_json::json!({"city": "London"})),
        )
    });
}

#[test]
fn decoder_joins_multiline_data_and_ignores_other_fields() {
    let mut decoder = SseDecoder::new();
    let mut events = Vec::new();
    decoder.feed(
        b"event: message\nid: 7\nretry: 10\ndata: a\ndata: b\n\ndata\n\n: only a comment\n\n",
        |e| {
            events.push((
                e.event.map(str::to_string),
                String::from_utf8(e.data.to_vec()).expect("utf8"),
            ))
        },
    );
    assert_eq!(
        events,
        vec![
            (Some("message".to_string()), "a\nb".to_string()),
            (None, String::new())
        ]
    );
    assert_eq!(decoder.comments_seen(), 1);
}

#[test]
fn a_split_inside_a_crlf_pair_does_not_create_an_empty_event() {
    let mut decoder = SseDecoder::new();
    let mut events = Vec::new();
    for piece in [&b"data: x\r"[..], b"\n", b"data: y\r", b"\n\r", b"\n"] {
        decoder.feed(piece, |e| {
            events.push(String::from_utf8(e.data.to_vec()).expect("utf8"))
        });
    }
    assert_eq!(events, vec!["x\ny".to_string()]);
}

#[test]
fn reasoning_deltas_are_counted_apart_from_answer_deltas_under_both_names() {
    let body = concat!(
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning\":\"think\"}}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\" more\"}}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning\":\" both\",\"reasoning_content\":\" both\"}}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"answer\"},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":4,\"completion_tokens_details\":{\"reasoning_tokens\":3}}}\n\n",
        "data: [DONE]\n\n"
    );
    let exchange = parse_recorded_stream(body.as_bytes(), None);
    assert_eq!(exchange.reply.reasoning, "think more both");
    assert_eq!(exchange.reply.answer, "answer");
    assert_eq!(
        (
            exchange.record.reasoning_chunks,
            exchange.record.answer_chunks
        ),
        (3, 1)
    );
    assert_eq!(
        exchange.record.usage.and_then(|u| u.reasoning_tokens),
        Some(3)
    );
    assert_eq!(exchange.record.finish_reason.as_deref(), Some("stop"));
    assert!(exchange.record.succeeded(), "{:?}", exchange.record.failure);
}
