//! The orchestrator's own overhead per config: wall time minus server start
//! and battery time (and, reported apart, minus teardown and retry backoff
//! too), from the result files of a real `vllm-grid search --dry-run` (the
//! shipped 12-config plan on the built-in simulator, process backend).
//! Goal: under 1 % of the config's wall time.
//!
//! Run: `cargo bench -p vllm-grid --bench overhead`

use std::process::Command;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = env!("CARGO_BIN_EXE_vllm-grid");
    let started = std::time::Instant::now();
    let out = Command::new(bin)
        .args(["search", "--dry-run", "--run-id", "overhead"])
        .current_dir(dir.path())
        .env("VLLM_GRID_LOGS_DIR", dir.path().join("logs"))
        .env_remove("RUST_LOG")
        .output()
        .expect("run vllm-grid");
    let total = started.elapsed().as_secs_f64();
    assert!(
        matches!(out.status.code(), Some(0) | Some(3)),
        "search failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results = dir.path().join("logs/overhead/results");
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(&results).expect("results").flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let t = &v["timing"];
        let f = |k: &str| t[k].as_f64().unwrap_or(0.0);
        let (wall, start, battery, teardown, backoff) = (
            f("wall_s"),
            f("server_start_s"),
            f("battery_s"),
            f("teardown_s"),
            f("backoff_s"),
        );
        rows.push((
            v["config"]["name"].as_str().unwrap().to_string(),
            v["outcome"].as_str().unwrap().to_string(),
            wall,
            wall - start - battery,
            wall - start - battery - teardown - backoff,
        ));
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    println!(
        "orchestrator overhead per config (vllm-grid search --dry-run, {} configs, {total:.1} s in all)",
        rows.len()
    );
    println!(
        "{:<34} {:<14} {:>8} {:>22} {:>24}",
        "config", "outcome", "wall s", "wall-start-battery", "…-teardown-backoff"
    );
    for (name, outcome, wall, spec, own) in &rows {
        println!(
            "{name:<34} {outcome:<14} {wall:>8.3} {spec:>10.3} s {:>7.3} % {own:>11.3} s {:>7.3} %",
            100.0 * spec / wall,
            100.0 * own / wall
        );
    }
    let completed: Vec<_> = rows.iter().filter(|r| r.1 == "completed").collect();
    if !completed.is_empty() {
        let mut fractions: Vec<f64> = completed.iter().map(|r| r.3 / r.2).collect();
        fractions.sort_by(f64::total_cmp);
        let mut own: Vec<f64> = completed.iter().map(|r| r.4 / r.2).collect();
        own.sort_by(f64::total_cmp);
        println!(
            "completed configs: median overhead {:.3} % (wall − start − battery), {:.3} % (also − teardown); worst {:.3} % / {:.3} %; goal < 1 %",
            100.0 * fractions[fractions.len() / 2],
            100.0 * own[own.len() / 2],
            100.0 * fractions[fractions.len() - 1],
            100.0 * own[own.len() - 1]
        );
    }
}
