//! One generation request in flight: admission (readiness, JSON, the
//! checks of [`super::prepare`]), the injected faults, the hand-over to the
//! engine, and [`Ctx`], the state the streaming and non-streaming replies
//! share while the engine produces tokens.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;

use super::Endpoint;
use super::body::{Counts, Head};
use super::prepare::{Prepared, prepare};
use super::reply::{error_response, malformed_json};
use super::state::SimState;
use super::{full, stream};
use crate::engine::{EngineEvent, EngineRequest};
use crate::metrics::Finished;
use crate::script::{Delta, Script};
use crate::text::{self, Rng};
use crate::truth::{RecordHandle, RequestRecord};

/// `POST /v1/chat/completions` and `POST /v1/completions`.
pub(super) async fn generate(state: Arc<SimState>, body: Bytes, endpoint: Endpoint) -> Response {
    let received = Instant::now();
    if !state.is_ready() {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "The server is not ready.",
            None,
        );
    }
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return malformed_json(&body, &e),
    };
    let n = state.next_request();
    let prepared = match prepare(&state, &req, endpoint) {
        Ok(p) => p,
        Err(e) => return e.response(),
    };
    let id = format!(
        "{}-{:016x}",
        endpoint.id_prefix(),
        text::mix(&[state.start_unix_ms, n])
    );
    let record = state.truth.open(RequestRecord {
        id: id.clone(),
        endpoint: endpoint.record_name(),
        stream: prepared.stream,
        status: "in_flight",
        received_us: state.truth.us(received),
        prompt_tokens: prepared.prompt.len(),
        ..RequestRecord::default()
    });
    let faults = match Faults::roll(&state, n, &prepared, &record).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let submitted = state.engine.submit(EngineRequest {
        id: n,
        prompt: prepared.prompt.clone(),
        output: prepared.script.token_ids(),
        received,
        events: tx,
    });
    if !submitted {
        set_status(&record, "error", None);
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The engine is not running.",
            None,
        );
    }
    let stream = prepared.stream;
    let ctx = Ctx {
        state,
        endpoint,
        id,
        prompt_tokens: prepared.prompt.len(),
        script: prepared.script,
        include_usage: prepared.include_usage,
        rx,
        record,
        received,
        scheduled: None,
        cached_tokens: 0,
        token_instants: Vec::new(),
        preemptions: 0,
        done: false,
        drop_at: faults.drop_at,
        malformed_at: faults.malformed_at,
        fail_next: false,
    };
    if stream {
        stream::response(ctx)
    } else {
        full::response(ctx).await
    }
}

/// The `--sim-*` faults that hit one request, drawn from the server's seed
/// and the request's number.
struct Faults {
    /// Drop the connection at this output token.
    drop_at: Option<usize>,
    /// Write a cut-off chunk before this output token.
    malformed_at: Option<usize>,
}

impl Faults {
    /// Hangs for good (`--sim-hang-after-requests`), answers the simulated
    /// 500 as `Err`, or says which stream faults apply.
    async fn roll(
        state: &SimState,
        n: u64,
        prepared: &Prepared,
        record: &RecordHandle,
    ) -> Result<Faults, Response> {
        let sim = &state.cfg.sim;
        if sim.hang_after_requests.is_some_and(|h| n > h) {
            set_status(record, "hung", Some("hang"));
            std::future::pending::<()>().await;
        }
        let hit = |rate: f64, salt: u64| {
            rate > 0.0 && Rng::new(text::mix(&[sim.seed, n, salt])).next_f64() < rate
        };
        if hit(sim.http_500_rate, 500) {
            set_status(record, "error", Some("http_500"));
            return Err(error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal server error (simulated by --sim-http-500-rate)",
                None,
            ));
        }
        let middle = prepared.script.tokens.len() / 2;
        Ok(Faults {
            drop_at: hit(sim.drop_mid_stream_rate, 0xd).then_some(middle),
            malformed_at: hit(sim.malformed_sse_rate, 0xa).then_some(middle),
        })
    }
}

fn set_status(record: &RecordHandle, status: &'static str, fault: Option<&'static str>) {
    if let Ok(mut r) = record.lock() {
        r.status = status;
        if fault.is_some() {
            r.fault = fault;
        }
    }
}

/// Per-request state shared by the streaming and non-streaming paths.
pub(super) struct Ctx {
    pub(super) state: Arc<SimState>,
    pub(super) endpoint: Endpoint,
    pub(super) id: String,
    pub(super) prompt_tokens: usize,
    pub(super) script: Script,
    pub(super) include_usage: bool,
    pub(super) rx: UnboundedReceiver<EngineEvent>,
    pub(super) record: RecordHandle,
    received: Instant,
    scheduled: Option<Instant>,
    cached_tokens: usize,
    pub(super) token_instants: Vec<Instant>,
    preemptions: u32,
    pub(super) done: bool,
    pub(super) drop_at: Option<usize>,
    pub(super) malformed_at: Option<usize>,
    /// The simulated drop happens on the next poll (after a partial write).
    pub(super) fail_next: bool,
}

impl Ctx {
    /// Takes an engine event; the index of the output token it produced.
    pub(super) fn on_event(&mut self, ev: EngineEvent) -> Option<usize> {
        match ev {
            EngineEvent::Scheduled { cached_tokens, at } => {
                self.scheduled = Some(at);
                self.cached_tokens = cached_tokens;
                if let Ok(mut r) = self.record.lock() {
                    r.scheduled_us = Some(self.state.truth.us(at));
                    r.cached_tokens = cached_tokens;
                }
                None
            }
            EngineEvent::Preempted => {
                self.preemptions += 1;
                if let Ok(mut r) = self.record.lock() {
                    r.preemptions = self.preemptions;
                }
                None
            }
            EngineEvent::Token { index, at } => {
                self.token_instants.push(at);
                Some(index)
            }
        }
    }

    /// Ends the request once: its ground-truth record, and for a finished
    /// one the metrics and the crash countdown.
    pub(super) fn finish(&mut self, status: &'static str, fault: Option<&'static str>) {
        if self.done {
            return;
        }
        self.done = true;
        let now = Instant::now();
        if let Ok(mut r) = self.record.lock() {
            r.status = status;
            if fault.is_some() {
                r.fault = fault;
            }
            r.end_us = Some(self.state.truth.us(now));
            r.completion_tokens = self.token_instants.len();
        }
        if status != "finished" {
            return;
        }
        let secs = |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64();
        let first = self.token_instants.first().copied();
        let last = self.token_instants.last().copied().unwrap_or(now);
        let scheduled = self.scheduled.unwrap_or(self.received);
        self.state.metrics.record(&Finished {
            ttft: first.map(|f| secs(self.received, f)),
            itls: self
                .token_instants
                .windows(2)
                .map(|w| secs(w[0], w[1]))
                .collect(),
            e2e: secs(self.received, last),
            queue: secs(self.received, scheduled),
            prefill: first.map(|f| secs(scheduled, f)).unwrap_or(0.0),
            decode: first.map(|f| secs(f, last)).unwrap_or(0.0),
            prompt_tokens: self.prompt_tokens,
            cached_tokens: self.cached_tokens,
            generation_tokens: self.token_instants.len(),
            finish_reason: self.script.finish_reason,
        });
        self.state.request_finished();
    }

    /// What `usage` reports.
    pub(super) fn counts(&self) -> Counts {
        let cfg = &self.state.cfg;
        let chat = self.endpoint == Endpoint::Chat;
        Counts {
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.script.tokens.len(),
            cached_tokens: self.cached_tokens,
            prompt_details: cfg
                .enable_prompt_tokens_details
                .then(|| chat.then(|| self.created_cache_tokens())),
            // With a reasoning parser, chat usage counts the reasoning
            // tokens (streaming and not); otherwise vLLM writes null.
            reasoning_tokens: (chat && cfg.reasoning_parser.is_some()).then(|| {
                self.script
                    .tokens
                    .iter()
                    .filter(|t| matches!(t.delta, Delta::Reasoning(_)))
                    .count()
            }),
        }
    }

    /// Prompt tokens this request added to the prefix cache: the full
    /// blocks of the prompt minus those it found cached; 0 with caching off.
    fn created_cache_tokens(&self) -> usize {
        if !self.state.cfg.enable_prefix_caching {
            return 0;
        }
        let block = self.state.plan.block_size.max(1);
        (self.prompt_tokens / block * block).saturating_sub(self.cached_tokens)
    }

    /// The fields every chunk starts with.
    pub(super) fn head(&self) -> Head<'_> {
        Head {
            id: &self.id,
            object: self.endpoint.chunk_object(),
            created: self.state.created,
            model: self.state.cfg.served_model_name(),
        }
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        // The client went away (or the server stopped) before the end.
        self.finish("aborted", None);
    }
}
