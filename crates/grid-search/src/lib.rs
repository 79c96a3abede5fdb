//! The search: run every config of a plan (start a server through the
//! container manager, run the battery, tear down, record), checkpoint each
//! step so a crashed or interrupted run resumes where it stopped, rank the
//! results, write the reports, archive a run and reproduce an archived one.
//!
//! Modules:
//! * [`store`]: the run directory (manifest, journal, results, lock);
//! * [`search`]: the loop, resume and the preflight checks;
//! * [`progress`]: the events a search reports ([`SearchEvent`]);
//! * [`battery`]: the bridge to the battery (its config, its run, its numbers);
//! * [`rank`]: gates, champion, significance, recommendations;
//! * [`report`]: Markdown, JSON and SVG reports;
//! * [`archive`]: archive and reproduce;
//! * [`status`]: progress of a live or stopped run, read from its files.

pub mod archive;
pub mod battery;
pub mod failpoint;
pub mod progress;
pub mod rank;
pub mod report;
pub mod search;
pub mod status;
pub mod store;

use std::path::PathBuf;

pub use progress::{Phase, Progress, QuietProgress, SearchEvent};
pub use rank::{ConfigStatus, Ranking, rank};
pub use report::{ReportFiles, write_report};
pub use search::{SearchMode, SearchOptions, SearchOutcome, SearchSetup, run_search};
pub use store::{ConfigResult, Manifest, RunStore};

/// Everything that can go wrong in the search crate. Each variant is one
/// failed operation; the binary maps them to exit codes with
/// [`SearchError::kind`].
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
    #[error("{path} is damaged: {message}; restore it from an archive or start a new run")]
    Corrupt { path: PathBuf, message: String },
    #[error("run id {run_id:?} cannot be a directory name; use letters, digits, `-`, `_` and `.`")]
    BadRunId { run_id: String },
    #[error("there is no run {run_id:?} (no {dir}/manifest.json); list runs with `ls logs/`")]
    NoSuchRun { run_id: String, dir: PathBuf },
    #[error(
        "run {run_id:?} already exists in {dir}; continue it with `vllm-grid resume {run_id}` or pick another --run-id"
    )]
    RunExists { run_id: String, dir: PathBuf },
    #[error(
        "run {run_id:?} is in use by process {pid} on {host} (lock {path}); wait for it, or stop it first"
    )]
    Locked {
        run_id: String,
        pid: u32,
        host: String,
        path: PathBuf,
    },
    #[error("the battery parameters in the plan are invalid at `{path}`: {message}")]
    BatteryConfig { path: String, message: String },
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
    #[error("the environment cannot run any config ({class}): {message}")]
    Environment {
        class: String,
        message: String,
        /// Whether it is bad input (a missing secret, an unusable profile)
        /// rather than an unavailable service.
        bad_input: bool,
    },
    #[error("the archive {dir} cannot be used: {message}")]
    BadArchive { dir: PathBuf, message: String },
    #[error("cannot archive run {run_id}: {message}")]
    Archive { run_id: String, message: String },
}

/// How the binary should treat an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad input: CLI, plan, profile, missing secret.
    BadInput,
    /// Something outside us is missing: Docker, a live lock, an image.
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
            | SearchError::BatteryConfig { .. }
            | SearchError::ChangedSinceStart { .. }
            | SearchError::BadArchive { .. } => ErrorKind::BadInput,
            SearchError::Environment {
                bad_input: true, ..
            } => ErrorKind::BadInput,
            SearchError::Locked { .. }
            | SearchError::Environment { .. }
            | SearchError::Sweep { .. } => ErrorKind::EnvironmentUnavailable,
            SearchError::ReadFile { .. }
            | SearchError::WriteFile { .. }
            | SearchError::Encode { .. }
            | SearchError::Corrupt { .. }
            | SearchError::Archive { .. } => ErrorKind::Internal,
        }
    }
}
