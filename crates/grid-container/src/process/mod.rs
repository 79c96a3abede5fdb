//! The process backend: `vllm serve` (or the simulator) as a local process in
//! its own process group, with a pid record written before it starts, so a
//! later start can sweep it whenever vllm-grid was killed (see `record.rs`).

mod argv;
mod record;
mod server;
mod sweep;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Instant;

use grid_sys::{Owner, process_start_ticks};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use record::{LAUNCH_ID_VARIABLE, PidRecord};
pub(crate) use server::ProcessServer;

use argv::check_program;
use record::{new_launch_id, pid_file_name, write_record};
use server::{ProcessGuard, exit_code, pump};

use crate::failure::{ExitInfo, FailureClass, LaunchFailure};
use crate::launch::{ReadyWait, await_ready, check_port_free, io_failure, prepare, redacted};
use crate::logs::LogSink;
use crate::profile::{Profile, ResolvedProfile};
use crate::ready::ReadinessConfig;
use crate::server::{RunningServer, ServerHandle};
use crate::spec::{LaunchSpec, ServerEndpoint};

#[derive(Debug, Clone)]
pub struct ProcessBackendConfig {
    /// Replaces a program name by a command: `vllm-sim` →
    /// `["/path/to/vllm-grid", "sim"]` runs the simulator built into the CLI.
    pub program_overrides: BTreeMap<String, Vec<String>>,
    /// Where pid files live (e.g. `logs/.pids`); the sweep reads it.
    pub state_dir: PathBuf,
    /// The program when the profile gives neither `x-vllm-grid.process.entrypoint`
    /// nor `entrypoint`: the vLLM image's own entrypoint.
    pub default_entrypoint: Vec<String>,
    pub readiness: ReadinessConfig,
    /// Recorded in pid files; the sweep removes servers whose owner died.
    pub owner: Owner,
    /// Tests only: pauses every launch between the spawn and the pid
    /// record's rewrite, the moment a kill is hardest to recover from.
    #[cfg(feature = "test-hooks")]
    pub spawn_gate: Option<std::sync::Arc<SpawnGate>>,
}

impl ProcessBackendConfig {
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            program_overrides: BTreeMap::new(),
            state_dir: state_dir.into(),
            default_entrypoint: vec!["vllm".to_string(), "serve".to_string()],
            readiness: ReadinessConfig::default(),
            owner: Owner::current(),
            #[cfg(feature = "test-hooks")]
            spawn_gate: None,
        }
    }
}

/// Tests only (feature `test-hooks`): where a launch waits after the spawn.
#[cfg(feature = "test-hooks")]
#[derive(Debug, Default)]
pub struct SpawnGate {
    /// Notified when a launch has spawned its server and waits.
    pub reached: tokio::sync::Notify,
    /// Notify to let the launch go on.
    pub release: tokio::sync::Notify,
}

#[derive(Debug)]
pub struct ProcessBackend {
    config: ProcessBackendConfig,
}

impl ProcessBackend {
    pub fn new(config: ProcessBackendConfig) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &ProcessBackendConfig {
        &self.config
    }

    /// Preflight, record, spawn, wait until ready. On failure nothing is
    /// left running, and the failure is redacted.
    pub async fn launch(
        &self,
        profile: &Profile,
        spec: &LaunchSpec,
        cancel: &CancellationToken,
    ) -> Result<RunningServer, LaunchFailure> {
        let (resolved, sink) = prepare(profile, spec, "process")?;
        let outcome = self.launch_resolved(&resolved, &sink, spec, cancel).await;
        redacted(outcome, &resolved.redactor)
    }

    async fn launch_resolved(
        &self,
        resolved: &ResolvedProfile,
        sink: &LogSink,
        spec: &LaunchSpec,
        cancel: &CancellationToken,
    ) -> Result<RunningServer, LaunchFailure> {
        let (argv, connect_host, port) = self.argv(resolved)?;
        check_program(&argv[0])?;
        check_port_free(
            if connect_host.starts_with('[') {
                "::1"
            } else {
                &connect_host
            },
            port,
        )?;
        if cancel.is_cancelled() {
            return Err(LaunchFailure::new(
                FailureClass::Cancelled,
                "cancelled before the server was started",
            ));
        }
        let state_dir = &self.config.state_dir;
        std::fs::create_dir_all(state_dir).map_err(|error| {
            io_failure(
                format!("cannot create the pid directory {}", state_dir.display()),
                error,
            )
        })?;

        // The intent, before anything runs (see record.rs).
        let launch_id = new_launch_id(&self.config.owner);
        let mut record = PidRecord {
            pid: None,
            pgid: None,
            start_ticks: None,
            owner: self.config.owner.clone(),
            run_id: spec.run_id.clone(),
            config_id: spec.config_id.clone(),
            launch_id: Some(launch_id.clone()),
        };
        let pid_file = state_dir.join(pid_file_name(spec, &launch_id));
        write_record(&pid_file, &record).map_err(|error| {
            io_failure(
                format!(
                    "cannot write the pid file {}; nothing was started",
                    pid_file.display()
                ),
                error,
            )
        })?;
        let mut guard = ProcessGuard {
            pgid: None,
            pid_file: Some(pid_file.clone()),
        };

        let mut command = tokio::process::Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .envs(
                resolved
                    .environment
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .env(LAUNCH_ID_VARIABLE, &launch_id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group, so teardown reaches every worker it forks.
            .process_group(0)
            .kill_on_drop(false);
        let started_at = Instant::now();
        // On an error here the guard removes the intent record.
        let mut child = command.spawn().map_err(|error| {
            let class = if error.kind() == std::io::ErrorKind::NotFound {
                FailureClass::MissingProgram
            } else {
                FailureClass::BackendError
            };
            LaunchFailure::new(class, format!("cannot start {}: {error}", argv[0]))
                .with_source(error)
        })?;
        let Some(pid) = child.id() else {
            return Err(LaunchFailure::new(
                FailureClass::BackendError,
                format!("{} exited at once", argv[0]),
            ));
        };
        // The server leads its own group (`process_group(0)`).
        guard.pgid = Some(pid);

        #[cfg(feature = "test-hooks")]
        {
            if let Some(gate) = &self.config.spawn_gate {
                gate.reached.notify_one();
                gate.release.notified().await;
            }
        }

        record.pid = Some(pid);
        record.pgid = Some(pid);
        record.start_ticks = process_start_ticks(pid);
        if let Err(error) = write_record(&pid_file, &record) {
            // The guard stops the server and removes the record.
            drop(guard);
            return Err(io_failure(
                format!(
                    "cannot write the pid file {}; the server was stopped",
                    pid_file.display()
                ),
                error,
            ));
        }
        sink.note(&format!(
            "process {pid} started (pid file {})",
            pid_file.display()
        ));

        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(tokio::spawn(pump(stdout, 0, sink.clone())));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(tokio::spawn(pump(stderr, 1, sink.clone())));
        }
        let (exit_sender, exit_receiver) = watch::channel(None);
        let exit_task = tokio::spawn(async move {
            let info = match child.wait().await {
                Ok(status) => ExitInfo {
                    code: exit_code(&status),
                    oom_killed: false,
                },
                Err(_) => ExitInfo {
                    code: None,
                    oom_killed: false,
                },
            };
            let _ = exit_sender.send(Some(info));
        });
        let server = ProcessServer {
            guard,
            pid,
            sink: sink.clone(),
            exit: exit_receiver.clone(),
            readers,
            exit_task: Some(exit_task),
            grace: spec.grace_period,
        };
        let endpoint = ServerEndpoint {
            base_url: format!("http://{connect_host}:{port}"),
            served_model: resolved.served_model.clone().unwrap_or_default(),
            api_key: resolved.api_key.clone(),
        };
        await_ready(
            ServerHandle::Process(server),
            ReadyWait {
                endpoint,
                exit: exit_receiver,
                started_at,
                ready_timeout: spec.ready_timeout,
                readiness: &self.config.readiness,
                sink,
                cancel,
            },
        )
        .await
    }
}
