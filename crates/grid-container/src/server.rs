//! A server that answered ready, and how it is torn down.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::diagnose::{Stage, diagnose_at};
use crate::docker::DockerServer;
use crate::failure::{ExitInfo, LaunchFailure};
use crate::logs::LogSink;
use crate::process::ProcessServer;
use crate::secret::Redact;
use crate::spec::ServerEndpoint;

/// A server that answered ready. Tear it down with [`RunningServer::teardown`];
/// dropping it instead kills and removes it at once (the guard).
pub struct RunningServer {
    pub(crate) endpoint: ServerEndpoint,
    pub(crate) ready_after: Duration,
    pub(crate) ready_at: SystemTime,
    pub(crate) log_path: PathBuf,
    /// The log's line count when the server was seen ready.
    pub(crate) ready_mark: usize,
    pub(crate) handle: ServerHandle,
}

pub(crate) enum ServerHandle {
    Docker(DockerServer),
    Process(ProcessServer),
}

impl ServerHandle {
    pub(crate) fn sink(&self) -> &LogSink {
        match self {
            ServerHandle::Docker(server) => &server.sink,
            ServerHandle::Process(server) => &server.sink,
        }
    }

    fn grace(&self) -> Duration {
        match self {
            ServerHandle::Docker(server) => server.grace,
            ServerHandle::Process(server) => server.grace,
        }
    }

    /// Waits (briefly) for the server's output to deliver its last lines.
    pub(crate) async fn drain_output(&mut self) {
        match self {
            ServerHandle::Docker(server) => server.drain_output().await,
            ServerHandle::Process(server) => server.drain_output().await,
        }
    }

    /// SIGTERM, wait out `grace`, SIGKILL, remove, verify gone.
    pub(crate) async fn shutdown(
        &mut self,
        grace: Duration,
    ) -> Result<TeardownReport, TeardownError> {
        match self {
            ServerHandle::Docker(server) => server.shutdown(grace).await,
            ServerHandle::Process(server) => server.shutdown(grace).await,
        }
    }

    /// Stops the server without a grace period; the launch already failed,
    /// so a teardown error adds nothing the caller could act on (a Docker
    /// container's guard still tries once more on drop).
    pub(crate) async fn stop_now(&mut self) {
        let _ = self.shutdown(Duration::ZERO).await;
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
        self.handle.sink().tail()
    }

    /// Diagnoses a server that died after it was ready, from what it printed
    /// since then (the startup's warnings are not the cause), redacted.
    pub fn diagnose_exit(&self, exit: &ExitInfo) -> LaunchFailure {
        let sink = self.handle.sink();
        diagnose_at(
            Stage::Serving,
            Some(exit),
            &sink.lines_since(self.ready_mark),
        )
        .redact_with(sink.redactor())
    }

    /// SIGTERM, wait out the grace period, SIGKILL, remove, verify gone.
    pub async fn teardown(mut self) -> Result<TeardownReport, TeardownError> {
        let grace = self.handle.grace();
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

/// Why a teardown failed. Names container IDs and process groups only.
#[derive(Debug, thiserror::Error)]
pub enum TeardownError {
    #[error(
        "docker could not signal container {container}; stop it with `docker rm -f {container}`"
    )]
    SignalContainer {
        container: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error(
        "docker could not remove container {container}; remove it with `docker rm -f {container}`"
    )]
    RemoveContainer {
        container: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error(
        "the engine stopped answering while checking that container {container} is gone; check with `docker ps -a`"
    )]
    InspectContainer {
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
