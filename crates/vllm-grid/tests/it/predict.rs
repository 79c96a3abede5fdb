//! The memory prediction in the binary: `plan` shows it, a search skips a
//! predicted failure, `--verify-predictions` starts it.

use crate::common::*;

/// The simulator's hardware and constants, declared as profiles/sim.yml does.
const PREDICT: &str = r#"  predict:
    hardware: {gpus: 2, gpu_memory: 24g, gpu_memory_used: 2g}
    model:
      weights: 18g
      config: {num_hidden_layers: 64, num_attention_heads: 64, num_key_value_heads: 8, head_dim: 128,
               hidden_size: 5120, max_position_embeddings: 131072}
    overheads: {non_torch: 0.5g, activation: {fixed: 0.5g, per_batched_token: 64k}}
"#;

#[test]
fn plan_marks_the_configs_the_simulator_refuses_with_vllms_reasons() {
    let ws = Workspace::new();
    // No plan or profile here: the shipped plan and the built-in sim.yml.
    let out = ws.run(&["plan", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("4 fit, 8 predicted to fail at startup, 0 unknown"),
        "{text}"
    );
    let line = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
            .to_string()
    };
    assert!(line("aggressive_cache").contains("FAILS: free memory below utilization"));
    assert!(line("safe_conservative").contains("FAILS: kv cache too small"));
    assert!(line("optimized_balanced").contains("fits"));
    assert!(line("optimized_balanced").contains("188,000"));
    assert!(
        text.contains("aggressive_cache: ValueError: Free memory on device cuda:0 (22.0/24.0 GiB)"),
        "{text}"
    );

    let out = ws.run(&["plan", "--dry-run", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&out)).expect("--json prints JSON only");
    let configs = json["configs"].as_array().expect("configs");
    assert_eq!(configs.len(), 12);
    let failing = configs
        .iter()
        .filter(|c| c["prediction"]["verdict"] == "predicted_failure")
        .count();
    assert_eq!(failing, 8);
    let balanced = configs
        .iter()
        .find(|c| c["name"] == "optimized_balanced")
        .expect("balanced");
    assert_eq!(balanced["prediction"]["kv_capacity_tokens"], 188_000);

    // Without a declaration nothing is known here: every config unknown,
    // with the reasons, and the plan still exits 0.
    ws.write_plan("plan.json", None);
    ws.write_profile("sim.yml", 0.005, 20.0, 2.0);
    let out = ws.run(&["plan", "--configs", "plan.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("0 fit, 0 predicted to fail at startup, 12 unknown"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("x-vllm-grid.predict"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_predicted_failure_is_not_started_unless_verified() {
    let ws = Workspace::new();
    ws.write_fail_fast_inputs();
    let profile = ws.path().join("sim.yml");
    let text = std::fs::read_to_string(&profile).unwrap();
    std::fs::write(&profile, format!("{text}{PREDICT}")).unwrap();
    let out = ws.run_search("process", "skip");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let events = ws.journal_events("skip");
    assert!(
        !events.iter().any(|e| e["event"] == "config_started"),
        "{events:#?}"
    );
    let report = ws.report("skip");
    let config = &report["configs"][0];
    assert_eq!(config["status"], "rejected");
    assert!(
        config["reason"]
            .as_str()
            .unwrap()
            .starts_with("predicted infeasible"),
        "{config:#}"
    );
    assert_eq!(report["predictions"]["skipped"], 1);

    let out = ws.run(&["resume", "skip", "--verify-predictions"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let starts = ws
        .journal_events("skip")
        .iter()
        .filter(|e| e["event"] == "config_started")
        .count();
    // The free-memory failure is transient: started twice (one retry).
    assert_eq!(starts, 2);
    let report = ws.report("skip");
    assert_eq!(
        report["configs"][0]["failure_class"],
        "free_memory_below_utilization"
    );
    assert_eq!(report["predictions"]["verified"], 1);
    assert_eq!(report["predictions"]["held"], 1);
    assert_nothing_running(&ws);
}
