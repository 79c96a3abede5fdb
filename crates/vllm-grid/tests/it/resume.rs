//! `resume` under contention and on request: many resumes of one run
//! started at once (exactly one runs, the rest exit 5), and
//! `--retry-failed`.

use std::process::Child;
use std::time::{Duration, Instant};

use crate::common::*;

const ONE_CONFIG: &str = r#"{"gpu_memory_utilization": [0.85], "enable_chunked_prefill": [true], "enable_prefix_caching": [true]}"#;

/// How many `resume`s start at once, and how many times.
const RACERS: usize = 20;
const ROUNDS: usize = 20;

fn config_starts(ws: &Workspace, run_id: &str) -> usize {
    ws.journal_events(run_id)
        .iter()
        .filter(|e| e["event"] == "config_started")
        .count()
}

#[test]
fn of_many_resumes_started_at_once_exactly_one_runs() {
    let ws = Workspace::new();
    ws.write_plan("plan.json", Some(ONE_CONFIG));
    ws.edit_plan("plan.json", |plan| {
        plan["named_configs"] = serde_json::json!([])
    });
    // A model load of 30 s (6000 simulated seconds): the winner is still
    // waiting for its server when it is stopped.
    ws.write_profile("sim.yml", 0.005, 6000.0, 2.0);
    // A resumable run: killed while its only config's server loads (once
    // the server's pid file is written, so the resume's sweep finds it).
    let (mut first, _stderr) = ws.spawn_search("process", "contended", &[]);
    ws.wait_for_event("contended", Duration::from_secs(60), |e| {
        e["event"] == "config_started"
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pid_file_written(&ws) {
        assert!(
            Instant::now() < deadline,
            "the server's pid file never appeared"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    first.kill().unwrap();
    let _ = first.wait();

    // A starting gate: each racer waits for a shared flock on `gate`
    // while the test holds it exclusively, then becomes `vllm-grid resume`
    // (flock -F execs without forking, so the pid is the resume's). All
    // are released at the same instant.
    let gate = ws.path().join("gate");
    let gate_arg = gate.display().to_string();
    for round in 0..ROUNDS {
        let starts_before = config_starts(&ws, "contended");
        let held = grid_sys::FileLock::try_exclusive(&gate)
            .expect("open the gate")
            .expect("nobody else holds the gate");
        let mut racers: Vec<Child> = (0..RACERS)
            .map(|_| {
                let mut child = ws
                    .command_with(
                        "flock",
                        &["-F", "--shared", &gate_arg, BIN, "resume", "contended"],
                    )
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn flock");
                drain_stdout(&mut child);
                child
            })
            .collect();
        // Let them all reach the gate, then open it.
        std::thread::sleep(Duration::from_millis(300));
        drop(held);
        // Everyone but the owner gives up at once.
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut exited: Vec<usize> = Vec::new();
        while exited.len() < RACERS - 1 && Instant::now() < deadline {
            for (i, child) in racers.iter_mut().enumerate() {
                if !exited.contains(&i) && child.try_wait().unwrap().is_some() {
                    exited.push(i);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for &i in &exited {
            let child = &mut racers[i];
            let code = child.wait().unwrap().code();
            let text = read_stderr(child);
            assert_eq!(
                code,
                Some(5),
                "round {round}: resume {} should have been refused (run in use):\n{text}",
                child.id()
            );
            assert!(text.contains("contended"), "round {round}: {text}");
        }
        let owners: Vec<usize> = (0..RACERS).filter(|i| !exited.contains(i)).collect();
        assert_eq!(
            owners.len(),
            1,
            "round {round}: {} resumes ran at once",
            owners.len()
        );
        let owner = &mut racers[owners[0]];
        let owner_text = capture_stderr(owner);
        // The owner is inside the search (its handler installed) once it
        // journals the config's start; then a Ctrl-C stops it, resumable.
        let deadline = Instant::now() + Duration::from_secs(60);
        while config_starts(&ws, "contended") <= starts_before {
            assert!(
                Instant::now() < deadline,
                "round {round}: the owner never started the config:\n{}",
                owner_text.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        send_signal(owner, SIGINT);
        let status = wait_with_timeout(owner, Duration::from_secs(60));
        assert_eq!(
            status.code(),
            Some(130),
            "round {round}:\n{}",
            owner_text.lock().unwrap()
        );
        assert_eq!(
            config_starts(&ws, "contended"),
            starts_before + 1,
            "round {round}: the config was started more than once"
        );
        assert_nothing_running(&ws);
        eprintln!("round {round}: one resume ran, {} refused", RACERS - 1);
    }
}

fn pid_file_written(ws: &Workspace) -> bool {
    std::fs::read_dir(ws.logs().join(".pids")).is_ok_and(|dir| {
        dir.flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".pid"))
    })
}

/// All of an exited child's stderr.
fn read_stderr(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
    }
    text
}

#[test]
fn retry_failed_runs_failed_configs_again() {
    let ws = Workspace::new();
    ws.write_plan("plan.json", Some(ONE_CONFIG));
    ws.edit_plan("plan.json", |plan| {
        plan["named_configs"] = serde_json::json!([]);
        plan["limits"]["per_config_timeout_s"] = serde_json::json!(0.5);
    });
    // A model load of 4 s (800 simulated seconds), past the deadline.
    ws.write_profile("sim.yml", 0.005, 800.0, 2.0);
    let out = ws.run_search("process", "retry");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let id = ws.result_ids("retry").into_iter().next().unwrap();
    assert_eq!(
        ws.report("retry")["configs"][0]["failure_class"],
        "config_deadline"
    );

    // The deadline is lifted and the server loads fast now.
    ws.edit_plan("plan.json", |plan| {
        plan["limits"]["per_config_timeout_s"] = serde_json::json!(120);
    });
    ws.write_profile("sim.yml", 0.005, 20.0, 2.0);
    // A plain resume keeps the failure: the run is complete.
    let out = ws.run(&["resume", "retry", "--allow-changes"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(ws.finished_counts("retry")[&id], 1);
    // --retry-failed runs it again, and it passes.
    let out = ws.run(&["resume", "retry", "--allow-changes", "--retry-failed"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(ws.report("retry")["configs"][0]["status"], "valid");
    assert_eq!(ws.finished_counts("retry")[&id], 2);
    assert_eq!(ws.result_ids("retry"), ws.plan_ids("retry"));
    assert_nothing_running(&ws);
}

#[test]
fn an_interrupted_reproduction_resumes() {
    let ws = Workspace::new();
    ws.write_plan(
        "plan.json",
        Some(r#"{"gpu_memory_utilization": [0.85], "enable_chunked_prefill": [true], "enable_prefix_caching": [true, false]}"#),
    );
    ws.edit_plan("plan.json", |plan| {
        plan["named_configs"] = serde_json::json!([])
    });
    ws.write_profile("sim.yml", 0.005, 20.0, 2.0);
    let out = ws.run_search("process", "original");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = ws.run(&["archive", "original"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let archive = std::fs::read_dir(ws.archives())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .expect("an archive directory");
    let archive = archive.display().to_string();
    let mut child = ws.spawn(&["reproduce", &archive, "--run-id", "again"], &[]);
    drain_stdout(&mut child);
    let text = capture_stderr(&mut child);
    ws.wait_for_event("again", Duration::from_secs(60), |e| {
        e["event"] == "battery_started"
    });
    send_signal(&child, SIGINT);
    let status = wait_with_timeout(&mut child, Duration::from_secs(60));
    assert_eq!(status.code(), Some(130), "{}", text.lock().unwrap());
    assert!(
        text.lock().unwrap().contains("vllm-grid resume again"),
        "{}",
        text.lock().unwrap()
    );
    // The line it printed works: the reproduction's plan is the archived one.
    let out = ws.run(&["resume", "again"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(ws.result_ids("again"), ws.plan_ids("again"));
    assert_nothing_running(&ws);
}
