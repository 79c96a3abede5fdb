//! The whole battery against the simulator: outputs, headline, table,
//! cancellation and "insufficient samples".

use std::time::Duration;

use grid_bench::report::{BenchmarkDetails, OutcomeStatus};
use grid_bench::{
    BatteryConfig, BatteryError, BenchmarkName, RunOptions, render_table, run_battery,
    run_battery_with_records,
};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::{endpoint, scratch_dir, sim};

#[tokio::test]
async fn quick_battery_writes_every_output_and_a_consistent_headline() {
    let server = sim(&[
        "tiny",
        "--api-key",
        "k",
        "--enable-prompt-tokens-details",
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        "hermes",
        "--reasoning-parser",
        "qwen3",
        "--sim-time-scale",
        "0.02",
    ])
    .await;
    let out_dir = scratch_dir("battery");
    let mut config = BatteryConfig::quick();
    config.gpu_profile.command = "/nonexistent/nvidia-smi".into();
    let run = run_battery_with_records(
        &endpoint(&server, Some("k")),
        &config,
        RunOptions {
            out_dir: Some(out_dir.clone()),
            seed: 3,
            ..RunOptions::default()
        },
    )
    .await
    .expect("battery runs");
    let report = &run.report;
    let names: Vec<BenchmarkName> = report.benchmarks.iter().map(|b| b.name).collect();
    assert_eq!(names, BenchmarkName::ALL.to_vec());
    for outcome in &report.benchmarks {
        if outcome.name == BenchmarkName::GpuProfile {
            assert!(
                matches!(outcome.status, OutcomeStatus::Unavailable { .. }),
                "{:?}",
                outcome.status
            );
        } else {
            assert_eq!(
                outcome.status,
                OutcomeStatus::Completed,
                "{}: {:#?}",
                outcome.name,
                outcome
            );
            assert_eq!(
                outcome.requests_failed, 0,
                "{}: {:?}",
                outcome.name, outcome.failure_reasons
            );
        }
    }
    let headline = &report.headline;
    assert_eq!(headline.requests_total as usize, run.records.len());
    assert_eq!(headline.requests_failed, 0);
    assert_eq!(
        headline.vram_peak_mib, None,
        "no nvidia-smi, no VRAM number"
    );
    assert!(headline.output_throughput.expect("throughput") > 0.0);
    assert_eq!(headline.headline_concurrency, Some(4));
    assert_eq!(headline.tool_call_success_rate, Some(1.0));
    assert!(headline.stability_degradation.is_some());
    assert_eq!(headline.benchmarks_completed.len(), 7);
    // The pressured workload's figures reach the headline, with the
    // server's KV capacity from vllm:cache_config_info.
    assert_eq!(
        headline.pressure_acceleration.map(|e| e.samples),
        Some(config.kv_cache_pressure.conversations)
    );
    assert!(headline.pressure_warm_hit_rate.expect("cached tokens") > 0.5);
    assert_eq!(headline.pressure_preemptions, Some(0));
    assert!(headline.kv_capacity_tokens.expect("cache_config_info") > 0);
    assert_eq!(headline.benchmarks_failed.len(), 1);
    assert_eq!(headline.benchmarks_failed[0].0, BenchmarkName::GpuProfile);
    // Reasoning: the simulator thinks with the qwen3 parser; reasoning is
    // counted apart from the answer.
    let reasoning = report
        .outcome(BenchmarkName::Reasoning)
        .and_then(|o| o.details.clone());
    match reasoning {
        Some(BenchmarkDetails::Reasoning(r)) => {
            assert_eq!(r.results.len(), 3);
            assert!(
                r.results
                    .iter()
                    .all(|t| t.reasoning_chunks > 0 && t.answer_chunks > 0),
                "{r:#?}"
            );
            assert!(r.results.iter().all(|t| !t.answer_text.is_empty()));
        }
        other => panic!("expected reasoning details, got {other:?}"),
    }
    // Files: one JSON per benchmark, the report, and the raw records.
    for name in BenchmarkName::ALL {
        let path = out_dir.join(format!("{name}.json"));
        let value: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("summary file"))
                .expect("JSON");
        assert_eq!(value["name"], name.as_str());
    }
    let lines = std::fs::read_to_string(out_dir.join("records.jsonl")).expect("records");
    assert_eq!(lines.lines().count(), run.records.len());
    let first: Value =
        serde_json::from_str(lines.lines().next().expect("a record")).expect("JSON line");
    assert!(
        first["ttft_ms"].is_number() && first["benchmark"] == "kv_cache",
        "{first}"
    );
    let saved: grid_bench::BatteryReport = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("battery.json")).expect("report"),
    )
    .expect("report parses back");
    // Floats may differ in the last digit after a JSON round trip.
    assert_eq!(saved.benchmarks.len(), report.benchmarks.len());
    assert_eq!(
        saved.headline.requests_total,
        report.headline.requests_total
    );
    assert_eq!(
        saved.headline.benchmarks_completed,
        report.headline.benchmarks_completed
    );
    let leftovers: Vec<_> = std::fs::read_dir(&out_dir)
        .expect("dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    assert!(
        !std::fs::read_to_string(out_dir.join("battery.json"))
            .expect("report")
            .contains("\"k\""),
        "the API key must not be written"
    );
    let concurrency = report
        .outcome(BenchmarkName::Concurrency)
        .and_then(|o| o.details.clone());
    let Some(BenchmarkDetails::Concurrency(levels)) = concurrency else {
        panic!("concurrency details")
    };
    assert!(
        levels
            .levels
            .iter()
            .all(|l| l.summary.request_goodput.is_some())
    );
    let table = render_table(report);
    for name in BenchmarkName::ALL {
        assert!(table.contains(name.as_str()), "{table}");
    }
    assert!(table.contains("accel x"), "{table}");
    let _ = std::fs::remove_dir_all(out_dir);
}

#[tokio::test]
async fn cancellation_drops_in_flight_requests_and_returns_cancelled() {
    let server = sim(&[
        "tiny",
        "--api-key",
        "k",
        "--sim-fixed-ttft-ms",
        "50",
        "--sim-fixed-itl-ms",
        "50",
    ])
    .await;
    let cancel = cancel_after(Duration::from_millis(400));
    let config = unbounded_concurrency(8, 200);
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        run_battery(
            &endpoint(&server, Some("k")),
            &config,
            RunOptions {
                only: Some(vec![BenchmarkName::Concurrency]),
                cancel,
                ..RunOptions::default()
            },
        ),
    )
    .await
    .expect("run_battery returns after cancellation");
    assert!(
        matches!(result, Err(BatteryError::Cancelled)),
        "{:?}",
        result.map(|r| r.headline)
    );
    // The server saw the streams end early: every request was dropped
    // mid-stream (200 tokens take 10 s).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let truth: Value = reqwest::get(format!("{}/sim/requests", server.base_url()))
        .await
        .expect("truth")
        .json()
        .await
        .expect("json");
    let statuses: Vec<&str> = truth["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter_map(|r| r["status"].as_str())
        .collect();
    assert_eq!(statuses.len(), 8, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == "aborted"), "{statuses:?}");
}

#[tokio::test]
async fn too_few_good_samples_is_reported_as_such_not_as_a_number() {
    let server = sim(&[
        "tiny",
        "--api-key",
        "k",
        "--sim-http-500-rate",
        "1",
        "--sim-time-scale",
        "0.01",
    ])
    .await;
    let report = run_battery(
        &endpoint(&server, Some("k")),
        &BatteryConfig::quick(),
        RunOptions {
            only: Some(vec![BenchmarkName::KvCache, BenchmarkName::Stability]),
            ..RunOptions::default()
        },
    )
    .await
    .expect("battery runs");
    for outcome in &report.benchmarks {
        assert!(
            matches!(
                outcome.status,
                OutcomeStatus::InsufficientSamples { successful: 0, .. }
            ),
            "{}: {:?}",
            outcome.name,
            outcome.status
        );
        assert_eq!(outcome.requests_failed, outcome.requests_total);
        assert_eq!(
            outcome.failure_reasons.get("http_status"),
            Some(&outcome.requests_total)
        );
    }
    let headline = &report.headline;
    assert_eq!(headline.kv_cache_acceleration, None);
    assert_eq!(headline.stability_degradation, None);
    assert_eq!(headline.request_error_rate, 1.0);
    assert_eq!(headline.benchmarks_failed.len(), 2);
    assert!(
        headline.benchmarks_failed[0]
            .1
            .starts_with("insufficient samples"),
        "{:?}",
        headline.benchmarks_failed
    );
}

#[tokio::test]
async fn the_isolated_battery_measures_on_its_own_thread_and_stops_on_cancel() {
    let server = sim(&[
        "tiny",
        "--api-key",
        "k",
        "--enable-prompt-tokens-details",
        "--sim-time-scale",
        "0.02",
    ])
    .await;
    let report = grid_bench::run_battery_isolated(
        endpoint(&server, Some("k")),
        BatteryConfig::quick(),
        RunOptions {
            only: Some(vec![BenchmarkName::KvCache]),
            seed: 5,
            ..RunOptions::default()
        },
    )
    .await
    .expect("isolated battery runs");
    let acceleration = report
        .headline
        .kv_cache_acceleration
        .expect("kv_cache measured on the battery's own runtime");
    assert!(acceleration.median > 1.5, "{acceleration:?}");
    assert_eq!(report.headline.cache_confirmed_by_server, Some(true));

    // A cancel from the caller's runtime reaches the battery's runtime.
    let cancel = cancel_after(Duration::from_millis(300));
    let config = unbounded_concurrency(4, 2000);
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        grid_bench::run_battery_isolated(
            endpoint(&server, Some("k")),
            config,
            RunOptions {
                only: Some(vec![BenchmarkName::Concurrency]),
                cancel,
                ..RunOptions::default()
            },
        ),
    )
    .await
    .expect("the isolated battery returns after cancellation");
    assert!(
        matches!(result, Err(BatteryError::Cancelled)),
        "{:?}",
        result.map(|r| r.headline)
    );
}

/// A concurrency benchmark that would run far past the test (30 s, 1000
/// requests), so only cancellation can end it in time.
fn unbounded_concurrency(users: usize, max_tokens: u32) -> BatteryConfig {
    let mut config = BatteryConfig::quick();
    config.concurrency.levels = vec![users];
    config.concurrency.duration_s = 30.0;
    config.concurrency.max_requests_per_level = 1000;
    config.concurrency.max_tokens = max_tokens;
    config
}

/// A token cancelled from the test's runtime after `delay`.
fn cancel_after(delay: Duration) -> CancellationToken {
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        trigger.cancel();
    });
    cancel
}
