//! GPU slots from the command line, and the worker: `--gpu-slots` refused
//! with exit 2 when it cannot be used, a 2-slot dry run with the outcomes
//! of a 1-slot one, and one unit run by `vllm-grid worker` from its spec.

use std::collections::BTreeMap;

use grid_search::Manifest;
use grid_search::search::executor::{UNIT_FORMAT_VERSION, UnitEndRecord, UnitResult, UnitSpec};

use crate::common::*;

const FOUR_CONFIGS: &str = r#"{"gpu_memory_utilization": [0.85, 0.95], "enable_chunked_prefill": [true], "enable_prefix_caching": [true, false]}"#;

fn inputs(ws: &Workspace) {
    ws.write_plan("plan.json", Some(FOUR_CONFIGS));
    ws.edit_plan("plan.json", |plan| {
        plan["named_configs"] = serde_json::json!([])
    });
    // 2 GiB held by others: 0.95 fails its free-memory check.
    ws.write_profile("sim.yml", 0.005, 20.0, 2.0);
}

#[test]
fn gpu_slots_that_cannot_be_used_exit_2_naming_why() {
    let ws = Workspace::new();
    inputs(&ws);
    grid_core::testing::check(
        &[
            ("shared GPU", vec!["0,1", "1,2"], (Some(2), true)),
            ("not a GPU", vec!["0,x"], (Some(2), true)),
            // The profile runs TP 2.
            ("slot too small", vec!["0", "1"], (Some(2), true)),
            ("auto among lists", vec!["auto", "0,1"], (Some(2), true)),
            ("no value", vec![], (Some(2), true)),
        ],
        |slots: &Vec<&str>| {
            let mut args = dry_run_args("bad", &[]);
            args.push("--gpu-slots");
            args.extend(slots);
            let out = ws.run(&args);
            let text = stderr(&out);
            let named = [
                "GPU 1 is in slot 0 and in slot 1",
                "`x`",
                "needs 2",
                "`auto`",
                "--gpu-slots",
            ]
            .iter()
            .any(|phrase| text.contains(phrase));
            (out.status.code(), named)
        },
    );
    // Nothing ran: no run directory.
    assert!(!ws.run_dir("bad").join("manifest.json").exists());
}

#[test]
fn a_two_slot_dry_run_gives_the_outcomes_of_a_one_slot_run() {
    let ws = Workspace::new();
    inputs(&ws);
    // The outcome of each config (the champion may differ: neighbours
    // move the numbers within their noise).
    let outcomes = |run_id: &str| -> BTreeMap<String, String> {
        ws.outcomes(run_id)
            .into_iter()
            .map(|(id, (outcome, _))| (id, outcome))
            .collect()
    };
    let one = ws.run(&dry_run_args("one", &[]));
    assert_eq!(one.status.code(), Some(0), "{}", stderr(&one));
    let two = ws.run(&dry_run_args("two", &["0,1", "2,3"]));
    assert_eq!(two.status.code(), Some(0), "{}", stderr(&two));
    assert_nothing_running(&ws);
    assert_eq!(ws.result_ids("two"), ws.result_ids("one"));
    assert_eq!(outcomes("two"), outcomes("one"));
    let report = std::fs::read_to_string(ws.run_dir("two").join("report.md")).unwrap();
    assert!(report.contains("| slot0 | 0,1 |"), "{report}");
    assert!(report.contains("| slot1 | 2,3 |"), "{report}");

    // The plan's `slots` does the same without the flag.
    ws.edit_plan("plan.json", |plan| {
        plan["slots"] = serde_json::json!(["4,5", "6,7"])
    });
    let planned = ws.run(&dry_run_args("planned", &[]));
    assert_eq!(planned.status.code(), Some(0), "{}", stderr(&planned));
    assert_eq!(outcomes("planned"), outcomes("one"));
    let report = std::fs::read_to_string(ws.run_dir("planned").join("report.md")).unwrap();
    assert!(report.contains("| slot1 | 6,7 |"), "{report}");
}

#[test]
fn the_worker_runs_one_unit_from_its_spec_and_writes_its_result() {
    let ws = Workspace::new();
    ws.write_plan(
        "plan.json",
        Some(r#"{"gpu_memory_utilization": [0.85], "enable_chunked_prefill": [true], "enable_prefix_caching": [true]}"#),
    );
    ws.edit_plan("plan.json", |plan| {
        plan["named_configs"] = serde_json::json!([])
    });
    ws.write_profile("sim.yml", 0.005, 20.0, 2.0);
    // A run gives the plan and battery a spec carries (the orchestrator
    // writes specs from its own).
    let out = ws.run(&dry_run_args("origin", &[]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let manifest: Manifest = serde_json::from_str(
        &std::fs::read_to_string(ws.run_dir("origin").join("manifest.json")).unwrap(),
    )
    .expect("the manifest parses");
    let config = manifest.plan.configs[0].clone();
    let spec = UnitSpec {
        format_version: UNIT_FORMAT_VERSION,
        run_id: "remote".into(),
        config_id: config.id.clone(),
        repeat: 1,
        seed: 11,
        plan: manifest.plan.clone(),
        profile_file: "sim.yml".into(),
        profile_text: std::fs::read_to_string(ws.path().join("sim.yml")).unwrap(),
        service: "medium-qwen3".into(),
        simulated: true,
        backend: "process".into(),
        battery: manifest.battery.clone(),
        slot: Some(grid_container::GpuSlot {
            index: 1,
            devices: vec!["2".into(), "3".into()],
        }),
        grace_period_ms: 5000,
        replace_foreign: false,
    };
    let spec_path = ws.path().join("unit.json");
    spec.write(&spec_path).expect("the spec is written");
    let out = ws.run(&["worker", "--spec", "unit.json", "--out", "unit-result.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_nothing_running(&ws);
    let result = UnitResult::read(&ws.path().join("unit-result.json")).expect("the result reads");
    let UnitEndRecord::Measured { result: repeat } = &result.end else {
        panic!("the unit was measured: {result:#?}");
    };
    assert_eq!((result.config_id.clone(), result.repeat), (config.id, 1));
    assert_eq!((repeat.repeat, repeat.seed), (1, 11));
    assert_eq!(repeat.slot, spec.slot);
    assert!(repeat.measurement.kv_cache_acceleration.is_some());
    // The worker journals nothing itself: its events are in the result.
    assert!(!ws.run_dir("remote").join("journal.jsonl").exists());
    assert!(!result.journal.is_empty());
    // The key is read from the environment, never written to either file.
    assert_eq!(
        ws.files_containing(&ws.key),
        Vec::<std::path::PathBuf>::new()
    );
    for file in ["unit.json", "unit-result.json"] {
        let text = std::fs::read_to_string(ws.path().join(file)).unwrap();
        assert!(!text.contains(&ws.key), "{file} holds the key");
    }

    // A spec of another format version is bad input.
    let mut old = serde_json::to_value(&spec).unwrap();
    old["format_version"] = serde_json::json!(99);
    std::fs::write(ws.path().join("old.json"), old.to_string()).unwrap();
    let out = ws.run(&["worker", "--spec", "old.json", "--out", "x.json"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("format version 99"),
        "{}",
        stderr(&out)
    );
}

/// A kill -9 while two slots' batteries run, then `resume`: every config
/// has exactly one result, the orphans of both slots are swept.
#[test]
fn sigkill_with_two_slots_busy_then_resume() {
    let ws = Workspace::new();
    let run_id = "kill-slots";
    ws.write_plan(
        "plan.json",
        Some(r#"{"gpu_memory_utilization": [0.85, 0.90], "enable_chunked_prefill": [true], "enable_prefix_caching": [true, false]}"#),
    );
    ws.edit_plan("plan.json", |plan| {
        plan["slots"] = serde_json::json!("0,1 2,3")
    });
    ws.write_profile("sim.yml", 0.005, 120.0, 2.0);
    let (mut child, _stderr) = ws.spawn_search("process", run_id, &[]);
    // Two batteries in flight at once: both slots busy.
    ws.wait_for_event(run_id, std::time::Duration::from_secs(60), |_| {
        let events = ws.journal_events(run_id);
        let count = |name: &str| events.iter().filter(|e| e["event"] == name).count();
        count("battery_started") >= count("battery_finished") + 2
    });
    let servers = ws.live_server_pids();
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    assert!(
        servers.len() >= 2,
        "two servers run at the kill: {servers:?}"
    );

    let out = ws.run(&["resume", run_id]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_nothing_running(&ws);
    for pid in servers {
        assert!(
            !process_alive(pid),
            "server {pid} survived the resume's sweep"
        );
    }
    assert_eq!(ws.result_ids(run_id), ws.plan_ids(run_id));
    for (id, count) in ws.finished_counts(run_id) {
        assert_eq!(count, 1, "config {id} finished {count} times");
    }
    assert_eq!(ws.tmp_results(run_id), 0);
}
