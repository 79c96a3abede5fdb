//! What one request leaves behind: its [`RequestRecord`] (the measured
//! facts) and, for benchmarks that read the text, its [`Reply`].

use serde::{Deserialize, Serialize};

use crate::openai::{ToolCall, Usage};

/// Why a request failed. Every failure is recorded, never dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The connection could not be made or the request not sent.
    Connect,
    /// No `[DONE]` within the request timeout (a hung server).
    Timeout,
    /// No token-bearing event within the idle timeout: from the send to the
    /// first token, or between two tokens. Keep-alive comments and other
    /// events without a token do not count as activity.
    IdleTimeout,
    /// The benchmark's wall-clock bound ran out while the request was in
    /// flight.
    BenchmarkTimeout,
    /// The server answered with a 4xx or 5xx status.
    HttpStatus,
    /// A successful status, but the body is not an event stream (an HTML
    /// page, a JSON body: a proxy, a wrong URL, a server ignoring `stream`).
    NotEventStream,
    /// The server reported an error inside the stream.
    ServerError,
    /// An event whose data is not a JSON chunk.
    MalformedEvent,
    /// An SSE line or event larger than the client's cap; the client stops
    /// reading instead of buffering it.
    OversizedEvent,
    /// A chunk that parses but breaks a bound of a sane reply (a tool-call
    /// index beyond the cap, more token chunks than `max_tokens` allows, more
    /// text than the client keeps).
    BadReply,
    /// The connection broke or ended before `[DONE]`.
    StreamInterrupted,
    /// The reply carried no token, or the server counted zero output tokens.
    EmptyReply,
    /// The stream ended without a usage chunk that carries any count, so
    /// token counts are unknown (the battery never estimates them).
    MissingUsage,
    /// The request could not be encoded as JSON, so it was never sent.
    InvalidRequest,
    /// The run was cancelled while the request was in flight.
    Cancelled,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Connect => "connect",
            FailureKind::Timeout => "timeout",
            FailureKind::IdleTimeout => "idle_timeout",
            FailureKind::BenchmarkTimeout => "benchmark_timeout",
            FailureKind::HttpStatus => "http_status",
            FailureKind::NotEventStream => "not_event_stream",
            FailureKind::ServerError => "server_error",
            FailureKind::MalformedEvent => "malformed_event",
            FailureKind::OversizedEvent => "oversized_event",
            FailureKind::BadReply => "bad_reply",
            FailureKind::StreamInterrupted => "stream_interrupted",
            FailureKind::EmptyReply => "empty_reply",
            FailureKind::MissingUsage => "missing_usage",
            FailureKind::InvalidRequest => "invalid_request",
            FailureKind::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub kind: FailureKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    pub message: String,
}

/// The measured facts of one request. Offsets are milliseconds from the
/// battery's epoch (`scheduled_ms`, `sent_ms`) or from the send (the rest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Which benchmark sent it, e.g. `kv_cache`.
    pub benchmark: String,
    /// Where in the benchmark, e.g. `iteration 2 turn 3`.
    pub label: String,
    /// The server's completion id, when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_id: Option<String>,
    pub scheduled_ms: f64,
    pub sent_ms: f64,
    /// Send minus scheduled start: time the request waited on the client.
    pub queue_delay_ms: f64,
    /// Send to the first delta carrying content, reasoning or tool-call text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    /// Send to the first answer (non-reasoning content) token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfc_ms: Option<f64>,
    /// Send to `[DONE]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2el_ms: Option<f64>,
    /// Gaps between consecutive token-bearing chunks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub itl_ms: Vec<f64>,
    /// (E2E − TTFT) / (completion_tokens − 1); absent for one-token replies
    /// and when the server did not report `completion_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpot_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// The server's counts; a count it omitted is `None`, never zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    pub token_chunks: u32,
    pub reasoning_chunks: u32,
    pub answer_chunks: u32,
    pub tool_call_chunks: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

impl RequestRecord {
    pub fn succeeded(&self) -> bool {
        self.failure.is_none()
    }

    /// Output tokens per second of this request: completion tokens over E2E
    /// (`None` when the server did not count them).
    pub fn output_tokens_per_s(&self) -> Option<f64> {
        let completion = self.usage?.completion_tokens?;
        let e2el = self.e2el_ms?;
        (self.succeeded() && e2el > 0.0).then(|| completion as f64 / (e2el / 1000.0))
    }

    /// A successful request whose usage lacks a count (prompt or
    /// completion): its latencies stand, its tokens are unknown.
    pub fn lacks_token_counts(&self) -> bool {
        self.succeeded()
            && self.usage.is_none_or(|usage| {
                usage.prompt_tokens.is_none() || usage.completion_tokens.is_none()
            })
    }

    /// TTFT counted from the scheduled start instead of the send: the
    /// latency an open-loop client sees, queueing included.
    pub fn ttft_from_schedule_ms(&self) -> Option<f64> {
        self.ttft_ms.map(|ttft| ttft + self.queue_delay_ms)
    }

    pub fn e2el_from_schedule_ms(&self) -> Option<f64> {
        self.e2el_ms.map(|e2el| e2el + self.queue_delay_ms)
    }
}

/// What the server said, for benchmarks that look at the text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reply {
    pub answer: String,
    pub reasoning: String,
    pub tool_calls: Vec<ToolCall>,
}

#[derive(Debug, Clone)]
pub struct Exchange {
    pub record: RequestRecord,
    pub reply: Reply,
}
