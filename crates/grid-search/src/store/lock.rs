//! The run lock: exactly one process owns a run at a time.
//!
//! Ownership is an exclusive `flock` on `logs/<run-id>/lock`
//! ([`grid_sys::FileLock`]), held for as long as the [`RunLock`] lives and
//! released by the kernel when the process dies, however it dies: a lock
//! whose holder was killed is free by construction, and nothing is ever
//! "taken over" by reading the file. The file's content is only the owner's
//! description for `status` and for the "in use by" message; it is written
//! after the lock is held, so a reader may find it empty for a moment.
//!
//! The holder removes the file when it lets go. Since another process may
//! have opened the old file just before that, whoever gets the `flock`
//! checks that the path still names the file it locked, and starts over
//! when it does not (the usual lock-file protocol).
//!
//! A lock file naming a live process other than ourselves while nobody holds
//! the `flock` was written by a vllm-grid from before this lock: it is
//! honoured (refused), so a run is not shared with an older version (the
//! recorded start time tells a live holder from a reused pid).

use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use grid_sys::{FileLock, Owner};
use serde::{Deserialize, Serialize};

use super::files::parse_json_file;
use super::{RunStore, now_unix_ms};
use crate::SearchError;

/// Who holds a run's lock: the process (pid, start time, host; the same
/// JSON keys as before) and since when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockOwner {
    #[serde(flatten)]
    pub process: Owner,
    pub since_unix_ms: u64,
}

impl LockOwner {
    fn current() -> Self {
        LockOwner {
            process: Owner::current(),
            since_unix_ms: now_unix_ms(),
        }
    }

    /// Whether the owner is a live process. A lock taken on another host
    /// (a run directory on a shared filesystem) counts as live: we cannot
    /// tell, so the user removes it.
    pub fn is_alive(&self) -> bool {
        self.process.is_alive()
    }

    fn is_us(&self) -> bool {
        self.process.pid == std::process::id() && self.process.host == grid_sys::hostname()
    }
}

/// The held lock; released (and its file removed) on drop.
#[derive(Debug)]
pub struct RunLock {
    lock: FileLock,
    path: PathBuf,
    owner: LockOwner,
}

/// How often to start over when the lock file was replaced under us; each
/// round means another process let go of the run in between.
const ATTEMPTS: usize = 100;

impl RunLock {
    /// Take the run's lock, creating the run directory. A run held by a
    /// live process is refused with [`SearchError::Locked`].
    pub fn acquire(store: &RunStore) -> Result<RunLock, SearchError> {
        let path = store.lock_path();
        let lock_error = |source: io::Error| SearchError::LockFile {
            run_id: store.run_id.clone(),
            path: path.clone(),
            source,
        };
        fs::create_dir_all(&store.dir).map_err(|source| SearchError::WriteFile {
            path: store.dir.clone(),
            source,
        })?;
        for _ in 0..ATTEMPTS {
            let Some(lock) = FileLock::try_exclusive(&path).map_err(lock_error)? else {
                return Err(SearchError::Locked {
                    run_id: store.run_id.clone(),
                    owner: read_owner(&path),
                    path,
                });
            };
            if !names_file(&path, lock.file()) {
                // Its previous holder removed it between our open and our
                // lock; the path is someone else's (or nobody's) now.
                continue;
            }
            if let Some(old) = read_owner(&path).filter(|o| o.is_alive() && !o.is_us()) {
                return Err(SearchError::Locked {
                    run_id: store.run_id.clone(),
                    owner: Some(old),
                    path,
                });
            }
            let owner = LockOwner::current();
            write_owner(lock.file(), &owner).map_err(lock_error)?;
            return Ok(RunLock { lock, path, owner });
        }
        Err(SearchError::Locked {
            run_id: store.run_id.clone(),
            owner: read_owner(&path),
            path,
        })
    }

    /// Who holds the lock, as this process recorded it.
    pub fn owner(&self) -> &LockOwner {
        &self.owner
    }

    /// The live owner of a run's lock as its file says, if any: for
    /// `status`, which only looks (taking the lock to look would make a
    /// starting `resume` fail).
    pub fn live_owner(store: &RunStore) -> Option<LockOwner> {
        read_owner(&store.lock_path()).filter(|owner| owner.is_alive())
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Still ours (nobody else removes a held lock's file): remove it
        // while the lock is held, then the lock goes with the file handle.
        if names_file(&self.path, self.lock.file()) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Whether `path` is the file open as `file` (same device and inode).
fn names_file(path: &Path, file: &File) -> bool {
    match (fs::metadata(path), file.metadata()) {
        (Ok(on_disk), Ok(open)) => on_disk.dev() == open.dev() && on_disk.ino() == open.ino(),
        _ => false,
    }
}

/// The owner the lock file names; none when it is missing, empty (its
/// holder is writing it) or unreadable.
fn read_owner(path: &Path) -> Option<LockOwner> {
    parse_json_file::<LockOwner>(path).ok()
}

fn write_owner(mut file: &File, owner: &LockOwner) -> io::Result<()> {
    let text = serde_json::to_string(owner).map_err(io::Error::other)?;
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(text.as_bytes())?;
    file.sync_data()
}
