//! A started container and the tasks that follow it: the log stream, the
//! exit watcher, the guard that removes it on drop, and its teardown.

use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::query_parameters::{
    KillContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::connect::{Connector, is_connection_error, short, status_of};
use crate::failure::ExitInfo;
use crate::logs::LogSink;
use crate::ready::exit_within;
use crate::server::{TeardownError, TeardownReport};

/// Kills and removes a container (and its anonymous volumes); a container
/// already gone counts as removed.
pub(crate) async fn remove_container(docker: &Docker, id: &str) -> Result<(), DockerError> {
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
pub(crate) async fn stream_logs(docker: Docker, id: String, sink: LogSink) {
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
pub(crate) async fn watch_exit(
    docker: Docker,
    id: String,
    sender: watch::Sender<Option<ExitInfo>>,
) {
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
pub(crate) struct ContainerGuard {
    pub(crate) connector: Connector,
    pub(crate) id: Option<String>,
}

impl ContainerGuard {
    pub(crate) fn disarm(mut self) {
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
    pub(crate) docker: Docker,
    pub(crate) guard: ContainerGuard,
    pub(crate) id: String,
    pub(crate) sink: LogSink,
    pub(crate) exit: watch::Receiver<Option<ExitInfo>>,
    pub(crate) log_task: Option<JoinHandle<()>>,
    pub(crate) exit_task: Option<JoinHandle<()>>,
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

    pub(crate) async fn wait_exit(&mut self, limit: Duration) -> Option<ExitInfo> {
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
            Err(source) => Err(TeardownError::SignalContainer {
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
            .map_err(|source| TeardownError::RemoveContainer {
                container: self.id.clone(),
                source,
            })?;
        // Verify: the engine no longer knows the container.
        let verify_deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.docker.inspect_container(&self.id, None).await {
                Err(error) if status_of(&error) == Some(404) => break,
                Err(source) if is_connection_error(&source) => {
                    return Err(TeardownError::InspectContainer {
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
