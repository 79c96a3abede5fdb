//! Test-only failpoints: `VLLM_GRID_FAILPOINT=<name>[@N]` makes the N-th
//! (default first) pass through the named point print a line to stderr and
//! stop there for good, so a test can SIGKILL the process at exactly that
//! point. Points: `result-write` (a result's temporary file is written and
//! fsync'd, the rename not yet done) and `between-configs` (a config's
//! result is recorded, the next config not yet started).
//!
//! Compiled into debug builds only (the kill tests run the debug binary):
//! in a release build [`hit`] is empty and the variable is never read, so no
//! environment can make a real run hang.

/// The environment variable that arms a failpoint (debug builds).
pub const FAILPOINT_ENV: &str = "VLLM_GRID_FAILPOINT";

/// Whether this build has failpoints at all.
pub const COMPILED_IN: bool = cfg!(debug_assertions);

/// Pass through the named point.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn hit(_name: &str) {}

/// Pass through the named point. Unset (every real run), a point costs one
/// atomic load.
#[cfg(debug_assertions)]
pub fn hit(name: &str) {
    armed::hit(name)
}

#[cfg(debug_assertions)]
mod armed {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Armed {
        name: String,
        nth: u32,
        hits: AtomicU32,
    }

    fn armed() -> Option<&'static Armed> {
        static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
        ARMED
            .get_or_init(|| {
                let spec = std::env::var(super::FAILPOINT_ENV).ok()?;
                let (name, nth) = match spec.split_once('@') {
                    Some((name, n)) => (name.to_string(), n.parse().unwrap_or(1)),
                    None => (spec, 1),
                };
                Some(Armed {
                    name,
                    nth: nth.max(1),
                    hits: AtomicU32::new(0),
                })
            })
            .as_ref()
    }

    pub(super) fn hit(name: &str) {
        let Some(armed) = armed() else { return };
        if armed.name != name {
            return;
        }
        let count = armed.hits.fetch_add(1, Ordering::SeqCst) + 1;
        if count == armed.nth {
            eprintln!("vllm-grid failpoint reached: {name}@{count}; waiting to be killed");
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
    }
}
