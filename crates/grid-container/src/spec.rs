//! What a launch needs (the spec) and what a ready server offers (the
//! endpoint).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use grid_core::Secret;

use crate::slot::GpuSlot;

/// What one configuration's server needs to start.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    pub run_id: String,
    pub config_id: String,
    pub config_name: String,
    /// The rendered command, `${VAR}` references unexpanded.
    pub command: Vec<String>,
    /// `logs/<run-id>/<config>/`; `container.log` is written here.
    pub log_dir: PathBuf,
    /// How long the server may take to become ready.
    pub ready_timeout: Duration,
    /// How long the server gets between SIGTERM and SIGKILL at teardown.
    pub grace_period: Duration,
    /// Remove a same-named container that vllm-grid did not create. Off by
    /// default: that container may be the user's production service.
    pub replace_foreign: bool,
    /// Values for `${VAR}` that take precedence over the process environment
    /// (a caller that reads secrets from a file, or a test). Treated as
    /// secrets like any substituted value.
    pub variables: BTreeMap<String, Secret>,
    /// The GPU slot the server runs on, when configs run side by side: its
    /// devices (docker `device_requests`, a process's
    /// `CUDA_VISIBLE_DEVICES`), the container name `<name>-slot<N>` and the
    /// host port `port + N`. `None`: the profile as written (one slot).
    pub slot: Option<GpuSlot>,
}

impl LaunchSpec {
    /// Long enough for a 32B model to load from a warm cache and compile.
    pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(20 * 60);
    /// vLLM finishes in-flight work and frees the GPU within seconds of SIGTERM.
    pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(15);

    pub fn new(
        run_id: impl Into<String>,
        config_id: impl Into<String>,
        config_name: impl Into<String>,
        command: Vec<String>,
        log_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            run_id: run_id.into(),
            config_id: config_id.into(),
            config_name: config_name.into(),
            command,
            log_dir: log_dir.into(),
            ready_timeout: Self::DEFAULT_READY_TIMEOUT,
            grace_period: Self::DEFAULT_GRACE_PERIOD,
            replace_foreign: false,
            variables: BTreeMap::new(),
            slot: None,
        }
    }
}

/// Where a ready server is reached.
#[derive(Debug, Clone)]
pub struct ServerEndpoint {
    /// `http://host:port`, without a trailing slash.
    pub base_url: String,
    pub served_model: String,
    pub api_key: Option<Secret>,
}
