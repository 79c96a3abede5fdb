//! Who started a server: the pid, its start time (so a reused pid is not
//! mistaken for a live owner) and the host name.

use grid_sys::{hostname, process_matches, process_start_ticks};

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
            host: hostname(),
        }
    }

    /// Whether the owner still runs. Only meaningful on the owner's host: an
    /// owner on another host counts as alive, so we never touch its servers.
    pub fn is_alive(&self) -> bool {
        if self.host != hostname() {
            return true;
        }
        process_matches(self.pid, self.start_ticks)
    }
}
