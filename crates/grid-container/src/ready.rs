//! Readiness: `GET /health` answers 200 and `/v1/models` lists the served
//! model, while the server's exit is watched so the wait stops at once.

use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::failure::ExitInfo;
use crate::spec::ServerEndpoint;

/// How readiness is polled.
#[derive(Debug, Clone)]
pub struct ReadinessConfig {
    /// Pause between polls. Short, because the lag between the server being
    /// ready and us noticing is dead time for every configuration.
    pub poll_interval: Duration,
    /// Limit for one health or models request.
    pub request_timeout: Duration,
}

impl Default for ReadinessConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(20),
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// Why the wait ended without a ready server.
#[derive(Debug)]
pub enum NotReady {
    Exited(ExitInfo),
    TimedOut { last_problem: String },
    Cancelled,
}

/// When the server was seen ready.
#[derive(Debug, Clone, Copy)]
pub struct Ready {
    pub at: Instant,
    pub at_wall: SystemTime,
}

pub fn http_client(config: &ReadinessConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(config.request_timeout)
        .connect_timeout(config.request_timeout)
        .build()
        // Building fails only when the TLS backend cannot initialise; the
        // default client has the same backend and no custom settings.
        .unwrap_or_default()
}

/// Polls until ready, the server exits, the deadline passes or `cancel` fires.
pub async fn wait_ready(
    client: &reqwest::Client,
    endpoint: &ServerEndpoint,
    exit: &mut watch::Receiver<Option<ExitInfo>>,
    deadline: Instant,
    config: &ReadinessConfig,
    cancel: &CancellationToken,
) -> Result<Ready, NotReady> {
    let mut last_problem = "no answer yet".to_string();
    loop {
        if let Some(info) = exit.borrow().clone() {
            return Err(NotReady::Exited(info));
        }
        let attempt = probe(client, endpoint);
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(NotReady::Cancelled),
            info = exit_news(exit) => return Err(NotReady::Exited(info)),
            _ = tokio::time::sleep_until(deadline.into()) => {
                return Err(NotReady::TimedOut { last_problem });
            }
            outcome = attempt => match outcome {
                Ok(()) => return Ok(Ready { at: Instant::now(), at_wall: SystemTime::now() }),
                Err(problem) => last_problem = problem,
            },
        }
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(NotReady::Cancelled),
            info = exit_news(exit) => return Err(NotReady::Exited(info)),
            _ = tokio::time::sleep(config.poll_interval) => {}
        }
        if Instant::now() >= deadline {
            return Err(NotReady::TimedOut { last_problem });
        }
    }
}

/// Resolves once the server is seen to have exited. A watcher that ends
/// without news never resolves it: the probes and the deadline decide then
/// (a closed channel must not end the wait, nor spin it without probing).
async fn exit_news(exit: &mut watch::Receiver<Option<ExitInfo>>) -> ExitInfo {
    loop {
        if let Some(info) = exit.borrow_and_update().clone() {
            return info;
        }
        if exit.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// Waits up to `limit` for the watcher to report an exit; `None` when it
/// does not (time is up, or the watcher ended without news).
pub(crate) async fn exit_within(
    exit: &mut watch::Receiver<Option<ExitInfo>>,
    limit: Duration,
) -> Option<ExitInfo> {
    tokio::time::timeout(limit, exit_news(exit)).await.ok()
}

/// One readiness check: health, then the model list.
async fn probe(client: &reqwest::Client, endpoint: &ServerEndpoint) -> Result<(), String> {
    let health_url = format!("{}/health", endpoint.base_url);
    let response = client
        .get(&health_url)
        .send()
        .await
        .map_err(|e| format!("GET {health_url}: {e}"))?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(format!("GET {health_url} answered {}", response.status()));
    }
    let models_url = format!("{}/v1/models", endpoint.base_url);
    let mut request = client.get(&models_url);
    if let Some(key) = &endpoint.api_key {
        request = request.bearer_auth(key.expose());
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("GET {models_url}: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("GET {models_url} answered {status}"));
    }
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|e| format!("GET {models_url} did not answer JSON: {e}"))?;
    let ids: Vec<&str> = body
        .get("data")
        .and_then(|d| d.as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|m| m.get("id").and_then(|id| id.as_str()))
                .collect()
        })
        .unwrap_or_default();
    if ids.contains(&endpoint.served_model.as_str())
        || (endpoint.served_model.is_empty() && !ids.is_empty())
    {
        Ok(())
    } else {
        Err(format!(
            "GET {models_url} lists {ids:?}, not `{}`",
            endpoint.served_model
        ))
    }
}
