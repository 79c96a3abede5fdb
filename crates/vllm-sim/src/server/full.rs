//! The non-streaming reply: one JSON body once the engine has produced the
//! last token (or a dropped connection, for the simulated faults).

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::stream;

use super::body::{
    ChatChoice, ChatCompletion, Field, Function, Head, Message, TextCompletion,
    TextCompletionChoice, ToolCall, Usage,
};
use super::reply::{error_response, with_content_type};
use super::request::Ctx;
use super::stream::Next;
use super::{Endpoint, SYSTEM_FINGERPRINT};
use crate::config::ReasoningField;

/// Waits for every token, then answers the whole body.
pub(super) async fn response(mut ctx: Ctx) -> Response {
    let total = ctx.script.tokens.len();
    let mut produced = 0;
    while produced < total {
        match ctx.next().await {
            Next::Event(Some(ev)) => {
                if let Some(index) = ctx.on_event(ev) {
                    produced = index + 1;
                    if let Ok(mut r) = ctx.record.lock() {
                        if let Some(at) = ctx.token_instants.last() {
                            r.token_write_us.push(ctx.state.truth.us(*at));
                        }
                    }
                }
            }
            Next::Crashed | Next::Event(None) => {
                ctx.finish_stopped();
                return dropped_connection();
            }
        }
    }
    if ctx.drop_at.is_some() {
        ctx.finish("dropped", Some("drop_mid_stream"));
        return dropped_connection();
    }
    match body(&ctx) {
        Ok(body) => {
            ctx.finish("finished", None);
            with_content_type((StatusCode::OK, body).into_response(), "application/json")
        }
        Err(e) => {
            ctx.finish("error", None);
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot serialise the reply: {e}"),
                None,
            )
        }
    }
}

/// The `chat.completion` or `text_completion` body.
fn body(ctx: &Ctx) -> serde_json::Result<String> {
    let script = &ctx.script;
    let usage = Usage::new(&ctx.counts(), true);
    let head = |object| Head {
        object,
        ..ctx.head()
    };
    match ctx.endpoint {
        Endpoint::Chat => {
            let reasoning = script.reasoning();
            let text = script.content();
            // vLLM 0.32: a reasoning-only answer has `content: null`.
            let content = if text.is_empty() && reasoning.is_some() && script.tool_calls.is_empty()
            {
                None
            } else {
                Some(text)
            };
            let field = Field::from(reasoning.as_deref());
            let (reasoning, reasoning_content) = match ctx.state.cfg.sim.reasoning_field {
                ReasoningField::Both => (field, field),
                ReasoningField::Reasoning => (field, Field::Absent),
                ReasoningField::ReasoningContent => (Field::Absent, field),
            };
            let message = Message {
                role: "assistant",
                content,
                refusal: (),
                annotations: (),
                audio: (),
                function_call: (),
                tool_calls: script
                    .tool_calls
                    .iter()
                    .map(|c| ToolCall {
                        id: &c.id,
                        kind: "function",
                        function: Function {
                            name: &c.name,
                            arguments: &c.arguments,
                        },
                    })
                    .collect(),
                reasoning,
                reasoning_content,
            };
            serde_json::to_string(&ChatCompletion {
                head: head("chat.completion"),
                choices: [ChatChoice {
                    index: 0,
                    message,
                    logprobs: (),
                    finish_reason: script.finish_reason,
                    stop_reason: script.stop_reason,
                    token_ids: (),
                }],
                service_tier: (),
                system_fingerprint: SYSTEM_FINGERPRINT,
                usage,
                prompt_logprobs: (),
                prompt_token_ids: (),
                kv_transfer_params: (),
            })
        }
        Endpoint::Completion => serde_json::to_string(&TextCompletion {
            head: head("text_completion"),
            choices: [TextCompletionChoice {
                index: 0,
                text: script.tokens.iter().map(|t| t.text.as_str()).collect(),
                logprobs: (),
                finish_reason: script.finish_reason,
                stop_reason: script.stop_reason,
                token_ids: (),
                prompt_logprobs: (),
                prompt_token_ids: (),
            }],
            service_tier: (),
            system_fingerprint: SYSTEM_FINGERPRINT,
            usage,
            kv_transfer_params: (),
        }),
    }
}

/// A 200 whose body fails at once: the client sees the connection drop.
fn dropped_connection() -> Response {
    let body = stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other(
            "connection dropped (simulated by --sim-drop-mid-stream-rate)",
        ))
    });
    with_content_type(Response::new(Body::from_stream(body)), "application/json")
}
