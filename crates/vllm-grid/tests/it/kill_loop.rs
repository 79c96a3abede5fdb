//! kill -9 at random moments of a 4-config dry run, each followed by
//! `resume`: every time exactly one result per config, no config finished
//! twice, no temporary file and no simulator left. A few iterations run in
//! the test suite; `cargo bench -p vllm-grid --bench kill_loop -- N` runs
//! N and prints the numbers (this file is shared with that bench).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::*;

const FOUR_CONFIGS: &str = r#"{"gpu_memory_utilization": [0.85, 0.90], "enable_chunked_prefill": [true], "enable_prefix_caching": [true, false]}"#;
const RUN_ID: &str = "killed";

/// What one iteration saw.
#[derive(Debug, Clone)]
pub struct Iteration {
    /// Time from the run's manifest appearing to the SIGKILL.
    pub killed_after: Duration,
    /// The journal's last event before the kill (`none`: nothing yet;
    /// `exited`: the search had already finished).
    pub moment: String,
    /// Servers still running right after the kill (the resume sweeps them).
    pub orphans: usize,
    pub resume_code: Option<i32>,
    /// Problems found after the resume; empty when the run is whole.
    pub problems: Vec<String>,
    pub wall: Duration,
}

/// A workspace with the 4-config plan (the dry run lays its battery over
/// the test's tiny one) and no profile: the dry run uses the simulator
/// profile built into the binary, as on a fresh machine.
fn workspace() -> Workspace {
    let ws = Workspace::new();
    ws.write_plan("plan.json", Some(FOUR_CONFIGS));
    ws.edit_plan("plan.json", |plan| {
        plan["named_configs"] = serde_json::json!([])
    });
    ws
}

fn search(ws: &Workspace) -> std::process::Command {
    let mut command = ws.command(&[
        "search",
        "--dry-run",
        "--configs",
        "plan.json",
        "--run-id",
        RUN_ID,
    ]);
    command.env_remove("VLLM_MEDIUM_API_KEY");
    command
}

/// The wall time of one uninterrupted dry run: the window kills fall in.
pub fn baseline() -> Duration {
    let ws = workspace();
    let started = Instant::now();
    let out = search(&ws).output().expect("run vllm-grid");
    assert_eq!(out.status.code(), Some(0), "baseline run: {}", stderr(&out));
    started.elapsed()
}

/// One kill at `after` past the manifest's appearance, then a resume.
pub fn iteration(after: Duration) -> Iteration {
    let started = Instant::now();
    let ws = workspace();
    let mut child = search(&ws)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn vllm-grid");
    let manifest = ws.run_dir(RUN_ID).join("manifest.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !manifest.exists() {
        assert!(Instant::now() < deadline, "the dry run wrote no manifest");
        std::thread::sleep(Duration::from_millis(2));
    }
    let mark = Instant::now();
    std::thread::sleep(after);
    let exited = child.try_wait().unwrap().is_some();
    child.kill().unwrap_or(()); // SIGKILL
    let _ = child.wait();
    let killed_after = mark.elapsed();
    let moment = if exited {
        "exited".to_string()
    } else {
        ws.journal_events(RUN_ID)
            .last()
            .and_then(|e| e["event"].as_str().map(str::to_string))
            .unwrap_or_else(|| "none".to_string())
    };
    let orphans = ws.live_server_pids().len();

    let out = ws.run(&["resume", RUN_ID]);
    let mut problems = Vec::new();
    if out.status.code() != Some(0) {
        problems.push(format!(
            "resume exited {:?}: {}",
            out.status.code(),
            stderr(&out).lines().last().unwrap_or_default()
        ));
    }
    if ws.result_ids(RUN_ID) != ws.plan_ids(RUN_ID) {
        problems.push(format!(
            "results {:?} != plan {:?}",
            ws.result_ids(RUN_ID),
            ws.plan_ids(RUN_ID)
        ));
    }
    for (id, count) in ws.finished_counts(RUN_ID) {
        if count != 1 {
            problems.push(format!("config {id} finished {count} times"));
        }
    }
    if ws.tmp_results(RUN_ID) != 0 {
        problems.push(format!(
            "{} temporary result(s) left",
            ws.tmp_results(RUN_ID)
        ));
    }
    // Reaping a killed group takes a moment; then nothing of ours runs.
    let deadline = Instant::now() + Duration::from_secs(5);
    let leftover = loop {
        let live = ws.live_server_pids();
        if live.is_empty() || Instant::now() > deadline {
            break live;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if !leftover.is_empty() {
        problems.push(format!("simulators left running: {leftover:?}"));
        // Recorded; now stop them (ours: they run in this workspace), so a
        // failing loop leaves nothing behind. Each leads its own group.
        for pid in &leftover {
            let _ = grid_sys::signal_group(*pid, grid_sys::Signal::Kill);
        }
    }
    Iteration {
        killed_after,
        moment,
        orphans,
        resume_code: out.status.code(),
        problems,
        wall: started.elapsed(),
    }
}

/// `n` iterations with kill times drawn uniformly from `[0, window]`;
/// `each` sees every iteration as it ends.
pub fn kill_loop(
    n: usize,
    window: Duration,
    seed: u64,
    each: &dyn Fn(usize, &Iteration),
) -> Vec<Iteration> {
    let mut rng = grid_core::SplitMix64::new(seed);
    (0..n)
        .map(|i| {
            let it = iteration(window.mul_f64(rng.next_f64()));
            each(i, &it);
            it
        })
        .collect()
}

/// The numbers, as the bench prints them.
pub fn summary(iterations: &[Iteration]) -> String {
    let mut moments: BTreeMap<&str, usize> = BTreeMap::new();
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    for it in iterations {
        *moments.entry(it.moment.as_str()).or_default() += 1;
        *codes.entry(format!("{:?}", it.resume_code)).or_default() += 1;
    }
    let failed: Vec<&Iteration> = iterations
        .iter()
        .filter(|i| !i.problems.is_empty())
        .collect();
    let orphaned = iterations.iter().filter(|i| i.orphans > 0).count();
    let orphans: usize = iterations.iter().map(|i| i.orphans).sum();
    let walls: Vec<f64> = iterations.iter().map(|i| i.wall.as_secs_f64()).collect();
    let mean_wall = walls.iter().sum::<f64>() / walls.len().max(1) as f64;
    let max_wall = walls.iter().copied().fold(0.0, f64::max);
    let mut text = format!(
        "kill loop: {} iteration(s), {} whole after resume, {} with problems\n\
         kill landed after (last journal event): {moments:?}\n\
         iterations with a running server at the kill: {orphaned} ({orphans} server(s), all swept by the resume unless listed below)\n\
         resume exit codes: {codes:?}\n\
         wall per iteration: mean {mean_wall:.1} s, max {max_wall:.1} s\n",
        iterations.len(),
        iterations.len() - failed.len(),
        failed.len(),
    );
    for it in failed {
        text.push_str(&format!(
            "  problem after a kill at {:?} ({}): {}\n",
            it.killed_after,
            it.moment,
            it.problems.join("; ")
        ));
    }
    text
}

#[test]
fn a_few_random_kills_then_resume_leave_a_whole_run() {
    let window = baseline();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let iterations = kill_loop(3, window, seed, &|_, _| {});
    let text = summary(&iterations);
    assert!(
        iterations.iter().all(|i| i.problems.is_empty()),
        "seed {seed}, window {window:?}:\n{text}"
    );
}
