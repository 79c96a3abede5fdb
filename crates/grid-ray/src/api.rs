//! The Jobs REST API's bodies as Ray 2.60.0 sends them (shared/ray-reference.md;
//! recorded in tests/data/ray-2.60.0/). Fields the client does not use are
//! left out; unknown fields are ignored so a newer head still parses.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A job's status (`JobStatus` in `dashboard/modules/job/common.py`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    Pending,
    Running,
    Stopped,
    Succeeded,
    Failed,
}

impl JobStatus {
    /// Whether the job can no longer change status (Ray's `is_terminal`).
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Stopped | Self::Succeeded | Self::Failed)
    }
}

/// Why Ray failed a job (`JobErrorType`); `Other` for a value a newer Ray adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobErrorType {
    RuntimeEnvSetupFailure,
    JobSupervisorActorStartTimeout,
    JobSupervisorActorStartFailure,
    JobSupervisorActorUnschedulable,
    JobSupervisorActorUnknownFailure,
    JobSupervisorActorDied,
    JobEntrypointCommandStartError,
    JobEntrypointCommandError,
    #[serde(other)]
    Other,
}

/// Submission jobs (ours) or drivers started by `ray.init` elsewhere, which
/// `GET /api/jobs/` lists too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobType {
    Submission,
    Driver,
    #[serde(other)]
    Other,
}

/// `GET /api/jobs/{id}` and each element of `GET /api/jobs/`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JobDetails {
    #[serde(rename = "type")]
    pub job_type: JobType,
    /// Null for a submission whose driver has not registered (and for ours).
    pub submission_id: Option<String>,
    pub status: JobStatus,
    pub entrypoint: String,
    /// Ray's words on the status; for a failed entrypoint it repeats the
    /// last 20,000 characters of the log.
    pub message: Option<String>,
    pub error_type: Option<JobErrorType>,
    /// Unix milliseconds.
    pub start_time: Option<u64>,
    /// Unix milliseconds; set once the status is terminal.
    pub end_time: Option<u64>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// The node whose agent ran the driver; null while PENDING.
    pub driver_node_id: Option<String>,
    /// Null unless the entrypoint itself exited (not for a stop, nor a dead
    /// supervisor).
    pub driver_exit_code: Option<i32>,
}

/// `POST /api/jobs/`'s body (`JobSubmitRequest`). Ray refuses unknown keys
/// and drops null ones, so absent options are skipped.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubmitBody {
    pub entrypoint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submission_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_env: Option<RuntimeEnv>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint_num_cpus: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint_num_gpus: Option<u32>,
}

/// The part of Ray's `runtime_env` the executor uses.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuntimeEnv {
    /// A `gcs://_ray_pkg_<hash>.zip` URI uploaded beforehand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Readable by anyone who can list jobs: never a secret.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub env_vars: BTreeMap<String, String>,
}

/// `POST /api/jobs/`'s reply.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SubmitReply {
    pub submission_id: String,
}

/// `POST /api/jobs/{id}/stop`'s reply: `false` when the job had already
/// finished (or never had a supervisor).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StopReply {
    pub stopped: bool,
}

/// `GET /api/jobs/{id}/logs`'s reply: the whole driver log.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LogsReply {
    pub logs: String,
}

/// `GET /api/version`'s reply.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct VersionReply {
    /// The Jobs API's version ("4" for Ray 2.60.0).
    pub version: String,
    pub ray_version: String,
    pub session_name: String,
}
