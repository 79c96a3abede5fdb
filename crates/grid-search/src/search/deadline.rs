//! A deadline: a child token that a timer fires, remembering that it did,
//! so the work it cut short can say why.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub(crate) struct Deadline {
    token: CancellationToken,
    passed: Arc<AtomicBool>,
    timer: JoinHandle<()>,
}

impl Deadline {
    /// Fires `limit` from now, or with `parent`.
    pub(crate) fn start(parent: &CancellationToken, limit: Duration) -> Deadline {
        let token = parent.child_token();
        let passed = Arc::new(AtomicBool::new(false));
        let timer = {
            let token = token.clone();
            let passed = passed.clone();
            tokio::spawn(async move {
                tokio::time::sleep(limit).await;
                passed.store(true, Ordering::SeqCst);
                token.cancel();
            })
        };
        Deadline {
            token,
            passed,
            timer,
        }
    }

    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Whether the token has fired (by the timer or by the parent).
    pub(crate) fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Whether this deadline's own timer fired.
    pub(crate) fn passed(&self) -> bool {
        self.passed.load(Ordering::SeqCst)
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        self.timer.abort();
    }
}

/// Sleep that ends early when `token` fires; true if it slept through.
pub(crate) async fn sleep_unless(token: &CancellationToken, duration: Duration) -> bool {
    tokio::select! {
        _ = token.cancelled() => false,
        _ = tokio::time::sleep(duration) => true,
    }
}
