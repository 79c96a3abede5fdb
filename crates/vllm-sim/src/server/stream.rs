//! The streaming reply: SSE chunks written as the engine produces tokens,
//! every token already available batched into one write, and the simulated
//! stream faults (a dropped connection, a cut-off chunk).

use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::response::Response;
use futures_util::stream;
use serde::Serialize;

use super::body::{
    Chunk, Delta, DeltaChoice, Field, FunctionDelta, NoTail, RoleChoice, RoleTail, TextChoice,
    ToolCallDelta, Usage, UsageTail,
};
use super::reply::with_content_type;
use super::request::Ctx;
use super::{Endpoint, SYSTEM_FINGERPRINT};
use crate::engine::EngineEvent;
use crate::script;

/// Why a stream ends early; hyper drops the connection on it.
#[derive(Debug, thiserror::Error)]
enum StreamError {
    #[error("connection dropped (simulated by --sim-drop-mid-stream-rate)")]
    Dropped,
    #[error("the engine stopped before the stream ended")]
    EngineStopped,
    #[error("cannot serialise an SSE chunk")]
    Serialise(#[source] serde_json::Error),
}

/// What the body stream waits on next.
pub(super) enum Next {
    Event(Option<EngineEvent>),
    Crashed,
}

impl Ctx {
    /// The next engine event, or the crash.
    pub(super) async fn next(&mut self) -> Next {
        let crashed = self.state.crashed.clone();
        tokio::select! {
            ev = self.rx.recv() => Next::Event(ev),
            _ = crashed.cancelled() => Next::Crashed,
        }
    }

    /// Ends the request as an error: a crash when the engine crashed.
    pub(super) fn finish_stopped(&mut self) {
        let crashed = self.state.crashed.is_cancelled();
        self.finish("error", crashed.then_some("crash"));
    }
}

/// A `text/event-stream` reply fed by the engine's events.
pub(super) fn response(ctx: Ctx) -> Response {
    let body = stream::unfold(ctx, |mut ctx| async move {
        if ctx.fail_next {
            ctx.fail_next = false;
            return Some((Err(StreamError::Dropped), ctx));
        }
        if ctx.done {
            return None;
        }
        let item = next_write(&mut ctx).await;
        Some((item, ctx))
    });
    with_content_type(
        Response::new(Body::from_stream(body)),
        "text/event-stream; charset=utf-8",
    )
}

/// The next write of the stream: every token the engine has produced by
/// now, as SSE bytes, or why the stream ends.
async fn next_write(ctx: &mut Ctx) -> Result<Bytes, StreamError> {
    loop {
        let ev = match ctx.next().await {
            Next::Event(Some(ev)) => ev,
            Next::Crashed | Next::Event(None) => {
                ctx.finish_stopped();
                return Err(StreamError::EngineStopped);
            }
        };
        let Some(first_index) = ctx.on_event(ev) else {
            continue;
        };
        let delay = ctx.state.cfg.sim.first_chunk_delay_ms;
        if first_index == 0 && delay > 0.0 {
            // Host noise after the server's own measurement (the engine's
            // token instant), before the client can see the token.
            tokio::time::sleep(crate::engine::clock::saturating_secs(delay / 1000.0)).await;
        }
        // Batch every token already available into one write.
        let mut indices = vec![first_index];
        while let Ok(ev) = ctx.rx.try_recv() {
            if let Some(i) = ctx.on_event(ev) {
                indices.push(i);
            }
        }
        let mut out = Vec::new();
        let mut tokens_written = 0usize;
        let mut last = false;
        for index in indices {
            if ctx.drop_at.is_some_and(|d| index >= d) && index + 1 < ctx.script.tokens.len() {
                ctx.finish("dropped", Some("drop_mid_stream"));
                if out.is_empty() {
                    return Err(StreamError::Dropped);
                }
                // Write what we have, then drop on the next poll.
                ctx.fail_next = true;
                return Ok(Bytes::from(out));
            }
            if ctx.malformed_at == Some(index) {
                cut_off_chunk(ctx, &mut out).map_err(StreamError::Serialise)?;
                if let Ok(mut r) = ctx.record.lock() {
                    r.fault = Some("malformed_sse");
                }
            }
            let before = out.len();
            token_events(ctx, index, &mut out).map_err(StreamError::Serialise)?;
            if index == 0 && out.len() > before {
                if let Ok(mut r) = ctx.record.lock() {
                    r.first_chunk_us = Some(ctx.state.truth.us(Instant::now()));
                }
            }
            let carries_token = !matches!(ctx.script.tokens[index].delta, script::Delta::Nothing)
                || ctx.endpoint == Endpoint::Completion;
            tokens_written += usize::from(carries_token);
            last |= index + 1 == ctx.script.tokens.len();
        }
        if let Ok(mut r) = ctx.record.lock() {
            // Tokens batched into one write share its instant.
            let at = ctx.state.truth.us(Instant::now());
            r.token_write_us
                .extend(std::iter::repeat_n(at, tokens_written));
        }
        if last {
            ctx.finish("finished", None);
        }
        if !out.is_empty() {
            return Ok(Bytes::from(out));
        }
    }
}

/// Appends `data: JSON\n\n`.
fn event(out: &mut Vec<u8>, chunk: &impl Serialize) -> serde_json::Result<()> {
    out.extend_from_slice(b"data: ");
    serde_json::to_writer(&mut *out, chunk)?;
    out.extend_from_slice(b"\n\n");
    Ok(())
}

/// `--sim-malformed-sse-rate`: a chunk cut off inside its first choice.
fn cut_off_chunk(ctx: &Ctx, out: &mut Vec<u8>) -> serde_json::Result<()> {
    out.extend_from_slice(b"data: ");
    serde_json::to_writer(&mut *out, &ctx.head())?;
    out.pop(); // the head's closing brace
    out.extend_from_slice(b",\"choices\":[{\"index\":0,\"del\n\n");
    Ok(())
}

/// The SSE events for output token `index` (none while a parser buffers a
/// tag), and after the last token the usage chunk and `[DONE]`.
fn token_events(ctx: &Ctx, index: usize, out: &mut Vec<u8>) -> serde_json::Result<()> {
    let last = index + 1 == ctx.script.tokens.len();
    let token = &ctx.script.tokens[index];
    let head = ctx.head();
    let finish_reason = last.then_some(ctx.script.finish_reason);
    match ctx.endpoint {
        Endpoint::Chat => {
            if index == 0 {
                let choice = RoleChoice {
                    index: 0,
                    delta: Delta::role(),
                    logprobs: (),
                    finish_reason: (),
                };
                event(out, &chunk(head, [choice], role_tail()))?;
            }
            let delta = delta(ctx, &token.delta);
            let choice = |delta, finish_reason, stop_reason| DeltaChoice {
                index: 0,
                delta,
                logprobs: (),
                finish_reason,
                stop_reason,
                token_ids: (),
            };
            // The closing `delta: {}` of a tool call (or of a token the
            // parser swallowed); vLLM 0.32 sends `stop_reason: null` there.
            let closing = || choice(Delta::default(), finish_reason, Field::Null);
            match delta {
                Some(d) if !last => event(
                    out,
                    &chunk(head, [choice(d, None, Field::Absent)], NoTail {}),
                )?,
                Some(d) if ctx.script.tool_calls.is_empty() => {
                    let stop = Field::from(ctx.script.stop_reason);
                    event(
                        out,
                        &chunk(head, [choice(d, finish_reason, stop)], NoTail {}),
                    )?;
                }
                Some(d) => {
                    event(
                        out,
                        &chunk(head, [choice(d, None, Field::Absent)], NoTail {}),
                    )?;
                    event(out, &chunk(head, [closing()], NoTail {}))?;
                }
                None if last => event(out, &chunk(head, [closing()], NoTail {}))?,
                None => {}
            }
        }
        Endpoint::Completion => {
            let choice = TextChoice {
                index: 0,
                text: &token.text,
                logprobs: (),
                finish_reason,
                stop_reason: if last { ctx.script.stop_reason } else { None },
                token_ids: (),
            };
            event(out, &chunk(head, [choice], NoTail {}))?;
        }
    }
    if last {
        if ctx.include_usage {
            let tail = UsageTail {
                usage: Usage::new(&ctx.counts(), false),
                system_fingerprint: SYSTEM_FINGERPRINT,
            };
            event(out, &chunk(head, [(); 0], tail))?;
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
    }
    Ok(())
}

fn chunk<C, T>(head: super::body::Head<'_>, choices: C, tail: T) -> Chunk<'_, C, T> {
    Chunk {
        head,
        choices,
        tail,
    }
}

fn role_tail() -> RoleTail {
    RoleTail {
        prompt_token_ids: (),
        prompt_text: (),
    }
}

/// The chunk delta of a script token; None while a parser buffers.
fn delta<'a>(ctx: &Ctx, delta: &'a script::Delta) -> Option<Delta<'a>> {
    Some(match delta {
        script::Delta::Nothing => return None,
        script::Delta::Content(c) => Delta {
            content: Field::Value(c),
            ..Delta::default()
        },
        script::Delta::Reasoning(r) => Delta::reasoning(r, ctx.state.cfg.sim.reasoning_field),
        script::Delta::ToolStart { index, id, name } => Delta::tool_call(ToolCallDelta {
            id: Some(id),
            kind: Some("function"),
            index: *index,
            function: FunctionDelta {
                name: Some(name),
                arguments: None,
            },
        }),
        script::Delta::ToolArgs { index, text } => Delta::tool_call(ToolCallDelta {
            id: None,
            kind: None,
            index: *index,
            function: FunctionDelta {
                name: None,
                arguments: Some(text),
            },
        }),
    })
}
