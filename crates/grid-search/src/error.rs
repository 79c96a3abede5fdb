//! Everything that can go wrong in the search crate: one variant per failed
//! operation, its cause as `#[source]`, the message naming the thing and the
//! fix. The binary maps them to exit codes with [`SearchError::kind`].

use std::path::PathBuf;

use grid_container::LaunchFailure;
use grid_plan::ConfigId;

use crate::blame::{battery_blame, io_blame, launch_blame};
use crate::store::LockOwner;

/// A JSON file that does not parse, with the path of the bad field.
pub type JsonError = serde_path_to_error::Error<serde_json::Error>;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("cannot read {path}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    WriteFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode {what} as JSON")]
    Encode {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the JSON file {path} is damaged; repair it or move it away")]
    DamagedJson {
        path: PathBuf,
        #[source]
        source: JsonError,
    },
    #[error(
        "the result file {path} is damaged; delete it and resume (`vllm-grid resume {run_id}`) to re-run that config"
    )]
    DamagedResult {
        run_id: String,
        path: PathBuf,
        #[source]
        source: JsonError,
    },
    #[error(
        "{path} holds the result of config {holds}, not of the config its name says; delete it and resume (`vllm-grid resume {run_id}`) to re-run that config"
    )]
    MisplacedResult {
        run_id: String,
        path: PathBuf,
        holds: ConfigId,
    },
    #[error(
        "the manifest {path} is damaged; restore it from the run's archive (`archives/<date>_{run_id}/manifest.json`), or start a new run"
    )]
    DamagedManifest {
        run_id: String,
        path: PathBuf,
        #[source]
        source: JsonError,
    },
    #[error("run id {run_id:?} cannot be a directory name; use letters, digits, `-`, `_` and `.`")]
    BadRunId { run_id: String },
    #[error("there is no run {run_id:?} (no {dir}/manifest.json); list runs with `ls logs/`")]
    NoSuchRun { run_id: String, dir: PathBuf },
    #[error(
        "run {run_id:?} already exists in {dir}; continue it with `vllm-grid resume {run_id}` or pick another --run-id"
    )]
    RunExists { run_id: String, dir: PathBuf },
    #[error("run {run_id:?} is in use by {} (lock {path}); wait for it, or stop it first{}", holder(.owner), other_host_hint(.owner, .path))]
    Locked {
        run_id: String,
        /// As the lock file says; `None` while its holder is still writing it.
        owner: Option<LockOwner>,
        path: PathBuf,
    },
    #[error("cannot take the lock {path} of run {run_id:?}")]
    LockFile {
        run_id: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the battery parameters in the plan are not valid JSON of their shape at `{path}`")]
    BatteryParse {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the battery parameters in the plan are invalid at `{path}`")]
    BatteryInvalid {
        path: String,
        #[source]
        source: grid_bench::ConfigError,
    },
    #[error(
        "run {run_id:?} was started with a different setup; resuming would mix results. Changes:\n  - {}\nStart a new run, or pass --allow-changes to resume anyway",
        changes.join("\n  - ")
    )]
    ChangedSinceStart {
        run_id: String,
        changes: Vec<String>,
    },
    #[error("cannot sweep leftover servers before starting")]
    Sweep {
        #[source]
        source: grid_container::SweepError,
    },
    /// A server could not start for a reason no config could get past.
    #[error(
        "the server for config {config} cannot start here ({}), which says nothing about the config: the run stopped and stays resumable; fix the cause, then `vllm-grid resume {run_id}`",
        .failure.class
    )]
    Launch {
        run_id: String,
        config: String,
        #[source]
        failure: Box<LaunchFailure>,
    },
    /// The battery could not run for a reason outside the config.
    #[error(
        "the battery could not run for config {config}, which says nothing about the config: the run stopped and stays resumable; fix the cause, then `vllm-grid resume {run_id}`"
    )]
    Battery {
        run_id: String,
        config: String,
        #[source]
        source: Box<grid_bench::BatteryError>,
    },
    #[error("the Ray address is not usable")]
    RayAddress {
        #[source]
        source: grid_ray::InvalidAddress,
    },
    /// The Ray cluster cannot be used at all (unreachable, no GPUs).
    #[error("cannot run on the Ray cluster")]
    RayCluster {
        #[source]
        source: Box<grid_ray::RayError>,
    },
    /// A config needs more GPUs than any node of the cluster has: its job
    /// would wait forever. A setup error, not a verdict on the config.
    #[error(
        "config {config} needs {needed} GPUs (TP × PP), and the largest node of the Ray cluster at {address} has {largest}: give the cluster a bigger node, or leave the config out"
    )]
    RayTooFewGpus {
        config: String,
        needed: u32,
        largest: u32,
        address: String,
    },
    #[error("cannot prepare the Ray working-dir package in {dir}")]
    RayPackageDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot pack the Ray working-dir package")]
    RayPackage {
        #[source]
        source: Box<grid_ray::PackageError>,
    },
    /// A request to the dashboard failed while a config's job ran.
    #[error(
        "the Ray dashboard failed while config {config} ran, which says nothing about the config: the run stopped and stays resumable; `vllm-grid resume {run_id}` adopts its jobs"
    )]
    RayRequest {
        run_id: String,
        config: String,
        #[source]
        source: Box<grid_ray::RayError>,
    },
    /// A unit could not run on its node for a reason outside the config
    /// (the node, its runtime environment, a server or battery that cannot
    /// start there), after the plan's retries.
    #[error(
        "config {config} could not run on the Ray cluster ({class}: {reason}), which says nothing about the config: the run stopped and stays resumable; fix the cause, then `vllm-grid resume {run_id}`"
    )]
    RemoteUnavailable {
        run_id: String,
        config: String,
        class: String,
        reason: String,
    },
    #[error("the unit's config {config_id} is not in its plan; write the spec from the run's plan")]
    UnitWithoutConfig { config_id: ConfigId },
    #[error("the archive {dir} has no manifest.json; give a directory made by `vllm-grid archive`")]
    ArchiveWithoutManifest { dir: PathBuf },
    #[error("the archive {dir} cannot be used: its profile.yml cannot be read")]
    ArchiveProfile {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn holder(owner: &Option<LockOwner>) -> String {
    match owner {
        Some(owner) => format!("process {} on {}", owner.process.pid, owner.process.host),
        None => "another process (starting; it has not written its name yet)".to_string(),
    }
}

fn other_host_hint(owner: &Option<LockOwner>, path: &std::path::Path) -> String {
    match owner {
        Some(owner) if owner.process.host != grid_sys::hostname() => format!(
            ". A lock from another host cannot be checked from here: if that process is gone, delete {}",
            path.display()
        ),
        _ => String::new(),
    }
}

/// How the binary should treat an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad input: CLI, plan, profile, missing secret, a damaged run file.
    BadInput,
    /// Something outside us is missing: Docker, a live lock, an image, disk space.
    EnvironmentUnavailable,
    /// Anything else.
    Internal,
}

impl SearchError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            SearchError::BadRunId { .. }
            | SearchError::NoSuchRun { .. }
            | SearchError::RunExists { .. }
            | SearchError::BatteryParse { .. }
            | SearchError::BatteryInvalid { .. }
            | SearchError::ChangedSinceStart { .. }
            | SearchError::DamagedJson { .. }
            | SearchError::DamagedResult { .. }
            | SearchError::MisplacedResult { .. }
            | SearchError::DamagedManifest { .. }
            | SearchError::ArchiveWithoutManifest { .. }
            | SearchError::ArchiveProfile { .. }
            | SearchError::UnitWithoutConfig { .. } => ErrorKind::BadInput,
            SearchError::Locked { .. }
            | SearchError::Sweep { .. }
            | SearchError::RayCluster { .. }
            | SearchError::RayRequest { .. }
            | SearchError::RemoteUnavailable { .. }
            | SearchError::RayPackageDir { .. }
            | SearchError::RayPackage { .. } => ErrorKind::EnvironmentUnavailable,
            SearchError::RayTooFewGpus { .. } | SearchError::RayAddress { .. } => {
                ErrorKind::BadInput
            }
            SearchError::ReadFile { source, .. }
            | SearchError::WriteFile { source, .. }
            | SearchError::LockFile { source, .. } => io_blame(source).error_kind(),
            SearchError::Launch { failure, .. } => launch_blame(&failure.class).error_kind(),
            SearchError::Battery { source, .. } => battery_blame(source).error_kind(),
            SearchError::Encode { .. } => ErrorKind::Internal,
        }
    }
}
