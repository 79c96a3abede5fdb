//! A finished job's failure class, from recorded statuses and logs.

use grid_core::testing::check;
use grid_ray::{JobFailureClass, JobOutcome, JobStatus, diagnose, entrypoint_output};

use crate::common::{job, logs};

/// (class name, exit code, transient) of a recorded job, or its non-failure.
fn outcome(status: &str, log: &str) -> Result<(&'static str, Option<i32>, bool), String> {
    match diagnose(&job(status), &logs(log), 5) {
        JobOutcome::Failed(failure) => Ok((
            failure.class.name(),
            failure.exit_code,
            failure.class.is_transient(),
        )),
        other => Err(format!("{other:?}")),
    }
}

#[test]
fn each_recorded_failure_gets_its_class() {
    let cases = [
        (
            "exit 1",
            ("status-failed-exit1", "logs-failed-exit1"),
            Ok(("job_failed", Some(1), false)),
        ),
        (
            "command not found",
            (
                "status-failed-missing-command",
                "logs-failed-missing-command",
            ),
            Ok(("job_failed", Some(127), false)),
        ),
        (
            "supervisor killed",
            ("status-supervisor-killed", "logs-supervisor-killed"),
            Ok(("node_lost", None, true)),
        ),
        (
            "stopped",
            ("status-stopped", "logs-stopped"),
            Ok(("stopped", None, false)),
        ),
        (
            "more GPUs than exist",
            ("status-start-timeout", "logs-succeeded"),
            Ok(("unschedulable", None, false)),
        ),
        (
            "package missing",
            ("status-missing-package", "logs-succeeded"),
            Ok(("runtime_env_failed", None, true)),
        ),
        (
            "succeeded",
            ("status-succeeded", "logs-succeeded"),
            Err("Succeeded".to_string()),
        ),
        (
            "running",
            ("status-running", "logs-stopped"),
            Err(format!("{:?}", JobOutcome::Unfinished(JobStatus::Running))),
        ),
    ];
    check(&cases, |(status, log)| outcome(status, log));
}

#[test]
fn a_failed_jobs_tail_is_its_own_output_and_its_reason_rays_first_line() {
    let JobOutcome::Failed(failure) =
        diagnose(&job("status-failed-exit1"), &logs("logs-failed-exit1"), 2)
    else {
        panic!("exit 1 is a failure");
    };
    assert_eq!(failure.log_tail, "line 3\nboom: config rejected");
    assert_eq!(
        failure.reason,
        "Job entrypoint command failed with exit code 1, last available logs (truncated to 20,000 chars):"
    );
    let JobOutcome::Failed(lost) = diagnose(
        &job("status-supervisor-killed"),
        &logs("logs-supervisor-killed"),
        3,
    ) else {
        panic!("a dead supervisor is a failure");
    };
    assert_eq!(lost.class, JobFailureClass::NodeLost);
    assert!(
        lost.reason.starts_with("Job supervisor actor died: "),
        "{}",
        lost.reason
    );
}

#[test]
fn rays_own_log_lines_are_left_out() {
    let cases = [
        (
            "exit 1",
            "logs-failed-exit1",
            "line 1\nline 2\nline 3\nboom: config rejected\n",
        ),
        (
            "not found",
            "logs-failed-missing-command",
            "/bin/sh: 1: /nonexistent/vllm-grid: not found\n",
        ),
        ("stopped", "logs-stopped", "started\n"),
    ]
    .map(|(name, log, expected)| (name, log, expected.to_string()));
    check(&cases, |name| entrypoint_output(&logs(name)));
}

#[test]
fn the_class_names_are_the_stored_ones() {
    let classes = [
        JobFailureClass::JobFailed,
        JobFailureClass::NodeLost,
        JobFailureClass::Stopped,
        JobFailureClass::Unschedulable,
        JobFailureClass::RuntimeEnvFailed,
        JobFailureClass::SupervisorFailed,
    ];
    for class in classes {
        let json = serde_json::to_string(&class).expect("serialises");
        assert_eq!(json, format!("\"{}\"", class.name()));
    }
}
