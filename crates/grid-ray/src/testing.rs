//! A local Ray head for tests (feature `test-support`): `ray start --head
//! --block` as a child leading its own process group, in a short temp dir,
//! every port on 127.0.0.1, with logical GPUs; stopped on every path by a
//! `Drop` guard (SIGTERM to the group, SIGKILL after a grace period, then
//! the same by pid to Ray's workers, which lead groups of their own). Never
//! `ray stop`, which stops every Ray on the machine.
//!
//! The flags and environment are those checked in shared/ray-reference.md.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use grid_sys::{Signal, group_alive, signal_group, signal_process};

use crate::client::{ClientOptions, RayClient, tail};

/// The variable that names the `ray` binary (`scripts/setup-ray.sh --print-env`).
pub const RAY_VAR: &str = "VLLM_GRID_RAY";

/// The Ray binary for a test, or `None` (with the reason printed) when
/// `VLLM_GRID_RAY` is unset outside CI.
///
/// # Panics
/// When `CI=true` and Ray is missing (tests needing Ray fail in CI, never
/// skip), or when the variable names no executable file.
pub fn require_ray(test: &str) -> Option<PathBuf> {
    let Some(path) = std::env::var_os(RAY_VAR).filter(|v| !v.is_empty()) else {
        let fix =
            format!("{RAY_VAR} is unset; run `eval \"$(scripts/setup-ray.sh --print-env)\"` first");
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test} needs Ray and CI=true: {fix}"
        );
        eprintln!("skipping {test}: {fix}");
        return None;
    };
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "{RAY_VAR}={} is not a file; re-run scripts/setup-ray.sh",
        path.display()
    );
    Some(path)
}

/// How the head is started.
#[derive(Debug, Clone)]
pub struct HeadOptions {
    pub num_cpus: u32,
    /// Logical GPUs: Ray hands them out and sets `CUDA_VISIBLE_DEVICES`,
    /// with no GPU behind them.
    pub num_gpus: u32,
    /// How long the dashboard may take to answer (about 6 s here).
    pub ready_timeout: Duration,
    /// SIGTERM to SIGKILL (a head stops in about 3.4 s).
    pub stop_grace: Duration,
    /// `RAY_JOB_START_TIMEOUT_SECONDS`: how long a job may wait for its
    /// resources before Ray fails it (Ray's default, 15 minutes, when None).
    pub job_start_timeout: Option<Duration>,
}

impl Default for HeadOptions {
    fn default() -> Self {
        Self {
            num_cpus: 2,
            num_gpus: 4,
            ready_timeout: Duration::from_secs(90),
            stop_grace: Duration::from_secs(15),
            job_start_timeout: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("cannot create a temp dir for the Ray head under /tmp")]
    TempDir(#[source] std::io::Error),
    #[error("cannot find a free port on 127.0.0.1 for the Ray head")]
    Port(#[source] std::io::Error),
    #[error("cannot start {ray}: is it the ray binary of scripts/setup-ray.sh?")]
    Spawn {
        ray: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the Ray head exited during startup ({status}); its output ends:\n{log_tail}")]
    Exited { status: String, log_tail: String },
    #[error(
        "the Ray head's dashboard at {address} did not answer within {timeout:?}; its output ends:\n{log_tail}"
    )]
    NotReady {
        address: String,
        timeout: Duration,
        log_tail: String,
    },
    #[error("the dashboard at {address} belongs to another Ray session ({found}, not {expected})")]
    ForeignHead {
        address: String,
        found: String,
        expected: String,
    },
    #[error("cannot signal the Ray head's process group {pgid}")]
    Signal {
        pgid: u32,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "a process of the Ray head (group {pgid}, or a worker naming its temp dir) outlived SIGKILL"
    )]
    Survived { pgid: u32 },
}

/// A running local head; stopped when dropped.
#[derive(Debug)]
pub struct RayHead {
    child: Child,
    pgid: u32,
    address: String,
    stop_grace: Duration,
    stopped: bool,
    // Dropped after `Drop::drop` has stopped the head.
    temp: tempfile::TempDir,
}

fn free_port() -> Result<u16, HeadError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(HeadError::Port)?;
    Ok(listener.local_addr().map_err(HeadError::Port)?.port())
}

impl RayHead {
    /// Starts a head and waits until its dashboard answers as this head.
    pub async fn start(ray: &Path, options: &HeadOptions) -> Result<Self, HeadError> {
        // Short: Ray puts Unix sockets under it (108-byte path limit).
        let temp = tempfile::Builder::new()
            .prefix("vg-ray-")
            .tempdir_in("/tmp")
            .map_err(HeadError::TempDir)?;
        let dashboard = free_port()?;
        let client_port = free_port()?;
        let log =
            std::fs::File::create(temp.path().join("head.log")).map_err(HeadError::TempDir)?;
        let log_err = log.try_clone().map_err(HeadError::TempDir)?;
        let mut command = Command::new(ray);
        command
            .args(["start", "--head", "--block", "--disable-usage-stats"])
            .arg(format!("--num-cpus={}", options.num_cpus))
            .arg(format!("--num-gpus={}", options.num_gpus))
            .args(["--port", "0", "--node-ip-address", "127.0.0.1"])
            .args(["--dashboard-host", "127.0.0.1", "--dashboard-port"])
            .arg(dashboard.to_string())
            .args([
                "--dashboard-agent-listen-port",
                "0",
                "--ray-client-server-port",
            ])
            .arg(client_port.to_string())
            .arg("--temp-dir")
            .arg(temp.path())
            // Ray's single-machine mode: without it Ray trades 127.0.0.1 for
            // the host's address and listens on every interface.
            .env("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
            .env("RAY_USAGE_STATS_ENABLED", "0")
            .env("RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S", "0")
            .env("DASHBOARD_METRIC_PORT", "0")
            .env("AUTOSCALER_METRIC_PORT", "0")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .process_group(0);
        if let Some(timeout) = options.job_start_timeout {
            command.env(
                "RAY_JOB_START_TIMEOUT_SECONDS",
                timeout.as_secs().max(1).to_string(),
            );
        }
        let child = command.spawn().map_err(|source| HeadError::Spawn {
            ray: ray.to_path_buf(),
            source,
        })?;
        let mut head = Self {
            pgid: child.id(),
            child,
            address: format!("http://127.0.0.1:{dashboard}"),
            stop_grace: options.stop_grace,
            stopped: false,
            temp,
        };
        head.wait_ready(options.ready_timeout).await?;
        Ok(head)
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<(), HeadError> {
        let client = self.client();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(HeadError::Exited {
                    status: status.to_string(),
                    log_tail: self.log_tail(30),
                });
            }
            if let Ok(version) = client.version().await {
                // The session under our temp dir: not another head that took
                // the port after we picked it.
                let expected = std::fs::read_link(self.temp.path().join("session_latest"))
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .unwrap_or_default();
                if version.session_name == expected {
                    return Ok(());
                }
                if !expected.is_empty() {
                    return Err(HeadError::ForeignHead {
                        address: self.address.clone(),
                        found: version.session_name,
                        expected,
                    });
                }
            }
            if Instant::now() > deadline {
                return Err(HeadError::NotReady {
                    address: self.address.clone(),
                    timeout,
                    log_tail: self.log_tail(30),
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The dashboard's address, `http://127.0.0.1:PORT`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// A client of this head.
    ///
    /// # Panics
    /// Never: the address is one this type made.
    pub fn client(&self) -> RayClient {
        RayClient::new(&self.address, ClientOptions::default())
            .expect("the head's own address parses")
    }

    /// The head's process group (the `ray start --block` process leads it).
    pub fn pgid(&self) -> u32 {
        self.pgid
    }

    /// The head's temp dir (`--temp-dir`); removed when the head is dropped.
    pub fn temp_dir(&self) -> &Path {
        self.temp.path()
    }

    /// The last lines of the head's own output.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.temp.path().join("head.log")).unwrap_or_default();
        tail(&text, lines)
    }

    /// Stops the head now and reports how; dropping it does the same
    /// silently.
    pub fn stop(mut self) -> Result<Duration, HeadError> {
        self.stop_group()
    }

    fn stop_group(&mut self) -> Result<Duration, HeadError> {
        let started = Instant::now();
        if self.stopped {
            return Ok(Duration::ZERO);
        }
        self.stopped = true;
        let pgid = self.pgid;
        let signal = |signal| {
            signal_group(pgid, signal).map_err(|source| HeadError::Signal { pgid, source })
        };
        signal(Signal::Terminate)?;
        if !self.wait_until(self.stop_grace, |head| !group_alive(head.pgid)) {
            signal(Signal::Kill)?;
        }
        // Ray's workers lead process groups of their own, so the head's
        // SIGTERM misses them and they outlive it (seen: over 15 s). Each
        // names this head's unique temp dir on its command line: stop those,
        // by pid.
        let temp = self.temp.path().to_path_buf();
        for pid in processes_mentioning(&temp) {
            let _ = signal_process(pid, Signal::Terminate);
        }
        if !self.wait_until(Duration::from_secs(5), Self::all_gone) {
            for pid in processes_mentioning(&temp) {
                let _ = signal_process(pid, Signal::Kill);
            }
            if !self.wait_until(Duration::from_secs(5), Self::all_gone) {
                return Err(HeadError::Survived { pgid });
            }
        }
        Ok(started.elapsed())
    }

    /// No process of the group, and none naming the temp dir, is left.
    fn all_gone(&self) -> bool {
        !group_alive(self.pgid) && processes_mentioning(self.temp.path()).is_empty()
    }

    /// Reaps the child (a zombie still counts in its group) until `done`.
    fn wait_until(&mut self, within: Duration, done: impl Fn(&Self) -> bool) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let _ = self.child.try_wait();
            if done(self) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for RayHead {
    fn drop(&mut self) {
        if let Err(error) = self.stop_group() {
            eprintln!("grid-ray test head: {error}");
        }
    }
}

/// Processes whose command line mentions `dir` (a head's temp dir, which
/// every process of that head names): what a test checks is empty after
/// the head is stopped.
pub fn processes_mentioning(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != std::process::id())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|raw| {
                    String::from_utf8_lossy(&raw)
                        .replace('\0', " ")
                        .contains(&needle)
                })
                .unwrap_or(false)
        })
        .collect()
}
