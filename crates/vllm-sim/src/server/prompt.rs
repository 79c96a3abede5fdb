//! Prompt token ids: a chat under Qwen's ChatML template (with the tools
//! block and earlier tool calls), or a completion's text or ids.

use serde_json::Value;

use crate::text::{self, IM_END, IM_START};

/// A message's text: a string, or the `text` parts of a content array.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// A chat prompt: its token ids, and the names of the tools the history
/// already called.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ChatPrompt {
    pub(super) ids: Vec<u32>,
    pub(super) called: Vec<String>,
}

/// Renders `messages` (and the `tools` block) as Qwen's ChatML template
/// does, up to the assistant's turn.
pub(super) fn chat_prompt(messages: &[Value], tools: &[Value]) -> ChatPrompt {
    let newline = text::tokenize("\n");
    let mut ids = Vec::new();
    let mut called = Vec::new();
    let push_message = |ids: &mut Vec<u32>, role: &str, body: &str| {
        ids.push(IM_START);
        ids.extend(text::tokenize(role));
        ids.extend(&newline);
        ids.extend(text::tokenize(body));
        ids.push(IM_END);
        ids.extend(&newline);
    };
    if !tools.is_empty() {
        push_message(&mut ids, "system", &tools_block(tools));
    }
    for m in messages {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
        let mut body = m.get("content").map(content_text).unwrap_or_default();
        for c in m
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = c
                .pointer("/function/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let args = c
                .pointer("/function/arguments")
                .and_then(Value::as_str)
                .unwrap_or("{}");
            called.push(name.to_owned());
            body.push_str(&format!(
                "\n<tool_call>\n{{\"name\": \"{name}\", \"arguments\": {args}}}\n</tool_call>"
            ));
        }
        if role == "tool" {
            push_message(
                &mut ids,
                "user",
                &format!("<tool_response>\n{body}\n</tool_response>"),
            );
        } else {
            push_message(&mut ids, role, &body);
        }
    }
    ids.push(IM_START);
    ids.extend(text::tokenize("assistant"));
    ids.extend(&newline);
    ChatPrompt { ids, called }
}

/// The system message Qwen's template writes for `tools`.
fn tools_block(tools: &[Value]) -> String {
    let mut sys = String::from(
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>",
    );
    for t in tools {
        sys.push('\n');
        sys.push_str(&t.to_string());
    }
    sys.push_str("\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags.");
    sys
}

/// A completion's `prompt`: a string, or the first of a list of strings,
/// or token ids (flat, or the first list of a list). None when it is none
/// of these.
pub(super) fn completion_prompt(prompt: Option<&Value>) -> Option<Vec<u32>> {
    let ids = |items: &[Value]| -> Vec<u32> {
        items
            .iter()
            .filter_map(Value::as_u64)
            .map(|t| t as u32)
            .collect()
    };
    match prompt? {
        Value::String(s) => Some(text::tokenize(s)),
        Value::Array(items) => match items.first()? {
            Value::String(s) => Some(text::tokenize(s)),
            Value::Number(_) => Some(ids(items)),
            Value::Array(inner) => Some(ids(inner)),
            _ => None,
        },
        _ => None,
    }
}
