//! The battery against bad servers: bounded in time, failed benchmarks
//! visible with their reasons, no conversation continued after a failed
//! turn, unknown token counts kept unknown, environment errors typed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use grid_bench::benchmarks::long_conversation::StoppedConversation;
use grid_bench::client::FailureKind;
use grid_bench::report::{BenchmarkDetails, OutcomeStatus};
use grid_bench::summary::{LatencyOrigin, ServeSummary};
use grid_bench::{
    BatteryConfig, BatteryError, BatteryErrorKind, BatteryEvent, BatteryProgress, BenchmarkName,
    RequestRecord, RunOptions, render_table, run_battery, run_battery_with_records,
};

use crate::fakes::{self, endpoint, serve};
use crate::scratch_dir;

fn quick(only: &[BenchmarkName]) -> (BatteryConfig, RunOptions) {
    let mut config = BatteryConfig::quick();
    config.gpu_profile.command = "/nonexistent/nvidia-smi".into();
    (
        config,
        RunOptions {
            only: Some(only.to_vec()),
            ..RunOptions::default()
        },
    )
}

#[derive(Default)]
struct Recorder(Mutex<Vec<BatteryEvent>>);

impl BatteryProgress for Recorder {
    fn event(&self, event: &BatteryEvent) {
        self.0.lock().expect("events").push(event.clone());
    }
}

#[tokio::test]
async fn a_closed_port_fails_the_benchmark_with_its_top_reason_everywhere() {
    let url = fakes::closed_port_url();
    let (config, mut options) = quick(&[BenchmarkName::KvCache]);
    let recorder = Arc::new(Recorder::default());
    options.progress = Some(recorder.clone());
    let report = run_battery(&endpoint(&url), &config, options)
        .await
        .expect("the battery runs");
    let outcome = report.outcome(BenchmarkName::KvCache).expect("kv_cache");
    assert!(
        matches!(
            outcome.status,
            OutcomeStatus::InsufficientSamples { successful: 0, .. }
        ),
        "{:?}",
        outcome.status
    );
    // Three iterations stop at their cold turn; three equal-length colds
    // fail, and their repeats are not sent.
    assert_eq!(outcome.requests_total, 6);
    assert_eq!(outcome.top_failures.len(), 1, "{:?}", outcome.top_failures);
    let top = &outcome.top_failures[0];
    assert_eq!((top.kind, top.count), (FailureKind::Connect, 6));
    assert!(top.example.contains("cannot send to"), "{top:?}");
    assert!(!report.succeeded());
    let failed: Vec<BenchmarkName> = report.failed_benchmarks().iter().map(|o| o.name).collect();
    assert_eq!(failed, vec![BenchmarkName::KvCache]);
    assert!(
        report.headline.benchmarks_failed[0]
            .1
            .ends_with("; connect ×6"),
        "{:?}",
        report.headline.benchmarks_failed
    );
    let table = render_table(&report);
    assert!(table.contains("too few (0/3)"), "{table}");
    assert!(
        table.contains("kv_cache: connect ×6: cannot send to"),
        "{table}"
    );
    let events = recorder.0.lock().expect("events");
    match events.last() {
        Some(BatteryEvent::BenchmarkFinished {
            status,
            top_failures,
            ..
        }) => {
            assert!(status.is_failure());
            assert_eq!(top_failures, &outcome.top_failures);
        }
        other => panic!("expected BenchmarkFinished last, got {other:?}"),
    }
}

#[tokio::test]
async fn a_keep_alive_only_server_cannot_hold_the_battery() {
    let url = serve(fakes::keep_alive_only()).await;
    let (mut config, options) = quick(&[
        BenchmarkName::KvCache,
        BenchmarkName::Stability,
        BenchmarkName::Concurrency,
    ]);
    config.idle_timeout_s = 0.3;
    let started = Instant::now();
    let report = run_battery(&endpoint(&url), &config, options)
        .await
        .expect("the battery runs");
    let elapsed = started.elapsed();
    // kv_cache: 6 requests of 0.3 s; stability: a 1.1 s schedule; the
    // concurrency levels: 2 s each. The request timeout alone (30 s)
    // would take minutes.
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
    for outcome in &report.benchmarks {
        assert!(
            outcome.status.is_failure(),
            "{}: {:?}",
            outcome.name,
            outcome.status
        );
        assert_eq!(
            outcome.failure_reasons.get("idle_timeout"),
            Some(&outcome.requests_total),
            "{}: {:?}",
            outcome.name,
            outcome.failure_reasons
        );
    }
}

#[tokio::test]
async fn the_wall_clock_bound_ends_a_benchmark_as_timed_out_with_what_it_has() {
    let url = serve(fakes::slow_tokens(Duration::from_millis(50))).await;
    for name in [BenchmarkName::KvCache, BenchmarkName::Stability] {
        let (mut config, options) = quick(&[name]);
        config.benchmark_timeout_s = 1.0;
        // A 6 s open-loop schedule, cut at 1 s.
        config.stability.interval_s = 0.5;
        let started = Instant::now();
        let report = run_battery(&endpoint(&url), &config, options)
            .await
            .expect("the battery runs");
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(5), "{name}: {elapsed:?}");
        let outcome = report.outcome(name).expect("outcome");
        assert!(
            matches!(outcome.status, OutcomeStatus::TimedOut { after_s, .. } if after_s == 1.0),
            "{name}: {:?}",
            outcome.status
        );
        assert!(outcome.details.is_some(), "{name}: details kept");
        assert_eq!(
            outcome.top_failures[0].kind,
            FailureKind::BenchmarkTimeout,
            "{name}: {:?}",
            outcome.top_failures
        );
        assert!(
            outcome.requests_total >= 1,
            "{name}: what it had is recorded"
        );
        assert!(!report.succeeded());
        assert!(
            report.headline.benchmarks_failed[0]
                .1
                .starts_with("timed out after 1 s"),
            "{:?}",
            report.headline.benchmarks_failed
        );
    }
}

/// Whether any request body carries an assistant turn with empty content.
fn empty_assistant_turns(bodies: &[serde_json::Value]) -> usize {
    bodies
        .iter()
        .flat_map(|body| body["messages"].as_array().cloned().unwrap_or_default())
        .filter(|message| message["role"] == "assistant" && message["content"] == "")
        .count()
}

#[tokio::test]
async fn a_failed_turn_ends_its_conversation_instead_of_sending_an_empty_assistant_turn() {
    // kv_cache: request 2 (iteration 1, turn 2) fails.
    let (app, bodies) = fakes::flaky(2, 1000);
    let url = serve(app).await;
    let (config, options) = quick(&[BenchmarkName::KvCache]);
    let report = run_battery(&endpoint(&url), &config, options)
        .await
        .expect("the battery runs");
    let bodies = bodies.lock().expect("bodies").clone();
    assert_eq!(empty_assistant_turns(&bodies), 0);
    // The request after the failure opens iteration 2: system + user.
    assert_eq!(bodies[2]["messages"].as_array().map(Vec::len), Some(2));
    match &report
        .outcome(BenchmarkName::KvCache)
        .and_then(|o| o.details.clone())
    {
        Some(BenchmarkDetails::KvCache(kv)) => {
            let failed = kv.iterations[0].failed_turn.as_ref().expect("marked");
            assert_eq!((failed.turn, failed.kind), (2, FailureKind::HttpStatus));
            assert!(failed.message.contains("engine hiccup"), "{failed:?}");
            assert_eq!(kv.iterations[0].acceleration, None);
            assert!(kv.iterations[1..].iter().all(|i| i.failed_turn.is_none()));
        }
        other => panic!("expected kv_cache details, got {other:?}"),
    }

    // long_conversation: one conversation of 6 turns; turn 3 fails.
    let (app, bodies) = fakes::flaky(3, 1000);
    let url = serve(app).await;
    let (config, options) = quick(&[BenchmarkName::LongConversation]);
    let report = run_battery(&endpoint(&url), &config, options)
        .await
        .expect("the battery runs");
    let bodies = bodies.lock().expect("bodies").clone();
    assert_eq!(bodies.len(), 3, "nothing is sent after the failed turn");
    assert_eq!(empty_assistant_turns(&bodies), 0);
    match &report
        .outcome(BenchmarkName::LongConversation)
        .and_then(|o| o.details.clone())
    {
        Some(BenchmarkDetails::LongConversation(long)) => {
            let stopped: Vec<(usize, usize)> = long
                .stopped_conversations
                .iter()
                .map(
                    |StoppedConversation {
                         iteration,
                         failed_turn,
                     }| { (*iteration, failed_turn.turn) },
                )
                .collect();
            assert_eq!(stopped, vec![(1, 3)]);
            assert_eq!(long.turns[1].successful, 1);
            assert_eq!(long.turns[3].successful, 0);
        }
        other => panic!("expected long_conversation details, got {other:?}"),
    }
}

#[tokio::test]
async fn a_gateway_without_prompt_tokens_keeps_latencies_and_leaves_token_rates_unknown() {
    let url = serve(fakes::gateway_without_prompt_tokens()).await;
    let (config, options) = quick(&[BenchmarkName::KvCache, BenchmarkName::Concurrency]);
    let report = run_battery(&endpoint(&url), &config, options)
        .await
        .expect("the battery runs");
    for outcome in &report.benchmarks {
        assert_eq!(outcome.status, OutcomeStatus::Completed, "{}", outcome.name);
        assert_eq!(outcome.requests_failed, 0, "{:?}", outcome.failure_reasons);
        assert_eq!(
            outcome.requests_without_token_counts, outcome.requests_total,
            "{}",
            outcome.name
        );
    }
    assert!(report.headline.kv_cache_acceleration.is_some());
    assert!(report.headline.requests_without_token_counts > 0);
    match &report
        .outcome(BenchmarkName::Concurrency)
        .and_then(|o| o.details.clone())
    {
        Some(BenchmarkDetails::Concurrency(concurrency)) => {
            for level in &concurrency.levels {
                let summary = &level.summary;
                assert!(summary.completed > 0);
                assert!(summary.mean_ttft_ms.is_some() && summary.mean_itl_ms.is_some());
                assert_eq!(summary.total_input_tokens, None, "unknown, never zero");
                assert_eq!(summary.total_output_tokens, Some(3 * summary.completed));
                assert!(summary.output_throughput.is_some());
                assert_eq!(summary.total_token_throughput, None);
                assert_eq!(summary.requests_without_token_counts, summary.completed);
                assert!(
                    summary
                        .throughput_unavailable
                        .as_deref()
                        .is_some_and(|reason| reason.contains("lacked a token count")),
                    "{:?}",
                    summary.throughput_unavailable
                );
            }
        }
        other => panic!("expected concurrency details, got {other:?}"),
    }
    assert!(render_table(&report).contains("token counts:"));
}

fn record(sent_ms: f64, e2el_ms: Option<f64>, failed: bool) -> RequestRecord {
    RequestRecord {
        benchmark: "test".into(),
        label: String::new(),
        response_id: None,
        scheduled_ms: sent_ms,
        sent_ms,
        queue_delay_ms: 0.0,
        ttft_ms: e2el_ms,
        ttfc_ms: None,
        e2el_ms,
        itl_ms: Vec::new(),
        tpot_ms: None,
        http_status: None,
        usage: Some(grid_bench::openai::Usage {
            prompt_tokens: Some(3),
            completion_tokens: Some(1),
            ..Default::default()
        }),
        token_chunks: 1,
        reasoning_chunks: 0,
        answer_chunks: 1,
        tool_call_chunks: 0,
        finish_reason: None,
        failure: failed.then(|| grid_bench::Failure {
            kind: FailureKind::Connect,
            http_status: None,
            message: "refused".into(),
        }),
    }
}

#[test]
fn a_summary_without_a_time_span_has_no_rates_and_says_why() {
    crate::check(
        &[
            (
                "only failures",
                vec![record(5.0, None, true), record(6.0, None, true)],
                (Some(0.001), None, Some("no request completed".to_string())),
            ),
            (
                "one reply that took no time",
                vec![record(5.0, Some(0.0), false)],
                (
                    None,
                    None,
                    Some("the records span no time (zero duration)".to_string()),
                ),
            ),
            (
                "one reply of 500 ms",
                vec![record(5.0, Some(500.0), false)],
                (Some(0.5), Some(2.0), None),
            ),
        ],
        |records| {
            let summary = ServeSummary::from_records(records, LatencyOrigin::Send, None);
            (
                summary.duration,
                summary.request_throughput,
                summary.throughput_unavailable,
            )
        },
    );
}

#[tokio::test]
async fn an_unwritable_out_dir_is_an_environment_error_with_its_cause() {
    let url = serve(fakes::gateway_without_prompt_tokens()).await;
    let scratch = scratch_dir("unwritable");
    let file = scratch.join("a-file");
    std::fs::write(&file, b"not a directory").expect("write");
    let (config, mut options) = quick(&[BenchmarkName::Reasoning]);
    options.out_dir = Some(file.join("out"));
    let error = run_battery_with_records(&endpoint(&url), &config, options)
        .await
        .err()
        .expect("the results cannot be written");
    assert!(matches!(error, BatteryError::Output(_)), "{error:?}");
    assert_eq!(error.kind(), BatteryErrorKind::Environment);
    assert!(error.is_environment());
    // The cause chain reaches the operating system's error.
    let chain: Vec<String> =
        std::iter::successors(Some(&error as &dyn std::error::Error), |e| e.source())
            .map(ToString::to_string)
            .collect();
    assert!(chain.len() >= 3, "{chain:?}");
    assert!(chain[1].contains("a-file/out"), "{chain:?}");
    assert!(
        chain
            .last()
            .is_some_and(|cause| cause.to_lowercase().contains("not a directory")),
        "{chain:?}"
    );
    let _ = std::fs::remove_dir_all(scratch);
}
