//! The Docker backend (bollard): preflight, labelled containers, streamed and
//! redacted logs, readiness while watching the container, teardown, sweeps.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, DeviceRequest, HealthConfig, HostConfig, PortBinding, ResourcesUlimits,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;
use grid_sys::Owner;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::diagnose::{ExitInfo, FailureClass, LaunchFailure};
use crate::logs::LogSink;
use crate::profile::{Profile, ResolvedProfile};
use crate::ready::{ReadinessConfig, exit_within};
use crate::{
    LaunchSpec, ReadyWait, RunningServer, ServerEndpoint, ServerHandle, SweepError, SweepOptions,
    SweepReport, SweptItem, TeardownError, TeardownReport, check_port_free, prepare,
};

/// The labels every container we create carries.
pub mod labels {
    pub const TOOL: &str = "vllm-grid.tool";
    pub const TOOL_VALUE: &str = "vllm-grid";
    pub const RUN_ID: &str = "vllm-grid.run-id";
    pub const CONFIG_ID: &str = "vllm-grid.config-id";
    pub const OWNER_PID: &str = "vllm-grid.owner-pid";
    pub const OWNER_START: &str = "vllm-grid.owner-start";
    pub const HOST: &str = "vllm-grid.host";
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

/// The engine cannot be reached.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot reach the Docker engine at {host}: {reason}. Start the engine (e.g. `sudo systemctl start docker`), \
     or point DOCKER_HOST at a running one (tcp with TLS: set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH)"
)]
pub struct DaemonUnavailable {
    pub host: String,
    pub reason: String,
    #[source]
    pub source: Option<DockerError>,
}

impl From<DaemonUnavailable> for LaunchFailure {
    fn from(error: DaemonUnavailable) -> Self {
        LaunchFailure::new(FailureClass::DaemonUnavailable, error.to_string()).with_source(error)
    }
}

/// How to reach the engine, kept so a guard can open its own connection.
#[derive(Debug, Clone)]
struct Connector {
    host: String,
    timeout: Duration,
}

impl Connector {
    fn client(&self) -> Result<Docker, DaemonUnavailable> {
        Docker::connect_with_host(&self.host).map_err(|source| DaemonUnavailable {
            host: self.host.clone(),
            reason: source.to_string(),
            source: Some(source),
        })
    }

    async fn connect(&self) -> Result<Docker, DaemonUnavailable> {
        let client = self.client()?;
        match tokio::time::timeout(self.timeout, client.negotiate_version()).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(source)) => Err(DaemonUnavailable {
                host: self.host.clone(),
                reason: source.to_string(),
                source: Some(source),
            }),
            Err(_) => Err(DaemonUnavailable {
                host: self.host.clone(),
                reason: format!("no answer within {:?}", self.timeout),
                source: None,
            }),
        }
    }

    /// Whether the engine runs on this machine (so host ports can be checked).
    fn is_local(&self) -> bool {
        self.host.starts_with("unix://")
            || ["127.0.0.1", "localhost", "[::1]"]
                .iter()
                .any(|h| self.remote_host().as_deref() == Some(*h))
    }

    /// The host part of a tcp engine address.
    fn remote_host(&self) -> Option<String> {
        let rest = self.host.split_once("://").map(|(_, rest)| rest)?;
        if self.host.starts_with("unix://") {
            return None;
        }
        let authority = rest.split('/').next()?;
        let host = match authority.rsplit_once(':') {
            Some((host, _)) if !host.is_empty() => host,
            _ => authority,
        };
        Some(host.to_string())
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

fn status_of(error: &DockerError) -> Option<u16> {
    match error {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

fn is_connection_error(error: &DockerError) -> bool {
    !matches!(
        error,
        DockerError::DockerResponseServerError { .. }
            | DockerError::DockerContainerWaitError { .. }
    )
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
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

    fn daemon_failure(&self, operation: &str, error: DockerError) -> LaunchFailure {
        if is_connection_error(&error) {
            LaunchFailure::from(DaemonUnavailable {
                host: self.connector.host.clone(),
                reason: format!("{operation}: {error}"),
                source: Some(error),
            })
        } else {
            LaunchFailure::new(
                FailureClass::BackendError,
                format!("docker could not {operation}: {error}"),
            )
            .with_source(error)
        }
    }

    pub async fn launch(
        &self,
        profile: &Profile,
        spec: &LaunchSpec,
        cancel: &CancellationToken,
    ) -> Result<RunningServer, LaunchFailure> {
        let (resolved, sink) = prepare(profile, spec, "docker")?;
        // Preflight: nothing is created until every check passes.
        self.check_image(&resolved.image).await?;
        if let Some(name) = &resolved.container_name {
            self.clear_name(name, spec, &sink).await?;
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

        let body = self.create_body(profile, &resolved, spec);
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

        let started_at = Instant::now();
        if let Err(error) = self.docker.start_container(&id, None).await {
            let failure = classify_start_error(&resolved, error);
            let _ = self.remove(&id).await;
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

        let endpoint = match self.endpoint(&resolved, &id).await {
            Ok(endpoint) => endpoint,
            Err(failure) => {
                // A server that exits at once takes its port bindings and
                // network address with it: that is an exit to diagnose.
                if let Some(info) = server.wait_exit(Duration::from_secs(2)).await {
                    return Err(ServerHandle::Docker(server).fail_exited(info).await);
                }
                let _ = server.shutdown(Duration::ZERO).await;
                return Err(failure);
            }
        };
        crate::await_ready(
            ServerHandle::Docker(server),
            ReadyWait {
                endpoint,
                exit: exit_receiver,
                started_at,
                ready_timeout: spec.ready_timeout,
                readiness: &self.config.readiness,
                sink: &sink,
                cancel,
            },
        )
        .await
    }

    async fn check_image(&self, image: &str) -> Result<(), LaunchFailure> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(()),
            Err(error) if status_of(&error) == Some(404) => Err(LaunchFailure::new(
                FailureClass::MissingImage,
                format!(
                    "image {image} is not on the Docker engine at {} (vllm-grid never pulls); run `docker pull {image}`, \
                     or for vllm-sim:latest build it with scripts/build-sim-image.sh",
                    self.connector.host
                ),
            )
            .with_source(error)),
            Err(error) => Err(self.daemon_failure(&format!("inspect image {image}"), error)),
        }
    }

    /// A container already holding the profile's name: ours is replaced, a
    /// foreign one is refused unless the spec allows replacing it.
    async fn clear_name(
        &self,
        name: &str,
        spec: &LaunchSpec,
        sink: &LogSink,
    ) -> Result<(), LaunchFailure> {
        let mut filters = HashMap::new();
        filters.insert("name".to_string(), vec![format!("^/{name}$")]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|error| self.daemon_failure("list containers", error))?;
        for container in containers {
            let Some(id) = container.id.clone() else {
                continue;
            };
            let names = container.names.clone().unwrap_or_default();
            if !names.iter().any(|n| n.trim_start_matches('/') == name) {
                continue;
            }
            let labels = container.labels.clone().unwrap_or_default();
            let ours = labels.get(labels::TOOL).map(String::as_str) == Some(labels::TOOL_VALUE);
            let state = container
                .state
                .map(|s| format!("{s:?}").to_lowercase())
                .unwrap_or_default();
            if ours {
                let owner = owner_from_labels(&labels);
                let is_us = owner.as_ref().is_some_and(|o| *o == self.config.owner);
                if let Some(owner) = owner.filter(|o| !is_us && o.is_alive()) {
                    return Err(LaunchFailure::new(
                        FailureClass::ForeignContainer,
                        format!(
                            "container {name} ({}) belongs to vllm-grid process {} on {}, which is still running (run {}); \
                             wait for it to finish or stop it first",
                            short(&id),
                            owner.pid,
                            owner.host,
                            labels.get(labels::RUN_ID).cloned().unwrap_or_default()
                        ),
                    ));
                }
                sink.note(&format!(
                    "replacing leftover vllm-grid container {name} ({})",
                    short(&id)
                ));
            } else if spec.replace_foreign {
                sink.note(&format!(
                    "replacing foreign container {name} ({}) as explicitly allowed",
                    short(&id)
                ));
            } else {
                return Err(LaunchFailure::new(
                    FailureClass::ForeignContainer,
                    format!(
                        "a container named {name} ({}, image {}, {state}) exists and was not created by vllm-grid \
                         (it has no {}={} label), so it was left untouched. Stop it yourself, give the profile another \
                         container_name, or allow replacing it explicitly (--replace-foreign)",
                        short(&id),
                        container.image.clone().unwrap_or_default(),
                        labels::TOOL,
                        labels::TOOL_VALUE
                    ),
                ));
            }
            self.remove(&id)
                .await
                .map_err(|error| self.daemon_failure(&format!("remove container {name}"), error))?;
        }
        Ok(())
    }

    fn create_body(
        &self,
        profile: &Profile,
        resolved: &ResolvedProfile,
        spec: &LaunchSpec,
    ) -> ContainerCreateBody {
        let mut all_labels: HashMap<String, String> = resolved
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let owner = &self.config.owner;
        for (key, value) in [
            (labels::TOOL, labels::TOOL_VALUE.to_string()),
            (labels::RUN_ID, spec.run_id.clone()),
            (labels::CONFIG_ID, spec.config_id.clone()),
            (labels::OWNER_PID, owner.pid.to_string()),
            (
                labels::OWNER_START,
                owner.start_ticks.map(|t| t.to_string()).unwrap_or_default(),
            ),
            (labels::HOST, owner.host.clone()),
        ] {
            all_labels.insert(key.to_string(), value);
        }
        let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        let mut exposed = Vec::new();
        for mapping in &resolved.ports {
            let key = format!("{}/{}", mapping.container_port, mapping.protocol);
            if !exposed.contains(&key) {
                exposed.push(key.clone());
            }
            port_bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: Some(mapping.host_ip.clone().unwrap_or_default()),
                    host_port: Some(mapping.host_port.map(|p| p.to_string()).unwrap_or_default()),
                });
        }
        let device_requests: Vec<DeviceRequest> = profile
            .gpus
            .iter()
            .map(|gpu| DeviceRequest {
                driver: Some(gpu.driver.clone()),
                count: gpu.count,
                device_ids: (!gpu.device_ids.is_empty()).then(|| gpu.device_ids.clone()),
                capabilities: Some(vec![gpu.capabilities.clone()]),
                options: (!gpu.options.is_empty()).then(|| {
                    gpu.options
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                }),
            })
            .collect();
        let nanos =
            |d: Option<Duration>| d.map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        let healthcheck = resolved.healthcheck.as_ref().map(|h| HealthConfig {
            test: Some(h.test.clone()),
            interval: nanos(h.interval),
            timeout: nanos(h.timeout),
            retries: h.retries,
            start_period: nanos(h.start_period),
            start_interval: None,
        });
        let host_config = HostConfig {
            port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
            binds: (!resolved.binds.is_empty()).then(|| resolved.binds.clone()),
            ipc_mode: profile.ipc.clone(),
            shm_size: profile.shm_size,
            runtime: profile.runtime.clone(),
            network_mode: profile.network_mode.clone(),
            ulimits: (!profile.ulimits.is_empty()).then(|| {
                profile
                    .ulimits
                    .iter()
                    .map(|u| ResourcesUlimits {
                        name: Some(u.name.clone()),
                        soft: Some(u.soft),
                        hard: Some(u.hard),
                    })
                    .collect()
            }),
            device_requests: (!device_requests.is_empty()).then_some(device_requests),
            // We need the exit code and OOMKilled after an exit, so the
            // engine must not remove the container by itself.
            auto_remove: Some(false),
            ..Default::default()
        };
        ContainerCreateBody {
            image: Some(resolved.image.clone()),
            cmd: (!resolved.command.is_empty()).then(|| resolved.command.clone()),
            entrypoint: resolved.entrypoint.clone(),
            env: Some(
                resolved
                    .environment
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect(),
            ),
            labels: Some(all_labels),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            healthcheck,
            stop_timeout: Some(i64::try_from(spec.grace_period.as_secs()).unwrap_or(i64::MAX)),
            tty: Some(false),
            host_config: Some(host_config),
            ..Default::default()
        }
    }

    /// Where the started server answers: the published port as the engine
    /// reports it (so `127.0.0.1::8000` works), or the host network.
    async fn endpoint(
        &self,
        resolved: &ResolvedProfile,
        id: &str,
    ) -> Result<ServerEndpoint, LaunchFailure> {
        let served_model = resolved.served_model.clone().unwrap_or_default();
        let api_key = resolved.api_key.clone();
        let local_host = self
            .connector
            .remote_host()
            .unwrap_or_else(|| "127.0.0.1".to_string());
        if resolved.network_mode_is_host() {
            return Ok(ServerEndpoint {
                base_url: format!("http://{local_host}:{}", resolved.server_port),
                served_model,
                api_key,
            });
        }
        let inspect = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|error| self.daemon_failure("inspect the new container", error))?;
        let settings = inspect.network_settings.unwrap_or_default();
        let key = format!("{}/tcp", resolved.server_port);
        let binding = settings
            .ports
            .as_ref()
            .and_then(|ports| ports.get(&key).cloned().flatten())
            .and_then(|bindings| {
                // Prefer IPv4 when the engine publishes on both families.
                bindings
                    .iter()
                    .find(|b| !b.host_ip.as_deref().unwrap_or("").contains(':'))
                    .cloned()
                    .or_else(|| bindings.first().cloned())
            });
        if let Some(binding) = binding {
            let port = binding.host_port.unwrap_or_default();
            let ip = binding.host_ip.unwrap_or_default();
            let host = match ip.as_str() {
                "" | "0.0.0.0" | "::" => local_host,
                ip if ip.contains(':') => format!("[{ip}]"),
                ip => ip.to_string(),
            };
            return Ok(ServerEndpoint {
                base_url: format!("http://{host}:{port}"),
                served_model,
                api_key,
            });
        }
        // Not published: reach the container on its network (Linux engines).
        let address = settings
            .networks
            .unwrap_or_default()
            .values()
            .filter_map(|n| n.ip_address.clone())
            .find(|ip| !ip.is_empty());
        match address {
            Some(ip) => Ok(ServerEndpoint {
                base_url: format!("http://{ip}:{}", resolved.server_port),
                served_model,
                api_key,
            }),
            None => Err(LaunchFailure::new(
                FailureClass::InvalidProfile,
                format!(
                    "the server's port {} is not published and the container has no network address; add a `ports:` entry such as \"127.0.0.1:5002:{}\"",
                    resolved.server_port, resolved.server_port
                ),
            )),
        }
    }

    async fn remove(&self, id: &str) -> Result<(), DockerError> {
        remove_container(&self.docker, id).await
    }

    /// Removes containers left by dead owners (see [`SweepOptions`]).
    pub async fn sweep_leftovers(&self, options: &SweepOptions) -> Result<SweepReport, SweepError> {
        let mut filters = HashMap::new();
        filters.insert(
            "label".to_string(),
            vec![format!("{}={}", labels::TOOL, labels::TOOL_VALUE)],
        );
        let list = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let containers = self
            .docker
            .list_containers(Some(list))
            .await
            .map_err(|source| SweepError::Docker {
                operation: "list containers",
                source,
            })?;
        let this_host = grid_sys::hostname();
        let mut report = SweepReport::default();
        for container in containers {
            let Some(id) = container.id.clone() else {
                continue;
            };
            let labels = container.labels.clone().unwrap_or_default();
            let owner = owner_from_labels(&labels);
            let item = SweptItem {
                id: id.clone(),
                run_id: labels.get(labels::RUN_ID).cloned().unwrap_or_default(),
                config_id: labels.get(labels::CONFIG_ID).cloned().unwrap_or_default(),
                owner_pid: owner.as_ref().map(|o| o.pid),
            };
            let host = labels.get(labels::HOST).cloned().unwrap_or_default();
            if host != this_host {
                report.skipped_other_host.push(item);
                continue;
            }
            let alive = owner.as_ref().is_some_and(Owner::is_alive);
            if alive && !options.include_live_owners {
                report.skipped_live_owner.push(item);
                continue;
            }
            match remove_container(&self.docker, &id).await {
                Ok(()) => report.removed.push(item),
                Err(source) if status_of(&source) == Some(404) => report.removed.push(item),
                Err(source) => {
                    return Err(SweepError::Docker {
                        operation: "remove a leftover container",
                        source,
                    });
                }
            }
        }
        Ok(report)
    }
}

fn owner_from_labels(labels: &HashMap<String, String>) -> Option<Owner> {
    let pid = labels.get(labels::OWNER_PID)?.parse().ok()?;
    Some(Owner {
        pid,
        start_ticks: labels.get(labels::OWNER_START).and_then(|t| t.parse().ok()),
        host: labels.get(labels::HOST).cloned().unwrap_or_default(),
    })
}

fn classify_start_error(resolved: &ResolvedProfile, error: DockerError) -> LaunchFailure {
    let text = error.to_string();
    let lower = text.to_lowercase();
    let (class, advice) = if lower.contains("port is already allocated")
        || lower.contains("address already in use")
    {
        (
            FailureClass::PortInUse,
            "a host port of the profile is taken; free it or publish another port".to_string(),
        )
    } else if lower.contains("could not select device driver") {
        (
            FailureClass::BackendError,
            "the engine cannot give GPUs to containers; install the NVIDIA Container Toolkit and restart docker".to_string(),
        )
    } else if lower.contains("unknown or invalid runtime") {
        (
            FailureClass::BackendError,
            "the profile's `runtime` is not configured in the engine".to_string(),
        )
    } else if is_connection_error(&error) {
        (
            FailureClass::DaemonUnavailable,
            "the engine stopped answering".to_string(),
        )
    } else {
        (
            FailureClass::BackendError,
            format!("docker could not start a container from {}", resolved.image),
        )
    };
    LaunchFailure::new(class, format!("{advice}: {text}")).with_source(error)
}

/// Kills and removes a container (and its anonymous volumes); a container
/// already gone counts as removed.
async fn remove_container(docker: &Docker, id: &str) -> Result<(), DockerError> {
    let options = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        Err(error) if status_of(&error) == Some(404) => Ok(()),
        // "removal already in progress": wait for it below.
        Err(error) if status_of(&error) == Some(409) => Ok(()),
        Err(error) => Err(error),
    }
}

/// Follows the container's output into the log from its first line.
async fn stream_logs(docker: Docker, id: String, sink: LogSink) {
    let options = LogsOptionsBuilder::new()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .build();
    let mut stream = docker.logs(&id, Some(options));
    while let Some(item) = stream.next().await {
        match item {
            Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                sink.write_chunk(0, &message)
            }
            Ok(LogOutput::StdErr { message }) => sink.write_chunk(1, &message),
            Ok(LogOutput::StdIn { .. }) => {}
            Err(error) => {
                sink.note(&format!("log stream ended: {error}"));
                break;
            }
        }
    }
    sink.flush_partial();
}

/// Publishes the container's exit (code, OOMKilled) as soon as it happens.
async fn watch_exit(docker: Docker, id: String, sender: watch::Sender<Option<ExitInfo>>) {
    loop {
        let options = WaitContainerOptionsBuilder::new()
            .condition("not-running")
            .build();
        let mut stream = docker.wait_container(&id, Some(options));
        let outcome = stream.next().await;
        let broken =
            matches!(&outcome, Some(Err(error)) if is_connection_error(error)) || outcome.is_none();
        match docker.inspect_container(&id, None).await {
            Ok(inspect) => {
                let state = inspect.state.unwrap_or_default();
                if state.running != Some(true)
                    && state.status != Some(bollard::models::ContainerStateStatusEnum::CREATED)
                {
                    let _ = sender.send(Some(ExitInfo {
                        code: state.exit_code,
                        oom_killed: state.oom_killed.unwrap_or(false),
                    }));
                    return;
                }
            }
            Err(error) if status_of(&error) == Some(404) => {
                let _ = sender.send(Some(ExitInfo {
                    code: None,
                    oom_killed: false,
                }));
                return;
            }
            Err(_) => {}
        }
        if broken {
            // The engine connection dropped; try again shortly.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if sender.is_closed() {
            return;
        }
    }
}

/// Removes the container when dropped, unless disarmed after an orderly
/// removal. Blocking-safe inside a runtime: the removal runs on its own thread
/// with its own runtime and engine connection, and the drop waits for it, so
/// nothing outlives the guard even when the program exits right after.
struct ContainerGuard {
    connector: Connector,
    id: Option<String>,
}

impl ContainerGuard {
    fn disarm(mut self) {
        self.id = None;
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        let connector = self.connector.clone();
        let worker = std::thread::Builder::new().name("vllm-grid-container-guard".into()).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(error) => {
                    tracing::error!(container = %id, %error, "cannot start a runtime to remove the container");
                    return;
                }
            };
            runtime.block_on(async {
                let docker = match connector.client() {
                    Ok(docker) => docker,
                    Err(error) => {
                        tracing::error!(container = %id, %error, "cannot reach docker to remove the container");
                        return;
                    }
                };
                let removal = tokio::time::timeout(Duration::from_secs(30), remove_container(&docker, &id)).await;
                match removal {
                    Ok(Ok(())) => tracing::info!(container = %short(&id), "guard removed the container"),
                    Ok(Err(error)) => tracing::error!(container = %id, %error, "guard could not remove the container"),
                    Err(_) => tracing::error!(container = %id, "guard timed out removing the container"),
                }
            });
        });
        if let Ok(worker) = worker {
            let _ = worker.join();
        }
    }
}

/// A started container and the tasks that follow it.
pub(crate) struct DockerServer {
    docker: Docker,
    guard: ContainerGuard,
    id: String,
    pub(crate) sink: LogSink,
    exit: watch::Receiver<Option<ExitInfo>>,
    log_task: Option<JoinHandle<()>>,
    exit_task: Option<JoinHandle<()>>,
    pub(crate) grace: Duration,
}

impl Drop for DockerServer {
    fn drop(&mut self) {
        for task in [self.log_task.take(), self.exit_task.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
        // The guard field drops after this, removing the container if armed.
    }
}

impl DockerServer {
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn log_tail(&self) -> Vec<String> {
        self.sink.tail()
    }

    pub(crate) async fn exited(&self) -> Option<ExitInfo> {
        if let Some(info) = self.exit.borrow().clone() {
            return Some(info);
        }
        match self.docker.inspect_container(&self.id, None).await {
            Ok(inspect) => {
                let state = inspect.state.unwrap_or_default();
                (state.running == Some(false)).then(|| ExitInfo {
                    code: state.exit_code,
                    oom_killed: state.oom_killed.unwrap_or(false),
                })
            }
            Err(error) if status_of(&error) == Some(404) => Some(ExitInfo {
                code: None,
                oom_killed: false,
            }),
            Err(_) => None,
        }
    }

    /// Waits (briefly) for the log stream to deliver the last lines.
    pub(crate) async fn drain_output(&mut self) {
        if let Some(task) = self.log_task.as_mut() {
            let _ = tokio::time::timeout(Duration::from_secs(3), task).await;
            self.log_task = None;
        }
        self.sink.flush_partial();
    }

    async fn wait_exit(&mut self, limit: Duration) -> Option<ExitInfo> {
        match exit_within(&mut self.exit, limit).await {
            Some(info) => Some(info),
            // No news (the watcher may be gone): ask the engine.
            None => self.exited().await,
        }
    }

    async fn kill(&self, signal: &str) -> Result<(), TeardownError> {
        let options = KillContainerOptionsBuilder::new().signal(signal).build();
        match self.docker.kill_container(&self.id, Some(options)).await {
            Ok(()) => Ok(()),
            // 409: not running any more; 404: already gone.
            Err(error) if matches!(status_of(&error), Some(404 | 409)) => Ok(()),
            Err(source) => Err(TeardownError::Docker {
                operation: "signal",
                container: self.id.clone(),
                source,
            }),
        }
    }

    /// SIGTERM, grace, SIGKILL, remove, verify gone.
    pub(crate) async fn shutdown(
        &mut self,
        grace: Duration,
    ) -> Result<TeardownReport, TeardownError> {
        let started = Instant::now();
        let mut killed = false;
        let mut exit = self.exit.borrow().clone();
        if exit.is_none() {
            self.kill("SIGTERM").await?;
            exit = self.wait_exit(grace).await;
            if exit.is_none() {
                killed = true;
                self.kill("SIGKILL").await?;
                exit = self.wait_exit(Duration::from_secs(10)).await;
            }
        }
        self.drain_output().await;
        remove_container(&self.docker, &self.id)
            .await
            .map_err(|source| TeardownError::Docker {
                operation: "remove",
                container: self.id.clone(),
                source,
            })?;
        // Verify: the engine no longer knows the container.
        let verify_deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.docker.inspect_container(&self.id, None).await {
                Err(error) if status_of(&error) == Some(404) => break,
                Err(source) if is_connection_error(&source) => {
                    return Err(TeardownError::Docker {
                        operation: "inspect",
                        container: self.id.clone(),
                        source,
                    });
                }
                _ if Instant::now() >= verify_deadline => {
                    return Err(TeardownError::StillPresent {
                        container: self.id.clone(),
                    });
                }
                _ => {
                    let _ = remove_container(&self.docker, &self.id).await;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        self.guard.id = None;
        if let Some(task) = self.exit_task.take() {
            task.abort();
        }
        Ok(TeardownReport {
            duration: started.elapsed(),
            killed,
            exit,
        })
    }
}
