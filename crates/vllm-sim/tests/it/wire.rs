//! The simulator's wire bytes, pinned: a fixed sequence of requests against
//! a few servers gives exactly the replies recorded (as length and FNV-1a
//! hash, one line per request) in `tests/data/wire_transcript.txt`; ids,
//! `created` and the start instant are normalised, metric values dropped
//! (they are timings). The shapes themselves are checked against the real
//! vLLM recording in `contract.rs`; this test makes sure that a refactor of
//! the server changes no byte of what it sends. After an intended change of
//! the wire format, regenerate the file with
//! `VLLM_SIM_BLESS=1 cargo test -p vllm-sim --test it wire` and say why in
//! the commit. `VLLM_SIM_WIRE_DUMP=FILE` also writes the full replies, to
//! diff two versions.

use serde_json::{Value, json};

use crate::common::{client, start};

const TRANSCRIPT: &str = include_str!("../data/wire_transcript.txt");

/// Time scale 0: the engine's steps take no time, so the run is fast and
/// the content (seeded by the prompt) is all that remains.
const INSTANT: [&str; 2] = ["--sim-time-scale", "0"];

enum Req {
    Get(&'static str),
    Post(&'static str, Value),
    Raw(&'static str, &'static str),
    Options(&'static str),
}

fn chat(extra: Value) -> Value {
    let mut body = json!({"model": "tiny", "messages": [{"role": "user", "content": "Tell me about the sea."}], "max_tokens": 12});
    merge(&mut body, extra);
    body
}

fn completion(extra: Value) -> Value {
    let mut body = json!({"model": "tiny", "prompt": "Once upon a time", "max_tokens": 10});
    merge(&mut body, extra);
    body
}

fn merge(body: &mut Value, extra: Value) {
    if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
        for (k, v) in e {
            if v.is_null() {
                b.remove(&k);
            } else {
                b.insert(k, v);
            }
        }
    }
}

fn stream() -> Value {
    json!({"stream": true, "stream_options": {"include_usage": true}})
}

fn with(a: Value, b: Value) -> Value {
    let mut a = a;
    merge(&mut a, b);
    a
}

fn weather() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 5}},
            "required": ["city", "days"]}}},
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}}}])
}

/// Requests every server gets: the generation paths in all their shapes.
fn generation_requests() -> Vec<Req> {
    vec![
        Req::Post("/v1/chat/completions", chat(json!({}))),
        Req::Post("/v1/chat/completions", chat(stream())),
        Req::Post("/v1/chat/completions", chat(json!({"stream": true}))),
        Req::Post("/v1/chat/completions", chat(json!({"max_tokens": 300}))),
        Req::Post(
            "/v1/chat/completions",
            chat(with(
                stream(),
                json!({"max_tokens": 40, "ignore_eos": true}),
            )),
        ),
        Req::Post(
            "/v1/chat/completions",
            chat(json!({"seed": 7, "chat_template_kwargs": {"enable_thinking": false}})),
        ),
        Req::Post(
            "/v1/chat/completions",
            chat(with(
                stream(),
                json!({"chat_template_kwargs": {"enable_thinking": false}}),
            )),
        ),
        Req::Post(
            "/v1/chat/completions",
            chat(json!({"messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "part one"}, {"type": "text", "text": "part two"}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\", \"days\": 2}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "rain"}
            ], "tools": weather(), "tool_choice": "required"})),
        ),
        Req::Post(
            "/v1/chat/completions",
            chat(json!({"tools": weather(), "tool_choice": "required", "max_tokens": 80})),
        ),
        Req::Post(
            "/v1/chat/completions",
            chat(with(
                stream(),
                json!({"tools": weather(), "tool_choice": "required", "max_tokens": 80}),
            )),
        ),
        Req::Post(
            "/v1/chat/completions",
            chat(with(
                stream(),
                json!({"tools": weather(), "tool_choice": {"type": "function", "function": {"name": "get_time"}}, "max_tokens": 80}),
            )),
        ),
        Req::Post(
            "/v1/chat/completions",
            chat(
                json!({"tools": weather(), "tool_choice": {"type": "function", "function": {"name": "get_time"}}, "max_tokens": 80}),
            ),
        ),
        Req::Post(
            "/v1/chat/completions",
            chat(json!({"tools": weather(), "max_tokens": 80})),
        ),
        Req::Post(
            "/v1/chat/completions",
            chat(with(
                stream(),
                json!({"tools": weather(), "max_tokens": 80}),
            )),
        ),
        Req::Post(
            "/v1/chat/completions",
            chat(json!({"tools": weather(), "tool_choice": "none"})),
        ),
        Req::Post("/v1/completions", completion(json!({}))),
        Req::Post("/v1/completions", completion(stream())),
        Req::Post(
            "/v1/completions",
            completion(json!({"prompt": [1, 2, 3, 4, 5, 6, 7, 8], "max_tokens": 5})),
        ),
        Req::Post(
            "/v1/completions",
            completion(json!({"prompt": [[9, 10, 11]], "max_tokens": 5, "stream": true})),
        ),
        Req::Post(
            "/v1/completions",
            completion(json!({"prompt": ["a list prompt"], "max_completion_tokens": 3})),
        ),
        // The same prompt again: cached tokens now.
        Req::Post("/v1/completions", completion(stream())),
        Req::Post(
            "/v1/completions",
            completion(json!({"prompt": "alpha beta gamma delta ".repeat(40), "max_tokens": 2})),
        ),
        Req::Post(
            "/v1/completions",
            completion(json!({"prompt": "alpha beta gamma delta ".repeat(40), "max_tokens": 2})),
        ),
        Req::Post(
            "/v1/chat/completions",
            chat(with(
                stream(),
                json!({"messages": [{"role": "user", "content": "alpha beta gamma delta ".repeat(40)}]}),
            )),
        ),
        Req::Post(
            "/v1/chat/completions",
            chat(with(
                stream(),
                json!({"messages": [{"role": "user", "content": "alpha beta gamma delta ".repeat(40)}]}),
            )),
        ),
    ]
}

/// Error replies and the other routes.
fn other_requests() -> Vec<Req> {
    vec![
        Req::Get("/health"),
        Req::Get("/ping"),
        Req::Get("/version"),
        Req::Get("/v1/models"),
        Req::Get("/sim/info"),
        Req::Get("/nope"),
        Req::Get("/v1/nope"),
        Req::Options("/v1/models"),
        Req::Post("/tokenize", json!({"prompt": "Hello world, again"})),
        Req::Post(
            "/tokenize",
            json!({"messages": [{"role": "user", "content": "hi"}]}),
        ),
        Req::Post("/tokenize", json!({})),
        Req::Raw("/tokenize", "{bad"),
        Req::Post("/reset_prefix_cache", json!({})),
        Req::Raw("/v1/chat/completions", "{not json"),
        Req::Raw("/v1/chat/completions", "{\"a\": 1}\n  x"),
        Req::Raw("/v1/chat/completions", "{\"a\": }"),
        Req::Raw("/v1/completions", ""),
        Req::Post("/v1/chat/completions", json!([1, 2])),
        Req::Post("/v1/chat/completions", json!({"model": "tiny"})),
        Req::Post("/v1/completions", json!({"model": "tiny"})),
        Req::Post(
            "/v1/completions",
            json!({"model": "tiny", "prompt": [{"x": 1}]}),
        ),
        Req::Post("/v1/chat/completions", chat(json!({"model": "nope"}))),
        Req::Post(
            "/v1/chat/completions",
            chat(json!({"stream_options": {"include_usage": true}})),
        ),
        Req::Post(
            "/v1/chat/completions",
            chat(json!({"stream": false, "stream_options": null})),
        ),
        Req::Post("/v1/chat/completions", chat(json!({"max_tokens": -1}))),
        Req::Post("/v1/chat/completions", chat(json!({"max_tokens": "ten"}))),
        Req::Post(
            "/v1/chat/completions",
            chat(json!({"max_tokens": null, "max_completion_tokens": 3})),
        ),
        Req::Post("/v1/chat/completions", chat(json!({"messages": "hi"}))),
        Req::Post("/v1/completions", completion(json!({"prompt": []}))),
        Req::Post(
            "/v1/completions",
            completion(json!({"prompt": vec![7; 64], "max_tokens": null})),
        ),
        Req::Post(
            "/v1/completions",
            completion(json!({"prompt": vec![7; 60], "max_tokens": null})),
        ),
        Req::Post("/v1/chat/completions", chat(json!({"max_tokens": 100_000}))),
        Req::Post(
            "/v1/completions",
            completion(json!({"prompt": "word ".repeat(5000)})),
        ),
        Req::Post(
            "/v1/chat/completions",
            chat(
                json!({"tools": weather(), "tool_choice": {"type": "function", "function": {"name": "missing"}}}),
            ),
        ),
        Req::Post(
            "/v1/chat/completions",
            chat(json!({"tools": weather(), "tool_choice": {"type": "function"}})),
        ),
        Req::Post(
            "/v1/chat/completions",
            chat(json!({"tools": weather(), "tool_choice": "auto"})),
        ),
    ]
}

/// Replaces the parts that differ between runs: request ids, `created`,
/// the start instant.
fn normalise(text: &str) -> String {
    let mut out = text.to_owned();
    for key in ["\"created\":", "\"server_start_unix_ms\":"] {
        out = replace_digits_after(&out, key);
    }
    for prefix in ["\"id\":\"chatcmpl-", "\"id\":\"cmpl-"] {
        let mut result = String::new();
        let mut rest = out.as_str();
        while let Some(i) = rest.find(prefix) {
            let (head, tail) = rest.split_at(i + prefix.len());
            result.push_str(head);
            let hex = tail.len() >= 17
                && tail[..16].bytes().all(|b| b.is_ascii_hexdigit())
                && tail.as_bytes()[16] == b'"';
            if hex {
                result.push_str("ID");
                rest = &tail[16..];
            } else {
                rest = tail;
            }
        }
        result.push_str(rest);
        out = result;
    }
    out
}

fn replace_digits_after(text: &str, key: &str) -> String {
    let mut result = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(key) {
        let (head, tail) = rest.split_at(i + key.len());
        result.push_str(head);
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        result.push_str(if digits > 0 { "0" } else { "" });
        rest = &tail[digits..];
    }
    result.push_str(rest);
    result
}

/// Metric names and labels only: the values are timings.
fn metric_lines(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with('#') {
                l.to_owned()
            } else {
                l.rsplit_once(' ').map_or(l, |(name, _)| name).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn run(
    out: &mut Vec<(String, String)>,
    label: &str,
    args: &[&str],
    key: Option<&str>,
    requests: &[Req],
) {
    // Metric names and labels once, for the server with the most options.
    let with_metrics = label == "parsers";
    let mut all = vec!["tiny"];
    all.extend_from_slice(args);
    all.extend_from_slice(&INSTANT);
    let server = start(&all).await;
    let http = client();
    for req in requests {
        let url = |p: &str| format!("{}{p}", server.base_url());
        let (title, builder) = match req {
            Req::Get(p) => (format!("GET {p}"), http.get(url(p))),
            Req::Options(p) => (
                format!("OPTIONS {p}"),
                http.request(reqwest::Method::OPTIONS, url(p)),
            ),
            Req::Post(p, b) => (format!("POST {p} {b}"), http.post(url(p)).json(b)),
            Req::Raw(p, b) => (
                format!("POST {p} raw {b:?}"),
                http.post(url(p))
                    .header("content-type", "application/json")
                    .body(*b),
            ),
        };
        let builder = match key {
            Some(k) => builder.bearer_auth(k),
            None => builder,
        };
        // Long prompts are named by their length, not spelled out.
        let title: String = if title.len() > 300 {
            format!("{}... ({} bytes)", &title[..300], title.len())
        } else {
            title
        };
        let Ok(resp) = builder.send().await else {
            // A simulated drop: whether the headers went out first depends
            // on how the tokens were batched, so both ends read the same.
            out.push((format!("{label} | {title}"), "<dropped>".into()));
            continue;
        };
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned();
        match resp.text().await {
            Ok(body) => {
                let body = normalise(&body);
                out.push((
                    format!("{label} | {title}"),
                    format!("{status} {content_type}\n{body}"),
                ));
            }
            Err(_) => {
                out.push((format!("{label} | {title}"), "<dropped>".into()));
            }
        }
    }
    if !with_metrics {
        server.stop().await;
        return;
    }
    let metrics = http
        .get(format!("{}/metrics", server.base_url()))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body");
    out.push((format!("{label} | GET /metrics"), metric_lines(&metrics)));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wire_bytes_are_pinned() {
    let mut out = Vec::new();
    let generation = generation_requests();
    let other = other_requests();
    run(&mut out, "plain", &[], None, &generation).await;
    run(
        &mut out,
        "details",
        &[
            "--enable-prompt-tokens-details",
            "--served-model-name",
            "tiny",
            "alias",
        ],
        None,
        &generation,
    )
    .await;
    run(
        &mut out,
        "parsers",
        &[
            "--enable-prompt-tokens-details",
            "--reasoning-parser",
            "qwen3",
            "--enable-auto-tool-choice",
            "--tool-call-parser",
            "hermes",
        ],
        None,
        &generation,
    )
    .await;
    run(
        &mut out,
        "both-fields",
        &[
            "--reasoning-parser",
            "qwen3",
            "--sim-reasoning-field",
            "both",
            "--enable-force-include-usage",
        ],
        None,
        &generation,
    )
    .await;
    run(
        &mut out,
        "old-field-unclosed",
        &[
            "--reasoning-parser",
            "qwen3",
            "--sim-reasoning-field",
            "reasoning_content",
            "--sim-thinking",
            "unclosed",
        ],
        None,
        &generation,
    )
    .await;
    run(
        &mut out,
        "xml-tools",
        &[
            "--enable-auto-tool-choice",
            "--tool-call-parser",
            "qwen3_xml",
            "--sim-tool-format",
            "qwen3_xml",
            "--sim-thinking",
            "on",
            "--sim-output-len-mode",
            "max",
        ],
        None,
        &generation,
    )
    .await;
    run(
        &mut out,
        "no-caching",
        &[
            "--no-enable-prefix-caching",
            "--enable-prompt-tokens-details",
        ],
        None,
        &generation,
    )
    .await;
    run(
        &mut out,
        "errors",
        &["--max-model-len", "64", "--sim-seed", "3"],
        None,
        &other,
    )
    .await;
    run(
        &mut out,
        "keyed",
        &["--api-key", "sk-wire", "--max-model-len", "2048"],
        Some("sk-wire"),
        &other,
    )
    .await;
    run(
        &mut out,
        "no-key-given",
        &["--api-key", "sk-wire"],
        None,
        &[
            Req::Get("/v1/models"),
            Req::Post("/v1/chat/completions", chat(json!({}))),
            Req::Get("/health"),
            Req::Options("/v1/models"),
        ],
    )
    .await;
    run(
        &mut out,
        "malformed",
        &["--sim-malformed-sse-rate", "1"],
        None,
        &[
            Req::Post("/v1/chat/completions", chat(stream())),
            Req::Post("/v1/completions", completion(stream())),
            Req::Post("/v1/chat/completions", chat(json!({}))),
        ],
    )
    .await;
    run(
        &mut out,
        "faults",
        &[
            "--sim-http-500-rate",
            "0.5",
            "--sim-drop-mid-stream-rate",
            "0.5",
        ],
        None,
        &[
            Req::Post("/v1/chat/completions", chat(stream())),
            Req::Post("/v1/chat/completions", chat(json!({}))),
            Req::Post("/v1/completions", completion(stream())),
            Req::Post("/v1/completions", completion(json!({}))),
            Req::Post("/v1/chat/completions", chat(stream())),
            Req::Post("/v1/chat/completions", chat(json!({}))),
        ],
    )
    .await;
    if let Ok(path) = std::env::var("VLLM_SIM_WIRE_DUMP") {
        let full: String = out
            .iter()
            .map(|(title, reply)| format!("## {title}\n{reply}\n"))
            .collect();
        std::fs::write(&path, full).expect("write the dump");
    }
    let lines: Vec<String> = out
        .iter()
        .map(|(title, reply)| {
            format!(
                "{title} => {} bytes, fnv {:016x}",
                reply.len(),
                grid_core::fnv1a64(reply.as_bytes())
            )
        })
        .collect();
    if std::env::var("VLLM_SIM_BLESS").as_deref() == Ok("1") {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/wire_transcript.txt"
        );
        std::fs::write(path, lines.join("\n") + "\n").expect("write the transcript");
        return;
    }
    let pinned: Vec<&str> = TRANSCRIPT.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let want = pinned.get(i).copied().unwrap_or("<nothing>");
        assert!(
            line == want,
            "wire bytes changed at request {}:\n  expected {want}\n  got      {line}\nthe reply now:\n{}",
            i + 1,
            out[i].1
        );
    }
    assert_eq!(lines.len(), pinned.len(), "the number of requests changed");
}
