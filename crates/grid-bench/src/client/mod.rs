//! The streaming client: one request in, one [`RequestRecord`] out.
//!
//! Every timestamp is a monotonic [`Instant`]. A record keeps the scheduled
//! start, the send time, the arrival time of every token-bearing chunk and
//! the `[DONE]` time; all derived latencies come from those instants. The
//! arrival time of a chunk is taken once per network read, before parsing,
//! so parsing cost is not counted as server latency.
//!
//! A bad server cannot hold a request or the client's memory for long:
//! the request timeout bounds send → `[DONE]`, the idle timeout bounds the
//! wait for the next token (keep-alives do not count), an optional
//! deadline (the benchmark's wall-clock bound) ends it, an SSE line or
//! event is capped at `max_event_bytes`, and a reply's tool calls, text and
//! token chunks are capped ([`MAX_TOOL_CALLS`], [`MAX_REPLY_TEXT_BYTES`]).

mod body;
mod record;
mod stream;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use tokio_util::sync::CancellationToken;

use crate::endpoint::Endpoint;
use crate::openai::{ChatRequest, StreamOptions, WireRequest, error_message_from_body};
use crate::sse::{DEFAULT_MAX_EVENT_BYTES, SseDecoder};

pub use body::{BodyError, read_bounded};
pub use record::{Exchange, Failure, FailureKind, Reply, RequestRecord};
pub use stream::{
    MAX_REPLY_TEXT_BYTES, MAX_TOOL_CALLS, parse_recorded_stream, parse_recorded_stream_with,
};
use stream::{StreamState, feed, seconds};

/// The default wait for the next token-bearing event (and for the first
/// one after the send): 30 s. A healthy vLLM never pauses that long inside
/// a reply; prefills longer than that need a larger `idle_timeout_s`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The default bound on opening a TCP (and TLS) connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of an error body or a non-stream body kept for the message.
const ERROR_BODY_BYTES: usize = 64 << 10;

/// Bytes of a `/metrics` page read at most (vLLM's is a few hundred KiB).
pub const MAX_METRICS_BYTES: usize = 32 << 20;

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Send to `[DONE]`, at most.
    pub request_timeout: Duration,
    /// Longest wait for a token-bearing event: from the send to the first,
    /// and between two. Keep-alive comments and token-less events do not
    /// reset it.
    pub idle_timeout: Duration,
    /// Longest wait for a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Cap on one SSE line and on one event's data, bytes.
    pub max_event_bytes: usize,
    /// The instant all `scheduled_ms`/`sent_ms` offsets count from.
    pub epoch: Instant,
    /// Keep the answer, reasoning and tool-call text (multi-turn benchmarks
    /// need it; the load benchmark does not).
    pub keep_text: bool,
}

impl Default for ClientConfig {
    /// The battery's defaults, counting from now.
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(300),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            epoch: Instant::now(),
            keep_text: true,
        }
    }
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
    #[error("cannot read the body of {url}")]
    Body {
        url: String,
        #[source]
        source: BodyError,
    },
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
    root: String,
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
            .connect_timeout(config.connect_timeout)
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
            root: endpoint.root().to_string(),
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

    pub fn chat_url(&self) -> &str {
        &self.chat_url
    }

    /// The server root, e.g. `http://127.0.0.1:8000`.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// A GET of `url` with the endpoint's key, for the probe and the scrape.
    pub(crate) fn get(&self, url: &str, timeout: Duration) -> reqwest::RequestBuilder {
        let mut request = self.http.get(url).timeout(timeout);
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        request
    }

    /// Fetches `/metrics` as text (at most [`MAX_METRICS_BYTES`]).
    pub async fn scrape_metrics(&self) -> Result<String, ScrapeError> {
        let url = &self.metrics_url;
        let response = self
            .get(url, Duration::from_secs(10))
            .send()
            .await
            .map_err(|source| ScrapeError::Request {
                url: url.clone(),
                source,
            })?;
        if !response.status().is_success() {
            return Err(ScrapeError::Status {
                url: url.clone(),
                status: response.status().as_u16(),
            });
        }
        let bytes = read_bounded(response, MAX_METRICS_BYTES, Duration::from_secs(10))
            .await
            .map_err(|source| ScrapeError::Body {
                url: url.clone(),
                source,
            })?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
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
        self.chat_until(request, scheduled, cancel, None, benchmark, label)
            .await
    }

    /// [`Client::chat`] that also ends at `deadline` (a benchmark's
    /// wall-clock bound): the request then fails as `benchmark_timeout` with
    /// what arrived.
    pub async fn chat_until(
        &self,
        request: &ChatRequest,
        scheduled: Instant,
        cancel: &CancellationToken,
        deadline: Option<Instant>,
        benchmark: &str,
        label: String,
    ) -> Exchange {
        let body = encode_body(&WireRequest {
            model: &self.model,
            stream: true,
            stream_options: StreamOptions {
                include_usage: true,
            },
            request,
        });
        let sent = Instant::now();
        let mut state = StreamState::new(sent, self.config.keep_text, Some(request.max_tokens));
        let body = match body {
            Ok(body) => body,
            Err(failure) => {
                state.failure = Some(failure);
                return state.finish(self.config.epoch, scheduled, benchmark, label);
            }
        };
        let bound = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
                None => std::future::pending().await,
            }
        };
        let outcome = tokio::select! {
            biased;
            _ = cancel.cancelled() => Some(Failure {
                kind: FailureKind::Cancelled,
                http_status: None,
                message: "the run was cancelled while the request was in flight".into(),
            }),
            _ = bound => Some(Failure {
                kind: FailureKind::BenchmarkTimeout,
                http_status: None,
                message: format!(
                    "the benchmark's wall-clock bound ran out while the request was in flight ({} token chunks received)",
                    state.token_offsets.len()
                ),
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
        let idle = self.config.idle_timeout;
        let response = match tokio::time::timeout(idle, request.send()).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                state.fail(
                    FailureKind::Connect,
                    format!("cannot send to {}: {}", self.chat_url, error_chain(&error)),
                );
                return;
            }
            Err(_) => {
                state.fail(
                    FailureKind::IdleTimeout,
                    format!(
                        "{} sent no response headers within the idle timeout of {}",
                        self.chat_url,
                        seconds(idle)
                    ),
                );
                return;
            }
        };
        let status = response.status();
        state.http_status = Some(status.as_u16());
        if !status.is_success() {
            let body = excerpt(response, idle).await;
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
        if let Some(content_type) = not_event_stream(&response) {
            let body = excerpt(response, idle).await;
            let html = content_type.contains("html") || body.trim_start().starts_with('<');
            state.fail(
                FailureKind::NotEventStream,
                format!(
                    "the server answered {content_type} instead of an event stream{}: {}",
                    if html {
                        " (an HTML page: is the base URL the root of an OpenAI-compatible API?)"
                    } else {
                        ""
                    },
                    crate::openai::truncate(body.trim(), 300)
                ),
            );
            return;
        }
        let mut decoder = SseDecoder::with_max_event_bytes(self.config.max_event_bytes);
        let mut chunks = response.bytes_stream();
        // One timer for the whole stream, moved only when it fires: the idle
        // time counts from the last token (or the send), not from the last
        // read, since keep-alives arrive but are not progress. Re-arming it
        // per chunk would cost a timer-wheel update per token.
        // An idle timeout too large for an instant waits a year instead.
        let first_due = state
            .last_progress()
            .checked_add(idle)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(365 * 86_400));
        let idle_timer = tokio::time::sleep_until(first_due.into());
        tokio::pin!(idle_timer);
        loop {
            let item = tokio::select! {
                biased;
                item = chunks.next() => match item {
                    Some(item) => item,
                    None => break,
                },
                () = &mut idle_timer => {
                    match state.last_progress().checked_add(idle) {
                        Some(due) if Instant::now() < due => {
                            idle_timer.as_mut().reset(due.into());
                            continue;
                        }
                        _ => {}
                    }
                    state.fail(
                        FailureKind::IdleTimeout,
                        format!(
                            "no token within the idle timeout of {} (keep-alives do not count) after {} token chunks and {} keep-alive comments",
                            seconds(idle),
                            state.token_offsets.len(),
                            decoder.comments_seen()
                        ),
                    );
                    return;
                }
            };
            match item {
                Ok(bytes) => {
                    let arrived = Instant::now();
                    feed(&mut decoder, state, &bytes, arrived);
                    if state.finished() {
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
        if !state.finished() {
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

/// The request as JSON. Serialising the battery's own types cannot fail
/// today (no map with non-string keys; serde_json writes NaN as null), but
/// a failure must become a failed record, never an empty body sent.
fn encode_body(request: &impl serde::Serialize) -> Result<Vec<u8>, Failure> {
    // Sized for the usual prompt so the serialiser rarely reallocates.
    let mut body = Vec::with_capacity(4096);
    serde_json::to_writer(&mut body, request).map_err(|error| Failure {
        kind: FailureKind::InvalidRequest,
        http_status: None,
        message: format!("cannot encode the request as JSON, so it was not sent: {error}"),
    })?;
    Ok(body)
}

/// The content type of a successful reply that is not an event stream,
/// or `None` when it is one (or says nothing).
fn not_event_stream(response: &reqwest::Response) -> Option<String> {
    let content_type = response.headers().get(CONTENT_TYPE)?;
    let text = String::from_utf8_lossy(content_type.as_bytes()).to_ascii_lowercase();
    (!text.trim_start().starts_with("text/event-stream")).then_some(text)
}

/// The first [`ERROR_BODY_BYTES`] of a body, for a message; whatever could
/// not be read is said instead.
pub(crate) async fn excerpt(response: reqwest::Response, timeout: Duration) -> String {
    match read_bounded(response, ERROR_BODY_BYTES, timeout).await {
        Ok(bytes) | Err(BodyError::TooLarge { partial: bytes, .. }) => {
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Err(error) => format!("(the body could not be read: {})", error_chain(&error)),
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
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A value whose serialisation fails, standing for any future request
    /// field that could.
    struct Unencodable;

    impl serde::Serialize for Unencodable {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("this value cannot be encoded"))
        }
    }

    #[test]
    fn an_unencodable_request_is_a_failure_not_an_empty_body() {
        let failure = encode_body(&Unencodable).expect_err("encoding fails");
        assert_eq!(failure.kind, FailureKind::InvalidRequest);
        assert!(
            failure.message.contains("this value cannot be encoded"),
            "{failure:?}"
        );
    }
}
