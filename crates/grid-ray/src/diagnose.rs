//! What became of a job: still going, succeeded, or failed for a diagnosed
//! reason, from the status and log Ray 2.60.0 reports (the recorded cases
//! are in shared/ray-reference.md, "What each failure looks like").

use serde::{Deserialize, Serialize};

use crate::api::{JobDetails, JobErrorType, JobStatus};
use crate::client::tail;

/// Why a job did not succeed. The serde names go into result files: never
/// rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobFailureClass {
    /// The entrypoint ran and exited non-zero (or could not be started):
    /// the log tail says why.
    JobFailed,
    /// The job's supervisor died with its worker process or its node
    /// (`JOB_SUPERVISOR_ACTOR_DIED`): nothing about the config.
    NodeLost,
    /// Stopped on request (`POST /api/jobs/{id}/stop`, or `ray job stop`).
    Stopped,
    /// Never started: the cluster has no node with the GPUs/CPUs asked for
    /// (`JOB_SUPERVISOR_ACTOR_START_TIMEOUT` or `_UNSCHEDULABLE`).
    Unschedulable,
    /// Ray could not set up the runtime env (the working-dir package gone,
    /// say): `RUNTIME_ENV_SETUP_FAILURE`.
    RuntimeEnvFailed,
    /// Ray's supervisor failed some other way (`_START_FAILURE`,
    /// `_UNKNOWN_FAILURE`, or an error type this client does not know).
    SupervisorFailed,
}

impl JobFailureClass {
    /// The name results and reports use.
    pub fn name(self) -> &'static str {
        match self {
            Self::JobFailed => "job_failed",
            Self::NodeLost => "node_lost",
            Self::Stopped => "stopped",
            Self::Unschedulable => "unschedulable",
            Self::RuntimeEnvFailed => "runtime_env_failed",
            Self::SupervisorFailed => "supervisor_failed",
        }
    }

    /// Whether the same unit could succeed if submitted again unchanged: the
    /// cluster failed around it, not the unit.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Self::NodeLost | Self::RuntimeEnvFailed | Self::SupervisorFailed
        )
    }
}

/// A failed job, diagnosed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFailure {
    pub class: JobFailureClass,
    /// The entrypoint's exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The first line of Ray's message (`Job supervisor actor died: ...`).
    pub reason: String,
    /// The last lines of the entrypoint's output, Ray's own lines left out.
    pub log_tail: String,
}

/// Where a job stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// PENDING or RUNNING.
    Unfinished(JobStatus),
    Succeeded,
    Failed(JobFailure),
}

/// Diagnoses `job` from its details and its log (`GET .../logs`), keeping
/// `tail_lines` lines of output.
pub fn diagnose(job: &JobDetails, log: &str, tail_lines: usize) -> JobOutcome {
    let class = match job.status {
        JobStatus::Pending | JobStatus::Running => return JobOutcome::Unfinished(job.status),
        JobStatus::Succeeded => return JobOutcome::Succeeded,
        JobStatus::Stopped => JobFailureClass::Stopped,
        JobStatus::Failed => failed_class(job),
    };
    let reason = job
        .message
        .as_deref()
        .and_then(|m| m.lines().next())
        .unwrap_or("Ray gave no message")
        .to_string();
    JobOutcome::Failed(JobFailure {
        class,
        exit_code: job.driver_exit_code,
        reason,
        log_tail: tail(&entrypoint_output(log), tail_lines),
    })
}

fn failed_class(job: &JobDetails) -> JobFailureClass {
    match job.error_type {
        Some(
            JobErrorType::JobEntrypointCommandError | JobErrorType::JobEntrypointCommandStartError,
        ) => JobFailureClass::JobFailed,
        Some(JobErrorType::JobSupervisorActorDied) => JobFailureClass::NodeLost,
        Some(
            JobErrorType::JobSupervisorActorStartTimeout
            | JobErrorType::JobSupervisorActorUnschedulable,
        ) => JobFailureClass::Unschedulable,
        Some(JobErrorType::RuntimeEnvSetupFailure) => JobFailureClass::RuntimeEnvFailed,
        // An exit code without an error type: the entrypoint's own failure.
        None if job.driver_exit_code.is_some() => JobFailureClass::JobFailed,
        Some(
            JobErrorType::JobSupervisorActorStartFailure
            | JobErrorType::JobSupervisorActorUnknownFailure
            | JobErrorType::Other,
        )
        | None => JobFailureClass::SupervisorFailed,
    }
}

/// The log without the lines Ray's job manager writes into it
/// (`<date> INFO job_manager.py:581 -- Runtime env is setting up.`,
/// `Running entrypoint for job <id>: <entrypoint>`), which come before or
/// among the entrypoint's own.
pub fn entrypoint_output(log: &str) -> String {
    let ray_line = |line: &str| {
        line.starts_with("Running entrypoint for job ")
            || (line.len() > 24
                && line.as_bytes()[..4].iter().all(u8::is_ascii_digit)
                && line.contains("\tINFO job_manager.py:"))
    };
    log.lines()
        .filter(|line| !ray_line(line))
        .map(|line| format!("{line}\n"))
        .collect()
}
