//! Every recorded reply parses into the client's types, with the fields the
//! executor reads.

use grid_core::testing::check;
use grid_ray::api::{JobType, LogsReply, StopReply, SubmitReply, VersionReply};
use grid_ray::{JobDetails, JobErrorType, JobStatus, UnitMetadata, of_run};

use crate::common::{fixture, job};

#[test]
fn every_job_reply_parses_with_its_status_and_error_type() {
    type Row = (JobStatus, Option<JobErrorType>, Option<i32>, bool);
    let cases: Vec<(&str, &str, Row)> = vec![
        (
            "succeeded",
            "status-succeeded",
            (JobStatus::Succeeded, None, Some(0), true),
        ),
        (
            "running",
            "status-running",
            (JobStatus::Running, None, None, false),
        ),
        (
            "pending",
            "status-pending-8gpu",
            (JobStatus::Pending, None, None, false),
        ),
        (
            "pending after stop",
            "status-pending-after-stop",
            (JobStatus::Pending, None, None, false),
        ),
        (
            "stopped",
            "status-stopped",
            (JobStatus::Stopped, None, None, true),
        ),
        (
            "exit 1",
            "status-failed-exit1",
            (
                JobStatus::Failed,
                Some(JobErrorType::JobEntrypointCommandError),
                Some(1),
                true,
            ),
        ),
        (
            "missing command",
            "status-failed-missing-command",
            (
                JobStatus::Failed,
                Some(JobErrorType::JobEntrypointCommandError),
                Some(127),
                true,
            ),
        ),
        (
            "supervisor killed",
            "status-supervisor-killed",
            (
                JobStatus::Failed,
                Some(JobErrorType::JobSupervisorActorDied),
                None,
                true,
            ),
        ),
        (
            "start timeout",
            "status-start-timeout",
            (
                JobStatus::Failed,
                Some(JobErrorType::JobSupervisorActorStartTimeout),
                None,
                true,
            ),
        ),
        (
            "missing package",
            "status-missing-package",
            (
                JobStatus::Failed,
                Some(JobErrorType::RuntimeEnvSetupFailure),
                None,
                true,
            ),
        ),
        (
            "working dir",
            "status-working-dir",
            (JobStatus::Succeeded, None, Some(0), true),
        ),
    ];
    check(&cases, |name| {
        let job = job(name);
        (
            job.status,
            job.error_type,
            job.driver_exit_code,
            job.status.is_terminal(),
        )
    });
}

#[test]
fn a_job_carries_its_unit_in_its_metadata() {
    let job = job("status-failed-exit1");
    let unit = UnitMetadata::from_map(job.metadata.as_ref().expect("metadata"));
    assert_eq!(
        unit,
        Some(UnitMetadata {
            run_id: "fixture-run".into(),
            config_id: "small-c".into(),
            repeat: 2
        })
    );
    assert!(job.end_time.expect("terminal") >= job.start_time.expect("started"));
}

#[test]
fn the_list_finds_a_runs_jobs_by_metadata() {
    let (status, body) = fixture("list");
    assert_eq!(status, 200);
    let jobs: Vec<JobDetails> = serde_json::from_value(body).expect("a list of jobs");
    assert!(jobs.iter().all(|j| j.job_type == JobType::Submission));
    let mut configs: Vec<String> = of_run(jobs.clone(), "fixture-run")
        .into_iter()
        .map(|(unit, id, _)| format!("{}:{id}", unit.config_id))
        .collect();
    configs.sort();
    assert_eq!(
        configs,
        [
            "huge:vg-fixture-8gpu",
            "small-a:vg-fixture-2gpu",
            "small-b:vg-fixture-running",
            "small-c:vg-fixture-exit1",
            "small-d:vg-fixture-missing-command",
            "small-e:vg-fixture-supervisor-killed",
            "small-f:vg-fixture-working-dir",
            "small-g:vg-fixture-missing-package",
        ]
    );
    assert!(of_run(jobs, "another-run").is_empty());
}

#[test]
fn the_small_replies_parse() {
    let (_, submit) = fixture("submit-2gpu");
    let submit: SubmitReply = serde_json::from_value(submit).expect("submit reply");
    assert_eq!(submit.submission_id, "vg-fixture-2gpu");
    let stops: Vec<(&str, &str, bool)> = vec![
        ("running job", "stop-running", true),
        ("finished job", "stop-again", false),
        ("pending job", "stop-pending-8gpu", true),
    ];
    check(&stops, |name| {
        let reply: StopReply = serde_json::from_value(fixture(name).1).expect("stop reply");
        reply.stopped
    });
    let (_, version) = fixture("version");
    let version: VersionReply = serde_json::from_value(version).expect("version reply");
    assert_eq!(
        (version.version.as_str(), version.ray_version.as_str()),
        ("4", "2.60.0")
    );
    let (_, logs) = fixture("logs-succeeded");
    let logs: LogsReply = serde_json::from_value(logs).expect("logs reply");
    assert!(logs.logs.contains("CUDA_VISIBLE_DEVICES=0,1\n"));
}

#[test]
fn an_unknown_error_type_still_parses() {
    let mut body = fixture("status-failed-exit1").1;
    body["error_type"] = "SOMETHING_NEWER".into();
    body["a_new_field"] = 1.into();
    let job: JobDetails = serde_json::from_value(body).expect("parses");
    assert_eq!(job.error_type, Some(JobErrorType::Other));
}
