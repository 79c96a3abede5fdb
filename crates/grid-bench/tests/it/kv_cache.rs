//! kv_cache against the simulator: a real acceleration, confirmed by the
//! server, with prefix caching on; about 1 and no claimed effect with it off.

use grid_bench::benchmarks::kv_cache::{CacheEffect, KvCacheReport};
use grid_bench::report::BenchmarkDetails;
use grid_bench::{BatteryConfig, BatteryReport, BenchmarkName, RunOptions, run_battery};

use crate::{endpoint, sim};

async fn run(extra: &[&str]) -> (BatteryReport, KvCacheReport) {
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
    let report = run_battery(
        &endpoint(&server, Some("k")),
        &config,
        RunOptions {
            only: Some(vec![BenchmarkName::KvCache]),
            seed: 7,
            ..RunOptions::default()
        },
    )
    .await
    .expect("battery runs");
    let details = match &report.benchmarks[0].details {
        Some(BenchmarkDetails::KvCache(details)) => details.clone(),
        other => panic!("expected kv_cache details, got {other:?}"),
    };
    (report, details)
}

#[tokio::test]
async fn prefix_caching_on_gives_a_confirmed_acceleration() {
    let (report, kv) = run(&[]).await;
    let estimate = kv.acceleration.expect("an acceleration");
    assert_eq!(estimate.samples, 4);
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
    let (report, kv) = run(&["--no-enable-prefix-caching"]).await;
    let estimate = kv.acceleration.expect("an acceleration");
    assert!(estimate.median < 1.3 && estimate.median > 0.5, "{kv:#?}");
    assert_eq!(kv.server_confirms_hits, Some(false), "{kv:#?}");
    assert_eq!(kv.cache_effect, CacheEffect::NotObserved, "{kv:#?}");
    assert!(!report.headline.cache_effect_claimed);
    assert_eq!(report.headline.cache_confirmed_by_server, Some(false));
}
