//! Contract checks for a live vLLM OpenAI-compatible server.
//!
//! Each check sends real requests to `base_url` and compares the replies with
//! vLLM's documented formats (the same ones recorded from vLLM 0.32.0):
//! SSE framing and `data: [DONE]`, `chat.completion.chunk` objects, the
//! usage chunk with `choices: []`, `prompt_tokens_details.cached_tokens`,
//! reasoning field names, tool-call delta shapes, error bodies, the 401 on
//! `/v1/*` with `/health` and `/metrics` open, and metric names.
//!
//! The checks know nothing about the simulator: point [`Target`] at a real
//! `vllm serve` and the same checks run. [`ServerFeatures`] says which
//! optional features the server was started with, so checks that need a
//! flag are only run when it is set.

mod endpoints;
mod error;
mod error_bodies;
mod generation;
mod metrics;
mod probe;
mod reasoning;
mod tools;

use std::fmt;
use std::time::Duration;

use serde_json::Value;

pub use error::ContractError;
pub use metrics::REQUIRED_METRICS;
use probe::Probe;
pub use probe::sse_events;

/// The server under test.
#[derive(Clone)]
pub struct Target {
    /// `http://127.0.0.1:8000` (no trailing `/v1`).
    pub base_url: String,
    /// The served model name.
    pub model: String,
    /// The `--api-key` the server was started with, if any.
    pub api_key: Option<String>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Which optional features the server was started with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerFeatures {
    /// `--enable-prompt-tokens-details`.
    pub prompt_tokens_details: bool,
    /// `--reasoning-parser ...` with a model that thinks.
    pub reasoning_parser: bool,
    /// `--enable-auto-tool-choice --tool-call-parser ...` matching the model.
    pub auto_tool_choice: bool,
    /// The server's `--max-model-len`, for the too-long-prompt check.
    pub max_model_len: Option<usize>,
    /// `--no-enable-prefix-caching`: the prefix-cache counters must not move
    /// (vLLM does not even count queries then). Off by default, as in vLLM.
    pub prefix_caching_disabled: bool,
    /// A `logit_bias` object sent with the tool-call check. A random-weight
    /// model loops on whitespace inside a strict tool-call grammar, so the
    /// real-vLLM run sends every whitespace-only token id at -100 (read from
    /// `VLLM_CONTRACT_TOOL_LOGIT_BIAS_FILE` by the test harness).
    pub tool_call_logit_bias: Option<Value>,
}

/// One check's outcome.
#[derive(Debug)]
pub struct CheckResult {
    pub name: &'static str,
    pub outcome: Result<(), ContractError>,
}

impl CheckResult {
    fn new(name: &'static str, outcome: Result<(), ContractError>) -> CheckResult {
        CheckResult { name, outcome }
    }
}

/// Runs every check that applies to the server's features, in order.
pub async fn run_all(target: &Target, features: &ServerFeatures) -> Vec<CheckResult> {
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
    {
        Ok(h) => h,
        Err(source) => {
            return vec![CheckResult::new(
                "client",
                Err(ContractError::Client(source)),
            )];
        }
    };
    let p = Probe { target, http };
    let mut results = vec![
        CheckResult::new(
            "health_and_metrics_need_no_key",
            endpoints::health_and_metrics_need_no_key(&p).await,
        ),
        CheckResult::new("models_list", endpoints::models_list(&p).await),
        CheckResult::new("chat_stream", generation::chat_stream(&p, features).await),
        CheckResult::new("non_streaming", generation::non_streaming(&p).await),
        CheckResult::new(
            "error_bodies",
            error_bodies::error_bodies(&p, features).await,
        ),
        CheckResult::new(
            "tool_call_deltas",
            tools::tool_call_deltas(&p, features).await,
        ),
        CheckResult::new(
            "prefix_cache_counters",
            metrics::prefix_cache_counters(&p, features).await,
        ),
        CheckResult::new("metric_names", metrics::metric_names(&p).await),
    ];
    if target.api_key.is_some() {
        results.push(CheckResult::new(
            "unauthorized_body",
            endpoints::unauthorized_body(&p).await,
        ));
    }
    if features.reasoning_parser {
        results.push(CheckResult::new(
            "reasoning_fields",
            reasoning::reasoning_fields(&p).await,
        ));
    }
    if !features.auto_tool_choice {
        results.push(CheckResult::new(
            "auto_tool_choice_needs_flag",
            error_bodies::auto_tool_choice_needs_flag(&p).await,
        ));
    }
    results
}

/// Formats failures (each with its causes) for an assertion message; empty
/// when all passed.
pub fn failures(results: &[CheckResult]) -> String {
    results
        .iter()
        .filter_map(|r| {
            let e = r.outcome.as_ref().err()?;
            let mut text = format!("{}: {e}", r.name);
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                text.push_str(&format!(": {c}"));
                cause = c.source();
            }
            Some(text)
        })
        .collect::<Vec<_>>()
        .join("\n")
}
