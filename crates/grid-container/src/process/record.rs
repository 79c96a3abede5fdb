//! Pid records: how the sweep finds every server the process backend
//! started, even when vllm-grid was killed (SIGKILL) in the middle of a
//! launch.
//!
//! The record is written *before* the spawn, as an intent: the owner, the
//! run and config, and a launch ID unique to this launch that the server
//! carries in its environment ([`LAUNCH_ID_VARIABLE`], inherited by every
//! worker it forks). After the spawn the record is rewritten (atomically, same
//! name) with the pid, process group and start time. So whatever moment a
//! kill hits, the sweep finds the server: by its pid when the record has
//! one, by the launch ID in `/proc/<pid>/environ` when it does not (the
//! kill fell between spawn and rewrite), and both ways for workers that
//! left the group.
//!
//! Why this and not the alternatives: a record of the pid alone cannot be
//! written before the pid exists; a pipe the child waits on before `exec`
//! needs a `pre_exec` hook, i.e. `unsafe`, which the workspace denies; a
//! shell wrapper would put a program between us and the server's exit
//! code. The launch ID needs no `unsafe` and no wrapper, and `environ` of
//! our own processes is readable (other users' are not, and are never ours).
//! The one window left is between `fork` and `exec` (microseconds), when the
//! child's `environ` is still the parent's; a sweep runs only after the
//! owner is dead, by which time the child has long exec'd.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use grid_sys::Owner;

use crate::spec::LaunchSpec;

/// The environment variable that carries a server's launch ID.
pub const LAUNCH_ID_VARIABLE: &str = "VLLM_GRID_LAUNCH_ID";

/// A temporary file of ours (grid-sys's `write_atomic` names them
/// `.<name>.<random>.tmp`) older than this was left by a write that was cut
/// short; a younger one may be a live writer's, mid-rename.
pub(super) const STALE_TEMP_AGE: Duration = Duration::from_secs(60);

/// What a pid file records: enough to recognise the process, nothing secret.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PidRecord {
    /// `None` in the intent record written before the spawn.
    #[serde(default)]
    pub pid: Option<u32>,
    /// The process group (the server leads its own group).
    #[serde(default)]
    pub pgid: Option<u32>,
    pub start_ticks: Option<u64>,
    pub owner: Owner,
    pub run_id: String,
    pub config_id: String,
    /// The value of [`LAUNCH_ID_VARIABLE`] in the server's environment
    /// (absent in records of older versions).
    #[serde(default)]
    pub launch_id: Option<String>,
}

/// A launch ID no other launch has: this process, the time, a counter. It
/// needs to be unique, not secret.
pub(super) fn new_launch_id(owner: &Owner) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{nanos:x}-{n}", owner.pid)
}

/// `<run>.<config>.<launch id>.pid`, with unsafe characters replaced.
pub(super) fn pid_file_name(spec: &LaunchSpec, launch_id: &str) -> String {
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
        "{}.{}.{}.pid",
        clean(&spec.run_id),
        clean(&spec.config_id),
        clean(launch_id)
    )
}

/// Writes a pid file atomically, so the sweep never reads half of one.
pub(super) fn write_record(path: &Path, record: &PidRecord) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
    grid_sys::write_atomic(path, &text)
}

/// Whether a file name is one of grid-sys's temporaries.
pub(super) fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

/// Whether a file was last changed longer ago than `age`.
pub(super) fn older_than(path: &Path, age: Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| modified.elapsed().ok())
        .is_some_and(|elapsed| elapsed >= age)
}

/// The processes whose environment carries `LAUNCH_ID_VARIABLE=<id>`, for
/// each id asked for. Only our own processes' environments are readable,
/// and only ours can carry the ID.
pub(super) fn processes_with_launch_ids(ids: &[String]) -> Vec<(String, Vec<u32>)> {
    let mut found: Vec<(String, Vec<u32>)> =
        ids.iter().map(|id| (id.clone(), Vec::new())).collect();
    if ids.is_empty() {
        return found;
    }
    let needles: Vec<Vec<u8>> = ids
        .iter()
        .map(|id| format!("{LAUNCH_ID_VARIABLE}={id}").into_bytes())
        .collect();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    let this = std::process::id();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == this {
            continue;
        }
        let Ok(environ) =
            std::fs::read(PathBuf::from("/proc").join(pid.to_string()).join("environ"))
        else {
            continue;
        };
        for variable in environ.split(|b| *b == 0) {
            if let Some(index) = needles.iter().position(|n| n.as_slice() == variable) {
                found[index].1.push(pid);
            }
        }
    }
    found
}
