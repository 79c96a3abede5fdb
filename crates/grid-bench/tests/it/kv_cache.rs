//! kv_cache against the simulator: a real acceleration, confirmed by the
//! server, with prefix caching on; about 1 and no claimed effect with it off.

use std::sync::{Arc, Mutex};

use grid_bench::benchmarks::kv_cache::{CacheEffect, KvCacheReport};
use grid_bench::report::BenchmarkDetails;
use grid_bench::{
    BatteryConfig, BatteryEvent, BatteryProgress, BatteryReport, BenchmarkName, OutcomeStatus,
    RunOptions, run_battery,
};

use crate::{endpoint, sim};

/// Keeps every progress event, in order.
#[derive(Default)]
struct Recorder(Mutex<Vec<BatteryEvent>>);

impl BatteryProgress for Recorder {
    fn event(&self, event: &BatteryEvent) {
        self.0.lock().expect("not poisoned").push(event.clone());
    }
}

async fn run(extra: &[&str]) -> (BatteryReport, KvCacheReport, Vec<BatteryEvent>) {
    let mut args = vec![
        "tiny",
        "--api-key",
        "k",
        "--enable-prompt-tokens-details",
        "--sim-time-scale",
        "0.1",
    ];
    args.extend_from_slice(extra);
    let server = sim(&args).await;
    let mut config = BatteryConfig::quick();
    config.kv_cache.prefix_words = 1500;
    config.kv_cache.iterations = 4;
    config.kv_cache.turns = 4;
    let recorder = Arc::new(Recorder::default());
    let report = run_battery(
        &endpoint(&server, Some("k")),
        &config,
        RunOptions {
            only: Some(vec![BenchmarkName::KvCache]),
            seed: 7,
            progress: Some(recorder.clone()),
            ..RunOptions::default()
        },
    )
    .await
    .expect("battery runs");
    let details = match &report.benchmarks[0].details {
        Some(BenchmarkDetails::KvCache(details)) => details.clone(),
        other => panic!("expected kv_cache details, got {other:?}"),
    };
    let events = recorder.0.lock().expect("not poisoned").clone();
    (report, details, events)
}

#[tokio::test]
async fn prefix_caching_on_gives_a_confirmed_acceleration() {
    let (report, kv, _) = run(&[]).await;
    let estimate = kv.acceleration.expect("an acceleration");
    assert_eq!(estimate.samples, 4);
    // The interval is grid-core's one bootstrap of the iterations, with the
    // configured resamples and the run's seed: what the ranking recomputes
    // when it pools repeats.
    let samples: Vec<f64> = kv
        .iterations
        .iter()
        .filter_map(|i| i.acceleration)
        .collect();
    assert_eq!(
        Some(estimate),
        grid_core::bootstrap_median(&samples, report.config.bootstrap_resamples, 7)
    );
    assert!(estimate.median > 3.0 && estimate.ci95_low > 1.5, "{kv:#?}");
    assert_eq!(kv.server_confirms_hits, Some(true), "{kv:#?}");
    assert_eq!(kv.cache_effect, CacheEffect::Confirmed);
    assert!(
        kv.warm_cached_fraction.expect("cached tokens reported") > 0.5,
        "{kv:#?}"
    );
    let equal = kv.equal_length_acceleration.expect("equal-length estimate");
    assert!(equal.median > 3.0, "{kv:#?}");
    let metrics = report.benchmarks[0]
        .server_metrics
        .as_ref()
        .expect("metrics scraped");
    assert!(
        metrics.prefix_cache_hit_rate.expect("hit rate") > 0.3,
        "{metrics:#?}"
    );
    let headline = &report.headline;
    assert_eq!(headline.kv_cache_acceleration, Some(estimate));
    assert_eq!(headline.cache_confirmed_by_server, Some(true));
    assert!(headline.cache_effect_claimed);
    assert!(headline.ttft_miss_ms.expect("miss") > headline.ttft_hit_ms.expect("hit"));
}

#[tokio::test]
async fn prefix_caching_off_gives_about_one_and_claims_nothing() {
    let (report, kv, _) = run(&["--no-enable-prefix-caching"]).await;
    let estimate = kv.acceleration.expect("an acceleration");
    assert!(estimate.median < 1.3 && estimate.median > 0.5, "{kv:#?}");
    assert_eq!(kv.server_confirms_hits, Some(false), "{kv:#?}");
    assert_eq!(kv.cache_effect, CacheEffect::NotObserved, "{kv:#?}");
    assert!(!report.headline.cache_effect_claimed);
    assert_eq!(report.headline.cache_confirmed_by_server, Some(false));
}

#[tokio::test]
async fn progress_is_reported_as_events() {
    let (report, _, events) = run(&[]).await;
    let outcome = &report.benchmarks[0];
    let kv = BenchmarkName::KvCache;
    let config = &report.config.kv_cache;
    // Started with the planned count, one event per request, then finished
    // with the outcome's counts.
    assert_eq!(
        events.first(),
        Some(&BatteryEvent::BenchmarkStarted {
            benchmark: kv,
            expected_requests: (config.iterations
                * (config.turns + if config.equal_length_variant { 2 } else { 0 }))
                as u64,
        })
    );
    let requests = events
        .iter()
        .filter(
            |e| matches!(e, BatteryEvent::RequestFinished { benchmark, .. } if *benchmark == kv),
        )
        .count() as u64;
    assert_eq!(requests, outcome.requests_total);
    assert_eq!(events.len() as u64, requests + 2, "{events:#?}");
    assert_eq!(
        events.last(),
        Some(&BatteryEvent::BenchmarkFinished {
            benchmark: kv,
            requests_total: outcome.requests_total,
            requests_failed: outcome.requests_failed,
            status: OutcomeStatus::Completed,
            top_failures: Vec::new(),
        })
    );
}
