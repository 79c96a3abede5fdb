use grid_bench::metrics::{MetricsDelta, MetricsSnapshot, parse_prometheus};

use crate::{check, data};

#[test]
fn recorded_vllm_metrics_give_the_tracked_values() {
    let snapshot =
        MetricsSnapshot::parse(&data("metrics_sample.txt")).expect("recorded metrics parse");
    assert_eq!(
        snapshot,
        MetricsSnapshot {
            prefix_cache_queries_total: Some(39213.0),
            prefix_cache_hits_total: Some(24320.0),
            kv_cache_usage_perc: Some(0.0),
            num_preemptions_total: Some(0.0),
            num_requests_running: Some(0.0),
            num_requests_waiting: Some(0.0),
            ttft_seconds_sum: Some(0.6488730907440186),
            ttft_seconds_count: Some(20.0),
            // num_gpu_blocks 8192 x block_size 128, as its
            // kv_cache_size_tokens label says.
            kv_capacity_tokens: Some(1_048_576),
        }
    );
}

#[test]
fn the_server_mean_ttft_is_the_delta_of_sum_over_count() {
    let snapshot = |sum: Option<f64>, count: Option<f64>| MetricsSnapshot {
        ttft_seconds_sum: sum,
        ttft_seconds_count: count,
        ..MetricsSnapshot::default()
    };
    check(
        &[
            (
                "two requests, 0.3 s",
                (Some(1.0), Some(10.0), Some(1.3), Some(12.0)),
                Some(150.0),
            ),
            (
                "no request between",
                (Some(1.0), Some(10.0), Some(1.0), Some(10.0)),
                None,
            ),
            ("no histogram", (None, None, None, None), None),
            (
                "a restart (went down)",
                (Some(5.0), Some(10.0), Some(0.2), Some(1.0)),
                None,
            ),
        ],
        |(sum0, count0, sum1, count1)| {
            MetricsDelta::between(
                Some(snapshot(*sum0, *count0)),
                Some(snapshot(*sum1, *count1)),
            )
            .server_mean_ttft_ms
            .map(|ms| (ms * 1e6).round() / 1e6)
        },
    );
}

#[test]
fn the_kv_capacity_needs_both_labels_as_numbers() {
    check(
        &[
            (
                "both",
                r#"vllm:cache_config_info{block_size="16",num_gpu_blocks="100"} 1.0"#,
                Some(1600),
            ),
            (
                "not profiled yet",
                r#"vllm:cache_config_info{block_size="16",num_gpu_blocks="None"} 1.0"#,
                None,
            ),
            (
                "no block size",
                r#"vllm:cache_config_info{num_gpu_blocks="100"} 1.0"#,
                None,
            ),
            ("absent", "vllm:num_requests_running 0.0", None),
        ],
        |text| {
            MetricsSnapshot::parse(text)
                .expect("parses")
                .kv_capacity_tokens
        },
    );
}

#[test]
fn every_recorded_sample_line_parses_with_its_labels() {
    let samples = parse_prometheus(&data("metrics_sample.txt")).expect("parse");
    assert!(samples.len() > 300, "only {} samples", samples.len());
    let info = samples
        .iter()
        .find(|s| s.name == "vllm:cache_config_info")
        .expect("cache_config_info present");
    assert!(
        info.labels
            .contains(&("enable_prefix_caching".to_string(), "True".to_string()))
    );
    assert!(
        info.labels
            .contains(&("block_size".to_string(), "128".to_string()))
    );
}

#[test]
fn parser_edge_cases() {
    check(
        &[
            (
                "escaped quote in label",
                "m{a=\"x\\\"y\",b=\"z\"} 1",
                Ok(vec![(
                    "m".to_string(),
                    vec![
                        ("a".to_string(), "x\"y".to_string()),
                        ("b".to_string(), "z".to_string()),
                    ],
                    "1".to_string(),
                )]),
            ),
            (
                "timestamp after value",
                "m 2.5 1700000000000",
                Ok(vec![("m".to_string(), vec![], "2.5".to_string())]),
            ),
            (
                "infinity",
                "m{le=\"+Inf\"} +Inf",
                Ok(vec![(
                    "m".to_string(),
                    vec![("le".to_string(), "+Inf".to_string())],
                    "inf".to_string(),
                )]),
            ),
            (
                "comments skipped",
                "# HELP m x\n# TYPE m gauge\n\nm 3",
                Ok(vec![("m".to_string(), vec![], "3".to_string())]),
            ),
            ("bad value", "m abc", Err(1usize)),
            ("unterminated labels", "m{a=\"b\" 1", Err(1usize)),
        ],
        |text| {
            parse_prometheus(text)
                .map(|samples| {
                    samples
                        .into_iter()
                        .map(|s| (s.name, s.labels, format!("{}", s.value)))
                        .collect::<Vec<_>>()
                })
                .map_err(|e| e.line)
        },
    );
}

#[test]
fn absent_metrics_stay_absent_and_deltas_need_both_scrapes() {
    let empty = MetricsSnapshot::parse("other_metric 1\n").expect("parse");
    assert_eq!(empty, MetricsSnapshot::default());
    let before = MetricsSnapshot::parse("vllm:prefix_cache_queries_total{engine=\"0\"} 100\nvllm:prefix_cache_hits_total{engine=\"0\"} 10\nvllm:prefix_cache_queries_total{engine=\"1\"} 100\n").expect("parse");
    let after = MetricsSnapshot::parse("vllm:prefix_cache_queries_total{engine=\"0\"} 300\nvllm:prefix_cache_hits_total{engine=\"0\"} 110\nvllm:prefix_cache_queries_total{engine=\"1\"} 100\n").expect("parse");
    let delta = MetricsDelta::between(Some(before.clone()), Some(after));
    assert_eq!(delta.prefix_cache_queries, Some(200.0));
    assert_eq!(delta.prefix_cache_hits, Some(100.0));
    assert_eq!(delta.prefix_cache_hit_rate, Some(0.5));
    assert_eq!(delta.preemptions, None, "no preemption counter, no delta");
    let one_sided = MetricsDelta::between(Some(before), None);
    assert_eq!(one_sided.prefix_cache_hit_rate, None);
}
