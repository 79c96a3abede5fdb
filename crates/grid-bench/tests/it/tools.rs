//! Structural tool-call checking, offline and against the simulator.

use grid_bench::benchmarks::tool_calling::{ToolVerdict, check_reply, user_tools, weather_tools};
use grid_bench::client::Reply;
use grid_bench::openai::ToolCall;
use grid_bench::report::BenchmarkDetails;
use grid_bench::{BatteryConfig, BenchmarkName, RunOptions, run_battery};

use crate::{check, endpoint, sim};

fn reply(content: &str, call: Option<(&str, &str)>) -> Reply {
    Reply {
        answer: content.to_string(),
        reasoning: String::new(),
        tool_calls: call
            .map(|(name, arguments)| {
                vec![ToolCall {
                    id: "call_1".into(),
                    name: name.into(),
                    arguments: arguments.into(),
                }]
            })
            .unwrap_or_default(),
    }
}

fn verdict_name(verdict: &ToolVerdict) -> &'static str {
    match verdict {
        ToolVerdict::Correct { .. } => "correct",
        ToolVerdict::NoToolCall { .. } => "no_tool_call",
        ToolVerdict::ParserMismatch { .. } => "parser_mismatch",
        ToolVerdict::WrongFunction { .. } => "wrong_function",
        ToolVerdict::InvalidArguments { .. } => "invalid_arguments",
        ToolVerdict::SchemaViolation { .. } => "schema_violation",
        ToolVerdict::RequestFailed { .. } => "request_failed",
        ToolVerdict::UnsupportedSchema { .. } => "unsupported_schema",
    }
}

#[test]
fn structural_verdicts() {
    check(
        &[
            (
                "correct call",
                reply("", Some(("get_weather", "{\"city\": \"Paris\"}"))),
                "correct",
            ),
            (
                "prose",
                reply("It is sunny in Paris today.", None),
                "no_tool_call",
            ),
            (
                "hermes tags leaked",
                reply(
                    "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
                    None,
                ),
                "parser_mismatch",
            ),
            (
                "qwen3 xml leaked",
                reply(
                    "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>",
                    None,
                ),
                "parser_mismatch",
            ),
            (
                "bare json leaked",
                reply(
                    "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}",
                    None,
                ),
                "parser_mismatch",
            ),
            (
                "wrong function",
                reply("", Some(("get_time", "{}"))),
                "wrong_function",
            ),
            (
                "arguments not json",
                reply("", Some(("get_weather", "{\"city\": Paris"))),
                "invalid_arguments",
            ),
            (
                "arguments a string",
                reply("", Some(("get_weather", "\"Paris\""))),
                "invalid_arguments",
            ),
            (
                "missing required",
                reply("", Some(("get_weather", "{\"unit\": \"celsius\"}"))),
                "schema_violation",
            ),
            (
                "bad enum",
                reply(
                    "",
                    Some(("get_weather", "{\"city\": \"Paris\", \"unit\": \"kelvin\"}")),
                ),
                "schema_violation",
            ),
        ],
        |reply| verdict_name(&check_reply(reply, "get_weather", &weather_tools())),
    );
    let nested = check_reply(
        &reply(
            "",
            Some((
                "create_user",
                "{\"name\": \"G\", \"email\": \"g@x\", \"address\": {\"street\": \"s\"}, \"roles\": [\"admin\"]}",
            )),
        ),
        "create_user",
        &user_tools(),
    );
    match nested {
        ToolVerdict::SchemaViolation { violations, .. } => {
            let paths: Vec<&str> = violations.iter().map(|v| v.path.as_str()).collect();
            assert_eq!(paths, vec!["$.address", "$.address"], "{violations:?}");
        }
        other => panic!("expected a schema violation, got {other:?}"),
    }
}

async fn tool_report(args: &[&str]) -> grid_bench::benchmarks::tool_calling::ToolCallingReport {
    let server = sim(args).await;
    let mut config = BatteryConfig::quick();
    config.tool_calling.max_tokens = 400;
    let report = run_battery(
        &endpoint(&server, Some("k")),
        &config,
        RunOptions {
            only: Some(vec![BenchmarkName::ToolCalling]),
            ..RunOptions::default()
        },
    )
    .await
    .expect("battery runs");
    match report.benchmarks[0].details.clone() {
        Some(BenchmarkDetails::ToolCalling(report)) => report,
        other => panic!("expected tool-calling details, got {other:?}"),
    }
}

#[tokio::test]
async fn matching_parser_passes_all_three_scenarios() {
    let report = tool_report(&[
        "tiny",
        "--api-key",
        "k",
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        "hermes",
        "--sim-time-scale",
        "0.01",
    ])
    .await;
    assert_eq!(report.success_rate, Some(1.0), "{report:#?}");
    assert_eq!(
        report
            .scenarios
            .iter()
            .map(|s| s.steps.len())
            .collect::<Vec<_>>(),
        vec![1, 3, 1]
    );
    assert_eq!(report.parser_mismatches, 0);
}

#[tokio::test]
async fn mismatched_parser_is_reported_as_parser_mismatch_with_the_text() {
    let report = tool_report(&[
        "tiny",
        "--api-key",
        "k",
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        "qwen3_xml",
        "--sim-time-scale",
        "0.01",
    ])
    .await;
    assert_eq!(report.success_rate, Some(0.0), "{report:#?}");
    assert_eq!(report.parser_mismatches, 3, "{report:#?}");
    match &report.scenarios[0].steps[0].verdict {
        ToolVerdict::ParserMismatch { content } => {
            assert!(content.contains("<tool_call>"), "{content}")
        }
        other => panic!("expected a parser mismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn auto_tool_choice_without_the_flag_is_a_failed_request_with_the_servers_reason() {
    let report = tool_report(&["tiny", "--api-key", "k", "--sim-time-scale", "0.01"]).await;
    match &report.scenarios[0].steps[0].verdict {
        ToolVerdict::RequestFailed { failure } => {
            assert_eq!(failure.http_status, Some(400));
            assert!(failure.message.contains("auto"), "{}", failure.message);
        }
        other => panic!("expected a failed request, got {other:?}"),
    }
}
