//! Deterministic harness for counting the client's parsing instructions:
//! parses one 64-token streamed reply, in vLLM 0.32.0's exact chunk format
//! (as recorded in tests/data/sse_chat_stream.txt), N times in memory.
//!
//! Run under callgrind, twice, to subtract start-up:
//! `cargo build --release -p grid-bench --example parse_replay`
//! `valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.N target/release/examples/parse_replay N`
//! for N = 0 and N = 1000: (Ir(1000) - Ir(0)) / 1000 is the instructions
//! per 64-token reply.

/// Token texts cycled through the reply; one holds JSON escapes and some
/// are non-ASCII, as in the recorded stream.
const TOKENS: [&str; 8] = [
    "stops",
    "boards",
    "ι",
    " Plato",
    " collapsing",
    "\\\"%(",
    "ировки",
    " the",
];

fn reply(output_tokens: usize) -> Vec<u8> {
    let head = r#"data: {"id":"chatcmpl-a099e78ef18fadd3","object":"chat.completion.chunk","created":1795342001,"model":"tiny","choices":[{"index":0,"#;
    let mut body = String::new();
    body.push_str(head);
    body.push_str(r#""delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"prompt_token_ids":null,"prompt_text":null}"#);
    body.push_str("\n\n");
    for token in 0..output_tokens {
        let text = TOKENS[token % TOKENS.len()];
        body.push_str(head);
        if token + 1 == output_tokens {
            body.push_str(&format!(
                r#""delta":{{"content":"{text}"}},"logprobs":null,"finish_reason":"length","stop_reason":null,"token_ids":null}}]}}"#
            ));
        } else {
            body.push_str(&format!(
                r#""delta":{{"content":"{text}"}},"logprobs":null,"finish_reason":null,"token_ids":null}}]}}"#
            ));
        }
        body.push_str("\n\n");
    }
    body.push_str(r#"data: {"id":"chatcmpl-a099e78ef18fadd3","object":"chat.completion.chunk","created":1795342001,"model":"tiny","choices":[],"usage":{"prompt_tokens":256,"total_tokens":320,"completion_tokens":64,"prompt_tokens_details":{"cached_tokens":0,"created_cache_tokens":0}},"system_fingerprint":"vllm-0.32.0-c5c3acb3"}"#);
    body.push_str("\n\ndata: [DONE]\n\n");
    body.into_bytes()
}

fn main() {
    let rounds: u32 = match std::env::args().nth(1).map(|text| text.parse()) {
        None => 1000,
        Some(Ok(rounds)) => rounds,
        Some(Err(error)) => {
            eprintln!("parse_replay: the round count must be a whole number ({error})");
            std::process::exit(2);
        }
    };
    let body = reply(64);
    let check = grid_bench::client::parse_recorded_stream(&body, None);
    if !check.record.succeeded() || check.record.token_chunks != 64 {
        eprintln!(
            "parse_replay: the synthesized reply does not parse as 64 tokens: {:?}",
            check.record.failure
        );
        std::process::exit(1);
    }
    for _ in 0..rounds {
        std::hint::black_box(grid_bench::client::parse_recorded_stream(
            std::hint::black_box(&body),
            None,
        ));
    }
    println!("parsed {rounds} replies of 64 tokens");
}
