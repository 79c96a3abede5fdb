//! Processes: liveness (with start times, since pids are reused), signals
//! to a process or a process group, and the host name that scopes both.

use std::io;

use rustix::process::{
    Pid, kill_process, kill_process_group, test_kill_process, test_kill_process_group,
};
use serde::{Deserialize, Serialize};

/// The signals vllm-grid sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
    Kill,
    Hangup,
}

impl Signal {
    fn to_rustix(self) -> rustix::process::Signal {
        match self {
            Signal::Interrupt => rustix::process::Signal::INT,
            Signal::Terminate => rustix::process::Signal::TERM,
            Signal::Kill => rustix::process::Signal::KILL,
            Signal::Hangup => rustix::process::Signal::HUP,
        }
    }

    /// The signal's number (`SIGTERM` = 15), e.g. for the exit code 128 + n.
    pub fn number(self) -> i32 {
        self.to_rustix().as_raw()
    }
}

/// A pid the kernel could hold: 1..=i32::MAX. Zero and larger values would
/// mean "my group" or wrap to a negative pid, never the process meant.
fn pid(raw: u32) -> Option<Pid> {
    i32::try_from(raw).ok().and_then(Pid::from_raw)
}

/// `Ok(true)` when delivered, `Ok(false)` when there is no such process (or
/// group), the error otherwise; EPERM means it exists but is not ours.
fn delivered(result: rustix::io::Result<()>) -> io::Result<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::SRCH) => Ok(false),
        Err(errno) => Err(errno.into()),
    }
}

/// Whether a process with this pid runs: it exists (perhaps as another
/// user's, which `kill(pid, 0)` reports as EPERM) and is not a zombie.
pub fn pid_alive(raw: u32) -> bool {
    let Some(target) = pid(raw) else {
        return false;
    };
    match test_kill_process(target) {
        Ok(()) => !is_zombie(raw),
        Err(errno) => errno == rustix::io::Errno::PERM,
    }
}

/// Whether any process is left in the process group `pgid`.
pub fn group_alive(pgid: u32) -> bool {
    let Some(target) = pid(pgid) else {
        return false;
    };
    match test_kill_process_group(target) {
        Ok(()) => true,
        Err(errno) => errno == rustix::io::Errno::PERM,
    }
}

/// Whether `pid` runs and, when `start_ticks` is known, is the process that
/// had that start time. Without start times reuse cannot be told apart, so
/// it counts as alive: the safe side for a sweep or a lock.
pub fn process_matches(pid: u32, start_ticks: Option<u64>) -> bool {
    if !pid_alive(pid) {
        return false;
    }
    match (start_ticks, process_start_ticks(pid)) {
        (Some(expected), Some(actual)) => expected == actual,
        _ => true,
    }
}

/// Sends `signal` to one process; `Ok(false)` when it no longer exists.
pub fn signal_process(raw: u32, signal: Signal) -> io::Result<bool> {
    let target = pid(raw).ok_or_else(|| invalid_pid(raw))?;
    delivered(kill_process(target, signal.to_rustix()))
}

/// Sends `signal` to every process of the group `pgid`; `Ok(false)` when
/// the group is empty.
pub fn signal_group(pgid: u32, signal: Signal) -> io::Result<bool> {
    let target = pid(pgid).ok_or_else(|| invalid_pid(pgid))?;
    delivered(kill_process_group(target, signal.to_rustix()))
}

fn invalid_pid(raw: u32) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{raw} is not a process id (1 to {})", i32::MAX),
    )
}

/// `/proc/<pid>/stat` split after the command name, which is in
/// parentheses and may itself contain spaces and parentheses.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    Some(after_name.split_whitespace().map(str::to_string).collect())
}

/// The start time of a process in clock ticks since boot (field 22 of
/// `/proc/<pid>/stat`); `None` without procfs or for a gone process.
pub fn process_start_ticks(pid: u32) -> Option<u64> {
    // Fields after the name start at field 3 (the state).
    stat_fields(pid)?.get(22 - 3)?.parse().ok()
}

/// Whether a process has exited but is not reaped yet (state `Z`).
fn is_zombie(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|fields| fields.first().is_some_and(|state| state == "Z"))
}

/// The host name as the kernel reports it (`uname -n`); `localhost` when
/// it is empty.
pub fn hostname() -> String {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_string_lossy().trim().to_string();
    if name.is_empty() {
        "localhost".to_string()
    } else {
        name
    }
}

/// A process as recorded in a lock file, a pid file or container labels:
/// its pid, its start time (so a reused pid is not mistaken for it) and its
/// host (a pid means nothing on another machine).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
    pub start_ticks: Option<u64>,
    pub host: String,
}

impl Owner {
    /// This process.
    pub fn current() -> Self {
        let pid = std::process::id();
        Self {
            pid,
            start_ticks: process_start_ticks(pid),
            host: hostname(),
        }
    }

    /// Whether it still runs. Only meaningful on its own host: a process on
    /// another host counts as alive, so we never take its lock or touch its
    /// servers.
    pub fn is_alive(&self) -> bool {
        if self.host != hostname() {
            return true;
        }
        process_matches(self.pid, self.start_ticks)
    }
}
