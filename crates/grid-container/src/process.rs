//! The process backend: `vllm serve` (or the simulator) as a local process in
//! its own process group, with a pid file so a later start can sweep it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use grid_plan::FlagSetting;
use grid_sys::{
    Owner, Signal, group_alive, hostname, process_matches, process_start_ticks, signal_group,
};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::diagnose::{ExitInfo, FailureClass, LaunchFailure};
use crate::logs::LogSink;
use crate::profile::{Profile, ResolvedProfile};
use crate::ready::{ReadinessConfig, exit_within};
use crate::render::render_command;
use crate::{
    LaunchSpec, ReadyWait, RunningServer, ServerEndpoint, ServerHandle, SweepError, SweepOptions,
    SweepReport, SweptItem, TeardownError, TeardownReport, check_port_free, prepare,
};

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
}

impl ProcessBackendConfig {
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            program_overrides: BTreeMap::new(),
            state_dir: state_dir.into(),
            default_entrypoint: vec!["vllm".to_string(), "serve".to_string()],
            readiness: ReadinessConfig::default(),
            owner: Owner::current(),
        }
    }
}

/// What a pid file records: enough to recognise the process, nothing secret.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PidRecord {
    pub pid: u32,
    /// The process group (the server leads its own group).
    pub pgid: u32,
    pub start_ticks: Option<u64>,
    pub owner: Owner,
    pub run_id: String,
    pub config_id: String,
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

    /// The program and arguments the server runs with (expanded), and where
    /// it listens. The server listens where the container's port would have
    /// been published, so the endpoint is the same on both backends.
    fn argv(
        &self,
        resolved: &ResolvedProfile,
    ) -> Result<(Vec<String>, String, u16), LaunchFailure> {
        let entry = resolved
            .process_entrypoint
            .clone()
            .or_else(|| resolved.entrypoint.clone())
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| self.config.default_entrypoint.clone());
        let mut argv = Vec::new();
        let program = entry[0].clone();
        let file_name = Path::new(&program)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(&program)
            .to_string();
        match self
            .config
            .program_overrides
            .get(&program)
            .or_else(|| self.config.program_overrides.get(&file_name))
        {
            Some(replacement) if !replacement.is_empty() => {
                argv.extend(replacement.iter().cloned())
            }
            _ => argv.push(program),
        }
        argv.extend(entry[1..].iter().cloned());
        let (host, port, command) = if resolved.network_mode_is_host() {
            (
                "127.0.0.1".to_string(),
                resolved.server_port,
                resolved.command.clone(),
            )
        } else {
            let mapping = resolved.server_mapping();
            let host = mapping
                .and_then(|m| m.host_ip.clone())
                .unwrap_or_else(|| "127.0.0.1".to_string());
            let port = match mapping.and_then(|m| m.host_port) {
                Some(port) => port,
                None => free_port(&host)?,
            };
            let command = render_command(
                &resolved.command,
                &[
                    FlagSetting::Value {
                        flag: "host".to_string(),
                        value: host.clone(),
                    },
                    FlagSetting::Value {
                        flag: "port".to_string(),
                        value: port.to_string(),
                    },
                ],
            );
            (host, port, command)
        };
        argv.extend(command);
        let connect_host = match host.as_str() {
            "0.0.0.0" | "" => "127.0.0.1".to_string(),
            "::" => "[::1]".to_string(),
            h if h.contains(':') => format!("[{h}]"),
            h => h.to_string(),
        };
        Ok((argv, connect_host, port))
    }

    pub async fn launch(
        &self,
        profile: &Profile,
        spec: &LaunchSpec,
        cancel: &CancellationToken,
    ) -> Result<RunningServer, LaunchFailure> {
        let (resolved, sink) = prepare(profile, spec, "process")?;
        let (argv, connect_host, port) = self.argv(&resolved)?;
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
        std::fs::create_dir_all(&self.config.state_dir).map_err(|error| {
            LaunchFailure::new(
                FailureClass::BackendError,
                format!(
                    "cannot create the pid directory {}: {error}",
                    self.config.state_dir.display()
                ),
            )
            .with_source(error)
        })?;

        let mut command = tokio::process::Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .envs(
                resolved
                    .environment
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group, so teardown reaches every worker it forks.
            .process_group(0)
            .kill_on_drop(false);
        let started_at = Instant::now();
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
        let pgid = pid;
        let record = PidRecord {
            pid,
            pgid,
            start_ticks: process_start_ticks(pid),
            owner: self.config.owner.clone(),
            run_id: spec.run_id.clone(),
            config_id: spec.config_id.clone(),
        };
        let pid_file = self.config.state_dir.join(pid_file_name(spec, pid));
        let guard = ProcessGuard {
            pgid: Some(pgid),
            pid_file: pid_file.clone(),
        };
        if let Err(error) = write_atomically(&pid_file, &record) {
            drop(guard);
            return Err(LaunchFailure::new(
                FailureClass::BackendError,
                format!(
                    "cannot write the pid file {}: {error}; the server was stopped",
                    pid_file.display()
                ),
            )
            .with_source(error));
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
        crate::await_ready(
            ServerHandle::Process(server),
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

    /// Stops servers whose owner died (their pid files remain) and removes
    /// stale pid files.
    pub async fn sweep_leftovers(&self, options: &SweepOptions) -> Result<SweepReport, SweepError> {
        let mut report = SweepReport::default();
        let directory = &self.config.state_dir;
        let entries = match std::fs::read_dir(directory) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(report),
            Err(source) => {
                return Err(SweepError::StateDir {
                    path: directory.clone(),
                    source,
                });
            }
        };
        let this_host = hostname();
        for entry in entries {
            let entry = entry.map_err(|source| SweepError::StateDir {
                path: directory.clone(),
                source,
            })?;
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("pid") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let Ok(record) = serde_json::from_str::<PidRecord>(&text) else {
                tracing::warn!(path = %path.display(), "ignoring an unreadable pid file");
                continue;
            };
            let item = SweptItem {
                id: format!("pid {}", record.pid),
                run_id: record.run_id.clone(),
                config_id: record.config_id.clone(),
                owner_pid: Some(record.owner.pid),
            };
            if record.owner.host != this_host {
                report.skipped_other_host.push(item);
                continue;
            }
            if record.owner.is_alive() && !options.include_live_owners {
                report.skipped_live_owner.push(item);
                continue;
            }
            // Only a process that is provably the one we started is signalled.
            if process_matches(record.pid, record.start_ticks) {
                stop_group(record.pgid, Duration::from_secs(5)).await;
            }
            let _ = std::fs::remove_file(&path);
            report.removed.push(item);
        }
        Ok(report)
    }
}

fn pid_file_name(spec: &LaunchSpec, pid: u32) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!(
        "{}.{}.{pid}.pid",
        clean(&spec.run_id),
        clean(&spec.config_id)
    )
}

/// Writes a pid file atomically, so the sweep never reads half of one.
fn write_atomically(path: &Path, record: &PidRecord) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
    grid_sys::write_atomic(path, &text)
}

fn free_port(host: &str) -> Result<u16, LaunchFailure> {
    let address = if host.contains(':') {
        format!("[{host}]:0")
    } else {
        format!("{host}:0")
    };
    std::net::TcpListener::bind(&address)
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|error| {
            LaunchFailure::new(
                FailureClass::PortInUse,
                format!("cannot find a free port on {host}: {error}"),
            )
            .with_source(error)
        })
}

/// Fails early, with the fix, when the program does not exist.
fn check_program(program: &str) -> Result<(), LaunchFailure> {
    let exists = if program.contains('/') {
        Path::new(program).is_file()
    } else {
        std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
            .unwrap_or(false)
    };
    if exists {
        Ok(())
    } else {
        Err(LaunchFailure::new(
            FailureClass::MissingProgram,
            format!(
                "program {program} was not found; install it, put it on PATH, or map it to another program \
                 (the process backend's program overrides)"
            ),
        ))
    }
}

fn exit_code(status: &std::process::ExitStatus) -> Option<i64> {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .map(i64::from)
        .or_else(|| status.signal().map(|s| 128 + i64::from(s)))
}

async fn pump(mut reader: impl tokio::io::AsyncRead + Unpin, stream: usize, sink: LogSink) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        match reader.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => sink.write_chunk(stream, &buffer[..n]),
        }
    }
}

/// SIGTERM to the group, wait up to `grace`, then SIGKILL; returns whether
/// SIGKILL was needed.
async fn stop_group(pgid: u32, grace: Duration) -> bool {
    if !group_alive(pgid) {
        return false;
    }
    let _ = signal_group(pgid, Signal::Terminate);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !group_alive(pgid) {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = signal_group(pgid, Signal::Kill);
    true
}

/// Kills the process group and removes the pid file when dropped, unless
/// disarmed after an orderly teardown. Synchronous: a signal needs no runtime.
struct ProcessGuard {
    pgid: Option<u32>,
    pid_file: PathBuf,
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            let _ = signal_group(pgid, Signal::Kill);
            let _ = std::fs::remove_file(&self.pid_file);
        }
    }
}

pub(crate) struct ProcessServer {
    guard: ProcessGuard,
    pid: u32,
    pub(crate) sink: LogSink,
    exit: watch::Receiver<Option<ExitInfo>>,
    readers: Vec<JoinHandle<()>>,
    exit_task: Option<JoinHandle<()>>,
    pub(crate) grace: Duration,
}

impl Drop for ProcessServer {
    fn drop(&mut self) {
        for task in self.readers.drain(..) {
            task.abort();
        }
        // The exit task keeps running so the killed child is reaped.
        self.exit_task.take();
    }
}

impl ProcessServer {
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    pub(crate) fn log_tail(&self) -> Vec<String> {
        self.sink.tail()
    }

    pub(crate) fn exited(&self) -> Option<ExitInfo> {
        self.exit.borrow().clone()
    }

    pub(crate) async fn drain_output(&mut self) {
        for task in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(3), task).await;
        }
        self.sink.flush_partial();
    }

    async fn wait_exit(&mut self, limit: Duration) -> Option<ExitInfo> {
        exit_within(&mut self.exit, limit).await
    }

    pub(crate) async fn shutdown(
        &mut self,
        grace: Duration,
    ) -> Result<TeardownReport, TeardownError> {
        let started = Instant::now();
        let pgid = self.pid;
        let mut killed = false;
        let mut exit = self.exit.borrow().clone();
        if exit.is_none() {
            // A group already gone (Ok(false)) needs no signal.
            if let Err(source) = signal_group(pgid, Signal::Terminate) {
                return Err(TeardownError::Signal { pgid, source });
            }
            exit = self.wait_exit(grace).await;
            if exit.is_none() {
                killed = true;
                let _ = signal_group(pgid, Signal::Kill);
                exit = self.wait_exit(Duration::from_secs(10)).await;
            }
        }
        // Workers the server forked may outlive it: the group must be empty.
        let deadline = Instant::now() + grace.max(Duration::from_millis(500));
        while group_alive(pgid) {
            if Instant::now() >= deadline {
                killed = true;
                let _ = signal_group(pgid, Signal::Kill);
                tokio::time::sleep(Duration::from_millis(100)).await;
                if group_alive(pgid) {
                    return Err(TeardownError::ProcessesRemain { pgid });
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.drain_output().await;
        let _ = std::fs::remove_file(&self.guard.pid_file);
        self.guard.pgid = None;
        Ok(TeardownReport {
            duration: started.elapsed(),
            killed,
            exit,
        })
    }
}
