//! Configs side by side on GPU slots: the default grid (the shipped
//! 12-config plan) as `vllm-grid search --dry-run` on the built-in
//! simulator, with one slot and with two (`--gpu-slots 0,1 2,3`); prints
//! both wall times, their ratio and whether the results are the same (the
//! same config IDs, each with the same outcome). Target: 2 slots in at
//! most 60 % of the 1-slot wall time.
//!
//! Run: `cargo bench -p vllm-grid --bench slots`

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Runs one dry-run search; its wall time and each config's outcome.
fn search(dir: &Path, run_id: &str, slots: &[&str]) -> (f64, BTreeMap<String, String>) {
    let mut args = vec!["search", "--dry-run", "--run-id", run_id];
    if !slots.is_empty() {
        args.push("--gpu-slots");
        args.extend(slots);
    }
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_vllm-grid"))
        .args(&args)
        .current_dir(dir)
        .env("VLLM_GRID_LOGS_DIR", dir.join("logs"))
        .env_remove("RUST_LOG")
        .output()
        .expect("run vllm-grid");
    let wall = started.elapsed().as_secs_f64();
    assert!(
        matches!(out.status.code(), Some(0) | Some(3)),
        "search {run_id} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut outcomes = BTreeMap::new();
    let results = dir.join("logs").join(run_id).join("results");
    for entry in std::fs::read_dir(&results).expect("results").flatten() {
        let text = std::fs::read_to_string(entry.path()).expect("a result file");
        let v: serde_json::Value = serde_json::from_str(&text).expect("result JSON");
        outcomes.insert(
            v["config"]["id"].as_str().unwrap_or_default().to_string(),
            v["outcome"].as_str().unwrap_or_default().to_string(),
        );
    }
    (wall, outcomes)
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (one, one_outcomes) = search(dir.path(), "one-slot", &[]);
    let (two, two_outcomes) = search(dir.path(), "two-slots", &["0,1", "2,3"]);
    let ratio = two / one;
    let completed = one_outcomes.values().filter(|o| *o == "completed").count();
    println!(
        "default grid on the simulator (vllm-grid search --dry-run, {} configs, {completed} started and completed)",
        one_outcomes.len()
    );
    println!("1 slot:                   {one:>8.1} s");
    println!("2 slots (0,1 2,3):        {two:>8.1} s");
    println!(
        "ratio 2 slots / 1 slot:   {:>8.1} % (target ≤ 60 %: {})",
        100.0 * ratio,
        if ratio <= 0.60 { "met" } else { "missed" }
    );
    let same_ids = one_outcomes.keys().eq(two_outcomes.keys());
    let same = one_outcomes == two_outcomes;
    println!(
        "same results: {} (config IDs {}, outcomes {})",
        if same { "yes" } else { "no" },
        if same_ids { "same" } else { "differ" },
        if same { "same" } else { "differ" }
    );
    if !same {
        for (id, outcome) in &one_outcomes {
            let other = two_outcomes
                .get(id)
                .map(String::as_str)
                .unwrap_or("missing");
            if other != outcome {
                println!("  {id}: 1 slot {outcome}, 2 slots {other}");
            }
        }
    }
}
