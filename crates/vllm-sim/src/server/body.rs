//! The JSON of generation replies as serde types. serde writes a struct's
//! fields in declaration order, so each type below lists its fields in the
//! order vLLM 0.32 sends them (checked against the recording in
//! `tests/it/contract.rs`); keys vLLM always sends as `null` are [`Null`].

use serde::{Serialize, Serializer};

use crate::config::ReasoningField;

/// A key vLLM always writes as `null` here (a feature the simulator does
/// not model). `()` serialises as `null`.
pub(super) type Null = ();

/// A key that a reply leaves out, writes as `null`, or fills.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(super) enum Field<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<T> Field<T> {
    fn is_absent(&self) -> bool {
        matches!(self, Field::Absent)
    }
}

impl<T> From<Option<T>> for Field<T> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Field::Null, Field::Value)
    }
}

impl<T: Serialize> Serialize for Field<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Value(v) => v.serialize(s),
            Field::Absent | Field::Null => s.serialize_none(),
        }
    }
}

/// `usage`, in vLLM's order: total before completion.
#[derive(Debug, Serialize)]
pub(super) struct Usage {
    pub(super) prompt_tokens: usize,
    pub(super) total_tokens: usize,
    pub(super) completion_tokens: usize,
    #[serde(skip_serializing_if = "Field::is_absent")]
    pub(super) prompt_tokens_details: Field<PromptTokensDetails>,
    #[serde(skip_serializing_if = "Field::is_absent")]
    pub(super) completion_tokens_details: Field<CompletionTokensDetails>,
}

#[derive(Debug, Serialize)]
pub(super) struct PromptTokensDetails {
    pub(super) cached_tokens: usize,
    /// `null` on `/v1/completions`, as in vLLM 0.32.
    pub(super) created_cache_tokens: Option<usize>,
    /// Only the non-streaming body carries it.
    #[serde(skip_serializing_if = "Field::is_absent")]
    pub(super) multimodal_tokens: Field<Null>,
}

#[derive(Debug, Serialize)]
pub(super) struct CompletionTokensDetails {
    pub(super) reasoning_tokens: usize,
}

/// What a finished request counts, for its `usage`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Counts {
    pub(super) prompt_tokens: usize,
    pub(super) completion_tokens: usize,
    pub(super) cached_tokens: usize,
    /// Some with `--enable-prompt-tokens-details`: the prompt tokens newly
    /// written to the prefix cache (inner None on `/v1/completions`).
    pub(super) prompt_details: Option<Option<usize>>,
    /// Some for chat with a reasoning parser: the reasoning tokens.
    pub(super) reasoning_tokens: Option<usize>,
}

impl Usage {
    /// The usage object; `full` (the non-streaming body) writes the details
    /// it has no value for as `null` where a stream leaves them out.
    pub(super) fn new(c: &Counts, full: bool) -> Usage {
        // A fresh value for each field: `Field<T>` differs in `T`.
        fn missing<T>(full: bool) -> Field<T> {
            if full { Field::Null } else { Field::Absent }
        }
        Usage {
            prompt_tokens: c.prompt_tokens,
            total_tokens: c.prompt_tokens + c.completion_tokens,
            completion_tokens: c.completion_tokens,
            prompt_tokens_details: match c.prompt_details {
                Some(created_cache_tokens) => Field::Value(PromptTokensDetails {
                    cached_tokens: c.cached_tokens,
                    created_cache_tokens,
                    multimodal_tokens: missing(full),
                }),
                None => missing(full),
            },
            completion_tokens_details: match c.reasoning_tokens {
                Some(reasoning_tokens) => {
                    Field::Value(CompletionTokensDetails { reasoning_tokens })
                }
                None => missing(full),
            },
        }
    }
}

/// The fields every chunk and body starts with.
#[derive(Debug, Clone, Copy, Serialize)]
pub(super) struct Head<'a> {
    pub(super) id: &'a str,
    pub(super) object: &'static str,
    pub(super) created: u64,
    pub(super) model: &'a str,
}

/// One SSE chunk: the head, `choices`, then what the kind adds.
#[derive(Debug, Serialize)]
pub(super) struct Chunk<'a, C, T> {
    #[serde(flatten)]
    pub(super) head: Head<'a>,
    pub(super) choices: C,
    #[serde(flatten)]
    pub(super) tail: T,
}

/// Nothing after `choices`.
#[derive(Debug, Serialize)]
pub(super) struct NoTail {}

/// After the role chunk's `choices`.
#[derive(Debug, Serialize)]
pub(super) struct RoleTail {
    pub(super) prompt_token_ids: Null,
    pub(super) prompt_text: Null,
}

/// After the usage chunk's (empty) `choices`.
#[derive(Debug, Serialize)]
pub(super) struct UsageTail {
    pub(super) usage: Usage,
    pub(super) system_fingerprint: &'static str,
}

/// The first chat chunk's choice: the role, no `token_ids`.
#[derive(Debug, Serialize)]
pub(super) struct RoleChoice {
    pub(super) index: usize,
    pub(super) delta: Delta<'static>,
    pub(super) logprobs: Null,
    pub(super) finish_reason: Null,
}

/// A chat chunk's choice. `stop_reason` is only on the last one.
#[derive(Debug, Serialize)]
pub(super) struct DeltaChoice<'a> {
    pub(super) index: usize,
    pub(super) delta: Delta<'a>,
    pub(super) logprobs: Null,
    pub(super) finish_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Field::is_absent")]
    pub(super) stop_reason: Field<u32>,
    pub(super) token_ids: Null,
}

/// A completion chunk's choice.
#[derive(Debug, Serialize)]
pub(super) struct TextChoice<'a> {
    pub(super) index: usize,
    pub(super) text: &'a str,
    pub(super) logprobs: Null,
    pub(super) finish_reason: Option<&'static str>,
    pub(super) stop_reason: Option<u32>,
    pub(super) token_ids: Null,
}

/// `choices[0].delta` of a chat chunk.
#[derive(Debug, Default, Serialize)]
pub(super) struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) role: Option<&'static str>,
    #[serde(skip_serializing_if = "Field::is_absent")]
    pub(super) content: Field<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) reasoning: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) tool_calls: Option<[ToolCallDelta<'a>; 1]>,
}

impl<'a> Delta<'a> {
    /// The role chunk's delta: `{"role":"assistant","content":""}`.
    pub(super) fn role() -> Delta<'static> {
        Delta {
            role: Some("assistant"),
            content: Field::Value(""),
            ..Delta::default()
        }
    }

    /// A reasoning delta under the configured field name(s).
    pub(super) fn reasoning(text: &'a str, field: ReasoningField) -> Delta<'a> {
        let (reasoning, old) = match field {
            ReasoningField::Both => (Some(text), Some(text)),
            ReasoningField::Reasoning => (Some(text), None),
            ReasoningField::ReasoningContent => (None, Some(text)),
        };
        Delta {
            reasoning,
            reasoning_content: old,
            ..Delta::default()
        }
    }

    /// A tool-call delta (`content: null` beside it, as vLLM sends).
    pub(super) fn tool_call(call: ToolCallDelta<'a>) -> Delta<'a> {
        Delta {
            content: Field::Null,
            tool_calls: Some([call]),
            ..Delta::default()
        }
    }
}

/// One tool call's delta: the first has `id`, `type` and the name, the
/// later ones argument text.
#[derive(Debug, Serialize)]
pub(super) struct ToolCallDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub(super) kind: Option<&'static str>,
    pub(super) index: usize,
    pub(super) function: FunctionDelta<'a>,
}

#[derive(Debug, Serialize)]
pub(super) struct FunctionDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) arguments: Option<&'a str>,
}

/// The non-streaming `/v1/chat/completions` body.
#[derive(Debug, Serialize)]
pub(super) struct ChatCompletion<'a> {
    #[serde(flatten)]
    pub(super) head: Head<'a>,
    pub(super) choices: [ChatChoice<'a>; 1],
    pub(super) service_tier: Null,
    pub(super) system_fingerprint: &'static str,
    pub(super) usage: Usage,
    pub(super) prompt_logprobs: Null,
    pub(super) prompt_token_ids: Null,
    pub(super) kv_transfer_params: Null,
}

#[derive(Debug, Serialize)]
pub(super) struct ChatChoice<'a> {
    pub(super) index: usize,
    pub(super) message: Message<'a>,
    pub(super) logprobs: Null,
    pub(super) finish_reason: &'static str,
    pub(super) stop_reason: Option<u32>,
    pub(super) token_ids: Null,
}

/// The assistant's message; `reasoning` and/or `reasoning_content` as
/// `--sim-reasoning-field` says.
#[derive(Debug, Serialize)]
pub(super) struct Message<'a> {
    pub(super) role: &'static str,
    pub(super) content: Option<String>,
    pub(super) refusal: Null,
    pub(super) annotations: Null,
    pub(super) audio: Null,
    pub(super) function_call: Null,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) tool_calls: Vec<ToolCall<'a>>,
    #[serde(skip_serializing_if = "Field::is_absent")]
    pub(super) reasoning: Field<&'a str>,
    #[serde(skip_serializing_if = "Field::is_absent")]
    pub(super) reasoning_content: Field<&'a str>,
}

#[derive(Debug, Serialize)]
pub(super) struct ToolCall<'a> {
    pub(super) id: &'a str,
    #[serde(rename = "type")]
    pub(super) kind: &'static str,
    pub(super) function: Function<'a>,
}

#[derive(Debug, Serialize)]
pub(super) struct Function<'a> {
    pub(super) name: &'a str,
    pub(super) arguments: &'a str,
}

/// The non-streaming `/v1/completions` body.
#[derive(Debug, Serialize)]
pub(super) struct TextCompletion<'a> {
    #[serde(flatten)]
    pub(super) head: Head<'a>,
    pub(super) choices: [TextCompletionChoice; 1],
    pub(super) service_tier: Null,
    pub(super) system_fingerprint: &'static str,
    pub(super) usage: Usage,
    pub(super) kv_transfer_params: Null,
}

#[derive(Debug, Serialize)]
pub(super) struct TextCompletionChoice {
    pub(super) index: usize,
    pub(super) text: String,
    pub(super) logprobs: Null,
    pub(super) finish_reason: &'static str,
    pub(super) stop_reason: Option<u32>,
    pub(super) token_ids: Null,
    pub(super) prompt_logprobs: Null,
    pub(super) prompt_token_ids: Null,
}
