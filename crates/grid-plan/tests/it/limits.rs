//! Limits and counts are bounded values: refused at the boundary with the
//! path, the bound and the fix; held as `Duration`s; old manifests still read.

use std::time::Duration;

use grid_plan::{Plan, PlanError, RawLimits, Retries, SearchLimits, parse_plan};

use crate::validation::check;

#[test]
fn limits_out_of_range_are_refused_with_the_bound_and_the_fix() {
    let cases: &[(&str, &str, &[&str])] = &[
        // The defect: 1e20 s passed and `search` panicked in from_secs_f64.
        (
            r#""limits": {"search_timeout_s": 1e20}"#,
            "limits.search_timeout_s",
            &["1e20", "more than the bound of 604800 s", "7 days", "give"],
        ),
        (
            r#""limits": {"per_config_timeout_s": 1e20}"#,
            "limits.per_config_timeout_s",
            &["604800", "7 days"],
        ),
        (
            r#""limits": {"health_timeout_s": 86401}"#,
            "limits.health_timeout_s",
            &["more than the bound of 86400 s", "1 day"],
        ),
        (
            r#""limits": {"retry_backoff_s": 1e20}"#,
            "limits.retry_backoff_s",
            &["3600", "1 hour", "0 or a positive number of seconds"],
        ),
        // Beyond f64: serde_json refuses the number itself, at its key.
        (
            r#""limits": {"search_timeout_s": 1e400}"#,
            "limits.search_timeout_s",
            &["number out of range"],
        ),
        // JSON has no NaN; the literal is refused at its key.
        (
            r#""limits": {"health_timeout_s": NaN}"#,
            "limits.health_timeout_s",
            &["expected value"],
        ),
        (
            r#""limits": {"per_config_timeout_s": -5}"#,
            "limits.per_config_timeout_s",
            &["-5 s is negative", "a positive number of seconds"],
        ),
        (
            r#""limits": {"retry_backoff_s": -0.5}"#,
            "limits.retry_backoff_s",
            &["negative"],
        ),
        // A positive number that rounds to no time at all is no timeout.
        (
            r#""limits": {"health_timeout_s": 1e-12}"#,
            "limits.health_timeout_s",
            &["not positive"],
        ),
        (
            r#""limits": {"transient_retries": 21}"#,
            "limits.transient_retries",
            &["21 is outside 0 to 20", "retries per config from 0 to 20"],
        ),
        // A huge count: beyond u32, still refused with its bound.
        (
            r#""limits": {"transient_retries": 1000000000000}"#,
            "limits.transient_retries",
            &["1000000000000 is outside 0 to 20"],
        ),
        // Beyond u64 serde reads a float: refused at the key, not wrapped.
        (
            r#""limits": {"transient_retries": 1e30}"#,
            "limits.transient_retries",
            &["invalid type: floating point"],
        ),
        (
            r#""repeats": 4294967297"#,
            "repeats",
            &["4294967297 is outside 1 to 100", "from 1 to 100"],
        ),
        (r#""repeats": -1"#, "repeats", &["invalid value"]),
    ];
    for (extra, path, fragments) in cases {
        check(extra, path, fragments);
    }
}

#[test]
fn values_that_reach_the_limits_in_code_are_refused_too() {
    // NaN and infinities cannot be written in JSON; a caller building limits
    // in code goes through the same conversion.
    let cases: &[(&str, RawLimits, &[&str])] = &[
        (
            "limits.search_timeout_s",
            RawLimits {
                search_timeout_s: f64::NAN,
                ..RawLimits::default()
            },
            &["NaN is not a finite number of seconds", "7 days"],
        ),
        (
            "limits.health_timeout_s",
            RawLimits {
                health_timeout_s: f64::INFINITY,
                ..RawLimits::default()
            },
            &["inf is not a finite number of seconds"],
        ),
        (
            "limits.retry_backoff_s",
            RawLimits {
                retry_backoff_s: f64::NEG_INFINITY,
                ..RawLimits::default()
            },
            &["not a finite number"],
        ),
        (
            "limits.transient_retries",
            RawLimits {
                transient_retries: u64::MAX,
                ..RawLimits::default()
            },
            &["from 0 to 20"],
        ),
    ];
    for (path, raw, fragments) in cases {
        let err = SearchLimits::try_from(raw.clone()).unwrap_err();
        let message = crate::chain(&err);
        assert_eq!(err.path(), *path, "{message}");
        assert!(matches!(
            err,
            PlanError::Limit { .. } | PlanError::Count { .. }
        ));
        for fragment in *fragments {
            assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
        }
    }
}

#[test]
fn limits_become_durations_and_the_bounds_themselves_are_allowed() {
    let plan = parse_plan(&crate::plan_text(
        r#""limits": {"per_config_timeout_s": 0.5, "search_timeout_s": 604800,
                      "health_timeout_s": 86400, "transient_retries": 20, "retry_backoff_s": 0},
           "repeats": 100"#,
    ))
    .unwrap();
    assert_eq!(plan.limits.per_config_timeout, Duration::from_millis(500));
    assert_eq!(plan.limits.search_timeout, Duration::from_secs(7 * 86400));
    assert_eq!(plan.limits.health_timeout, Duration::from_secs(86400));
    assert_eq!(plan.limits.transient_retries.get(), 20);
    assert_eq!(plan.limits.retry_backoff, Duration::ZERO);
    assert_eq!(plan.repeats.get(), 100);

    // Absent keys take the documented defaults.
    let plan = parse_plan(&crate::plan_text("")).unwrap();
    assert_eq!(plan.limits, SearchLimits::default());
    assert_eq!(plan.limits.per_config_timeout, Duration::from_secs(3600));
    assert_eq!(plan.limits.search_timeout, Duration::from_secs(14 * 3600));
    assert_eq!(plan.limits.health_timeout, Duration::from_secs(1200));
    assert_eq!(plan.limits.transient_retries.get(), 2);
    assert_eq!(plan.limits.retry_backoff, Duration::from_secs(15));
    assert_eq!(plan.repeats.get(), 1);
}

#[test]
fn the_retry_backoff_doubles_and_saturates_at_its_cap() {
    let hour = Duration::from_secs(3600);
    // (first backoff, failed attempt, expected wait)
    let cases = [
        (Duration::from_secs(15), 1, Duration::from_secs(15)),
        (Duration::from_secs(15), 2, Duration::from_secs(30)),
        (Duration::from_secs(15), 3, Duration::from_secs(60)),
        (Duration::from_secs(15), 8, Duration::from_secs(1920)),
        (Duration::from_secs(15), 9, hour),
        // 2^attempt overflowed here before: the wait saturates instead.
        (Duration::from_secs(15), 33, hour),
        (Duration::from_secs(15), u32::MAX, hour),
        (Duration::from_millis(100), 0, Duration::from_millis(100)),
        (Duration::ZERO, u32::MAX, Duration::ZERO),
        (hour, 1, hour),
        // Set by code past the file's bound, still capped.
        (Duration::MAX, u32::MAX, hour),
    ];
    for (first, attempt, expected) in cases {
        let limits = SearchLimits {
            retry_backoff: first,
            ..SearchLimits::default()
        };
        assert_eq!(
            limits.retry_backoff_after(attempt),
            expected,
            "first {first:?}, attempt {attempt}"
        );
    }
}

#[test]
fn saturating_counts_stay_in_range() {
    assert_eq!(Retries::saturating(1).get(), 1);
    assert_eq!(Retries::saturating(u32::MAX).get(), 20);
    assert_eq!(grid_plan::Repeats::saturating(0).get(), 1);
    assert!(Retries::new(21).is_err());
    assert_eq!(Retries::new(0).unwrap().get(), 0);
}

/// The plan text that `tests/data/manifest-plan-v1.json` was serialised
/// from, by the planner before limits became `Duration`s.
const OLD_MANIFEST_PLAN_TEXT: &str = r#""defaults": {"max_model_len": 8192, "extra_args": {"--enforce_eager": true, "swap-space": 4}},
   "named_configs": [{"name": "fp8", "description": "outside the grid", "settings": {"gpu_memory_utilization": 0.9, "kv_cache_dtype": "FP8"}},
                     {"name": "claimer", "settings": {"gpu_memory_utilization": 0.85, "enable_chunked_prefill": true, "enable_prefix_caching": true}}],
   "exclude": [{"when": {"gpu_memory_utilization": 0.95, "enable_chunked_prefill": false}, "reason": "too big"},
               {"when": {"max_num_seqs": 3}}],
   "battery": {"kv_cache": {"iterations": 4}},
   "repeats": 3,
   "limits": {"per_config_timeout_s": 0.5, "search_timeout_s": 1800.25, "health_timeout_s": 30, "transient_retries": 1, "retry_backoff_s": 0.1},
   "seed": 7"#;

const OLD_MANIFEST_PLAN: &str = include_str!("../data/manifest-plan-v1.json");

#[test]
fn old_manifest_plans_still_deserialize() {
    let old: serde_json::Value = serde_json::from_str(OLD_MANIFEST_PLAN).unwrap();
    let read: Plan = serde_json::from_value(old.clone()).expect("an old manifest's plan reads");
    assert_eq!(read.limits.per_config_timeout, Duration::from_millis(500));
    assert_eq!(read.limits.retry_backoff, Duration::from_millis(100));
    assert_eq!(read.limits.transient_retries.get(), 1);
    assert_eq!(read.repeats.get(), 3);
    // The same plan as today's planner reads from the same file, IDs included.
    let parsed = parse_plan(&crate::plan_text(OLD_MANIFEST_PLAN_TEXT)).unwrap();
    assert_eq!(read, parsed);
    // And it is written back in the same keys and units, plus the ranking
    // keys added since, at their defaults.
    let mut expected = old;
    expected["ranking"]["equivalence_margin"] = serde_json::json!(0.05);
    expected["ranking"]["champion_criterion"] = serde_json::json!("kv_cache");
    assert_eq!(serde_json::to_value(&read).unwrap(), expected);
}

#[test]
fn a_manifest_with_a_limit_out_of_range_is_refused_naming_the_key() {
    let mut old: serde_json::Value = serde_json::from_str(OLD_MANIFEST_PLAN).unwrap();
    old["limits"]["search_timeout_s"] = serde_json::json!(1e20);
    let err = serde_json::from_value::<Plan>(old.clone()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("limits.search_timeout_s") && message.contains("7 days"),
        "{message}"
    );
    old["limits"]["search_timeout_s"] = serde_json::json!(60);
    old["repeats"] = serde_json::json!(0);
    let message = serde_json::from_value::<Plan>(old).unwrap_err().to_string();
    assert!(message.contains("0 is outside 1 to 100"), "{message}");
}
