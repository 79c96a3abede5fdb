//! SIGINT and SIGTERM to a real `vllm-grid`: it tears the server down,
//! exits 130 and leaves a resumable run.

use std::time::Duration;

use crate::common::*;

const TWO_CONFIGS: &str = r#"{"gpu_memory_utilization": [0.85], "enable_chunked_prefill": [true], "enable_prefix_caching": [true, false]}"#;

fn interrupt(signal: i32, during_health_wait: bool, run_id: &str) {
    let ws = Workspace::new();
    ws.write_plan("plan.json", Some(TWO_CONFIGS));
    // During the health wait: a model load of 2 s (400 simulated seconds).
    let load = if during_health_wait { 400.0 } else { 20.0 };
    ws.write_profile("sim.yml", 0.005, load, 2.0);
    let (mut child, stderr_text) = ws.spawn_search("process", run_id, &[]);
    let timeout = Duration::from_secs(60);
    if during_health_wait {
        ws.wait_for_event(run_id, timeout, |e| e["event"] == "config_started");
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !ws.journal_events(run_id)
                .iter()
                .any(|e| e["event"] == "server_ready"),
            "the server became ready too early for this test"
        );
    } else {
        ws.wait_for_event(run_id, timeout, |e| e["event"] == "battery_started");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !ws.live_server_pids().is_empty(),
        "a server runs before the signal"
    );
    // `status` reads a live run from its files: the lock names the process.
    let out = ws.run(&["status", run_id]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("running (pid {}", child.id())),
        "{}",
        stdout(&out)
    );
    send_signal(&child, signal);
    let status = wait_with_timeout(&mut child, Duration::from_secs(60));
    assert_eq!(
        status.code(),
        Some(130),
        "stderr:\n{}",
        stderr_text.lock().unwrap()
    );
    assert_nothing_running(&ws);
    let events = ws.journal_events(run_id);
    assert!(
        events.iter().any(|e| e["event"] == "config_interrupted"),
        "{events:?}"
    );
    assert!(
        !ws.run_dir(run_id).join("lock").exists(),
        "the lock is released"
    );
    assert!(
        stderr_text
            .lock()
            .unwrap()
            .contains(&format!("vllm-grid resume {run_id}"))
    );

    // Resumable: the interrupted config restarts and the run completes.
    let out = ws.run(&["resume", run_id]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(ws.result_ids(run_id), ws.plan_ids(run_id));
    assert_nothing_running(&ws);
}

#[test]
fn sigint_during_the_health_wait() {
    interrupt(SIGINT, true, "int-health");
}

#[test]
fn sigterm_during_the_health_wait() {
    interrupt(SIGTERM, true, "term-health");
}

#[test]
fn sigint_during_a_benchmark() {
    interrupt(SIGINT, false, "int-bench");
}

#[test]
fn sigterm_during_a_benchmark() {
    interrupt(SIGTERM, false, "term-bench");
}

#[test]
fn a_second_ctrl_c_kills_at_once() {
    let ws = Workspace::new();
    ws.write_plan("plan.json", Some(TWO_CONFIGS));
    ws.write_profile("sim.yml", 0.005, 20.0, 2.0);
    let (mut child, _stderr) = ws.spawn_search("process", "twice", &[]);
    ws.wait_for_event("twice", Duration::from_secs(60), |e| {
        e["event"] == "battery_started"
    });
    send_signal(&child, SIGINT);
    send_signal(&child, SIGINT);
    let status = wait_with_timeout(&mut child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(130));
    assert_nothing_running(&ws);
}
