//! Where the battery sends its requests: base URL, served model name, API key.

use std::fmt;

/// An API key. It is never printed: `Debug` and `Display` show `***`, and it
/// is not serialisable, so it cannot end up in a report or a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: String) -> Self {
        Self(key)
    }

    /// The key itself, for the `Authorization` header and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("***")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("***")
    }
}

/// An OpenAI-compatible vLLM endpoint.
///
/// `base_url` is the server root, for example `http://127.0.0.1:8000`; a
/// trailing `/` or `/v1` is accepted and removed, so the same value works
/// for the chat endpoint (`/v1/chat/completions`) and `/metrics`.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub base_url: String,
    pub model: String,
    pub api_key: Option<ApiKey>,
}

impl Endpoint {
    /// The server root without a trailing `/` or `/v1`.
    pub fn root(&self) -> &str {
        let trimmed = self.base_url.trim_end_matches('/');
        trimmed.strip_suffix("/v1").unwrap_or(trimmed)
    }

    pub fn chat_completions_url(&self) -> String {
        format!("{}/v1/chat/completions", self.root())
    }

    pub fn metrics_url(&self) -> String {
        format!("{}/metrics", self.root())
    }
}
