//! The two ways to run a server behind one interface, and the sweep of
//! servers left by a vllm-grid that was killed.

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use crate::docker::DockerBackend;
use crate::failure::LaunchFailure;
use crate::process::ProcessBackend;
use crate::profile::Profile;
use crate::server::RunningServer;
use crate::spec::LaunchSpec;

/// Options for sweeping leftovers.
#[derive(Debug, Clone, Default)]
pub struct SweepOptions {
    /// Also remove servers whose owner still runs (`vllm-grid cleanup --all`).
    pub include_live_owners: bool,
}

/// One container or process the sweep looked at.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SweptItem {
    /// Container ID, or `pid <n>`.
    pub id: String,
    pub run_id: String,
    pub config_id: String,
    pub owner_pid: Option<u32>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SweepReport {
    pub removed: Vec<SweptItem>,
    /// Their owner still runs: another vllm-grid is using them.
    pub skipped_live_owner: Vec<SweptItem>,
    /// Started from another host sharing the engine; never touched.
    pub skipped_other_host: Vec<SweptItem>,
    /// Stale files of ours removed: records of servers that never started,
    /// temporaries of a write that was cut short.
    pub stale_files: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(
        "docker could not list vllm-grid's containers while sweeping leftovers; check the engine and run `vllm-grid cleanup` again"
    )]
    ListContainers {
        #[source]
        source: bollard::errors::Error,
    },
    #[error(
        "docker could not remove the leftover container {container}; remove it with `docker rm -f {container}`"
    )]
    RemoveContainer {
        container: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("cannot read the pid directory {path}; check its permissions")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The two ways to run a server, behind one interface.
pub enum Backend {
    Docker(DockerBackend),
    Process(ProcessBackend),
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Docker(_) => "docker",
            Backend::Process(_) => "process",
        }
    }

    /// Preflight, start, wait until ready. On failure nothing is left running.
    pub async fn launch(
        &self,
        profile: &Profile,
        spec: &LaunchSpec,
        cancel: &CancellationToken,
    ) -> Result<RunningServer, LaunchFailure> {
        match self {
            Backend::Docker(backend) => backend.launch(profile, spec, cancel).await,
            Backend::Process(backend) => backend.launch(profile, spec, cancel).await,
        }
    }

    /// Removes servers left by runs whose process is dead (after a SIGKILL).
    pub async fn sweep_leftovers(&self, options: &SweepOptions) -> Result<SweepReport, SweepError> {
        match self {
            Backend::Docker(backend) => backend.sweep_leftovers(options).await,
            Backend::Process(backend) => backend.sweep_leftovers(options).await,
        }
    }
}
