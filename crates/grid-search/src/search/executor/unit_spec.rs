//! The worker's two files: the unit spec it is given and the unit result it
//! writes, both JSON, both with a format version.
//!
//! A spec is everything a node needs to run one unit with the same
//! binary: the run, the plan (the config, its limits, the seed), the
//! profile's text as the user wrote it (`${VAR}` references unexpanded:
//! the worker reads their values, the API key's among them, from its own
//! environment; no secret is ever in a spec), the effective battery
//! parameters, the backend and the GPU slot. A result is the unit's end
//! (measured, or why not), its failed launch attempts and times, and the
//! journal events the orchestrator appends for it: the worker writes no
//! file of the run. ARCHITECTURE.md ("The executor seam") shows both.

use std::path::{Path, PathBuf};

use grid_container::GpuSlot;
use grid_plan::{ConfigId, Plan, PlannedConfig};
use serde::{Deserialize, Serialize};

use crate::SearchError;
use crate::store::{
    ConfigTiming, FailureRecord, JournalEvent, RepeatResult, derive_seed, read_json,
    write_json_atomic,
};

use super::super::SearchSetup;
use super::unit::UnitEnd;
use crate::search::failure::{chain_text, failure_record};

/// Format version of unit specs and unit results.
pub const UNIT_FORMAT_VERSION: u32 = 1;

/// One unit of work, as a file: what `vllm-grid worker --spec` reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitSpec {
    pub format_version: u32,
    pub run_id: String,
    pub config_id: ConfigId,
    pub repeat: u32,
    /// The repeat's battery seed (`derive_seed(plan.seed, config, repeat)`).
    pub seed: u64,
    /// The run's plan: the config, its limits (health, per-config
    /// deadline, retries and backoff).
    pub plan: Plan,
    /// The profile as given (a path or label, shown and logged), its text
    /// (`${VAR}` unexpanded) and the service the run uses.
    pub profile_file: String,
    pub profile_text: String,
    pub service: String,
    /// A dry run: the worker runs the simulator built into its binary, and
    /// prepares the profile as the dry run does (a free port, the key in
    /// the environment, random values for variables it lacks).
    pub simulated: bool,
    /// `docker` or `process`.
    pub backend: String,
    /// The effective battery parameters.
    pub battery: serde_json::Value,
    /// The GPUs to use; `None`: the profile as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<GpuSlot>,
    /// SIGTERM-to-SIGKILL grace at teardown, in milliseconds.
    pub grace_period_ms: u64,
    /// Remove a same-named container vllm-grid did not create.
    #[serde(default)]
    pub replace_foreign: bool,
}

/// How a unit ended, as a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "end", rename_all = "snake_case")]
pub enum UnitEndRecord {
    Measured {
        result: Box<RepeatResult>,
    },
    /// A verdict: the server does not start (after retries).
    LaunchFailed {
        failure: FailureRecord,
    },
    /// A verdict: the server died during the battery.
    Died {
        measured: Option<Box<RepeatResult>>,
        failure: FailureRecord,
    },
    /// The deadline or a cancel fired: no verdict.
    CutShort,
    /// Not the config's fault: the server cannot start there.
    LaunchUnavailable {
        failure: FailureRecord,
    },
    /// Not the config's fault: the battery could not run.
    BatteryUnavailable {
        message: String,
    },
}

/// What `vllm-grid worker --out` writes (atomically).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitResult {
    pub format_version: u32,
    pub run_id: String,
    pub config_id: ConfigId,
    pub repeat: u32,
    #[serde(flatten)]
    pub end: UnitEndRecord,
    #[serde(default)]
    pub failed_attempts: Vec<FailureRecord>,
    pub timing: ConfigTiming,
    /// The events the unit would have journaled, in order, for the
    /// orchestrator to append.
    #[serde(default)]
    pub journal: Vec<JournalEvent>,
}

/// A unit spec that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UnitSpecError {
    #[error("cannot read the unit spec {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: Box<SearchError>,
    },
    #[error(
        "the unit spec {path} has format version {found}; this vllm-grid reads version {UNIT_FORMAT_VERSION}: run the orchestrator's vllm-grid on the node"
    )]
    Version { path: PathBuf, found: u32 },
    #[error("the unit spec {path} names config {config_id}, which its plan does not hold")]
    NoSuchConfig { path: PathBuf, config_id: ConfigId },
    #[error("cannot write the unit result {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: Box<SearchError>,
    },
}

impl UnitSpec {
    /// The spec of `config`'s repeat `repeat` in a run set up as `setup`.
    pub fn new(
        setup: &SearchSetup,
        backend: &str,
        config: &PlannedConfig,
        repeat: u32,
        slot: Option<GpuSlot>,
        options: &super::super::SearchOptions,
    ) -> UnitSpec {
        UnitSpec {
            format_version: UNIT_FORMAT_VERSION,
            run_id: setup.run_id.clone(),
            config_id: config.id.clone(),
            repeat,
            seed: derive_seed(setup.plan.seed, &config.id, repeat),
            plan: setup.plan.clone(),
            profile_file: setup.profile_file.clone(),
            profile_text: setup.profile_text.clone(),
            service: setup.profile.service_name.clone(),
            simulated: setup.simulated,
            backend: backend.to_string(),
            battery: serde_json::to_value(&setup.battery).unwrap_or_default(),
            slot,
            grace_period_ms: u64::try_from(options.grace_period.as_millis()).unwrap_or(u64::MAX),
            replace_foreign: options.replace_foreign,
        }
    }

    /// Reads and checks a spec file.
    pub fn read(path: &Path) -> Result<UnitSpec, UnitSpecError> {
        let spec: UnitSpec = read_json(path).map_err(|source| UnitSpecError::Read {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        if spec.format_version != UNIT_FORMAT_VERSION {
            return Err(UnitSpecError::Version {
                path: path.to_path_buf(),
                found: spec.format_version,
            });
        }
        if spec.config().is_none() {
            return Err(UnitSpecError::NoSuchConfig {
                path: path.to_path_buf(),
                config_id: spec.config_id.clone(),
            });
        }
        Ok(spec)
    }

    pub fn write(&self, path: &Path) -> Result<(), UnitSpecError> {
        write_json_atomic(path, self).map_err(|source| UnitSpecError::Write {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
    }

    /// The config the spec names, from its plan.
    pub fn config(&self) -> Option<&PlannedConfig> {
        self.plan.configs.iter().find(|c| c.id == self.config_id)
    }
}

impl UnitResult {
    /// Written atomically: a reader sees no result or the whole of it.
    pub fn write(&self, path: &Path) -> Result<(), UnitSpecError> {
        write_json_atomic(path, self).map_err(|source| UnitSpecError::Write {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
    }

    pub fn read(path: &Path) -> Result<UnitResult, SearchError> {
        read_json(path)
    }
}

impl UnitEndRecord {
    /// A unit's end as it is written down: the typed causes of the two
    /// "not the config's fault" ends become their text (the worker logs
    /// them whole).
    pub(crate) fn from_end(end: UnitEnd) -> UnitEndRecord {
        match end {
            UnitEnd::Measured(result) => UnitEndRecord::Measured {
                result: Box::new(result),
            },
            UnitEnd::LaunchFailed(failure) => UnitEndRecord::LaunchFailed { failure },
            UnitEnd::Died { measured, failure } => UnitEndRecord::Died {
                measured: measured.map(Box::new),
                failure,
            },
            UnitEnd::CutShort => UnitEndRecord::CutShort,
            UnitEnd::LaunchUnavailable(failure) => UnitEndRecord::LaunchUnavailable {
                failure: failure_record(&failure),
            },
            UnitEnd::BatteryUnavailable(error) => UnitEndRecord::BatteryUnavailable {
                message: chain_text(&*error),
            },
            UnitEnd::Unavailable { record, .. } => {
                UnitEndRecord::LaunchUnavailable { failure: record }
            }
        }
    }
}
