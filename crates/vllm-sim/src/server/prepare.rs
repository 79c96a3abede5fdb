//! Request preparation: a generation request's JSON becomes a validated
//! [`Prepared`] (prompt ids, the script of what the model writes, stream
//! options), or the error vLLM 0.32 answers. The checks run in vLLM's order,
//! so a request with several faults gets the error vLLM gives first.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::Endpoint;
use super::prompt::{self, ChatPrompt};
use super::reply::error_response;
use super::state::SimState;
use crate::config::{OutputLenMode, ServeConfig};
use crate::script::{self, Delta, Script, ScriptInput, ScriptToken, Tool, ToolChoice};
use crate::text::{self, Rng};

/// A parsed, validated generation request.
#[derive(Debug)]
pub(super) struct Prepared {
    pub(super) prompt: Vec<u32>,
    pub(super) script: Script,
    pub(super) stream: bool,
    pub(super) include_usage: bool,
}

/// Why a generation request is refused. The messages are vLLM 0.32's, word
/// for word (clients and the contract checks compare them), so they keep
/// vLLM's capitals.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(super) enum RequestError {
    #[error("Input should be a valid dictionary or object to extract fields from")]
    NotAnObject,
    #[error("The model `{model}` does not exist. Valid aliases: {aliases}.")]
    UnknownModel { model: String, aliases: String },
    #[error("Stream options can only be defined when `stream=True`. (parameter=stream_options)")]
    StreamOptionsWithoutStream,
    #[error("Field required: {0}")]
    MissingField(&'static str),
    #[error("Invalid tool_choice: {0}")]
    InvalidToolChoice(Value),
    #[error(
        "\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set"
    )]
    AutoToolChoiceNeedsFlags,
    #[error("Tool '{0}' has not been passed in `tools`.")]
    UnknownTool(String),
    // vLLM 0.32 stops tokenizing at max_model_len + 1, so the count it
    // reports is always that, not the real length.
    #[error(
        "This model's maximum context length is {max_len} tokens. However, your prompt contains at least {over} input tokens, which exceeds this limit even without any output tokens. Please reduce the length of the input prompt. (parameter=input_tokens, value={over})",
        over = .max_len + 1
    )]
    PromptTooLong { max_len: usize },
    #[error("max_tokens must be a non-negative integer")]
    InvalidMaxTokens,
    #[error(
        "This model's maximum context length is {max_len} tokens. However, you requested {requested} output tokens and your prompt contains {prompt} input tokens, for a total of {total} tokens. Please reduce the length of the input prompt or the number of requested output tokens. (parameter=max_tokens, value={requested})",
        total = u128::from(*.requested) + *.prompt as u128
    )]
    TooManyTokens {
        max_len: usize,
        requested: u64,
        prompt: usize,
    },
    #[error(
        "This model's maximum context length is {max_len} tokens and your prompt uses all of them."
    )]
    NoRoomForOutput { max_len: usize },
}

impl RequestError {
    fn status(&self) -> StatusCode {
        match self {
            RequestError::UnknownModel { .. } => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The `param` of vLLM's error body.
    fn param(&self) -> Option<&'static str> {
        match self {
            RequestError::UnknownModel { .. } => Some("model"),
            RequestError::StreamOptionsWithoutStream => Some("stream_options"),
            RequestError::PromptTooLong { .. } => Some("input_tokens"),
            RequestError::TooManyTokens { .. } => Some("max_tokens"),
            _ => None,
        }
    }

    /// vLLM's error reply.
    pub(super) fn response(&self) -> Response {
        error_response(self.status(), &self.to_string(), self.param())
    }
}

type Object = Map<String, Value>;

/// Validates a generation request and writes its script.
pub(super) fn prepare(
    state: &SimState,
    req: &Value,
    endpoint: Endpoint,
) -> Result<Prepared, RequestError> {
    let cfg = &state.cfg;
    let obj = req.as_object().ok_or(RequestError::NotAnObject)?;
    check_model(cfg, obj)?;
    let (stream, include_usage) = stream_options(cfg, obj)?;
    let tools_json = obj
        .get("tools")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let prompt = prompt_of(endpoint, obj, tools_json)?;
    let tool_choice = tool_choice(obj.get("tool_choice"), !tools_json.is_empty())?;
    if endpoint == Endpoint::Chat
        && tool_choice == ToolChoice::Auto
        && !tools_json.is_empty()
        && (!cfg.enable_auto_tool_choice || cfg.tool_call_parser.is_none())
    {
        return Err(RequestError::AutoToolChoiceNeedsFlags);
    }
    let tools = offered_tools(tools_json);
    if let ToolChoice::Named(name) = &tool_choice {
        if !tools.iter().any(|t| &t.name == name) {
            return Err(RequestError::UnknownTool(name.clone()));
        }
    }
    let max_tokens = max_tokens(obj, prompt.ids.len(), state.plan.max_model_len)?;
    let ask = Ask {
        endpoint,
        // Completions never call tools.
        tools: if endpoint == Endpoint::Chat {
            tools
        } else {
            Vec::new()
        },
        tool_choice,
        max_tokens,
        ignore_eos: obj
            .get("ignore_eos")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        thinking_allowed: req
            .pointer("/chat_template_kwargs/enable_thinking")
            .and_then(Value::as_bool)
            != Some(false),
        seed: obj.get("seed").and_then(Value::as_u64),
    };
    let script = write_script(cfg, &prompt, ask);
    Ok(Prepared {
        prompt: prompt.ids,
        script,
        stream,
        include_usage,
    })
}

/// A `model` that is given must be one of the served names.
fn check_model(cfg: &ServeConfig, obj: &Object) -> Result<(), RequestError> {
    match obj.get("model").and_then(Value::as_str) {
        Some(model) if !cfg.served_model_names.iter().any(|m| m == model) => {
            Err(RequestError::UnknownModel {
                model: model.to_owned(),
                aliases: cfg.served_model_names.join(", "),
            })
        }
        _ => Ok(()),
    }
}

/// `(stream, include_usage)`; `stream_options` needs `stream: true`.
/// `--enable-force-include-usage` adds usage to every stream.
fn stream_options(cfg: &ServeConfig, obj: &Object) -> Result<(bool, bool), RequestError> {
    let stream = obj.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let options = obj.get("stream_options").filter(|v| !v.is_null());
    if options.is_some() && !stream {
        return Err(RequestError::StreamOptionsWithoutStream);
    }
    let include_usage = options
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
        || cfg.enable_force_include_usage;
    Ok((stream, include_usage))
}

/// The prompt's ids: the chat template over `messages`, or `prompt`.
fn prompt_of(
    endpoint: Endpoint,
    obj: &Object,
    tools_json: &[Value],
) -> Result<ChatPrompt, RequestError> {
    match endpoint {
        Endpoint::Chat => {
            let messages = obj
                .get("messages")
                .and_then(Value::as_array)
                .ok_or(RequestError::MissingField("messages"))?;
            Ok(prompt::chat_prompt(messages, tools_json))
        }
        Endpoint::Completion => {
            let ids = prompt::completion_prompt(obj.get("prompt"))
                .ok_or(RequestError::MissingField("prompt"))?;
            Ok(ChatPrompt {
                ids,
                called: Vec::new(),
            })
        }
    }
}

/// `tool_choice`; vLLM defaults it to `auto` when tools are given.
fn tool_choice(value: Option<&Value>, has_tools: bool) -> Result<ToolChoice, RequestError> {
    Ok(match value {
        None | Some(Value::Null) if has_tools => ToolChoice::Auto,
        None | Some(Value::Null) => ToolChoice::None,
        Some(Value::String(s)) if s == "none" => ToolChoice::None,
        Some(Value::String(s)) if s == "auto" => ToolChoice::Auto,
        Some(Value::String(s)) if s == "required" => ToolChoice::Required,
        Some(v) => match v.pointer("/function/name").and_then(Value::as_str) {
            Some(name) => ToolChoice::Named(name.to_owned()),
            None => return Err(RequestError::InvalidToolChoice(v.clone())),
        },
    })
}

/// The request's function tools that have a name.
fn offered_tools(tools_json: &[Value]) -> Vec<Tool> {
    tools_json
        .iter()
        .filter_map(|t| {
            let f = t.get("function")?;
            Some(Tool {
                name: f.get("name")?.as_str()?.to_owned(),
                parameters: f
                    .get("parameters")
                    .cloned()
                    .unwrap_or(json!({"type": "object"})),
            })
        })
        .collect()
}

/// The output budget: `max_completion_tokens` (or `max_tokens`) if given,
/// else what the context leaves; the prompt and the request must fit
/// `max_model_len`.
fn max_tokens(obj: &Object, prompt_len: usize, max_len: usize) -> Result<usize, RequestError> {
    if prompt_len > max_len {
        return Err(RequestError::PromptTooLong { max_len });
    }
    let requested = obj
        .get("max_completion_tokens")
        .filter(|v| !v.is_null())
        .or_else(|| obj.get("max_tokens").filter(|v| !v.is_null()))
        .map(|v| v.as_u64().ok_or(RequestError::InvalidMaxTokens))
        .transpose()?;
    let room = max_len - prompt_len;
    if let Some(m) = requested {
        if usize::try_from(m).map_or(true, |m| m > room) {
            return Err(RequestError::TooManyTokens {
                max_len,
                requested: m,
                prompt: prompt_len,
            });
        }
    }
    if room == 0 {
        return Err(RequestError::NoRoomForOutput { max_len });
    }
    // `requested` fits `room` (checked above), so it fits a usize.
    Ok(requested.map_or(room, |m| m as usize).max(1))
}

/// What a validated request asks the model for.
struct Ask {
    endpoint: Endpoint,
    tools: Vec<Tool>,
    tool_choice: ToolChoice,
    max_tokens: usize,
    ignore_eos: bool,
    /// False with `chat_template_kwargs.enable_thinking: false`.
    thinking_allowed: bool,
    /// The request's own `seed`.
    seed: Option<u64>,
}

/// The script of what the model writes: seeded by the request's `seed`,
/// else by the server's seeds and the prompt, so the same prompt gets the
/// same answer.
fn write_script(cfg: &ServeConfig, prompt: &ChatPrompt, ask: Ask) -> Script {
    let seed = match ask.seed {
        Some(s) => text::mix(&[s]),
        None => {
            let bytes: Vec<u8> = prompt.ids.iter().flat_map(|t| t.to_le_bytes()).collect();
            text::mix(&[cfg.sim.seed, cfg.seed, grid_core::fnv1a64(&bytes)])
        }
    };
    let mut rng = Rng::new(seed ^ 0x1e57);
    // Lengths beyond max_tokens are cut anyway: drawing only max_tokens
    // words gives the same first words without building the rest.
    let prose_len = if ask.ignore_eos || cfg.sim.output_len_mode == OutputLenMode::Max {
        ask.max_tokens
    } else {
        rng.range(
            cfg.sim.output_len_min,
            cfg.sim.output_len_max.max(cfg.sim.output_len_min),
        )
        .min(ask.max_tokens)
    };
    let mut script = script::build(&ScriptInput {
        thinks: ask.endpoint == Endpoint::Chat && cfg.model_thinks() && ask.thinking_allowed,
        thinking_unclosed: cfg.sim.thinking_unclosed,
        reasoning_parser: cfg.reasoning_parser.is_some(),
        reasoning_tokens: cfg.sim.reasoning_tokens.min(ask.max_tokens),
        tools: ask.tools,
        tool_choice: ask.tool_choice,
        called_tools: prompt.called.clone(),
        tool_format: cfg.sim.tool_format,
        tool_call_parser: cfg.tool_call_parser.clone(),
        prose_len,
        max_tokens: ask.max_tokens,
        seed,
    });
    let writes_prose = script.tool_calls.is_empty();
    if ask.ignore_eos && script.tokens.len() < ask.max_tokens && writes_prose {
        // ignore_eos: keep writing until max_tokens.
        let extra = text::prose_tokens(&mut rng, ask.max_tokens - script.tokens.len());
        script.tokens.extend(extra.into_iter().map(|w| ScriptToken {
            delta: Delta::Content(w.clone()),
            text: w,
        }));
        script.finish_reason = "length";
    } else if script.finish_reason == "stop"
        && script.tokens.len() >= ask.max_tokens
        && writes_prose
    {
        script.finish_reason = "length";
    }
    script
}
