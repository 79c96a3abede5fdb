//! OS helpers of vllm-grid, each written once: atomic file writes, process
//! liveness and signals, who owns a run or a server ([`Owner`]), the host
//! name, an advisory file lock.
//!
//! Synchronous and runtime-free, so the search, the container backends and
//! a `Drop` guard can all call them. System calls go through `rustix`, so
//! this crate needs no `unsafe`.

pub mod atomic;
pub mod lock;
pub mod process;

pub use atomic::{write_atomic, write_atomic_with_hook};
pub use lock::FileLock;
pub use process::{
    Owner, Signal, group_alive, hostname, pid_alive, process_matches, process_start_ticks,
    signal_group, signal_process,
};
