//! The Docker backend (bollard): preflight, labelled containers, streamed and
//! redacted logs, readiness while watching the container, teardown, sweeps.
//!
//! A kill -9 of vllm-grid at any moment leaves nothing the sweep cannot
//! find: the labels (run, config, owner pid and start, host) are part of the
//! create request, so a container exists only with them, from before it
//! first runs; the sweep lists `all` containers, created-but-never-started
//! ones included.

mod body;
mod connect;
mod endpoint;
mod preflight;
mod server;
mod sweep;

use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::query_parameters::CreateContainerOptionsBuilder;
use grid_sys::Owner;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use connect::{DaemonUnavailable, EngineUnreachable};
pub(crate) use server::DockerServer;

use connect::{Connector, is_connection_error, short, status_of};
use preflight::classify_start_error;
use server::{ContainerGuard, remove_container, stream_logs, watch_exit};

use crate::failure::{FailureClass, LaunchFailure, chain_text};
use crate::launch::{ReadyWait, await_ready, check_port_free, fail_exited, prepare, redacted};
use crate::logs::LogSink;
use crate::profile::{Profile, ResolvedProfile};
use crate::ready::ReadinessConfig;
use crate::server::{RunningServer, ServerHandle};
use crate::spec::LaunchSpec;

/// The labels every container we create carries.
pub mod labels {
    pub const TOOL: &str = "vllm-grid.tool";
    pub const TOOL_VALUE: &str = "vllm-grid";
    pub const RUN_ID: &str = "vllm-grid.run-id";
    pub const CONFIG_ID: &str = "vllm-grid.config-id";
    pub const OWNER_PID: &str = "vllm-grid.owner-pid";
    pub const OWNER_START: &str = "vllm-grid.owner-start";
    pub const HOST: &str = "vllm-grid.host";
    /// The GPU slot's index, on a container started on a slot.
    pub const SLOT: &str = "vllm-grid.slot";
    /// The slot's device IDs, comma-separated.
    pub const DEVICES: &str = "vllm-grid.devices";
}

#[derive(Debug, Clone)]
pub struct DockerBackendConfig {
    /// The engine address; `None` reads `DOCKER_HOST` (unix socket by
    /// default; `tcp://` with TLS when `DOCKER_TLS_VERIFY` is set, certificates
    /// from `DOCKER_CERT_PATH`).
    pub docker_host: Option<String>,
    /// How long to wait for the engine to answer at connection.
    pub connect_timeout: Duration,
    pub readiness: ReadinessConfig,
    /// Recorded in the labels; the sweep removes containers whose owner died.
    pub owner: Owner,
}

impl Default for DockerBackendConfig {
    fn default() -> Self {
        Self {
            docker_host: None,
            connect_timeout: Duration::from_secs(5),
            readiness: ReadinessConfig::default(),
            owner: Owner::current(),
        }
    }
}

pub struct DockerBackend {
    docker: Docker,
    connector: Connector,
    config: DockerBackendConfig,
}

impl std::fmt::Debug for DockerBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerBackend")
            .field("host", &self.connector.host)
            .finish()
    }
}

impl DockerBackend {
    /// Connects and negotiates the API version (the engine may be older than
    /// bollard's default, e.g. 20.10 speaks 1.41).
    pub async fn connect(config: DockerBackendConfig) -> Result<Self, DaemonUnavailable> {
        let host = config
            .docker_host
            .clone()
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string());
        let connector = Connector {
            host,
            timeout: config.connect_timeout,
        };
        let docker = connector.connect().await?;
        Ok(Self {
            docker,
            connector,
            config,
        })
    }

    /// The bollard client, for callers that inspect what we started.
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    pub fn host(&self) -> &str {
        &self.connector.host
    }

    /// An engine error during `operation`: the engine gone
    /// ([`FailureClass::DaemonUnavailable`]) or a refusal.
    fn daemon_failure(&self, operation: &'static str, error: DockerError) -> LaunchFailure {
        if is_connection_error(&error) {
            LaunchFailure::from(self.connector.dropped(operation, error))
        } else {
            let error = EngineRefused {
                operation,
                source: error,
            };
            LaunchFailure::new(FailureClass::BackendError, chain_text(&error)).with_source(error)
        }
    }

    /// Preflight, create (labelled), start, wait until ready. On failure
    /// nothing is left running, and the failure is redacted.
    pub async fn launch(
        &self,
        profile: &Profile,
        spec: &LaunchSpec,
        cancel: &CancellationToken,
    ) -> Result<RunningServer, LaunchFailure> {
        let (resolved, sink) = prepare(profile, spec, "docker")?;
        let outcome = self
            .launch_resolved(profile, &resolved, &sink, spec, cancel)
            .await;
        redacted(outcome, &resolved.redactor)
    }

    async fn launch_resolved(
        &self,
        profile: &Profile,
        resolved: &ResolvedProfile,
        sink: &LogSink,
        spec: &LaunchSpec,
        cancel: &CancellationToken,
    ) -> Result<RunningServer, LaunchFailure> {
        let (id, guard) = self.create(profile, resolved, sink, spec, cancel).await?;

        let started_at = Instant::now();
        if let Err(error) = self.docker.start_container(&id, None).await {
            let failure = classify_start_error(resolved, error);
            let _ = remove_container(&self.docker, &id).await;
            guard.disarm();
            return Err(failure);
        }
        let log_task = tokio::spawn(stream_logs(self.docker.clone(), id.clone(), sink.clone()));
        let (exit_sender, exit_receiver) = watch::channel(None);
        let exit_task = tokio::spawn(watch_exit(self.docker.clone(), id.clone(), exit_sender));
        let mut server = DockerServer {
            docker: self.docker.clone(),
            guard,
            id: id.clone(),
            sink: sink.clone(),
            exit: exit_receiver.clone(),
            log_task: Some(log_task),
            exit_task: Some(exit_task),
            grace: spec.grace_period,
        };

        let endpoint = match self.endpoint(resolved, &id).await {
            Ok(endpoint) => endpoint,
            Err(failure) => {
                // A server that exits at once takes its port bindings and
                // network address with it: that is an exit to diagnose.
                if let Some(info) = server.wait_exit(Duration::from_secs(2)).await {
                    return Err(fail_exited(ServerHandle::Docker(server), info).await);
                }
                let _ = server.shutdown(Duration::ZERO).await;
                return Err(failure);
            }
        };
        await_ready(
            ServerHandle::Docker(server),
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

    /// Preflight, then create the container (labelled, not started); the
    /// guard removes it unless disarmed.
    async fn create(
        &self,
        profile: &Profile,
        resolved: &ResolvedProfile,
        sink: &LogSink,
        spec: &LaunchSpec,
        cancel: &CancellationToken,
    ) -> Result<(String, ContainerGuard), LaunchFailure> {
        // Preflight: nothing is created until every check passes.
        self.check_image(&resolved.image).await?;
        if let Some(name) = &resolved.container_name {
            self.clear_name(name, spec, sink).await?;
        }
        if self.connector.is_local() {
            if resolved.network_mode_is_host() {
                check_port_free("127.0.0.1", resolved.server_port)?;
            }
            for mapping in &resolved.ports {
                if let Some(port) = mapping.host_port {
                    check_port_free(mapping.host_ip.as_deref().unwrap_or("0.0.0.0"), port)?;
                }
            }
        }
        if cancel.is_cancelled() {
            return Err(LaunchFailure::new(
                FailureClass::Cancelled,
                "cancelled before the container was created",
            ));
        }

        let body = self.create_body(profile, resolved, spec);
        let mut options = CreateContainerOptionsBuilder::new();
        if let Some(name) = &resolved.container_name {
            options = options.name(name);
        }
        let created = self
            .docker
            .create_container(Some(options.build()), body)
            .await
            .map_err(|error| match status_of(&error) {
                Some(404) => LaunchFailure::new(
                    FailureClass::MissingImage,
                    format!(
                        "image {} disappeared before the container was created: {error}",
                        resolved.image
                    ),
                ),
                Some(409) => LaunchFailure::new(
                    FailureClass::ForeignContainer,
                    format!("another container took the name while we prepared ours: {error}"),
                ),
                _ => self.daemon_failure("create the container", error),
            })?;
        let id = created.id;
        let guard = ContainerGuard {
            connector: self.connector.clone(),
            id: Some(id.clone()),
        };
        sink.note(&format!("container {} created", short(&id)));
        Ok((id, guard))
    }

    /// Tests only (feature `test-hooks`): what a launch creates, created
    /// and left stopped, so a test can inspect the engine's record of it
    /// (names, ports, device requests) on a host without the GPUs it names.
    /// The caller removes it.
    #[cfg(feature = "test-hooks")]
    pub async fn create_stopped(
        &self,
        profile: &Profile,
        spec: &LaunchSpec,
    ) -> Result<String, LaunchFailure> {
        let (resolved, sink) = prepare(profile, spec, "docker")?;
        let created = self
            .create(profile, &resolved, &sink, spec, &CancellationToken::new())
            .await;
        let (id, guard) = redacted(created, &resolved.redactor)?;
        guard.disarm();
        Ok(id)
    }
}

/// The engine answered an operation with an error.
#[derive(Debug, thiserror::Error)]
#[error("docker could not {operation}")]
pub struct EngineRefused {
    pub operation: &'static str,
    #[source]
    pub source: DockerError,
}
