//! `bench`'s check that the endpoint answers before the battery starts.
//!
//! A stand-in with the shape of `grid_bench::{probe, ProbeConfig,
//! ProbeError, ProbeReport}` (helper C's branch; it lists `/v1/models`
//! first, then sends one short request). This one sends the short request
//! only, through the battery's own client, so it fails the way the battery
//! would. When grid-bench's lands: delete this file, `use grid_bench::
//! {ProbeConfig, probe}` in `commands/bench.rs` and make
//! `AppError::Probe`'s source `grid_bench::ProbeError`.

use std::time::{Duration, Instant};

use grid_bench::openai::{ChatMessage, ChatRequest};
use grid_bench::{Client, ClientConfig, Endpoint};
use tokio_util::sync::CancellationToken;

/// The probe's bounds.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// Longest wait for the test request, its body included.
    pub request_timeout: Duration,
    /// Tokens the test request asks for.
    pub max_tokens: u32,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            max_tokens: 8,
        }
    }
}

/// What a successful probe saw.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeReport {
    pub elapsed: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot prepare the probe's client for {url}")]
    Client {
        url: String,
        #[source]
        source: grid_bench::client::ClientError,
    },
    #[error("the test request to {url} failed ({kind}): {message}")]
    Chat {
        url: String,
        kind: &'static str,
        message: String,
    },
}

/// Sends one short streaming chat request; `Ok` when it completed as every
/// battery request must.
pub async fn probe(endpoint: &Endpoint, config: &ProbeConfig) -> Result<ProbeReport, ProbeError> {
    let started = Instant::now();
    let client = Client::new(
        endpoint,
        ClientConfig {
            request_timeout: config.request_timeout,
            epoch: started,
            keep_text: false,
        },
    )
    .map_err(|source| ProbeError::Client {
        url: endpoint.root().to_string(),
        source,
    })?;
    let request = ChatRequest {
        messages: vec![ChatMessage::user("Reply with the word ready.")],
        max_tokens: config.max_tokens,
        temperature: Some(0.0),
        ignore_eos: None,
        tools: None,
        tool_choice: None,
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
    match exchange.record.failure {
        None => Ok(ProbeReport {
            elapsed: started.elapsed(),
        }),
        Some(failure) => Err(ProbeError::Chat {
            url: endpoint.chat_completions_url(),
            kind: failure.kind.as_str(),
            message: failure.message,
        }),
    }
}
