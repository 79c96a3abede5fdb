//! Where the battery sends its requests: base URL, served model name, API key.

use grid_core::Secret;

/// An OpenAI-compatible vLLM endpoint.
///
/// `base_url` is the server root, for example `http://127.0.0.1:8000`; a
/// trailing `/` or `/v1` is accepted and removed, so the same value works
/// for the chat endpoint (`/v1/chat/completions`) and `/metrics`. The key
/// is a [`Secret`]: it is sent in the `Authorization` header and nowhere
/// else, and never printed.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub base_url: String,
    pub model: String,
    pub api_key: Option<Secret>,
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
