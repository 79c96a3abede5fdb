use grid_search::rank::rank;
use grid_search::report::{SIMULATED_BANNER, acceleration_svg, render_markdown, report_json};

use crate::fixtures::*;

#[test]
fn report_json_has_the_promised_shape() {
    let plan = plan("");
    let r = results(vec![
        completed(&plan, 0, vec![good(2.0, 0.1)]),
        launch_failed(&plan, 1, "free_memory_below_utilization", true),
    ]);
    let manifest = manifest(&plan, "run");
    let ranking = rank(&plan, &r);
    let json = serde_json::to_value(report_json(&manifest, &ranking)).unwrap();
    assert_eq!(json["champion"]["name"], plan.configs[0].name);
    assert_eq!(json["champion"]["id"], plan.configs[0].id.0);
    let configs = json["configs"].as_array().unwrap();
    assert_eq!(configs.len(), 12);
    assert_eq!(configs[0]["status"], "valid");
    assert_eq!(configs[0]["kv_cache_acceleration"], 2.0);
    assert!(configs[0].get("reason").is_none());
    let failed = configs
        .iter()
        .find(|c| c["id"] == plan.configs[1].id.0)
        .unwrap();
    assert_eq!(failed["status"], "rejected");
    assert!(failed["kv_cache_acceleration"].is_null());
    assert_eq!(failed["failure_class"], "free_memory_below_utilization");
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("server did not start")
    );
    assert!(configs.iter().any(|c| c["status"] == "failed"));

    let md = render_markdown(&manifest, &r, &ranking);
    assert!(md.lines().take(3).any(|l| l.contains(SIMULATED_BANNER)));
    assert!(
        md.contains("ERROR something"),
        "log excerpt of the rejected config"
    );
    let svg = acceleration_svg(&ranking, true);
    assert!(svg.starts_with("<svg") && svg.contains("SIMULATED"));
    // One error bar (three lines in a group) per measured config.
    assert_eq!(svg.matches("<g stroke=").count(), 1);

    // No valid config: champion is null.
    let r = results(vec![launch_failed(&plan, 1, "gpu_out_of_memory", true)]);
    let json = serde_json::to_value(report_json(&manifest, &rank(&plan, &r))).unwrap();
    assert!(json["champion"].is_null());
}

/// The decision in report.json and in words: equivalents with their ratio,
/// the tie-break, the pressured figures, disturbed marks.
#[test]
fn the_report_says_what_was_decided_and_why() {
    let plan = plan("");
    let with = |acceleration: f64, disturbed: bool| {
        let mut m = good(acceleration, 0.03);
        m.kv_cache_pressure = Some(grid_search::store::PressureMeasurement {
            acceleration: Some(grid_core::Estimate {
                median: acceleration / 2.0,
                ci95_low: acceleration / 2.0 - 0.1,
                ci95_high: acceleration / 2.0 + 0.1,
                samples: 8,
            }),
            warm_hit_rate: Some(0.75),
            kv_capacity_tokens: Some(123_456),
            preemptions: Some(3),
            cache_confirmed_by_server: Some(true),
            ..Default::default()
        });
        if disturbed {
            m.disturbed.push(grid_search::store::Disturbance {
                benchmark: "kv_cache".into(),
                client_mean_ttft_ms: 12.0,
                server_mean_ttft_ms: 10.0,
            });
        }
        m
    };
    let r = results(vec![
        completed(&plan, 4, vec![with(6.0, true)]),
        completed(&plan, 0, vec![with(5.98, false)]),
    ]);
    let manifest = manifest(&plan, "run");
    let ranking = rank(&plan, &r);
    let json = serde_json::to_value(report_json(&manifest, &ranking)).unwrap();
    let decision = &json["decision"];
    assert_eq!(decision["criterion"], "kv_cache");
    assert_eq!(decision["champion"]["name"], plan.configs[0].name);
    assert_eq!(decision["noise"], "within-run only");
    assert_eq!(decision["significant"], true);
    assert!(decision["repeats_to_settle"].is_null());
    assert_eq!(decision["disturbed"], true);
    assert_eq!(
        decision["equivalents"][0]["config"]["name"],
        plan.configs[0].name
    );
    assert_eq!(decision["equivalents"][0]["margin"], 0.05);
    assert!(decision["equivalents"][0]["ratio"]["ci95_low"].is_f64());
    let rules: Vec<&str> = decision["tie_break"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        [
            "confirmed_cache_effect",
            "lower_stability_degradation",
            "lower_gpu_memory_utilization"
        ]
    );
    assert_eq!(
        decision["tie_break"][2]["winner"]["name"],
        plan.configs[0].name
    );
    let configs = json["configs"].as_array().unwrap();
    let other = &configs[1];
    assert_eq!(other["name"], plan.configs[4].name);
    assert_eq!(other["equivalent_to_champion"], true);
    assert_eq!(configs[0]["equivalent_to_champion"], false);
    assert_eq!(other["kv_capacity_tokens"], 123_456);
    assert_eq!(other["pressure_warm_hit_rate"], 0.75);
    assert_eq!(other["pressure_preemptions"], 3);
    assert_eq!(other["kv_cache_pressure_acceleration"]["median"], 3.0);
    assert_eq!(other["per_repeat_medians"], serde_json::json!([6.0]));
    assert_eq!(other["disturbed"][0]["benchmark"], "kv_cache");

    let md = render_markdown(&manifest, &r, &ranking);
    let expected = format!(
        "`{}` and `{}` are equivalent on KV-cache acceleration (`{}` over `{}`: ratio 1.00, 95 % CI",
        plan.configs[4].name, plan.configs[0].name, plan.configs[0].name, plan.configs[4].name
    );
    assert!(md.contains(&expected), "{md}");
    assert!(
        md.contains(&format!(
            "margin ±5 %); champion `{}` by lower gpu-memory-utilization.",
            plan.configs[0].name
        )),
        "{md}"
    );
    assert!(
        md.contains("This decision rests on disturbed figures"),
        "{md}"
    );
    assert!(md.contains("within-run noise only"), "{md}");
    assert!(md.contains("| 123456 | 75.0 % | 3 |"), "{md}");
    assert!(
        md.contains("⚠ kv_cache: client 12.0 ms, server 10.0 ms"),
        "{md}"
    );
    assert!(md.contains("| 2 ≡ |"), "{md}");
}
