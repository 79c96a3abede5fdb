//! The probe: does the endpoint work at all? `GET /v1/models` (is the
//! server there, is the key accepted, is the model served?), then one short
//! streaming chat request read by the battery's own client (is the stream
//! well-formed, with usage?). It fails fast, within its bounds, with a
//! typed error naming the reason, so `vllm-grid bench` can stop before
//! running a battery whose every request would fail.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::client::{
    Client, ClientConfig, ClientError, Failure, FailureKind, error_chain, excerpt,
};
use crate::endpoint::Endpoint;
use crate::openai::{ChatMessage, ChatRequest, error_message_from_body, truncate};
use crate::sse::DEFAULT_MAX_EVENT_BYTES;

/// Bytes of the model list read at most.
const MAX_MODELS_BYTES: usize = 1 << 20;

/// Characters of a body quoted in an error.
const EXCERPT_CHARS: usize = 200;

/// The probe's bounds. The whole probe takes at most about
/// `connect_timeout + 2 × request_timeout`; a closed port fails at once.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// Longest wait for a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Longest wait for each of the two requests, its body included.
    pub request_timeout: Duration,
    /// Tokens the test request asks for.
    pub max_tokens: u32,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            max_tokens: 8,
        }
    }
}

/// What a successful probe saw.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeReport {
    /// The model IDs `/v1/models` lists (the endpoint's among them).
    pub models: Vec<String>,
    /// The test request's time to first token and end to end, milliseconds
    /// (`None` for a reply that ended without a token).
    pub ttft_ms: Option<f64>,
    pub e2el_ms: Option<f64>,
    /// Whether the usage chunk carried both prompt_tokens and
    /// completion_tokens (without them the battery's token rates are
    /// unknown, though its latencies stand).
    pub token_counts_complete: bool,
    /// How long the probe took.
    pub elapsed: Duration,
}

/// Why the endpoint does not work, one variant per reason.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot prepare the probe's client for {url}")]
    Client {
        url: String,
        #[source]
        source: ClientError,
    },
    #[error(
        "nothing listens at {url}: the connection was refused; start the server or fix the base URL"
    )]
    ConnectionRefused {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("cannot connect to {url}; check the host, the port and the network")]
    Connect {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} did not answer within {:.1} s", .timeout.as_secs_f64())]
    Timeout { url: String, timeout: Duration },
    #[error(
        "{url} refused the API key (HTTP {status}: {excerpt}); pass the server's key (--api-key-env)"
    )]
    Unauthorized {
        url: String,
        status: u16,
        excerpt: String,
    },
    #[error(
        "{url} answered an HTML page (HTTP {status}), not the OpenAI API; the base URL must be the server root, e.g. http://host:8000: {excerpt}"
    )]
    HtmlPage {
        url: String,
        status: u16,
        excerpt: String,
    },
    #[error("{url} answered HTTP {status}: {excerpt}")]
    HttpStatus {
        url: String,
        status: u16,
        excerpt: String,
    },
    #[error("{url} did not answer an OpenAI model list ({problem}): {excerpt}")]
    NotAModelList {
        url: String,
        problem: &'static str,
        excerpt: String,
    },
    #[error(
        "the server does not serve the model {model:?}; it serves {}; pass one of those as the model",
        list(.available)
    )]
    UnknownModel {
        model: String,
        available: Vec<String>,
    },
    #[error("the test request to {url} failed ({}): {}", .failure.kind, .failure.message)]
    Chat { url: String, failure: Failure },
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names
            .iter()
            .map(|name| format!("{name:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Probes `endpoint` within `config`'s bounds.
pub async fn probe(endpoint: &Endpoint, config: &ProbeConfig) -> Result<ProbeReport, ProbeError> {
    let started = Instant::now();
    let client = Client::new(
        endpoint,
        ClientConfig {
            request_timeout: config.request_timeout,
            idle_timeout: config.request_timeout,
            connect_timeout: config.connect_timeout,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            epoch: started,
            keep_text: false,
        },
    )
    .map_err(|source| ProbeError::Client {
        url: endpoint.root().to_string(),
        source,
    })?;
    let models = list_models(&client, endpoint, config).await?;
    if !models.contains(&endpoint.model) {
        return Err(ProbeError::UnknownModel {
            model: endpoint.model.clone(),
            available: models,
        });
    }
    let request = ChatRequest {
        messages: vec![ChatMessage::user("Reply with the word ready.")],
        max_tokens: config.max_tokens,
        temperature: Some(0.0),
        ..ChatRequest::default()
    };
    let exchange = client
        .chat(
            &request,
            Instant::now(),
            &CancellationToken::new(),
            "probe",
            "probe".to_string(),
        )
        .await;
    let record = exchange.record;
    match record.failure {
        // A well-formed stream whose reply ended at once (an immediate
        // end-of-sequence) proves the endpoint works.
        Some(failure) if failure.kind != FailureKind::EmptyReply => {
            return Err(ProbeError::Chat {
                url: client.chat_url().to_string(),
                failure,
            });
        }
        _ => {}
    }
    Ok(ProbeReport {
        models,
        ttft_ms: record.ttft_ms,
        e2el_ms: record.e2el_ms,
        token_counts_complete: record.usage.is_some_and(|usage| {
            usage.prompt_tokens.is_some() && usage.completion_tokens.is_some()
        }),
        elapsed: started.elapsed(),
    })
}

async fn list_models(
    client: &Client,
    endpoint: &Endpoint,
    config: &ProbeConfig,
) -> Result<Vec<String>, ProbeError> {
    let url = format!("{}/v1/models", endpoint.root());
    let started = Instant::now();
    let response = client
        .get(&url, config.request_timeout)
        .send()
        .await
        .map_err(|source| send_error(&url, source, config.request_timeout))?;
    let status = response.status().as_u16();
    let is_html = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .is_some_and(|value| String::from_utf8_lossy(value.as_bytes()).contains("html"));
    let remaining = config.request_timeout.saturating_sub(started.elapsed());
    if !response.status().is_success() {
        let body = excerpt(response, remaining).await;
        let quoted = if is_html || body.trim_start().starts_with('<') {
            truncate(body.trim(), EXCERPT_CHARS)
        } else {
            truncate(&error_message_from_body(&body), EXCERPT_CHARS)
        };
        return Err(match status {
            401 | 403 => ProbeError::Unauthorized {
                url,
                status,
                excerpt: quoted,
            },
            _ if is_html || body.trim_start().starts_with('<') => ProbeError::HtmlPage {
                url,
                status,
                excerpt: quoted,
            },
            _ => ProbeError::HttpStatus {
                url,
                status,
                excerpt: quoted,
            },
        });
    }
    let body = match crate::client::read_bounded(response, MAX_MODELS_BYTES, remaining).await {
        Ok(body) => body,
        Err(crate::client::BodyError::Timeout { timeout }) => {
            return Err(ProbeError::Timeout { url, timeout });
        }
        Err(error) => {
            return Err(ProbeError::NotAModelList {
                url,
                problem: "its body could not be read",
                excerpt: error_chain(&error),
            });
        }
    };
    let text = String::from_utf8_lossy(&body);
    if is_html || text.trim_start().starts_with('<') {
        return Err(ProbeError::HtmlPage {
            url,
            status,
            excerpt: truncate(text.trim(), EXCERPT_CHARS),
        });
    }
    let not_a_list = |problem| ProbeError::NotAModelList {
        url: url.clone(),
        problem,
        excerpt: truncate(text.trim(), EXCERPT_CHARS),
    };
    let value: Value = serde_json::from_str(&text).map_err(|_| not_a_list("not JSON"))?;
    let data = value
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| not_a_list("no \"data\" array"))?;
    data.iter()
        .map(|model| {
            model
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| not_a_list("a model without an \"id\""))
        })
        .collect()
}

/// A failed send, classified: refused, timed out, or another connect error.
fn send_error(url: &str, source: reqwest::Error, timeout: Duration) -> ProbeError {
    if source.is_timeout() {
        return ProbeError::Timeout {
            url: url.to_string(),
            timeout,
        };
    }
    let refused = std::iter::successors(
        Some(&source as &(dyn std::error::Error + 'static)),
        |error| error.source(),
    )
    .filter_map(|error| error.downcast_ref::<std::io::Error>())
    .any(|error| error.kind() == std::io::ErrorKind::ConnectionRefused);
    if refused {
        ProbeError::ConnectionRefused {
            url: url.to_string(),
            source,
        }
    } else {
        ProbeError::Connect {
            url: url.to_string(),
            source,
        }
    }
}
