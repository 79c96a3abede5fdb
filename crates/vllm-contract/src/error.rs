//! A failed check: one variant per operation that failed, or the contract
//! point the reply broke.

/// A failed check.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("{check}: request to {url} failed")]
    Request {
        check: &'static str,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{check}: cannot read the reply from {url}")]
    Body {
        check: &'static str,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{check}: {url} answered {got}, expected {expected}; body: {body}")]
    Status {
        check: &'static str,
        url: String,
        expected: u16,
        got: u16,
        body: String,
    },
    #[error("{check}: reply is not JSON: {body}")]
    NotJson {
        check: &'static str,
        body: String,
        #[source]
        source: serde_json::Error,
    },
    /// The reply broke the contract; `detail` says how.
    #[error("{check}: {detail}")]
    Shape { check: &'static str, detail: String },
}
