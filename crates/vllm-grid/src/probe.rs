//! `bench`'s check that the endpoint answers before the battery starts.
//!
//! Stand-in for `grid_bench::probe`, which helper C is adding to grid-bench
//! (`/v1/models`, then one short request); this one sends the short request
//! only, through the battery's own client, so it fails the way the battery
//! would. Swap the call in `commands/bench.rs` for C's function and delete
//! this file once it lands.

use std::time::{Duration, Instant};

use grid_bench::openai::{ChatMessage, ChatRequest};
use grid_bench::{Client, ClientConfig, Endpoint};
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot prepare the client")]
    Client {
        #[source]
        source: grid_bench::client::ClientError,
    },
    #[error("a short chat request to {url} failed ({kind}): {message}")]
    Request {
        url: String,
        kind: &'static str,
        message: String,
    },
}

/// Sends one short streaming chat request; `Ok` when it completed with a
/// token and the usage chunk, as every battery request must.
pub async fn probe(
    endpoint: &Endpoint,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<(), ProbeError> {
    let client = Client::new(
        endpoint,
        ClientConfig {
            request_timeout: timeout,
            epoch: Instant::now(),
            keep_text: false,
        },
    )
    .map_err(|source| ProbeError::Client { source })?;
    let request = ChatRequest {
        messages: vec![ChatMessage::user("Reply with one word.")],
        max_tokens: 2,
        temperature: Some(0.0),
        ignore_eos: None,
        tools: None,
        tool_choice: None,
    };
    let exchange = client
        .chat(
            &request,
            Instant::now(),
            cancel,
            "probe",
            "probe".to_string(),
        )
        .await;
    match exchange.record.failure {
        None => Ok(()),
        Some(failure) => Err(ProbeError::Request {
            url: endpoint.chat_completions_url(),
            kind: failure.kind.as_str(),
            message: failure.message,
        }),
    }
}
