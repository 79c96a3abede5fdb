//! What a job is submitted with, parsed at the boundary: its submission ID,
//! the unit of work it carries (as metadata the run finds it by again), the
//! GPUs it needs, its working-dir package and its public environment.

use std::collections::BTreeMap;
use std::fmt;

use crate::api::{RuntimeEnv, SubmitBody};
use crate::package::PackageUri;

/// The metadata keys vllm-grid puts on its jobs; `resume` lists a run's
/// jobs by them.
pub const RUN_KEY: &str = "vllm_grid_run";
pub const CONFIG_KEY: &str = "vllm_grid_config";
pub const REPEAT_KEY: &str = "vllm_grid_repeat";

/// Which unit of work a job carries: one config of one run, one repeat.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnitMetadata {
    pub run_id: String,
    pub config_id: String,
    pub repeat: u32,
}

impl UnitMetadata {
    /// The job metadata Ray stores (values must be strings).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (RUN_KEY.to_string(), self.run_id.clone()),
            (CONFIG_KEY.to_string(), self.config_id.clone()),
            (REPEAT_KEY.to_string(), self.repeat.to_string()),
        ])
    }

    /// The unit a job's metadata names; `None` for a job that is not
    /// vllm-grid's (or whose metadata someone changed).
    pub fn from_map(map: &BTreeMap<String, String>) -> Option<Self> {
        Some(Self {
            run_id: map.get(RUN_KEY)?.clone(),
            config_id: map.get(CONFIG_KEY)?.clone(),
            repeat: map.get(REPEAT_KEY)?.parse().ok()?,
        })
    }
}

/// A job's submission ID: 1 to 128 of `[A-Za-z0-9._-]`, since it goes into
/// URL paths. Ray refuses a second job with the same ID (a 500 that says
/// "already exists"), so a deterministic ID cannot run twice.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubmissionId(String);

impl SubmissionId {
    pub const MAX_LEN: usize = 128;

    pub fn new(id: &str) -> Result<Self, InvalidSubmissionId> {
        let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if id.is_empty() || id.len() > Self::MAX_LEN || !id.chars().all(valid_char) {
            return Err(InvalidSubmissionId(id.to_string()));
        }
        Ok(Self(id.to_string()))
    }

    /// `vg-<run>-<config>-r<repeat>-a<attempt>`, other characters as `_`,
    /// cut to the limit from the left (the attempt stays).
    pub fn for_unit(unit: &UnitMetadata, attempt: u32) -> Self {
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '-') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        let tail = format!("-r{}-a{attempt}", unit.repeat);
        let mut head = format!("vg-{}-{}", clean(&unit.run_id), clean(&unit.config_id));
        head.truncate(Self::MAX_LEN - tail.len());
        Self(head + &tail)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SubmissionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a Ray submission ID (1 to 128 of A-Z a-z 0-9 . _ -)")]
pub struct InvalidSubmissionId(pub String);

/// Variables for the job's environment that anyone may read: Ray returns
/// `runtime_env.env_vars` in plain text to every `GET /api/jobs/`. A name
/// that reads like a secret's (its last word KEY, TOKEN, SECRET, PASSWORD,
/// PASSWD or CREDENTIALS) is refused: the node's own environment must
/// provide such values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublicEnv(BTreeMap<String, String>);

impl PublicEnv {
    pub fn new(vars: BTreeMap<String, String>) -> Result<Self, SecretInEnv> {
        const SECRET_WORDS: [&str; 6] = [
            "KEY",
            "TOKEN",
            "SECRET",
            "PASSWORD",
            "PASSWD",
            "CREDENTIALS",
        ];
        for name in vars.keys() {
            let last = name.rsplit('_').next().unwrap_or(name).to_ascii_uppercase();
            if SECRET_WORDS.contains(&last.as_str()) {
                return Err(SecretInEnv(name.clone()));
            }
        }
        Ok(Self(vars))
    }

    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0} looks like a secret, and Ray shows a job's env_vars to anyone who lists jobs: let the nodes' environment provide it"
)]
pub struct SecretInEnv(pub String);

/// A share of CPUs the entrypoint reserves: finite and above zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuShare(f64);

impl CpuShare {
    pub fn new(cpus: f64) -> Option<Self> {
        (cpus.is_finite() && cpus > 0.0).then_some(Self(cpus))
    }
    pub fn get(self) -> f64 {
        self.0
    }
}

/// One job to submit.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    pub submission_id: SubmissionId,
    /// A shell command line (Ray runs it with `/bin/sh -c`), in the job's
    /// working directory (the unpacked package, when there is one).
    pub entrypoint: String,
    pub unit: UnitMetadata,
    /// GPUs Ray reserves for the entrypoint (TP × PP); Ray then sets
    /// `CUDA_VISIBLE_DEVICES` to them. 0 reserves none.
    pub gpus: u32,
    /// CPUs Ray reserves; `None` leaves Ray's default (none for the
    /// entrypoint).
    pub cpus: Option<CpuShare>,
    pub working_dir: Option<PackageUri>,
    pub env: PublicEnv,
}

impl JobSpec {
    /// The wire body; `entrypoint_num_gpus` is left out for 0, so Ray
    /// neither reserves nor hides GPUs.
    pub fn body(&self) -> SubmitBody {
        let runtime_env =
            (self.working_dir.is_some() || !self.env.0.is_empty()).then(|| RuntimeEnv {
                working_dir: self
                    .working_dir
                    .as_ref()
                    .map(|uri| uri.as_str().to_string()),
                env_vars: self.env.0.clone(),
            });
        SubmitBody {
            entrypoint: self.entrypoint.clone(),
            submission_id: Some(self.submission_id.0.clone()),
            runtime_env,
            metadata: self.unit.to_map(),
            entrypoint_num_cpus: self.cpus.map(CpuShare::get),
            entrypoint_num_gpus: (self.gpus > 0).then_some(self.gpus),
        }
    }
}
