//! What the simulated model "writes" for a request, token by token, and what
//! vLLM's parsers turn each token into (a content, reasoning or tool-call
//! delta, or nothing while a parser buffers a tag).
//!
//! * **Reasoning.** When the model thinks (`--reasoning-parser` set, or
//!   `--sim-thinking on`; a request's `chat_template_kwargs.enable_thinking:
//!   false` turns it off), it writes `<think>\n` + `--sim-reasoning-tokens`
//!   words + `\n</think>\n\n` first. With a reasoning parser these words are
//!   `reasoning` deltas (also `reasoning_content` only with
//!   `--sim-reasoning-field both`); without one the tags leak into `content`,
//!   as with real vLLM. With `--sim-thinking unclosed` the model never writes
//!   `</think>`: everything up to max_tokens is reasoning and no tool call is
//!   made, guided or not (vLLM starts tool grammars only after `</think>`).
//! * **Tool calls.** With `tools` and a tool choice that is not `none`, the
//!   model calls the first tool (in the request's order) that the history has
//!   not called yet; once every tool has been called and answered, it writes
//!   a prose answer. `required` always calls a tool; a named choice calls
//!   that one. Arguments are generated from the tool's JSON schema
//!   ([`crate::schema`]). The model writes calls in
//!   `--sim-tool-format` (hermes JSON by default, or Qwen3 XML); a
//!   `--tool-call-parser` of the matching family (hermes; qwen3_xml /
//!   qwen3_coder) turns them into `tool_calls` deltas: first
//!   `{index, id, type, function: {name}}`, then argument fragments. Any other
//!   parser leaves the raw tags in `content`. `required` and named choices use
//!   guided decoding in vLLM, so they give `tool_calls` whatever the parser.
//! * **Length.** Prose length is a seeded draw in
//!   `[--sim-output-len-min, --sim-output-len-max]` unless `ignore_eos` or
//!   `--sim-output-len-mode max`, and never exceeds `max_tokens`; a script cut
//!   by `max_tokens` finishes with `length`.

use serde_json::{Map, Value};

use crate::config::ToolFormat;
use crate::schema::generate_from_schema;
use crate::text::{Rng, prose_tokens, split_fragments, token_id};

/// What one output token turns into after vLLM's parsers.
#[derive(Debug, Clone, PartialEq)]
pub enum Delta {
    /// The parser buffers this token: no event.
    Nothing,
    Content(String),
    Reasoning(String),
    ToolStart {
        index: usize,
        id: String,
        name: String,
    },
    ToolArgs {
        index: usize,
        text: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScriptToken {
    pub text: String,
    pub delta: Delta,
}

/// A complete tool call, for non-streaming replies.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub tokens: Vec<ScriptToken>,
    pub finish_reason: &'static str,
    pub stop_reason: Option<u32>,
    pub tool_calls: Vec<ToolCall>,
}

impl Script {
    pub fn token_ids(&self) -> Vec<u32> {
        self.tokens.iter().map(|t| token_id(&t.text)).collect()
    }
    pub fn content(&self) -> String {
        self.tokens
            .iter()
            .filter_map(|t| match &t.delta {
                Delta::Content(c) => Some(c.as_str()),
                _ => None,
            })
            .collect()
    }
    pub fn reasoning(&self) -> Option<String> {
        let r: String = self
            .tokens
            .iter()
            .filter_map(|t| match &t.delta {
                Delta::Reasoning(c) => Some(c.as_str()),
                _ => None,
            })
            .collect();
        (!r.is_empty()).then_some(r)
    }
}

/// A tool offered in the request.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub parameters: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ToolChoice {
    None,
    Auto,
    Required,
    Named(String),
}

/// Everything the script depends on.
#[derive(Debug, Clone)]
pub struct ScriptInput {
    pub thinks: bool,
    /// The model never writes `</think>` (`--sim-thinking unclosed`): it
    /// reasons until max_tokens, and no guided tool call ever starts.
    pub thinking_unclosed: bool,
    pub reasoning_parser: bool,
    pub reasoning_tokens: usize,
    pub tools: Vec<Tool>,
    pub tool_choice: ToolChoice,
    /// Tool names already called in the conversation history.
    pub called_tools: Vec<String>,
    pub tool_format: ToolFormat,
    pub tool_call_parser: Option<String>,
    pub prose_len: usize,
    pub max_tokens: usize,
    pub seed: u64,
}

fn parser_family(parser: &str) -> Option<ToolFormat> {
    match parser {
        "hermes" => Some(ToolFormat::Hermes),
        "qwen3_xml" | "qwen3_coder" => Some(ToolFormat::Qwen3Xml),
        _ => None,
    }
}

fn random_hex(rng: &mut Rng) -> String {
    format!("{:016x}", rng.next_u64())
}

fn raw(text: &str) -> ScriptToken {
    ScriptToken {
        text: text.to_owned(),
        delta: Delta::Nothing,
    }
}

/// Builds the script for one request.
pub fn build(input: &ScriptInput) -> Script {
    let mut rng = Rng::new(input.seed);
    let mut tokens: Vec<ScriptToken> = Vec::new();
    if input.thinks && input.thinking_unclosed {
        // vLLM applies tool grammars (`required`, named) only after
        // `</think>`; a model that never closes its thinking writes
        // reasoning until max_tokens and calls nothing.
        let max = input.max_tokens.max(1);
        let mut section = vec![raw("<think>"), raw("\n")];
        section.extend(
            prose_tokens(&mut rng, max.saturating_sub(2).max(1))
                .into_iter()
                .map(|w| ScriptToken {
                    delta: Delta::Reasoning(w.clone()),
                    text: w,
                }),
        );
        if !input.reasoning_parser {
            for t in &mut section {
                t.delta = Delta::Content(t.text.clone());
            }
        }
        section.truncate(max);
        return Script {
            tokens: section,
            finish_reason: "length",
            stop_reason: None,
            tool_calls: Vec::new(),
        };
    }
    if input.thinks {
        let words = prose_tokens(&mut rng, input.reasoning_tokens.max(1));
        let mut section = vec![raw("<think>"), raw("\n")];
        section.extend(words.into_iter().map(|w| ScriptToken {
            delta: Delta::Reasoning(w.clone()),
            text: w,
        }));
        section.extend([raw("\n"), raw("</think>"), raw("\n\n")]);
        if !input.reasoning_parser {
            for t in &mut section {
                t.delta = Delta::Content(t.text.clone());
            }
        }
        tokens.extend(section);
    }
    let tool = match &input.tool_choice {
        _ if input.tools.is_empty() => None,
        ToolChoice::None => None,
        ToolChoice::Named(name) => input.tools.iter().find(|t| &t.name == name),
        ToolChoice::Auto => input
            .tools
            .iter()
            .find(|t| !input.called_tools.contains(&t.name)),
        ToolChoice::Required => input
            .tools
            .iter()
            .find(|t| !input.called_tools.contains(&t.name))
            .or_else(|| input.tools.first()),
    };
    let mut tool_calls = Vec::new();
    let mut finish_reason = "stop";
    let mut stop_reason = None;
    if let Some(tool) = tool {
        let args = generate_from_schema(&tool.parameters, &mut rng);
        let arguments = serde_json::to_string(&args).unwrap_or_else(|_| "{}".into());
        let id = format!("chatcmpl-tool-{}", random_hex(&mut rng));
        let guided = matches!(
            input.tool_choice,
            ToolChoice::Required | ToolChoice::Named(_)
        );
        let parsed = guided
            || input
                .tool_call_parser
                .as_deref()
                .and_then(parser_family)
                .is_some_and(|f| f == input.tool_format);
        let format = if guided {
            ToolFormat::Hermes
        } else {
            input.tool_format
        };
        let mut call_tokens = match format {
            ToolFormat::Hermes => hermes_tokens(&mut rng, &tool.name, &id, &arguments),
            ToolFormat::Qwen3Xml => xml_tokens(&mut rng, &tool.name, &id, &args),
        };
        if guided {
            // Guided decoding writes bare JSON: no tags to buffer.
            call_tokens.retain(|t| t.text != "<tool_call>" && t.text != "</tool_call>");
        }
        if parsed {
            tool_calls.push(ToolCall {
                id,
                name: tool.name.clone(),
                arguments,
            });
            // As vLLM 0.32: a named choice ends `stop` with no stop_reason;
            // `required` ends `tool_calls` on the `<|endoftext|>` stop token.
            if matches!(input.tool_choice, ToolChoice::Named(_)) {
                finish_reason = "stop";
            } else {
                finish_reason = "tool_calls";
                stop_reason = Some(crate::text::EOS);
            }
        } else {
            for t in &mut call_tokens {
                t.delta = Delta::Content(t.text.clone());
            }
        }
        tokens.extend(call_tokens);
    } else {
        let words = prose_tokens(&mut rng, input.prose_len.max(1));
        tokens.extend(words.into_iter().map(|w| ScriptToken {
            delta: Delta::Content(w.clone()),
            text: w,
        }));
    }
    let max = input.max_tokens.max(1);
    if tokens.len() > max {
        tokens.truncate(max);
        finish_reason = "length";
        stop_reason = None;
        tool_calls.clear();
    }
    Script {
        tokens,
        finish_reason,
        stop_reason,
        tool_calls,
    }
}

fn hermes_tokens(rng: &mut Rng, name: &str, id: &str, arguments: &str) -> Vec<ScriptToken> {
    let mut out = vec![raw("<tool_call>"), raw("\n")];
    for piece in ["{\"", "name", "\":", " \""] {
        out.push(raw(piece));
    }
    for piece in crate::text::pieces(name) {
        out.push(raw(piece));
    }
    out.push(ScriptToken {
        text: "\",".into(),
        delta: Delta::ToolStart {
            index: 0,
            id: id.to_owned(),
            name: name.to_owned(),
        },
    });
    for piece in [" \"", "arguments", "\":", " "] {
        out.push(raw(piece));
    }
    for frag in split_fragments(rng, arguments) {
        out.push(ScriptToken {
            delta: Delta::ToolArgs {
                index: 0,
                text: frag.clone(),
            },
            text: frag,
        });
    }
    out.extend([raw("}"), raw("\n"), raw("</tool_call>")]);
    out
}

fn xml_tokens(rng: &mut Rng, name: &str, id: &str, args: &Value) -> Vec<ScriptToken> {
    let mut out = vec![
        raw("<tool_call>"),
        raw("\n"),
        ScriptToken {
            text: format!("<function={name}>"),
            delta: Delta::ToolStart {
                index: 0,
                id: id.to_owned(),
                name: name.to_owned(),
            },
        },
        raw("\n"),
    ];
    let empty = Map::new();
    let obj = args.as_object().unwrap_or(&empty);
    let mut first = true;
    for (key, value) in obj {
        out.push(raw(&format!("<parameter={key}>")));
        out.push(raw("\n"));
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        for frag in split_fragments(rng, &text) {
            out.push(raw(&frag));
        }
        out.push(raw("\n"));
        let json_fragment = format!(
            "{}{}: {}",
            if first { "{" } else { ", " },
            Value::String(key.clone()),
            value
        );
        first = false;
        out.push(ScriptToken {
            text: "</parameter>".into(),
            delta: Delta::ToolArgs {
                index: 0,
                text: json_fragment,
            },
        });
        out.push(raw("\n"));
    }
    out.push(ScriptToken {
        text: "</function>".into(),
        delta: Delta::ToolArgs {
            index: 0,
            text: if first { "{}".into() } else { "}".into() },
        },
    });
    out.extend([raw("\n"), raw("</tool_call>")]);
    out
}
