//! Who started a server: the pid, its start time (so a reused pid is not
//! mistaken for a live owner) and the host name.

use std::io;

/// The process that owns a container or a server process.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
            host: host_name(),
        }
    }

    /// Whether the owner still runs. Only meaningful on the owner's host: an
    /// owner on another host counts as alive, so we never touch its servers.
    pub fn is_alive(&self) -> bool {
        if self.host != host_name() {
            return true;
        }
        process_matches(self.pid, self.start_ticks)
    }
}

/// Whether `pid` runs and, when `start_ticks` is known, is the same process
/// that had that start time (pids are reused).
pub fn process_matches(pid: u32, start_ticks: Option<u64>) -> bool {
    if !process_exists(pid) {
        return false;
    }
    match (start_ticks, process_start_ticks(pid)) {
        (Some(expected), Some(actual)) => expected == actual,
        // Without start times we cannot tell reuse apart; assume it is alive,
        // the safe side for a sweep.
        _ => true,
    }
}

/// The start time of a process in clock ticks since boot, from /proc.
pub fn process_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Fields after the name start at field 3; starttime is field 22.
    after_name.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// Whether a process is a zombie (exited, not yet reaped).
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rfind(')')
                .map(|i| stat[i + 1..].trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Whether a process with this pid exists (and is not a zombie).
pub fn process_exists(pid: u32) -> bool {
    let Ok(pid_i32) = i32::try_from(pid) else {
        return false;
    };
    if pid_i32 <= 0 {
        return false;
    }
    match send_signal(pid_i32, 0) {
        Ok(()) => !is_zombie(pid),
        Err(error) => error.raw_os_error() == Some(libc::EPERM),
    }
}

/// Whether any process is left in a process group.
pub fn group_exists(pgid: i32) -> bool {
    if pgid <= 0 {
        return false;
    }
    match send_signal(-pgid, 0) {
        Ok(()) => true,
        Err(error) => error.raw_os_error() == Some(libc::EPERM),
    }
}

/// `kill(2)`: a positive target is a process, a negative one a group.
#[allow(unsafe_code)]
pub fn send_signal(target: i32, signal: i32) -> io::Result<()> {
    // SAFETY: kill(2) takes two integers and touches no memory of ours; a
    // wrong target is reported through errno, never undefined behaviour.
    let result = unsafe { libc::kill(target, signal) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The host name, as the kernel reports it.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
