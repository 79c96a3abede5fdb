//! The per-config and whole-search deadlines cut work short, record why,
//! and leave nothing running.

use crate::common::*;

fn run_with_limits(limits: &str, run_id: &str) -> (Workspace, serde_json::Value) {
    let ws = Workspace::new();
    ws.write_plan(
        "plan.json",
        Some(r#"{"gpu_memory_utilization": [0.85, 0.90], "enable_chunked_prefill": [true], "enable_prefix_caching": [true]}"#),
    );
    ws.edit_plan("plan.json", |plan| {
        plan["named_configs"] = serde_json::json!([]);
        plan["limits"] = serde_json::from_str(limits).expect("the test's limits are JSON");
    });
    // A model load of 4 s (800 simulated seconds), longer than the deadlines.
    ws.write_profile("sim.yml", 0.005, 800.0, 2.0);
    let out = ws.run_search("process", run_id);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_nothing_running(&ws);
    let report = ws.report(run_id);
    (ws, report)
}

#[test]
fn a_config_past_its_deadline_is_recorded_and_the_search_goes_on() {
    let (ws, report) = run_with_limits(
        r#"{"per_config_timeout_s": 0.5, "health_timeout_s": 30}"#,
        "cfg-deadline",
    );
    let configs = report["configs"].as_array().unwrap();
    assert_eq!(configs.len(), 2);
    for c in configs {
        assert_eq!(c["status"], "failed", "{c:#}");
        assert_eq!(c["failure_class"], "config_deadline", "{c:#}");
        assert!(
            c["reason"]
                .as_str()
                .unwrap()
                .contains("per_config_timeout_s")
        );
    }
    assert_eq!(ws.result_ids("cfg-deadline"), ws.plan_ids("cfg-deadline"));
}

#[test]
fn the_search_deadline_skips_what_is_left() {
    let (_ws, report) = run_with_limits(
        r#"{"search_timeout_s": 0.5, "health_timeout_s": 30}"#,
        "search-deadline",
    );
    let configs = report["configs"].as_array().unwrap();
    let classes: Vec<&str> = configs
        .iter()
        .map(|c| c["failure_class"].as_str().unwrap())
        .collect();
    assert_eq!(
        classes,
        ["search_deadline", "search_deadline"],
        "{report:#}"
    );
    assert!(
        configs[1]["reason"]
            .as_str()
            .unwrap()
            .starts_with("not run"),
        "{report:#}"
    );
}
