//! SIGKILL of a real `vllm-grid` at several points, then resume: the final
//! set of config IDs with results equals an uninterrupted run's, no config
//! finished twice, and nothing is left running.

use std::time::Duration;

use crate::common::*;

const FOUR_CONFIGS: &str = r#"{"gpu_memory_utilization": [0.85, 0.90], "enable_chunked_prefill": [true], "enable_prefix_caching": [true, false]}"#;

enum KillPoint {
    /// The second config's server is starting (model load in progress).
    ServerStart,
    /// The first config's battery is running.
    MidBenchmark,
    /// A failpoint holds the process between two configs.
    BetweenConfigs,
    /// A failpoint holds the process after a result's temporary file is
    /// written and before its rename.
    ResultWrite,
}

fn kill_and_resume(point: KillPoint, run_id: &str) {
    let ws = Workspace::new();
    ws.write_plan("plan.json", Some(FOUR_CONFIGS));
    // 120 simulated seconds of model load = 0.6 s: long enough to land in.
    ws.write_profile("sim.yml", 0.005, 120.0, 2.0);
    let failpoint = match point {
        KillPoint::BetweenConfigs => Some("between-configs@1"),
        KillPoint::ResultWrite => Some("result-write@1"),
        _ => None,
    };
    let env: Vec<(&str, &str)> = failpoint
        .map(|f| vec![("VLLM_GRID_FAILPOINT", f)])
        .unwrap_or_default();
    let (mut child, stderr_text) = ws.spawn_search("process", run_id, &env);
    let timeout = Duration::from_secs(60);
    match point {
        KillPoint::ServerStart => {
            ws.wait_for_event(run_id, timeout, |e| e["event"] == "config_finished");
            ws.wait_for_event(run_id, timeout, |e| {
                e["event"] == "config_started"
                    && e["config_id"] != ws.journal_events(run_id)[1]["config_id"]
            });
            // The spawn follows the journal event within milliseconds; the
            // model load lasts 0.6 s.
            std::thread::sleep(Duration::from_millis(200));
        }
        KillPoint::MidBenchmark => {
            ws.wait_for_event(run_id, timeout, |e| e["event"] == "battery_started");
            std::thread::sleep(Duration::from_millis(150));
        }
        KillPoint::BetweenConfigs | KillPoint::ResultWrite => {
            wait_for_text(&stderr_text, "failpoint reached", timeout);
        }
    }
    let server_pids = ws.live_server_pids();
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    match point {
        KillPoint::ServerStart | KillPoint::MidBenchmark => {
            assert!(
                !server_pids.is_empty(),
                "the kill should orphan a running server"
            );
        }
        KillPoint::ResultWrite => {
            assert_eq!(
                ws.tmp_results(run_id),
                1,
                "a half-written result is on disk"
            );
            assert!(
                ws.result_ids(run_id).is_empty(),
                "no result was renamed into place"
            );
        }
        KillPoint::BetweenConfigs => {
            assert_eq!(ws.result_ids(run_id).len(), 1);
        }
    }
    let done_before = ws.result_ids(run_id);

    // A live-looking lock of a dead process does not block the resume; the
    // orphaned server is swept by it.
    let out = ws.run(&["resume", run_id]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_nothing_running(&ws);
    for pid in server_pids {
        assert!(
            !process_alive(pid),
            "server {pid} survived the resume's sweep"
        );
    }
    assert_eq!(ws.result_ids(run_id), ws.plan_ids(run_id));
    assert!(done_before.is_subset(&ws.result_ids(run_id)));
    for (id, count) in ws.finished_counts(run_id) {
        assert_eq!(count, 1, "config {id} finished {count} times");
    }
    assert_eq!(ws.finished_counts(run_id).len(), ws.plan_ids(run_id).len());
    assert_eq!(ws.tmp_results(run_id), 0, "no temporary result is left");
}

#[test]
fn sigkill_during_a_server_start_then_resume() {
    kill_and_resume(KillPoint::ServerStart, "kill-start");
}

#[test]
fn sigkill_mid_benchmark_then_resume() {
    kill_and_resume(KillPoint::MidBenchmark, "kill-bench");
}

#[test]
fn sigkill_between_configs_then_resume() {
    kill_and_resume(KillPoint::BetweenConfigs, "kill-between");
}

#[test]
fn sigkill_while_a_result_is_written_then_resume() {
    kill_and_resume(KillPoint::ResultWrite, "kill-write");
}

#[test]
fn after_sigkill_cleanup_sweeps_the_leftover_server() {
    let ws = Workspace::new();
    ws.write_plan("plan.json", Some(FOUR_CONFIGS));
    ws.write_profile("sim.yml", 0.005, 20.0, 2.0);
    let (mut child, _stderr) = ws.spawn_search("process", "orphan", &[]);
    ws.wait_for_event("orphan", Duration::from_secs(60), |e| {
        e["event"] == "battery_started"
    });
    let orphans = ws.live_server_pids();
    assert!(!orphans.is_empty());
    child.kill().unwrap();
    let _ = child.wait();
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        orphans.iter().any(|p| process_alive(*p)),
        "the server outlives a SIGKILLed vllm-grid"
    );
    let out = ws.run(&["cleanup", "--backend", "process"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("removed process"), "{}", stdout(&out));
    assert_nothing_running(&ws);
    // The killed run is resumable and its status says so.
    let out = ws.run(&["status", "orphan"]);
    assert!(stdout(&out).contains("stopped"), "{}", stdout(&out));
}
