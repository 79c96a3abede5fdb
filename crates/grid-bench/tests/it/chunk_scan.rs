//! The chunk scanner (the client's fast path) against serde: for every
//! recorded vLLM chunk and a set of tricky synthesized ones, the scanner
//! must read exactly what serde reads, or decline.

use grid_bench::chunk_scan::{Agreement, compare_with_serde};

use crate::{check, data};

const SAME: Result<Agreement, String> = Ok(Agreement::Same);
const DECLINED: Result<Agreement, String> = Ok(Agreement::Declined);

/// Every data line of a recorded stream but `[DONE]`.
fn recorded_chunks(file: &str) -> Vec<String> {
    data(file)
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter(|chunk| *chunk != "[DONE]")
        .map(str::to_string)
        .collect()
}

#[test]
fn the_scanner_reads_every_recorded_vllm_chunk_as_serde_does() {
    for file in ["sse_chat_stream.txt", "sse_tool_stream.txt"] {
        let chunks = recorded_chunks(file);
        assert!(
            chunks.len() > 5,
            "{file} holds only {} chunks",
            chunks.len()
        );
        let cases: Vec<(String, String, Result<Agreement, String>)> = chunks
            .into_iter()
            .enumerate()
            .map(|(number, chunk)| (format!("{file} chunk {number}"), chunk, SAME))
            .collect();
        let cases: Vec<(&str, String, Result<Agreement, String>)> = cases
            .iter()
            .map(|(name, chunk, expected)| (name.as_str(), chunk.clone(), expected.clone()))
            .collect();
        check(&cases, |chunk| compare_with_serde(chunk.as_bytes()));
    }
}

/// A chunk in vLLM's layout around the given delta and choice tail.
fn content_chunk(delta: &str) -> String {
    format!(
        r#"{{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"tiny","choices":[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":null,"token_ids":null}}]}}"#
    )
}

#[test]
fn the_scanner_agrees_with_serde_or_declines_on_tricky_chunks() {
    let deep = format!(
        r#"{{"choices":[],"extra":{}1{}}}"#,
        "[".repeat(40),
        "]".repeat(40)
    );
    let cases: Vec<(&str, String, Result<Agreement, String>)> = vec![
        ("simple escapes", content_chunk(r#"{"content":"a\nb\"c\\d\/e\tf\bg\fh\ri"}"#), SAME),
        ("bmp unicode escapes", content_chunk(r#"{"content":"\u00e9\u4E2D\u0000"}"#), SAME),
        ("surrogate pair", content_chunk(r#"{"content":"x\ud83d\ude00y"}"#), SAME),
        ("lone high surrogate", content_chunk(r#"{"content":"\ud83d"}"#), DECLINED),
        ("high surrogate then letter", content_chunk(r#"{"content":"\ud83dx"}"#), DECLINED),
        ("high surrogate then bmp escape", content_chunk(r#"{"content":"\ud83d\u0041"}"#), DECLINED),
        ("lone low surrogate", content_chunk(r#"{"content":"\ude00x"}"#), DECLINED),
        ("short unicode escape", content_chunk(r#"{"content":"\u12"}"#), DECLINED),
        ("unknown escape", content_chunk(r#"{"content":"\x41"}"#), DECLINED),
        ("raw utf-8", content_chunk(r#"{"content":"ировки 😀 ι"}"#), SAME),
        ("raw utf-8 around escapes", content_chunk(r#"{"content":"é\n😀\"ж"}"#), SAME),
        ("long plain content", content_chunk(&format!(r#"{{"content":"{}"}}"#, "abcdefgh".repeat(20))), SAME),
        ("raw control character", content_chunk("{\"content\":\"a\tb\"}"), DECLINED),
        ("raw newline", content_chunk("{\"content\":\"a\nb\"}"), DECLINED),
        ("empty content", content_chunk(r#"{"content":""}"#), SAME),
        ("role chunk", content_chunk(r#"{"role":"assistant","content":""}"#), SAME),
        ("null content", content_chunk(r#"{"content":null}"#), SAME),
        ("empty delta", content_chunk("{}"), SAME),
        ("null delta", content_chunk("null"), SAME),
        ("content not a string", content_chunk(r#"{"content":5}"#), DECLINED),
        ("reasoning", content_chunk(r#"{"reasoning":"think","content":null}"#), SAME),
        ("reasoning_content", content_chunk(r#"{"reasoning_content":"think\u2019"}"#), SAME),
        ("both reasoning names", content_chunk(r#"{"reasoning":"a","reasoning_content":"a"}"#), SAME),
        (
            "tool call start",
            content_chunk(r#"{"content":null,"tool_calls":[{"id":"chatcmpl-tool-1","type":"function","index":0,"function":{"name":"get_weather"}}]}"#),
            SAME,
        ),
        (
            "tool call arguments with escapes",
            content_chunk(r#"{"tool_calls":[{"index":0,"function":{"arguments":"\r\n\r\n\"c"}}]}"#),
            SAME,
        ),
        (
            "two tool calls",
            content_chunk(r#"{"tool_calls":[{"index":0,"function":{"arguments":"{"}},{"index":1,"id":"b","function":{"name":"f","arguments":null}}]}"#),
            SAME,
        ),
        ("empty tool calls", content_chunk(r#"{"tool_calls":[]}"#), SAME),
        ("null tool calls", content_chunk(r#"{"tool_calls":null}"#), SAME),
        ("tool call null index and function", content_chunk(r#"{"tool_calls":[{"index":null,"function":null}]}"#), SAME),
        ("tool calls trailing comma", content_chunk(r#"{"tool_calls":[{"index":0},]}"#), DECLINED),
        (
            "finish reason",
            r#"{"id":"c","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls","stop_reason":151643,"token_ids":null}]}"#.into(),
            SAME,
        ),
        (
            "usage-only chunk",
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"tiny","choices":[],"usage":{"prompt_tokens":256,"total_tokens":320,"completion_tokens":64,"prompt_tokens_details":{"cached_tokens":128,"created_cache_tokens":0}},"system_fingerprint":"vllm"}"#.into(),
            SAME,
        ),
        (
            "usage with null details and reasoning tokens",
            r#"{"choices":null,"usage":{"prompt_tokens":1,"completion_tokens":null,"prompt_tokens_details":null,"completion_tokens_details":{"reasoning_tokens":7,"other":[1.5e3,-2]}}}"#.into(),
            SAME,
        ),
        ("usage null", r#"{"choices":[],"usage":null}"#.into(), SAME),
        ("usage float count", r#"{"choices":[],"usage":{"prompt_tokens":1.0}}"#.into(), DECLINED),
        ("usage exponent count", r#"{"choices":[],"usage":{"prompt_tokens":1e2}}"#.into(), DECLINED),
        ("usage negative count", r#"{"choices":[],"usage":{"prompt_tokens":-1}}"#.into(), DECLINED),
        ("usage leading zero", r#"{"choices":[],"usage":{"prompt_tokens":01}}"#.into(), DECLINED),
        ("usage count over u64", r#"{"choices":[],"usage":{"prompt_tokens":18446744073709551616}}"#.into(), DECLINED),
        ("usage largest u64", r#"{"choices":[],"usage":{"prompt_tokens":18446744073709551615}}"#.into(), SAME),
        ("usage string count", r#"{"choices":[],"usage":{"prompt_tokens":"1"}}"#.into(), DECLINED),
        (
            "whitespace everywhere",
            "{ \"id\" :\t\"x\" ,\r\n \"choices\" : [ { \"delta\" : { \"content\" : \"a\" } , \"index\" : 0 } ] , \"usage\" : { \"prompt_tokens\" : 3 } }".into(),
            SAME,
        ),
        (
            "field order changed",
            r#"{"usage":{"completion_tokens":2,"prompt_tokens":3},"choices":[{"finish_reason":"stop","delta":{"content":"z"},"index":0}],"model":"tiny","id":"x"}"#.into(),
            SAME,
        ),
        ("choice index 1 only", r#"{"choices":[{"index":1,"delta":{"content":"a"}}]}"#.into(), SAME),
        ("choice without index", r#"{"choices":[{"delta":{"content":"a"}}]}"#.into(), SAME),
        ("choice null index", r#"{"choices":[{"index":null,"delta":{"content":"a"}}]}"#.into(), DECLINED),
        ("choice index over u32", r#"{"choices":[{"index":4294967296}]}"#.into(), DECLINED),
        ("two choices", r#"{"choices":[{"index":0,"delta":{"content":"a"}},{"index":1,"delta":{"content":"b"}}]}"#.into(), DECLINED),
        ("error object", r#"{"error":{"message":"boom","code":500}}"#.into(), DECLINED),
        ("error null", r#"{"error":null,"choices":[]}"#.into(), SAME),
        ("error-shaped event", r#"{"object":"error","message":"bad \"request\"","type":"BadRequestError","code":400}"#.into(), SAME),
        ("duplicate content", content_chunk(r#"{"content":"a","content":"b"}"#), DECLINED),
        ("duplicate id", r#"{"id":"a","id":"b"}"#.into(), DECLINED),
        ("duplicate unknown field", r#"{"x":1,"x":2,"choices":[]}"#.into(), SAME),
        ("escaped field name", content_chunk(r#"{"con\u0074ent":"a"}"#), DECLINED),
        ("non-ascii unknown field name", r#"{"ключ":1,"choices":[]}"#.into(), SAME),
        (
            "unknown nested values",
            content_chunk(r#"{"content":"a","logprobs":{"content":[{"token":"a","logprob":-0.25,"bytes":[97],"top_logprobs":[]}]},"flag":true,"off":false}"#),
            SAME,
        ),
        ("unknown bad number", r#"{"x":1.,"choices":[]}"#.into(), DECLINED),
        ("unknown bad literal", r#"{"x":nul,"choices":[]}"#.into(), DECLINED),
        ("unknown value too deep", deep, DECLINED),
        ("trailing comma in object", r#"{"id":"a",}"#.into(), DECLINED),
        ("missing colon", r#"{"id" "a"}"#.into(), DECLINED),
        ("trailing garbage", r#"{"id":"a"} x"#.into(), DECLINED),
        ("trailing whitespace", "{\"id\":\"a\"} \n".into(), SAME),
        ("unterminated string", r#"{"id":"a"#.into(), DECLINED),
        ("top-level array", r#"["a",[],null,null,null,null]"#.into(), DECLINED),
        ("empty object", "{}".into(), SAME),
        ("not json", "hello".into(), DECLINED),
    ];
    check(&cases, |chunk| compare_with_serde(chunk.as_bytes()));
}

#[test]
fn the_scanner_declines_invalid_utf8_as_serde_rejects_it() {
    for bytes in [
        &b"{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\xffb\"}}]}"[..],
        &b"{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\xc3\\n\"}}]}"[..],
        &b"{\"\xff\":1}"[..],
    ] {
        assert_eq!(
            compare_with_serde(bytes),
            DECLINED,
            "{}",
            String::from_utf8_lossy(bytes)
        );
        assert!(serde_json::from_slice::<serde_json::Value>(bytes).is_err());
    }
}
