use grid_bench::{BatteryConfig, BenchmarkName};
use grid_core::Secret;

use crate::check;

#[test]
fn defaults_are_the_studys() {
    let config = BatteryConfig::default();
    assert_eq!(config.enabled, BenchmarkName::ALL.to_vec());
    assert_eq!(
        (
            config.long_conversation.turns,
            config.long_conversation.iterations
        ),
        (15, 3)
    );
    assert_eq!(config.stability.requests, 20);
    assert_eq!(config.stability.short_output_tokens, [50, 100]);
    assert_eq!(config.stability.long_output_tokens, [800, 900]);
    assert_eq!(config.concurrency.levels, vec![1, 5, 10, 32]);
    assert_eq!(config.validate(), Ok(()));
    assert_eq!(BatteryConfig::quick().validate(), Ok(()));
}

#[test]
fn config_file_section_parses_with_defaults_and_refuses_unknown_keys() {
    let parsed: BatteryConfig = serde_json::from_str(
        r#"{"stability": {"requests": 8}, "enabled": ["kv_cache", "gpu_profile"]}"#,
    )
    .expect("parse");
    assert_eq!(parsed.stability.requests, 8);
    assert_eq!(parsed.stability.interval_s, 5.0);
    assert_eq!(
        parsed.enabled,
        vec![BenchmarkName::KvCache, BenchmarkName::GpuProfile]
    );
    let error = serde_json::from_str::<BatteryConfig>(r#"{"stability": {"request": 8}}"#)
        .expect_err("typo");
    assert!(
        error.to_string().contains("unknown field `request`"),
        "{error}"
    );
    let round_trip: BatteryConfig =
        serde_json::from_str(&serde_json::to_string(&BatteryConfig::default()).expect("serialise"))
            .expect("parse");
    assert_eq!(round_trip, BatteryConfig::default());
}

/// A change that makes the default configuration invalid (or not).
type Change = fn(&mut BatteryConfig);

#[test]
fn invalid_values_are_refused_with_the_field() {
    let cases: Vec<(&str, Change, Option<String>)> = vec![
        (
            "zero level",
            |c: &mut BatteryConfig| c.concurrency.levels = vec![0, 5],
            Some("concurrency.levels".to_string()),
        ),
        (
            "unbounded level",
            |c: &mut BatteryConfig| c.concurrency.levels = vec![100_000],
            Some("concurrency.levels".to_string()),
        ),
        (
            "one kv turn",
            |c: &mut BatteryConfig| c.kv_cache.turns = 1,
            Some("kv_cache".to_string()),
        ),
        (
            "inverted range",
            |c: &mut BatteryConfig| c.stability.short_output_tokens = [100, 50],
            Some("stability.short_output_tokens".to_string()),
        ),
        (
            "zero timeout",
            |c: &mut BatteryConfig| c.request_timeout_s = 0.0,
            Some("request_timeout_s".to_string()),
        ),
        (
            "tool choice",
            |c: &mut BatteryConfig| c.tool_calling.tool_choice = "none".into(),
            Some("tool_calling.tool_choice".to_string()),
        ),
        ("valid", |_: &mut BatteryConfig| {}, None),
    ];
    check(&cases, |change| {
        let mut config = BatteryConfig::default();
        change(&mut config);
        config.validate().err().map(|e| e.field.to_string())
    });
}

#[test]
fn benchmark_names_parse_and_print_in_snake_case() {
    check(
        &[
            ("snake", "kv_cache", Ok(BenchmarkName::KvCache)),
            ("dash", "tool-calling", Ok(BenchmarkName::ToolCalling)),
            ("gpu", "gpu_profile", Ok(BenchmarkName::GpuProfile)),
            (
                "unknown",
                "latency",
                Err("unknown benchmark \"latency\"".to_string()),
            ),
        ],
        |text| {
            text.parse::<BenchmarkName>()
                .map_err(|e| e.to_string().split(':').next().unwrap_or("").to_string())
        },
    );
    assert_eq!(
        BenchmarkName::LongConversation.to_string(),
        "long_conversation"
    );
    assert_eq!(
        serde_json::to_string(&BenchmarkName::LongConversation).expect("json"),
        "\"long_conversation\""
    );
}

#[test]
fn api_key_never_prints() {
    let key = Secret::new("sk-secret-123");
    assert_eq!(format!("{key:?} {key}"), "*** ***");
    assert_eq!(key.expose(), "sk-secret-123");
    let endpoint = grid_bench::Endpoint {
        base_url: "http://h:1/v1/".into(),
        model: "m".into(),
        api_key: Some(key),
    };
    assert!(!format!("{endpoint:?}").contains("secret"));
    assert_eq!(
        endpoint.chat_completions_url(),
        "http://h:1/v1/chat/completions"
    );
    assert_eq!(endpoint.metrics_url(), "http://h:1/metrics");
}

#[test]
fn the_bounds_on_a_bad_server_are_keys_with_defaults_and_limits() {
    let config = BatteryConfig::default();
    assert_eq!(
        (
            config.idle_timeout_s,
            config.connect_timeout_s,
            config.benchmark_timeout_s,
            config.max_event_bytes
        ),
        (30.0, 10.0, 1800.0, 4 << 20)
    );
    assert_eq!(config.idle_timeout(), std::time::Duration::from_secs(30));
    let parsed: BatteryConfig = serde_json::from_str(
        r#"{"idle_timeout_s": 5, "benchmark_timeout_s": 60, "max_event_bytes": 1048576}"#,
    )
    .expect("parse");
    assert_eq!(
        parsed.benchmark_timeout(),
        std::time::Duration::from_secs(60)
    );
    let cases: Vec<(&str, Change, Option<String>)> = vec![
        (
            "a timeout of 1e20 s",
            |c: &mut BatteryConfig| c.request_timeout_s = 1e20,
            Some("request_timeout_s".to_string()),
        ),
        (
            "zero idle timeout",
            |c: &mut BatteryConfig| c.idle_timeout_s = 0.0,
            Some("idle_timeout_s".to_string()),
        ),
        (
            "negative connect timeout",
            |c: &mut BatteryConfig| c.connect_timeout_s = -1.0,
            Some("connect_timeout_s".to_string()),
        ),
        (
            "benchmark bound of infinity",
            |c: &mut BatteryConfig| c.benchmark_timeout_s = f64::INFINITY,
            Some("benchmark_timeout_s".to_string()),
        ),
        (
            "an event cap below any chunk",
            |c: &mut BatteryConfig| c.max_event_bytes = 100,
            Some("max_event_bytes".to_string()),
        ),
        (
            "negative standalone gpu window",
            |c: &mut BatteryConfig| c.gpu_profile.standalone_duration_s = -1.0,
            Some("gpu_profile.standalone_duration_s".to_string()),
        ),
        (
            "a stability interval of a century",
            |c: &mut BatteryConfig| c.stability.interval_s = 3.2e9,
            Some("stability.interval_s".to_string()),
        ),
        (
            "the limits themselves",
            |c: &mut BatteryConfig| {
                c.request_timeout_s = 604800.0;
                c.max_event_bytes = 65536;
            },
            None,
        ),
    ];
    check(&cases, |change| {
        let mut config = BatteryConfig::default();
        change(&mut config);
        config.validate().err().map(|e| e.field.to_string())
    });
}
