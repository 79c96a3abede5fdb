//! A started server process: its output pumps, its exit watcher, the guard
//! that kills its group on drop, and its teardown.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use grid_sys::{Signal, group_alive, pid_alive, signal_group, signal_process};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::failure::ExitInfo;
use crate::logs::LogSink;
use crate::ready::exit_within;
use crate::server::{TeardownError, TeardownReport};

pub(super) fn exit_code(status: &std::process::ExitStatus) -> Option<i64> {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .map(i64::from)
        .or_else(|| status.signal().map(|s| 128 + i64::from(s)))
}

pub(super) async fn pump(
    mut reader: impl tokio::io::AsyncRead + Unpin,
    stream: usize,
    sink: LogSink,
) {
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
pub(super) async fn stop_group(pgid: u32, grace: Duration) -> bool {
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

/// Stops processes found by their launch ID (a leader's whole group, a
/// stray worker alone): SIGTERM, up to `grace`, then SIGKILL.
pub(super) async fn stop_processes(pids: &[u32], grace: Duration) {
    for &pid in pids {
        // A leader's group id is its pid; for a non-leader no group has
        // that id, and the call answers "no such group".
        let _ = signal_group(pid, Signal::Terminate);
        let _ = signal_process(pid, Signal::Terminate);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if pids
            .iter()
            .all(|pid| !pid_alive(*pid) && !group_alive(*pid))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for &pid in pids {
        let _ = signal_group(pid, Signal::Kill);
        let _ = signal_process(pid, Signal::Kill);
    }
}

/// Kills the process group and removes the pid file when dropped, unless
/// disarmed after an orderly teardown. Synchronous: a signal needs no runtime.
pub(super) struct ProcessGuard {
    /// Set once the server runs.
    pub(super) pgid: Option<u32>,
    /// The record, from before the spawn; removed with the server.
    pub(super) pid_file: Option<PathBuf>,
}

impl ProcessGuard {
    /// Disarms the guard after an orderly teardown: the record goes, the
    /// (already gone) group is not signalled.
    fn disarm(&mut self) {
        self.pgid = None;
        if let Some(path) = self.pid_file.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            let _ = signal_group(pgid, Signal::Kill);
        }
        // Kept on disk while the server may run: a record is only removed
        // with its server (or when none was started).
        if let Some(path) = self.pid_file.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

pub(crate) struct ProcessServer {
    pub(super) guard: ProcessGuard,
    pub(super) pid: u32,
    pub(crate) sink: LogSink,
    pub(super) exit: watch::Receiver<Option<ExitInfo>>,
    pub(super) readers: Vec<JoinHandle<()>>,
    pub(super) exit_task: Option<JoinHandle<()>>,
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
        self.guard.disarm();
        Ok(TeardownReport {
            duration: started.elapsed(),
            killed,
            exit,
        })
    }
}
