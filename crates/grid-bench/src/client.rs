//! The streaming client: one request in, one [`RequestRecord`] out.
//!
//! Every timestamp is a monotonic [`Instant`]. A record keeps the scheduled
//! start, the send time, the arrival time of every token-bearing chunk and
//! the `[DONE]` time; all derived latencies come from those instants. The
//! arrival time of a chunk is taken once per network read, before parsing,
//! so parsing cost is not counted as server latency.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::endpoint::Endpoint;
use crate::openai::{
    ChatRequest, StreamOptions, ToolCall, Usage, WireChunk, WireRequest, error_message_from_body,
    truncate,
};
use crate::sse::{SseDecoder, SseEvent};

/// Why a request failed. Every failure is recorded, never dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The connection could not be made or the request not sent.
    Connect,
    /// No `[DONE]` within the request timeout (a hung server).
    Timeout,
    /// The server answered with a 4xx or 5xx status.
    HttpStatus,
    /// The server reported an error inside the stream.
    ServerError,
    /// An event whose data is not a JSON chunk.
    MalformedEvent,
    /// The connection broke or ended before `[DONE]`.
    StreamInterrupted,
    /// The reply carried no token, or the server counted zero output tokens.
    EmptyReply,
    /// The stream ended without the usage chunk, so token counts are unknown
    /// (the battery never estimates them).
    MissingUsage,
    /// The run was cancelled while the request was in flight.
    Cancelled,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Connect => "connect",
            FailureKind::Timeout => "timeout",
            FailureKind::HttpStatus => "http_status",
            FailureKind::ServerError => "server_error",
            FailureKind::MalformedEvent => "malformed_event",
            FailureKind::StreamInterrupted => "stream_interrupted",
            FailureKind::EmptyReply => "empty_reply",
            FailureKind::MissingUsage => "missing_usage",
            FailureKind::Cancelled => "cancelled",
        }
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
    /// (E2E − TTFT) / (completion_tokens − 1); absent for one-token replies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpot_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
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

    /// Output tokens per second of this request: completion tokens over E2E.
    pub fn output_tokens_per_s(&self) -> Option<f64> {
        let usage = self.usage?;
        let e2el = self.e2el_ms?;
        (self.succeeded() && e2el > 0.0).then(|| usage.completion_tokens as f64 / (e2el / 1000.0))
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

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Send to `[DONE]`, at most.
    pub request_timeout: Duration,
    /// The instant all `scheduled_ms`/`sent_ms` offsets count from.
    pub epoch: Instant,
    /// Keep the answer, reasoning and tool-call text (multi-turn benchmarks
    /// need it; the load benchmark does not).
    pub keep_text: bool,
}

/// The failure to build the HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot build the HTTP client for {url}")]
    Build {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "the API key cannot be sent as an HTTP header: it holds characters a header cannot carry"
    )]
    InvalidApiKey,
}

/// A failed `/metrics` scrape.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("cannot fetch {url}")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    chat_url: String,
    /// `chat_url` parsed once: parsing it per request showed up in profiles.
    /// `None` when it does not parse; the request then fails at send with
    /// reqwest's message, as it would without the cache.
    chat_url_parsed: Option<reqwest::Url>,
    metrics_url: String,
    model: String,
    authorization: Option<HeaderValue>,
    config: ClientConfig,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Client")
            .field("chat_url", &self.chat_url)
            .field("model", &self.model)
            .field("authorization", &self.authorization.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Client {
    pub fn new(endpoint: &Endpoint, config: ClientConfig) -> Result<Self, ClientError> {
        let authorization = match &endpoint.api_key {
            Some(key) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
                    .map_err(|_| ClientError::InvalidApiKey)?;
                // Keeps the key out of hyper's and reqwest's debug output.
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let mut builder = reqwest::Client::builder()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(usize::MAX)
            .pool_idle_timeout(Duration::from_secs(90));
        if is_loopback(endpoint.root()) {
            // An HTTP_PROXY in the environment must not capture a local server.
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(|source| ClientError::Build {
            url: endpoint.root().to_string(),
            source,
        })?;
        Ok(Self {
            http,
            chat_url: endpoint.chat_completions_url(),
            chat_url_parsed: reqwest::Url::parse(&endpoint.chat_completions_url()).ok(),
            metrics_url: endpoint.metrics_url(),
            model: endpoint.model.clone(),
            authorization,
            config,
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    pub fn epoch(&self) -> Instant {
        self.config.epoch
    }

    /// Fetches `/metrics` as text.
    pub async fn scrape_metrics(&self) -> Result<String, ScrapeError> {
        let mut request = self
            .http
            .get(&self.metrics_url)
            .timeout(Duration::from_secs(10));
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        let response = request
            .send()
            .await
            .map_err(|source| ScrapeError::Request {
                url: self.metrics_url.clone(),
                source,
            })?;
        if !response.status().is_success() {
            return Err(ScrapeError::Status {
                url: self.metrics_url.clone(),
                status: response.status().as_u16(),
            });
        }
        response
            .text()
            .await
            .map_err(|source| ScrapeError::Request {
                url: self.metrics_url.clone(),
                source,
            })
    }

    /// Sends one streaming chat request and measures it. Never fails: a
    /// failure is a record with `failure` set. `scheduled` is when the
    /// request was meant to start (open-loop schedules); the send time is
    /// taken here.
    pub async fn chat(
        &self,
        request: &ChatRequest,
        scheduled: Instant,
        cancel: &CancellationToken,
        benchmark: &str,
        label: String,
    ) -> Exchange {
        // Sized for the usual prompt so the serialiser rarely reallocates.
        let mut body = Vec::with_capacity(4096);
        let _ = serde_json::to_writer(
            &mut body,
            &WireRequest {
                model: &self.model,
                stream: true,
                stream_options: StreamOptions {
                    include_usage: true,
                },
                request,
            },
        );
        let sent = Instant::now();
        let mut state = StreamState::new(sent, self.config.keep_text, request.max_tokens);
        let outcome = tokio::select! {
            biased;
            _ = cancel.cancelled() => Some(Failure {
                kind: FailureKind::Cancelled,
                http_status: None,
                message: "the run was cancelled while the request was in flight".into(),
            }),
            result = tokio::time::timeout(self.config.request_timeout, self.stream(body, &mut state)) => match result {
                Ok(()) => None,
                Err(_) => Some(Failure {
                    kind: FailureKind::Timeout,
                    http_status: None,
                    message: format!(
                        "no [DONE] within the request timeout of {:.1} s ({} token chunks received)",
                        self.config.request_timeout.as_secs_f64(),
                        state.token_offsets.len()
                    ),
                }),
            },
        };
        if let Some(failure) = outcome {
            state.failure.get_or_insert(failure);
        }
        state.finish(self.config.epoch, scheduled, benchmark, label)
    }

    async fn stream(&self, body: Vec<u8>, state: &mut StreamState) {
        let request = match &self.chat_url_parsed {
            Some(url) => self.http.post(url.clone()),
            None => self.http.post(&self.chat_url),
        };
        let mut request = request
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body);
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                state.fail(
                    FailureKind::Connect,
                    format!("cannot send to {}: {}", self.chat_url, error_chain(&error)),
                );
                return;
            }
        };
        let status = response.status();
        state.http_status = Some(status.as_u16());
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            state.fail(
                FailureKind::HttpStatus,
                format!(
                    "HTTP {}: {}",
                    status.as_u16(),
                    error_message_from_body(&body)
                ),
            );
            return;
        }
        let mut decoder = SseDecoder::new();
        let mut chunks = response.bytes_stream();
        while let Some(item) = chunks.next().await {
            match item {
                Ok(bytes) => {
                    let arrived = Instant::now();
                    decoder.feed(&bytes, |event| state.on_event(event, arrived));
                    if state.done.is_some() || state.failure.is_some() {
                        return;
                    }
                }
                Err(error) => {
                    state.fail(
                        FailureKind::StreamInterrupted,
                        format!(
                            "the stream broke after {} token chunks: {}",
                            state.token_offsets.len(),
                            error_chain(&error)
                        ),
                    );
                    return;
                }
            }
        }
        if state.done.is_none() && state.failure.is_none() {
            let detail = if decoder.has_partial_event() {
                " (in the middle of an event)"
            } else {
                ""
            };
            state.fail(
                FailureKind::StreamInterrupted,
                format!(
                    "the stream ended before [DONE]{detail} after {} token chunks",
                    state.token_offsets.len()
                ),
            );
        }
    }
}

fn is_loopback(root: &str) -> bool {
    let rest = root
        .strip_prefix("http://")
        .or_else(|| root.strip_prefix("https://"))
        .unwrap_or(root);
    rest.starts_with("127.") || rest.starts_with("localhost") || rest.starts_with("[::1]")
}

/// The error and its causes on one line ("error sending request: connection
/// reset"), since reqwest's top-level message alone hides the cause.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Per-request parsing state, kept outside the timed future so a timeout
/// or cancellation still reports what arrived.
struct StreamState {
    sent: Instant,
    keep_text: bool,
    /// Microseconds after send of each token-bearing chunk.
    token_offsets: Vec<u64>,
    first_answer: Option<Instant>,
    done: Option<Instant>,
    usage: Option<Usage>,
    response_id: Option<String>,
    finish_reason: Option<String>,
    http_status: Option<u16>,
    reasoning_chunks: u32,
    answer_chunks: u32,
    tool_call_chunks: u32,
    reply: Reply,
    failure: Option<Failure>,
}

impl StreamState {
    fn new(sent: Instant, keep_text: bool, max_tokens: u32) -> Self {
        Self {
            sent,
            keep_text,
            // One token per chunk is the usual case, so `max_tokens` bounds
            // the pushes; capped so a huge limit does not reserve memory.
            token_offsets: Vec::with_capacity((max_tokens as usize).clamp(16, 4096)),
            first_answer: None,
            done: None,
            usage: None,
            response_id: None,
            finish_reason: None,
            http_status: None,
            reasoning_chunks: 0,
            answer_chunks: 0,
            tool_call_chunks: 0,
            reply: Reply::default(),
            failure: None,
        }
    }

    fn fail(&mut self, kind: FailureKind, message: String) {
        if self.failure.is_none() {
            self.failure = Some(Failure {
                kind,
                http_status: self.http_status.filter(|_| kind == FailureKind::HttpStatus),
                message,
            });
        }
    }

    fn on_event(&mut self, event: SseEvent<'_>, arrived: Instant) {
        if self.done.is_some() || self.failure.is_some() {
            return;
        }
        let data = trim_ascii(event.data);
        if data == b"[DONE]" {
            self.done = Some(arrived);
            return;
        }
        if data.is_empty() {
            return;
        }
        // The scanner reads vLLM's usual chunk in a fraction of serde's
        // instructions and declines anything unusual, which serde then reads.
        // Each branch hands the chunk over directly: it is a few hundred
        // bytes, and every move of it is a copy.
        if let Some(chunk) = crate::chunk_scan::scan_chunk(data) {
            self.on_chunk(chunk, arrived);
            return;
        }
        match serde_json::from_slice::<WireChunk<'_>>(data) {
            Ok(chunk) => self.on_chunk(chunk, arrived),
            Err(error) => {
                let text = String::from_utf8_lossy(data);
                self.fail(
                    FailureKind::MalformedEvent,
                    format!(
                        "an event is not a JSON chunk ({error}): {}",
                        truncate(&text, 200)
                    ),
                );
            }
        }
    }

    fn on_chunk(&mut self, chunk: WireChunk<'_>, arrived: Instant) {
        if let Some(error) = &chunk.error {
            let message = error
                .get("message")
                .and_then(|message| message.as_str())
                .map(str::to_string)
                .unwrap_or_else(|| error.to_string());
            self.fail(
                FailureKind::ServerError,
                format!("the server reported an error mid-stream: {message}"),
            );
            return;
        }
        if chunk.object.as_deref() == Some("error") {
            let message = chunk.message.as_deref().unwrap_or("no message");
            self.fail(
                FailureKind::ServerError,
                format!("the server reported an error mid-stream: {message}"),
            );
            return;
        }
        if self.response_id.is_none() {
            self.response_id = chunk.id.map(|id| id.into_owned());
        }
        if let Some(usage) = chunk.usage {
            // A usage object without its counts would otherwise read as zero
            // tokens; token counts are never guessed.
            let (Some(prompt_tokens), Some(completion_tokens)) =
                (usage.prompt_tokens, usage.completion_tokens)
            else {
                self.fail(
                    FailureKind::MissingUsage,
                    "the usage chunk lacks prompt_tokens or completion_tokens".to_string(),
                );
                return;
            };
            self.usage = Some(Usage {
                prompt_tokens,
                completion_tokens,
                cached_tokens: usage
                    .prompt_tokens_details
                    .and_then(|details| details.cached_tokens),
                reasoning_tokens: usage
                    .completion_tokens_details
                    .and_then(|details| details.reasoning_tokens),
            });
        }
        let mut bears_token = false;
        if let Some(choice) = chunk.first_choice.0 {
            if let Some(reason) = choice.finish_reason {
                self.finish_reason = Some(reason.into_owned());
            }
            if let Some(delta) = choice.delta {
                if let Some(reasoning) = delta
                    .reasoning
                    .as_deref()
                    .filter(|text| !text.is_empty())
                    .or_else(|| delta.reasoning_content.as_deref().filter(|t| !t.is_empty()))
                {
                    bears_token = true;
                    self.reasoning_chunks += 1;
                    if self.keep_text {
                        self.reply.reasoning.push_str(reasoning);
                    }
                }
                if let Some(content) = delta.content.as_deref().filter(|text| !text.is_empty()) {
                    bears_token = true;
                    self.answer_chunks += 1;
                    self.first_answer.get_or_insert(arrived);
                    if self.keep_text {
                        self.reply.answer.push_str(content);
                    }
                }
                if let Some(calls) = delta.tool_calls {
                    let mut carried_text = false;
                    for call in calls {
                        let position = call.index.unwrap_or(0);
                        if self.reply.tool_calls.len() <= position {
                            self.reply
                                .tool_calls
                                .resize_with(position + 1, ToolCall::default);
                        }
                        let slot = &mut self.reply.tool_calls[position];
                        if let Some(id) = call.id {
                            slot.id = id.into_owned();
                        }
                        if let Some(function) = call.function {
                            if let Some(name) = function.name.filter(|name| !name.is_empty()) {
                                slot.name.push_str(&name);
                                carried_text = true;
                            }
                            if let Some(arguments) =
                                function.arguments.filter(|arguments| !arguments.is_empty())
                            {
                                slot.arguments.push_str(&arguments);
                                carried_text = true;
                            }
                        }
                    }
                    if carried_text {
                        bears_token = true;
                        self.tool_call_chunks += 1;
                    }
                }
            }
        }
        if bears_token {
            self.token_offsets
                .push(arrived.duration_since(self.sent).as_micros() as u64);
        }
    }

    fn finish(
        mut self,
        epoch: Instant,
        scheduled: Instant,
        benchmark: &str,
        label: String,
    ) -> Exchange {
        if self.failure.is_none() {
            match self.usage {
                None => self.fail(
                    FailureKind::MissingUsage,
                    "the stream ended without a usage chunk; token counts are unknown".into(),
                ),
                Some(usage) if usage.completion_tokens == 0 || self.token_offsets.is_empty() => {
                    self.fail(
                        FailureKind::EmptyReply,
                        format!(
                            "empty reply: {} completion tokens reported, {} token-bearing chunks",
                            usage.completion_tokens,
                            self.token_offsets.len()
                        ),
                    )
                }
                Some(_) => {}
            }
        }
        let millis = |micros: u64| micros as f64 / 1000.0;
        let ttft_ms = self.token_offsets.first().copied().map(millis);
        let e2el_ms = self
            .done
            .map(|done| done.duration_since(self.sent).as_secs_f64() * 1000.0);
        let itl_ms = self
            .token_offsets
            .windows(2)
            .map(|pair| millis(pair[1] - pair[0]))
            .collect();
        let tpot_ms = match (ttft_ms, e2el_ms, self.usage) {
            (Some(ttft), Some(e2el), Some(usage)) if usage.completion_tokens > 1 => {
                Some((e2el - ttft) / (usage.completion_tokens - 1) as f64)
            }
            _ => None,
        };
        let since_epoch =
            |instant: Instant| instant.saturating_duration_since(epoch).as_secs_f64() * 1000.0;
        let record = RequestRecord {
            benchmark: benchmark.to_string(),
            label,
            response_id: self.response_id,
            scheduled_ms: since_epoch(scheduled),
            sent_ms: since_epoch(self.sent),
            queue_delay_ms: self.sent.saturating_duration_since(scheduled).as_secs_f64() * 1000.0,
            ttft_ms,
            ttfc_ms: self
                .first_answer
                .map(|first| first.duration_since(self.sent).as_secs_f64() * 1000.0),
            e2el_ms,
            itl_ms,
            tpot_ms,
            http_status: self.http_status,
            usage: self.usage,
            token_chunks: self.token_offsets.len() as u32,
            reasoning_chunks: self.reasoning_chunks,
            answer_chunks: self.answer_chunks,
            tool_call_chunks: self.tool_call_chunks,
            finish_reason: self.finish_reason,
            failure: self.failure,
        };
        Exchange {
            record,
            reply: self.reply,
        }
    }
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |end| end + 1);
    &bytes[start..end]
}

/// Parses a complete recorded SSE body the same way the client parses a
/// live stream, every event arriving at the same instant (so timings are
/// zero). `split_every` feeds the bytes in pieces of that size, to check
/// that splits never change the result.
pub fn parse_recorded_stream(body: &[u8], split_every: Option<usize>) -> Exchange {
    let now = Instant::now();
    let mut state = StreamState::new(now, true, 0);
    let mut decoder = SseDecoder::new();
    match split_every {
        Some(size) if size > 0 => {
            for piece in body.chunks(size) {
                decoder.feed(piece, |event| state.on_event(event, now));
            }
        }
        _ => decoder.feed(body, |event| state.on_event(event, now)),
    }
    if state.done.is_none() && state.failure.is_none() {
        state.fail(
            FailureKind::StreamInterrupted,
            "the stream ended before [DONE]".into(),
        );
    }
    state.finish(now, now, "offline", String::new())
}
