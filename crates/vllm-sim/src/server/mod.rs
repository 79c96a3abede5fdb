//! The OpenAI-compatible HTTP server, in vLLM's formats.
//!
//! Routes: `GET /health`, `GET /version`, `GET /v1/models`, `GET /metrics`,
//! `POST /v1/chat/completions`, `POST /v1/completions`, `POST /tokenize`,
//! `POST /reset_prefix_cache` (only with `VLLM_SERVER_DEV_MODE=1`, as in
//! vLLM), and the simulator's own `GET /sim/requests` (ground truth, see
//! [`crate::truth`]) and `GET /sim/info`. With `--api-key`, every `/v1/*`
//! path needs `Authorization: Bearer KEY` and answers 401
//! `{"error":"Unauthorized"}` otherwise; the other paths need no key.
//!
//! The rooms: [`routes`] (the router, auth, the small handlers), `prepare`
//! (a generation request becomes a validated prompt and script, or vLLM's
//! error), `request` (admission, faults, the engine hand-over and the state
//! of a request in flight), `stream` (SSE) and `full` (the JSON body), with
//! the reply shapes as serde types in `body`.

mod body;
mod full;
mod listen;
mod prepare;
mod prompt;
mod reply;
mod request;
pub mod routes;
mod state;
mod stream;

pub use listen::{bind, spawn_server};
pub use reply::error_response;
pub use routes::app;
pub use state::{SimError, SimState};

/// The fingerprint vLLM 0.32 puts in replies; the suffix marks the simulator.
pub const SYSTEM_FINGERPRINT: &str = "vllm-0.32.0-5133504d";

/// The two generation endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    /// `/v1/chat/completions`
    Chat,
    /// `/v1/completions`
    Completion,
}

impl Endpoint {
    /// The prefix of reply ids.
    fn id_prefix(self) -> &'static str {
        match self {
            Endpoint::Chat => "chatcmpl",
            Endpoint::Completion => "cmpl",
        }
    }

    /// The `object` of a stream's chunks.
    fn chunk_object(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat.completion.chunk",
            Endpoint::Completion => "text_completion",
        }
    }

    /// The `endpoint` of a ground-truth record.
    fn record_name(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat",
            Endpoint::Completion => "completion",
        }
    }
}
