//! The container manager: one vLLM server per configuration, started from a
//! docker-compose profile through the Docker engine (bollard) or as a local
//! process, checked ready, logged with secrets redacted, diagnosed when it
//! fails, and torn down on every path.
//!
//! ```text
//! load_profile ─► render_command ─► Backend::launch ─► RunningServer ─► teardown
//!                                      │ preflight, labels, logs,        │ Drop guard
//!                                      │ readiness, diagnosis            │ removes it too
//! ```

mod diagnose;
mod docker;
mod interpolate;
mod logs;
mod process;
mod profile;
mod ready;
mod render;
mod secret;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use grid_core::Secret;

use tokio_util::sync::CancellationToken;

pub use diagnose::{ExitInfo, FailureClass, LaunchFailure, diagnose};
pub use docker::{DaemonUnavailable, DockerBackend, DockerBackendConfig, labels};
pub use interpolate::UnresolvedVariable;
pub use logs::{LogFileError, TAIL_LINES};
pub use process::{PidRecord, ProcessBackend, ProcessBackendConfig};
pub use profile::{
    DEFAULT_SERVER_PORT, EnvEntry, GpuRequest, Healthcheck, LoadedProfile, PortMapping,
    ProcessHints, Profile, ProfileError, ProfileOptions, ResolveError, ResolvedProfile, Ulimit,
    load_profile, load_profile_with, parse_bytes, parse_duration, parse_port, parse_profile,
    parse_profile_with, split_words,
};
pub use ready::ReadinessConfig;
pub use render::{flag_value, render_command, served_model_from_command, setting_tokens};
pub use secret::Redactor;

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

/// A server that answered ready. Tear it down with [`RunningServer::teardown`];
/// dropping it instead kills and removes it at once (the guard).
pub struct RunningServer {
    endpoint: ServerEndpoint,
    ready_after: Duration,
    ready_at: SystemTime,
    log_path: PathBuf,
    handle: ServerHandle,
}

enum ServerHandle {
    Docker(docker::DockerServer),
    Process(process::ProcessServer),
}

impl ServerHandle {
    fn sink(&self) -> &logs::LogSink {
        match self {
            ServerHandle::Docker(server) => &server.sink,
            ServerHandle::Process(server) => &server.sink,
        }
    }

    /// Waits (briefly) for the server's output to deliver its last lines.
    async fn drain_output(&mut self) {
        match self {
            ServerHandle::Docker(server) => server.drain_output().await,
            ServerHandle::Process(server) => server.drain_output().await,
        }
    }

    /// SIGTERM, wait out `grace`, SIGKILL, remove, verify gone.
    async fn shutdown(&mut self, grace: Duration) -> Result<TeardownReport, TeardownError> {
        match self {
            ServerHandle::Docker(server) => server.shutdown(grace).await,
            ServerHandle::Process(server) => server.shutdown(grace).await,
        }
    }

    /// Stops the server without a grace period; the launch already failed,
    /// so a teardown error adds nothing the caller could act on (a Docker
    /// container's guard still tries once more on drop).
    async fn stop_now(&mut self) {
        let _ = self.shutdown(Duration::ZERO).await;
    }

    /// Diagnoses a server that exited before it was ready, then stops what
    /// is left of it.
    async fn fail_exited(mut self, info: ExitInfo) -> LaunchFailure {
        self.drain_output().await;
        let failure = diagnose(Some(&info), &self.sink().tail());
        self.sink().note(&format!("failed: {failure}"));
        self.stop_now().await;
        failure
    }
}

/// What the readiness wait of a just-started server needs.
pub(crate) struct ReadyWait<'a> {
    pub endpoint: ServerEndpoint,
    pub exit: tokio::sync::watch::Receiver<Option<ExitInfo>>,
    pub started_at: std::time::Instant,
    pub ready_timeout: Duration,
    pub readiness: &'a ReadinessConfig,
    pub sink: &'a logs::LogSink,
    pub cancel: &'a CancellationToken,
}

/// Waits until a just-started server is ready. On any other outcome
/// (exit, timeout, cancel) it stops the server and returns the diagnosis,
/// so nothing is left running.
pub(crate) async fn await_ready(
    mut handle: ServerHandle,
    wait: ReadyWait<'_>,
) -> Result<RunningServer, LaunchFailure> {
    let ReadyWait {
        endpoint,
        mut exit,
        started_at,
        ready_timeout,
        readiness,
        sink,
        cancel,
    } = wait;
    let client = ready::http_client(readiness);
    let deadline = started_at + ready_timeout;
    match ready::wait_ready(&client, &endpoint, &mut exit, deadline, readiness, cancel).await {
        Ok(ready) => {
            sink.note(&format!(
                "ready after {:?} at {}",
                ready.at - started_at,
                endpoint.base_url
            ));
            Ok(RunningServer {
                endpoint,
                ready_after: ready.at - started_at,
                ready_at: ready.at_wall,
                log_path: sink.path().to_path_buf(),
                handle,
            })
        }
        Err(ready::NotReady::Exited(info)) => Err(handle.fail_exited(info).await),
        Err(ready::NotReady::TimedOut { last_problem }) => {
            sink.note(&format!(
                "not ready within {ready_timeout:?}; last problem: {last_problem}"
            ));
            handle.stop_now().await;
            let mut failure = diagnose(None, &sink.tail());
            if failure.class == FailureClass::HealthTimeout {
                failure.message = format!(
                    "the server was not ready within {ready_timeout:?} (last check: {last_problem}); raise the ready timeout if the model needs longer to load"
                );
            }
            Err(failure)
        }
        Err(ready::NotReady::Cancelled) => {
            sink.note("cancelled while waiting for readiness; stopping the server");
            handle.stop_now().await;
            Err(LaunchFailure::new(
                FailureClass::Cancelled,
                "cancelled while waiting for the server to become ready",
            )
            .with_tail(sink.tail()))
        }
    }
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("endpoint", &self.endpoint)
            .field("ready_after", &self.ready_after)
            .field("container_id", &self.container_id())
            .field("pid", &self.pid())
            .finish()
    }
}

impl RunningServer {
    pub fn endpoint(&self) -> &ServerEndpoint {
        &self.endpoint
    }

    /// From the start request to the first ready answer.
    pub fn ready_after(&self) -> Duration {
        self.ready_after
    }

    /// Wall-clock instant the server was seen ready (to compare with the
    /// server's own log).
    pub fn ready_at(&self) -> SystemTime {
        self.ready_at
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn container_id(&self) -> Option<&str> {
        match &self.handle {
            ServerHandle::Docker(server) => Some(server.id()),
            ServerHandle::Process(_) => None,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        match &self.handle {
            ServerHandle::Docker(_) => None,
            ServerHandle::Process(server) => Some(server.pid()),
        }
    }

    /// `Some` once the server has died (e.g. mid-benchmark), with how.
    pub async fn exited(&self) -> Option<ExitInfo> {
        match &self.handle {
            ServerHandle::Docker(server) => server.exited().await,
            ServerHandle::Process(server) => server.exited(),
        }
    }

    /// The last lines of the server's log, redacted.
    pub fn log_tail(&self) -> Vec<String> {
        match &self.handle {
            ServerHandle::Docker(server) => server.log_tail(),
            ServerHandle::Process(server) => server.log_tail(),
        }
    }

    /// SIGTERM, wait out the grace period, SIGKILL, remove, verify gone.
    pub async fn teardown(mut self) -> Result<TeardownReport, TeardownError> {
        let grace = match &self.handle {
            ServerHandle::Docker(server) => server.grace,
            ServerHandle::Process(server) => server.grace,
        };
        let result = self.handle.shutdown(grace).await;
        if let Ok(report) = &result {
            self.handle.sink().note(&format!(
                "torn down in {:?}{}",
                report.duration,
                if report.killed { " (killed)" } else { "" }
            ));
        }
        // On error a Docker container's guard is still armed and tries once
        // more on drop.
        result
    }
}

/// How a teardown went.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TeardownReport {
    /// From the first signal until the server was verified gone.
    pub duration: Duration,
    /// The server ignored SIGTERM for the grace period and was killed.
    pub killed: bool,
    pub exit: Option<ExitInfo>,
}

#[derive(Debug, thiserror::Error)]
pub enum TeardownError {
    #[error("docker could not {operation} container {container}")]
    Docker {
        operation: &'static str,
        container: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error(
        "container {container} is still present after removal; remove it with `docker rm -f {container}`"
    )]
    StillPresent { container: String },
    #[error("cannot signal process group {pgid}")]
    Signal {
        pgid: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("processes of group {pgid} are still running after SIGKILL; check `ps -g {pgid}`")]
    ProcessesRemain { pgid: u32 },
}

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
}

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("docker could not {operation} while sweeping leftovers")]
    Docker {
        operation: &'static str,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("cannot read the pid directory {path}")]
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

/// The failure for a profile that cannot be resolved.
pub(crate) fn resolve_failure(error: ResolveError) -> LaunchFailure {
    let class = match &error {
        ResolveError::MissingVariables { .. } => FailureClass::MissingSecret,
        ResolveError::InvalidValue { .. } => FailureClass::InvalidProfile,
    };
    LaunchFailure::new(class, error.to_string())
}

/// Shared launch preparation: expand the rendered command, open the log.
pub(crate) fn prepare(
    profile: &Profile,
    spec: &LaunchSpec,
    backend: &str,
) -> Result<(ResolvedProfile, logs::LogSink), LaunchFailure> {
    let rendered = profile.with_command(spec.command.clone());
    let lookup = |name: &str| -> Option<String> {
        match spec.variables.get(name) {
            Some(value) => Some(value.expose().to_string()),
            None => std::env::var(name).ok(),
        }
    };
    let resolved = rendered.resolve(&lookup).map_err(resolve_failure)?;
    let sink = logs::LogSink::create(&spec.log_dir, resolved.redactor.clone()).map_err(|e| {
        LaunchFailure::new(FailureClass::BackendError, e.to_string()).with_source(e)
    })?;
    sink.note(&format!(
        "run {} config {} ({}) on the {backend} backend, profile {}",
        spec.run_id, spec.config_id, spec.config_name, profile.source
    ));
    // The unexpanded command: `${VAR}` references stay as written.
    sink.note(&format!("command: {}", spec.command.join(" ")));
    Ok((resolved, sink))
}

/// Checks that a host port is free by binding it for a moment.
pub(crate) fn check_port_free(host_ip: &str, port: u16) -> Result<(), LaunchFailure> {
    let address = if host_ip.contains(':') {
        format!("[{host_ip}]:{port}")
    } else {
        format!("{host_ip}:{port}")
    };
    match std::net::TcpListener::bind(&address) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => Err(LaunchFailure::new(
            FailureClass::PortInUse,
            format!(
                "host port {address} is already in use; stop what holds it (`ss -ltnp 'sport = :{port}'`) or publish another port in the profile"
            ),
        )
        .with_source(error)),
        // Another error (an address not on this host) is left to the engine.
        Err(_) => Ok(()),
    }
}
