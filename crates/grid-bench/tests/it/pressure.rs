//! kv_cache_pressure against the simulator: a KV cache that holds every
//! history keeps the warm turns cached; one that holds less than the
//! histories together evicts them (LRU) and the warm turns recompute. And
//! the noise guard: host noise the server does not see marks a benchmark
//! `disturbed`, with both means.

use grid_bench::benchmarks::kv_cache::CacheEffect;
use grid_bench::benchmarks::kv_cache_pressure::KvCachePressureReport;
use grid_bench::report::BenchmarkDetails;
use grid_bench::{BatteryConfig, BatteryReport, BenchmarkName, RunOptions, run_battery};

use crate::{endpoint, sim};

/// A KV geometry of 256 bytes a token (one layer, one KV head per GPU of
/// 64 dims, fp16), so `--kv-cache-memory-bytes` counts blocks of 4 KiB.
const GEOMETRY: [&str; 6] = [
    "--sim-num-layers",
    "1",
    "--sim-num-kv-heads",
    "2",
    "--sim-head-dim",
    "64",
];

async fn run(extra: &[&str], only: BenchmarkName) -> BatteryReport {
    run_guarded(extra, only, grid_bench::config::NoiseGuardConfig::default()).await
}

async fn run_guarded(
    extra: &[&str],
    only: BenchmarkName,
    noise_guard: grid_bench::config::NoiseGuardConfig,
) -> BatteryReport {
    let mut args = vec![
        "tiny",
        "--api-key",
        "k",
        "--enable-prompt-tokens-details",
        "--max-model-len",
        "1024",
        "--sim-time-scale",
        "0.1",
    ];
    args.extend_from_slice(&GEOMETRY);
    args.extend_from_slice(extra);
    let server = sim(&args).await;
    let mut config = BatteryConfig::quick();
    config.kv_cache_pressure.conversations = 4;
    config.kv_cache_pressure.turns = 4;
    config.kv_cache_pressure.opening_words = 300;
    config.kv_cache_pressure.turn_words = 20;
    config.noise_guard = noise_guard;
    run_battery(
        &endpoint(&server, Some("k")),
        &config,
        RunOptions {
            only: Some(vec![only]),
            seed: 11,
            ..RunOptions::default()
        },
    )
    .await
    .expect("battery runs")
}

fn details(report: &BatteryReport) -> KvCachePressureReport {
    match &report.benchmarks[0].details {
        Some(BenchmarkDetails::KvCachePressure(details)) => (**details).clone(),
        other => panic!("expected kv_cache_pressure details, got {other:?}"),
    }
}

#[tokio::test]
async fn a_cache_that_holds_every_history_keeps_the_warm_turns_cached() {
    // 4096 blocks of 16 tokens: far more than 4 histories of under 1k.
    let report = run(
        &["--kv-cache-memory-bytes", "16777216"],
        BenchmarkName::KvCachePressure,
    )
    .await;
    let pressure = details(&report);
    assert_eq!(pressure.kv_capacity_tokens, Some(65536), "{pressure:#?}");
    let workload = pressure.workload_tokens.expect("every conversation ran");
    assert!(workload > 1300 && workload < 4 * 1024, "{pressure:#?}");
    let hit = pressure.warm_hit_rate.expect("cached tokens reported");
    assert!(hit > 0.7, "{pressure:#?}");
    assert!(
        pressure.warm_counter_hit_rate.expect("counter deltas") > 0.7,
        "{pressure:#?}"
    );
    assert_eq!(pressure.preemptions, Some(0), "{pressure:#?}");
    assert_eq!(
        pressure.cache_effect,
        CacheEffect::Confirmed,
        "{pressure:#?}"
    );
    let estimate = pressure.acceleration.expect("an acceleration");
    assert_eq!(estimate.samples, 4);
    // The interval is grid-core's bootstrap of the per-conversation values,
    // which the headline keeps for pooling repeats.
    let headline = &report.headline;
    assert_eq!(headline.pressure_acceleration, Some(estimate));
    assert_eq!(headline.pressure_acceleration_samples.len(), 4);
    assert_eq!(
        Some(estimate),
        grid_core::bootstrap_median(
            &headline.pressure_acceleration_samples,
            report.config.bootstrap_resamples,
            11 ^ 2
        )
    );
    assert_eq!(headline.kv_capacity_tokens, Some(65536));
    assert_eq!(headline.pressure_warm_hit_rate, Some(hit));
}

#[tokio::test]
async fn a_cache_smaller_than_the_histories_evicts_them() {
    // 80 blocks: 1280 tokens, room for one or two histories of the four.
    let report = run(
        &["--kv-cache-memory-bytes", "327680"],
        BenchmarkName::KvCachePressure,
    )
    .await;
    let pressure = details(&report);
    assert_eq!(pressure.kv_capacity_tokens, Some(1280), "{pressure:#?}");
    assert!(
        pressure.workload_tokens.expect("every conversation ran") > 1280,
        "{pressure:#?}"
    );
    let hit = pressure.warm_hit_rate.expect("cached tokens reported");
    assert!(hit < 0.5, "{pressure:#?}");
    assert!(
        pressure.preemptions.is_some(),
        "the counter is read: {pressure:#?}"
    );
}

#[tokio::test]
async fn host_noise_the_server_does_not_see_marks_the_benchmark_disturbed() {
    // Every first token waits 25 ms (real time) after the engine made it,
    // where the server's own TTFT histogram cannot see it; the guard has the
    // dry run's 2 ms floor (the simulator's front end costs microseconds).
    let report = run_guarded(
        &["--sim-first-chunk-delay-ms", "25"],
        BenchmarkName::KvCache,
        grid_bench::config::NoiseGuardConfig {
            max_excess_ms: 2.0,
            ..Default::default()
        },
    )
    .await;
    let outcome = &report.benchmarks[0];
    let check = outcome.noise_guard.clone().expect("both means known");
    assert!(outcome.disturbed, "{check:?}");
    assert!(check.disturbed);
    assert_eq!(check.client_requests, outcome.requests_total);
    assert!(
        check.client_mean_ttft_ms - check.server_mean_ttft_ms >= 24.0,
        "{check:?}"
    );
    assert_eq!(
        report.headline.disturbed,
        vec![(BenchmarkName::KvCache, check.clone())]
    );
    let json = serde_json::to_value(outcome).expect("serialises");
    assert_eq!(json["disturbed"], serde_json::json!(true));
    assert_eq!(
        json["noise_guard"]["server_mean_ttft_ms"],
        serde_json::json!(check.server_mean_ttft_ms)
    );
}
