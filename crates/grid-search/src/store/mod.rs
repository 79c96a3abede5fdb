//! The run store: everything a run leaves in `logs/<run-id>/`.
//!
//! ```text
//! logs/<run-id>/
//!   manifest.json        what was run: plan with IDs, profile hash, image, battery, seeds, host
//!   profile.yml          the profile as written (unexpanded `${VAR}`), for reproduce
//!   journal.jsonl        append-only events, fsync'd one by one
//!   lock                 flock'd by the live process; {"pid", "host", "start_ticks"} inside
//!   run.log              tracing output of every invocation on this run
//!   results/<id>.json    one result per config, written atomically
//!   <config-name>/       container log and battery output of that config
//!   report.md, report.json, acceleration.svg, ttft.svg
//! ```
//!
//! Every file except the journal and `run.log` is written to a temporary
//! name, fsync'd and renamed, so a kill at any instant leaves either the old
//! or the new content, never half of it.
//!
//! Files: [`files`] (atomic JSON), [`ids`] (run IDs, dates), [`manifest`],
//! [`record`] (the result types), [`results`] (reading and writing them),
//! [`journal`], [`lock`].

mod files;
mod ids;
mod journal;
mod lock;
mod manifest;
mod record;
mod results;

use std::path::{Path, PathBuf};

use grid_plan::{ConfigId, PlannedConfig};

pub use files::{read_json, write_atomic, write_atomic_with_hook, write_json_atomic};
pub use ids::{new_run_id, now_unix_ms, utc_date, validate_run_id};
pub use journal::{JournalEntry, JournalEvent, JournalRead};
pub use lock::{LockOwner, RunLock};
pub use manifest::{HostFacts, Manifest, Seeds, derive_seed};
pub use record::{
    ConfigResult, ConfigTiming, DEADLINE_CLASSES, Disturbance, FailureRecord, Measurement,
    PredictionRecord, PressureMeasurement, RepeatResult, RunOutcome,
};

use crate::SearchError;
use files::{JsonReadError, parse_json_file};

/// Format version of `manifest.json`, result files and the journal.
pub const STORE_FORMAT_VERSION: u32 = 1;

/// The tool's version, recorded in every manifest.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The run directory and its files.
#[derive(Debug, Clone)]
pub struct RunStore {
    pub dir: PathBuf,
    pub run_id: String,
}

impl RunStore {
    /// `logs_root/<run_id>`; nothing is created.
    pub fn at(logs_root: &Path, run_id: &str) -> Result<Self, SearchError> {
        validate_run_id(run_id)?;
        Ok(RunStore {
            dir: logs_root.join(run_id),
            run_id: run_id.to_string(),
        })
    }

    pub fn manifest_path(&self) -> PathBuf {
        self.dir.join("manifest.json")
    }
    pub fn journal_path(&self) -> PathBuf {
        self.dir.join("journal.jsonl")
    }
    pub fn lock_path(&self) -> PathBuf {
        self.dir.join("lock")
    }
    pub fn results_dir(&self) -> PathBuf {
        self.dir.join("results")
    }
    pub fn result_path(&self, id: &ConfigId) -> PathBuf {
        self.results_dir().join(format!("{id}.json"))
    }
    pub fn profile_copy_path(&self) -> PathBuf {
        self.dir.join("profile.yml")
    }
    pub fn config_dir(&self, config: &PlannedConfig) -> PathBuf {
        self.dir.join(&config.name)
    }

    pub fn exists(&self) -> bool {
        self.manifest_path().exists()
    }

    /// The run's manifest; a damaged one is bad input (restore it from the
    /// run's archive).
    pub fn read_manifest(&self) -> Result<Manifest, SearchError> {
        let path = self.manifest_path();
        if !path.exists() {
            return Err(SearchError::NoSuchRun {
                run_id: self.run_id.clone(),
                dir: self.dir.clone(),
            });
        }
        parse_json_file(&path).map_err(|err| match err {
            JsonReadError::Io(source) => SearchError::ReadFile { path, source },
            JsonReadError::Parse(source) => SearchError::DamagedManifest {
                run_id: self.run_id.clone(),
                path,
                source,
            },
        })
    }

    pub fn write_manifest(&self, manifest: &Manifest) -> Result<(), SearchError> {
        write_json_atomic(&self.manifest_path(), manifest)
    }
}
