//! tool_calling: three scenarios checked structurally.
//!
//! A step succeeds when the reply has a `tool_calls` structure, the
//! function is the expected one, and its arguments parse as JSON and
//! validate against the tool's JSON schema. A reply in prose is "no tool
//! call"; tool tags left in `content` (`<tool_call>`, `<function=`) mean
//! the server's `--tool-call-parser` does not match the model's format.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Cancelled, Context, required_samples};
use crate::client::{Failure, Reply};
use crate::config::BenchmarkName;
use crate::openai::{ChatMessage, ChatRequest, ToolCall, truncate};
use crate::schema::{Schema, SchemaError, Violation};

const NAME: BenchmarkName = BenchmarkName::ToolCalling;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum ToolVerdict {
    Correct {
        call: ToolCall,
    },
    /// The model answered in prose.
    NoToolCall {
        content: String,
    },
    /// Tool-call markup reached `content`: the parser does not match.
    ParserMismatch {
        content: String,
    },
    WrongFunction {
        expected: String,
        found: String,
    },
    /// The arguments are not a JSON object.
    InvalidArguments {
        arguments: String,
        error: String,
    },
    SchemaViolation {
        arguments: String,
        violations: Vec<Violation>,
    },
    RequestFailed {
        failure: Failure,
    },
    /// The tool definition's schema uses a keyword the checker does not
    /// implement: a fault of the definition, not of the server. The
    /// benchmark compiles its schemas before sending anything, so its own
    /// runs never give this verdict.
    UnsupportedSchema {
        error: String,
    },
}

/// A scenario's tools: the JSON sent to the server, and each function's
/// compiled argument schema.
#[derive(Debug, Clone)]
pub struct Tools {
    pub definitions: Value,
    schemas: BTreeMap<String, Schema>,
}

impl Tools {
    /// Compiles every function's `parameters`; a function without them
    /// accepts any arguments object.
    pub fn compile(definitions: Value) -> Result<Self, SchemaError> {
        let mut schemas = BTreeMap::new();
        for tool in definitions.as_array().into_iter().flatten() {
            let Some(name) = tool.pointer("/function/name").and_then(Value::as_str) else {
                continue;
            };
            let parameters = tool
                .pointer("/function/parameters")
                .cloned()
                .unwrap_or(Value::Bool(true));
            schemas.insert(name.to_string(), Schema::compile(&parameters)?);
        }
        Ok(Self {
            definitions,
            schemas,
        })
    }
}

impl ToolVerdict {
    pub fn is_correct(&self) -> bool {
        matches!(self, ToolVerdict::Correct { .. })
    }
}

/// Markers of tool-call markup that a matching parser would have removed
/// from `content` (hermes, qwen3_xml/qwen3_coder, mistral, llama3 JSON).
fn looks_like_tool_markup(content: &str) -> bool {
    let lowered = content.to_lowercase();
    [
        "<tool_call>",
        "</tool_call>",
        "<function=",
        "<|tool_call",
        "[tool_calls]",
        "<|python_tag|>",
    ]
    .iter()
    .any(|marker| lowered.contains(marker))
        || (lowered.contains("\"name\"")
            && (lowered.contains("\"arguments\"") || lowered.contains("\"parameters\"")))
}

/// The structural check of one reply against the expected function of
/// `tools` (the JSON definitions, compiled here).
pub fn check_reply(reply: &Reply, expected: &str, tools: &Value) -> ToolVerdict {
    match Tools::compile(tools.clone()) {
        Ok(tools) => check_reply_with(reply, expected, &tools),
        Err(error) => ToolVerdict::UnsupportedSchema {
            error: error.to_string(),
        },
    }
}

/// [`check_reply`] against compiled tools.
pub fn check_reply_with(reply: &Reply, expected: &str, tools: &Tools) -> ToolVerdict {
    let Some(call) = reply.tool_calls.iter().find(|call| !call.name.is_empty()) else {
        let content = truncate(&reply.answer, 2000);
        return if looks_like_tool_markup(&reply.answer) {
            ToolVerdict::ParserMismatch { content }
        } else {
            ToolVerdict::NoToolCall { content }
        };
    };
    if call.name != expected {
        return ToolVerdict::WrongFunction {
            expected: expected.to_string(),
            found: call.name.clone(),
        };
    }
    let arguments: Value = match serde_json::from_str(&call.arguments) {
        Ok(value @ Value::Object(_)) => value,
        Ok(other) => {
            return ToolVerdict::InvalidArguments {
                arguments: truncate(&call.arguments, 2000),
                error: format!(
                    "arguments are a JSON {} instead of an object",
                    json_kind(&other)
                ),
            };
        }
        Err(error) => {
            return ToolVerdict::InvalidArguments {
                arguments: truncate(&call.arguments, 2000),
                error: error.to_string(),
            };
        }
    };
    let violations = tools
        .schemas
        .get(expected)
        .map_or_else(Vec::new, |schema| schema.validate(&arguments));
    if violations.is_empty() {
        ToolVerdict::Correct { call: call.clone() }
    } else {
        ToolVerdict::SchemaViolation {
            arguments: truncate(&call.arguments, 2000),
            violations,
        }
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn function(name: &str, description: &str, parameters: Value) -> Value {
    json!({"type": "function", "function": {"name": name, "description": description, "parameters": parameters}})
}

pub fn weather_tools() -> Value {
    json!([function(
        "get_weather",
        "Current weather for a city.",
        json!({
            "type": "object",
            "properties": {
                "city": {"type": "string", "minLength": 1},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
            },
            "required": ["city"]
        })
    )])
}

pub fn travel_tools() -> Value {
    json!([
        function(
            "search_flights",
            "Find flights between two cities on a date.",
            json!({
                "type": "object",
                "properties": {
                    "origin": {"type": "string", "minLength": 1},
                    "destination": {"type": "string", "minLength": 1},
                    "date": {"type": "string", "minLength": 1}
                },
                "required": ["origin", "destination", "date"]
            })
        ),
        function(
            "book_flight",
            "Book a flight by its id for a passenger.",
            json!({
                "type": "object",
                "properties": {
                    "flight_id": {"type": "string", "minLength": 1},
                    "passenger_name": {"type": "string", "minLength": 1}
                },
                "required": ["flight_id", "passenger_name"]
            })
        ),
        function(
            "send_confirmation",
            "Email a booking confirmation.",
            json!({
                "type": "object",
                "properties": {
                    "email": {"type": "string", "minLength": 3},
                    "booking_id": {"type": "string", "minLength": 1}
                },
                "required": ["email", "booking_id"]
            })
        )
    ])
}

pub fn user_tools() -> Value {
    json!([function(
        "create_user",
        "Create a user account.",
        json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "email": {"type": "string", "minLength": 3},
                "age": {"type": "integer", "minimum": 0},
                "address": {
                    "type": "object",
                    "properties": {
                        "street": {"type": "string"},
                        "city": {"type": "string"},
                        "postal_code": {"type": "string"},
                        "country": {"type": "string"}
                    },
                    "required": ["street", "city", "country"]
                },
                "roles": {"type": "array", "items": {"type": "string", "enum": ["admin", "editor", "viewer"]}, "minItems": 1}
            },
            "required": ["name", "email", "address", "roles"]
        })
    )])
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    pub expected_function: String,
    pub verdict: ToolVerdict,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioResult {
    pub scenario: String,
    pub repetition: usize,
    pub success: bool,
    pub steps: Vec<StepResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCallingReport {
    pub scenarios: Vec<ScenarioResult>,
    pub success_rate: Option<f64>,
    /// Steps whose tool markup leaked into `content`.
    pub parser_mismatches: usize,
    pub tool_choice: String,
}

struct Scenario {
    name: &'static str,
    tools: Tools,
    prompt: &'static str,
    /// Expected function per step, with the tool result fed back after it.
    steps: Vec<(&'static str, Value)>,
}

/// The scenarios with their tools compiled: a schema keyword the checker
/// does not implement stops the benchmark before it sends anything.
fn scenarios() -> Result<Vec<Scenario>, SchemaError> {
    Ok(vec![
        Scenario {
            name: "single_get_weather",
            tools: Tools::compile(weather_tools())?,
            prompt: "What is the weather in Paris right now? Use the tool.",
            steps: vec![(
                "get_weather",
                json!({"city": "Paris", "temperature_c": 18, "condition": "cloudy"}),
            )],
        },
        Scenario {
            name: "chained_three_calls",
            tools: Tools::compile(travel_tools())?,
            prompt: "Book me, Ada Lovelace, on a flight from London to Berlin on 2025-06-01, then email the confirmation to ada@example.com. Use the tools one at a time.",
            steps: vec![
                (
                    "search_flights",
                    json!({"flights": [{"flight_id": "LH123", "departure": "08:15", "price_eur": 120}]}),
                ),
                (
                    "book_flight",
                    json!({"booking_id": "BK-42", "status": "confirmed"}),
                ),
                ("send_confirmation", json!({"sent": true})),
            ],
        },
        Scenario {
            name: "nested_create_user",
            tools: Tools::compile(user_tools())?,
            prompt: "Create a user named Grace Hopper, email grace@example.com, age 85, living at 1 Navy Way, Arlington, 22201, USA, with the roles admin and editor.",
            steps: vec![("create_user", json!({"user_id": "u-1001", "created": true}))],
        },
    ])
}

/// The report, the answered scenarios and the number needed; or the schema
/// error that kept the benchmark from running.
pub type ToolCallingRun = Result<(ToolCallingReport, usize, usize), SchemaError>;

pub async fn run(context: &Context<'_>) -> Result<ToolCallingRun, Cancelled> {
    let config = &context.config.tool_calling;
    let mut results = Vec::new();
    let scenarios = match scenarios() {
        Ok(scenarios) => scenarios,
        Err(error) => return Ok(Err(error)),
    };
    'repetitions: for repetition in 1..=config.repetitions {
        for scenario in &scenarios {
            if context.expired() {
                break 'repetitions;
            }
            let mut messages = vec![ChatMessage::user(scenario.prompt)];
            let mut steps = Vec::new();
            let mut success = true;
            for (step, (expected, tool_result)) in scenario.steps.iter().enumerate() {
                let request = ChatRequest {
                    messages: messages.clone(),
                    max_tokens: config.max_tokens,
                    temperature: Some(config.temperature),
                    tools: Some(scenario.tools.definitions.clone()),
                    tool_choice: Some(Value::String(config.tool_choice.clone())),
                    ..ChatRequest::default()
                };
                let exchange = context
                    .send(
                        NAME,
                        &request,
                        format!(
                            "{} repetition {repetition} step {}",
                            scenario.name,
                            step + 1
                        ),
                    )
                    .await?;
                let verdict = match &exchange.record.failure {
                    Some(failure) => ToolVerdict::RequestFailed {
                        failure: failure.clone(),
                    },
                    None => check_reply_with(&exchange.reply, expected, &scenario.tools),
                };
                let correct = verdict.is_correct();
                if let ToolVerdict::Correct { call } = &verdict {
                    let mut call = call.clone();
                    if call.id.is_empty() {
                        call.id = format!("call_{}", step + 1);
                    }
                    messages.push(ChatMessage::assistant_tool_calls(std::slice::from_ref(
                        &call,
                    )));
                    messages.push(ChatMessage::tool_result(
                        call.id.clone(),
                        tool_result.to_string(),
                    ));
                }
                steps.push(StepResult {
                    expected_function: expected.to_string(),
                    verdict,
                });
                if !correct {
                    // A chain cannot go on without the previous call.
                    success = false;
                    break;
                }
            }
            results.push(ScenarioResult {
                scenario: scenario.name.to_string(),
                repetition,
                success,
                steps,
            });
        }
    }
    let answered = results
        .iter()
        .filter(|r| {
            !r.steps
                .iter()
                .any(|s| matches!(s.verdict, ToolVerdict::RequestFailed { .. }))
        })
        .count();
    let successes = results.iter().filter(|r| r.success).count();
    let parser_mismatches = results
        .iter()
        .flat_map(|r| &r.steps)
        .filter(|s| matches!(s.verdict, ToolVerdict::ParserMismatch { .. }))
        .count();
    let report = ToolCallingReport {
        success_rate: (!results.is_empty()).then(|| successes as f64 / results.len() as f64),
        scenarios: results,
        parser_mismatches,
        tool_choice: config.tool_choice.clone(),
    };
    let required = required_samples(context.config, scenarios.len() * config.repetitions);
    Ok(Ok((report, answered, required)))
}
