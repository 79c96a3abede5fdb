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
//!   ([`generate_from_schema`]). The model writes calls in
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

use serde_json::{Map, Value, json};

use crate::config::ToolFormat;
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
        let args = generate_from_schema(&tool.parameters, &mut rng, 0, "");
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

const CITIES: &[&str] = &[
    "London", "Paris", "Berlin", "Madrid", "Rome", "Oslo", "Vienna", "Lisbon",
];

/// Generates a value valid against a JSON schema: `type` (or a list of
/// types), `enum`, `const`, `object` with `properties` / `required`,
/// `array` with `items` / `minItems` / `maxItems`, `string` with
/// `minLength` / `maxLength` / `format: date|date-time|email|uri`,
/// `integer` / `number` with `minimum` / `maximum`, `boolean`, `null`,
/// `anyOf` / `oneOf` (first branch), nested to any depth (capped at 8).
pub fn generate_from_schema(schema: &Value, rng: &mut Rng, depth: usize, key_hint: &str) -> Value {
    let Some(obj) = schema.as_object() else {
        return json!("value");
    };
    if let Some(c) = obj.get("const") {
        return c.clone();
    }
    if let Some(Value::Array(options)) = obj.get("enum") {
        if !options.is_empty() {
            return options[(rng.next_u64() % options.len() as u64) as usize].clone();
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(branches)) = obj.get(key) {
            if let Some(first) = branches
                .iter()
                .find(|b| b.get("type") != Some(&json!("null")))
            {
                return generate_from_schema(first, rng, depth + 1, key_hint);
            }
        }
    }
    let ty = match obj.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null")
            .to_owned(),
        _ if obj.contains_key("properties") => "object".into(),
        _ if obj.contains_key("items") => "array".into(),
        _ => "string".into(),
    };
    match ty.as_str() {
        "object" => {
            let mut out = Map::new();
            if depth >= 8 {
                return Value::Object(out);
            }
            let required: Vec<&str> = obj
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(Value::Object(props)) = obj.get("properties") {
                for (name, sub) in props {
                    if required.contains(&name.as_str()) || rng.next_f64() < 0.5 {
                        out.insert(
                            name.clone(),
                            generate_from_schema(sub, rng, depth + 1, name),
                        );
                    }
                }
            }
            Value::Object(out)
        }
        "array" => {
            let min = obj.get("minItems").and_then(Value::as_u64).unwrap_or(1) as usize;
            let max = obj
                .get("maxItems")
                .and_then(Value::as_u64)
                .unwrap_or(3)
                .max(min as u64) as usize;
            let n = rng.range(min, max.min(min + 3));
            let item = obj
                .get("items")
                .cloned()
                .unwrap_or(json!({"type": "string"}));
            Value::Array(
                (0..n)
                    .map(|_| generate_from_schema(&item, rng, depth + 1, key_hint))
                    .collect(),
            )
        }
        "integer" => {
            let lo = obj.get("minimum").and_then(Value::as_i64).unwrap_or(1);
            let hi = obj
                .get("maximum")
                .and_then(Value::as_i64)
                .unwrap_or(lo.max(0) + 99);
            let span = (hi - lo).max(0) as u64 + 1;
            json!(lo + (rng.next_u64() % span) as i64)
        }
        "number" => {
            let lo = obj.get("minimum").and_then(Value::as_f64).unwrap_or(0.0);
            let hi = obj
                .get("maximum")
                .and_then(Value::as_f64)
                .unwrap_or(lo + 100.0);
            let v = lo + rng.next_f64() * (hi - lo).max(0.0);
            json!((v * 100.0).round() / 100.0)
        }
        "boolean" => json!(rng.next_u64() % 2 == 0),
        "null" => Value::Null,
        _ => {
            let format = obj.get("format").and_then(Value::as_str).unwrap_or("");
            let hint = key_hint.to_ascii_lowercase();
            let mut s = match format {
                "date" => "2025-01-15".to_owned(),
                "date-time" => "2025-01-15T09:30:00Z".to_owned(),
                "email" => "user@example.com".to_owned(),
                "uri" | "url" => "https://example.com/item".to_owned(),
                _ if hint.contains("city") || hint.contains("location") => {
                    CITIES[(rng.next_u64() % CITIES.len() as u64) as usize].to_owned()
                }
                _ => prose_tokens(rng, 2).concat().trim().to_owned(),
            };
            let min = obj.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
            let max = obj
                .get("maxLength")
                .and_then(Value::as_u64)
                .map(|m| m as usize);
            while s.chars().count() < min {
                s.push('x');
            }
            if let Some(max) = max {
                s = s.chars().take(max).collect();
            }
            json!(s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_generator_honours_required_enum_and_nesting() {
        let schema = json!({
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["c", "f"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
                "opts": {"type": "object", "properties": {"x": {"type": "boolean"}}, "required": ["x"]},
                "tags": {"type": "array", "items": {"type": "string"}}
            },
            "required": ["city", "unit", "days", "opts", "tags"]
        });
        let mut rng = Rng::new(3);
        let v = generate_from_schema(&schema, &mut rng, 0, "");
        assert!(v["city"].is_string());
        assert!(v["unit"] == "c" || v["unit"] == "f");
        let d = v["days"].as_i64().expect("integer");
        assert!((1..=7).contains(&d));
        assert!(v["opts"]["x"].is_boolean());
        assert!(v["tags"].is_array());
    }
}
