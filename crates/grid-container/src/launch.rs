//! What both backends share when they start a server: the preparation
//! (expansion, the log), the one readiness wait, the port check, and the
//! redaction of every failure on its way out.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::diagnose::diagnose;
use crate::failure::{ExitInfo, FailureClass, LaunchFailure, chain_text};
use crate::logs::{LogSink, is_disk_full};
use crate::profile::{Profile, ResolveError, ResolvedProfile};
use crate::ready::{self, ReadinessConfig};
use crate::secret::{Redact, Redactor};
use crate::server::{RunningServer, ServerHandle};
use crate::spec::{LaunchSpec, ServerEndpoint};

/// What the readiness wait of a just-started server needs.
pub(crate) struct ReadyWait<'a> {
    pub endpoint: ServerEndpoint,
    pub exit: tokio::sync::watch::Receiver<Option<ExitInfo>>,
    pub started_at: Instant,
    pub ready_timeout: Duration,
    pub readiness: &'a ReadinessConfig,
    pub sink: &'a LogSink,
    pub cancel: &'a CancellationToken,
}

/// Diagnoses a server that exited before it was ready from its whole
/// startup log, then stops what is left of it.
pub(crate) async fn fail_exited(mut handle: ServerHandle, info: ExitInfo) -> LaunchFailure {
    handle.drain_output().await;
    let sink = handle.sink().clone();
    let failure = diagnose(Some(&info), &sink.lines());
    sink.note(&format!("failed: {failure}"));
    handle.stop_now().await;
    failure
}

/// Waits until a just-started server is ready. On any other outcome
/// (exit, timeout, cancel) it stops the server and returns the diagnosis,
/// so nothing is left running. Both backends wait here.
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
    let outcome =
        ready::wait_ready(&client, &endpoint, &mut exit, deadline, readiness, cancel).await;
    let failure = match outcome {
        Ok(ready) => {
            // A log that could not be written (disk full) is no record of
            // the run: stop here, as an environment failure.
            if let Some(failure) = log_write_failure(sink, None) {
                handle.stop_now().await;
                return Err(failure);
            }
            sink.note(&format!(
                "ready after {:?} at {}",
                ready.at - started_at,
                endpoint.base_url
            ));
            return Ok(RunningServer {
                endpoint,
                ready_after: ready.at - started_at,
                ready_at: ready.at_wall,
                log_path: sink.path().to_path_buf(),
                ready_mark: sink.mark(),
                handle,
            });
        }
        Err(ready::NotReady::Exited(info)) => fail_exited(handle, info).await,
        Err(ready::NotReady::TimedOut { last_problem }) => {
            sink.note(&format!(
                "not ready within {ready_timeout:?}; last problem: {last_problem}"
            ));
            handle.stop_now().await;
            let mut failure = diagnose(None, &sink.lines());
            if failure.class == FailureClass::HealthTimeout {
                failure.message = format!(
                    "the server was not ready within {ready_timeout:?} (last check: {last_problem}); raise the ready timeout if the model needs longer to load"
                );
            }
            failure
        }
        Err(ready::NotReady::Cancelled) => {
            sink.note("cancelled while waiting for readiness; stopping the server");
            handle.stop_now().await;
            LaunchFailure::new(
                FailureClass::Cancelled,
                "cancelled while waiting for the server to become ready",
            )
            .with_tail(sink.tail())
        }
    };
    Err(log_write_failure(sink, Some(&failure)).unwrap_or(failure))
}

/// The failure for a log that could not be written, quoting the diagnosis
/// it replaces: the disk is full (an environment failure, never a verdict on
/// the configuration) or the file system refused.
fn log_write_failure(sink: &LogSink, diagnosis: Option<&LaunchFailure>) -> Option<LaunchFailure> {
    let write = sink.write_failure()?;
    if diagnosis.is_some_and(|d| d.class == FailureClass::Cancelled) {
        return None;
    }
    let class = if write.disk_full {
        FailureClass::DiskFull
    } else {
        FailureClass::BackendError
    };
    let also = diagnosis
        .map(|d| format!(" (the server's own failure: {d})"))
        .unwrap_or_default();
    Some(
        LaunchFailure::new(
            class,
            format!(
                "cannot write the server log {}: {}; free space there (or point the logs elsewhere) and run the configuration again{also}",
                write.path.display(),
                write.message
            ),
        )
        .with_tail(sink.tail()),
    )
}

/// The failure for a profile that cannot be resolved.
pub(crate) fn resolve_failure(error: ResolveError) -> LaunchFailure {
    let class = match &error {
        ResolveError::MissingVariables { .. } => FailureClass::MissingSecret,
        ResolveError::Port { .. }
        | ResolveError::Volume { .. }
        | ResolveError::ServerPort { .. }
        | ResolveError::SeveralApiKeys { .. } => FailureClass::InvalidProfile,
    };
    LaunchFailure::new(class, chain_text(&error)).with_source(error)
}

/// The failure for an IO error of ours (the log, the pid file): a full disk
/// is [`FailureClass::DiskFull`].
pub(crate) fn io_failure(what: String, error: std::io::Error) -> LaunchFailure {
    let class = if is_disk_full(&error) {
        FailureClass::DiskFull
    } else {
        FailureClass::BackendError
    };
    LaunchFailure::new(class, format!("{what}: {error}")).with_source(error)
}

/// Shared launch preparation: expand the rendered command, open the log.
pub(crate) fn prepare(
    profile: &Profile,
    spec: &LaunchSpec,
    backend: &str,
) -> Result<(ResolvedProfile, LogSink), LaunchFailure> {
    let rendered = profile.with_command(spec.command.clone());
    let lookup = |name: &str| -> Option<String> {
        match spec.variables.get(name) {
            Some(value) => Some(value.expose().to_string()),
            None => std::env::var(name).ok(),
        }
    };
    // Resolve errors are redacted where they are built.
    let mut resolved = rendered.resolve(&lookup).map_err(resolve_failure)?;
    if let Some(slot) = &spec.slot {
        place_on_slot(&mut resolved, profile, slot, backend)?;
    }
    let sink = LogSink::create(&spec.log_dir, resolved.redactor.clone()).map_err(|error| {
        let class = if is_disk_full(error.io()) {
            FailureClass::DiskFull
        } else {
            FailureClass::BackendError
        };
        let message = format!(
            "{error}: {}; free space there (or point the logs elsewhere) and run the configuration again",
            error.io()
        );
        LaunchFailure::new(class, message).with_source(error)
    })?;
    sink.note(&format!(
        "run {} config {} ({}) on the {backend} backend, profile {}",
        spec.run_id, spec.config_id, spec.config_name, profile.source
    ));
    // The unexpanded command: `${VAR}` references stay as written.
    sink.note(&format!("command: {}", spec.command.join(" ")));
    if let Some(slot) = &spec.slot {
        sink.note(&format!("on GPU {slot}"));
    }
    if resolved.api_key_moved {
        sink.note(
            "the API key given with --api-key is passed to the server in VLLM_API_KEY, not on its command line",
        );
    }
    Ok((resolved, sink))
}

/// Puts a resolved profile on a GPU slot: its own container name and host
/// ports (`port + N`, so slots never collide; a port the engine picks stays
/// so), and for a process `CUDA_VISIBLE_DEVICES` (a container gets its
/// devices as `device_requests` instead, and sees them renumbered from 0).
fn place_on_slot(
    resolved: &mut ResolvedProfile,
    profile: &Profile,
    slot: &crate::slot::GpuSlot,
    backend: &str,
) -> Result<(), LaunchFailure> {
    let base = resolved
        .container_name
        .clone()
        .unwrap_or_else(|| profile.service_name.clone());
    resolved.container_name = Some(slot.container_name(&base));
    let offset = |port: u16| {
        slot.host_port(port).ok_or_else(|| {
            LaunchFailure::new(
                FailureClass::InvalidProfile,
                format!("host port {port} on GPU {slot} is past 65535; publish a lower port"),
            )
        })
    };
    for mapping in &mut resolved.ports {
        if let Some(port) = mapping.host_port {
            mapping.host_port = Some(offset(port)?);
        }
    }
    if resolved.network_mode_is_host() {
        // The server binds its own --port on the host's network.
        let port = offset(resolved.server_port)?;
        resolved.server_port = port;
        resolved.command = crate::render::render_command(
            &resolved.command,
            &[grid_plan::FlagSetting::Value {
                flag: "port".to_string(),
                value: port.to_string(),
            }],
        );
    }
    if backend == "process" {
        resolved
            .environment
            .retain(|(name, _)| name != CUDA_VISIBLE_DEVICES);
        resolved
            .environment
            .push((CUDA_VISIBLE_DEVICES.to_string(), slot.visible_devices()));
    }
    Ok(())
}

/// The variable CUDA (and vLLM) reads the visible GPUs from.
pub const CUDA_VISIBLE_DEVICES: &str = "CUDA_VISIBLE_DEVICES";

/// Every failure leaves a launch through here: its texts pass the profile's
/// redactor, so no expanded secret reaches a results file or `run.log`.
pub(crate) fn redacted<T>(
    result: Result<T, LaunchFailure>,
    redactor: &Redactor,
) -> Result<T, LaunchFailure> {
    result.map_err(|failure| failure.redact_with(redactor))
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
                "host port {address} is already in use; stop what holds it (`ss -ltnp 'sport = :{port}'`; a leftover of an earlier run goes with `vllm-grid cleanup`) or publish another port in the profile"
            ),
        )
        .with_source(error)),
        // Another error (an address not on this host) is left to the engine.
        Err(_) => Ok(()),
    }
}
