//! One handler for SIGINT, SIGTERM and SIGHUP.
//!
//! The first signal cancels `soft`: the search stops at once, the current
//! server is torn down gracefully (SIGTERM, grace period, SIGKILL), the
//! journal records the interruption and the process exits 130. A second
//! signal, or the grace period running out, cancels `hard`: the caller
//! drops the search future, whose guards kill and remove the server
//! immediately.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct Signals {
    pub soft: CancellationToken,
    pub hard: CancellationToken,
    received: Arc<AtomicI32>,
}

impl Signals {
    /// Install the handler. `grace` bounds the graceful stop.
    pub fn install(grace: Duration) -> std::io::Result<Signals> {
        let soft = CancellationToken::new();
        let hard = CancellationToken::new();
        let received = Arc::new(AtomicI32::new(0));
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let mut hangup = signal(SignalKind::hangup())?;
        let signals = Signals {
            soft: soft.clone(),
            hard: hard.clone(),
            received: received.clone(),
        };
        tokio::spawn(async move {
            let mut count = 0;
            loop {
                let (name, number) = tokio::select! {
                    _ = interrupt.recv() => ("SIGINT", libc::SIGINT),
                    _ = terminate.recv() => ("SIGTERM", libc::SIGTERM),
                    _ = hangup.recv() => ("SIGHUP", libc::SIGHUP),
                };
                count += 1;
                received
                    .compare_exchange(0, number, Ordering::SeqCst, Ordering::SeqCst)
                    .ok();
                if count == 1 {
                    tracing::warn!(
                        signal = name,
                        "stopping: tearing down the current server; the run stays resumable (signal again to kill at once)"
                    );
                    eprintln!(
                        "vllm-grid: {name} received; stopping and tearing down (signal again to kill at once)"
                    );
                    soft.cancel();
                    let hard = hard.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(grace).await;
                        if !hard.is_cancelled() {
                            tracing::error!(
                                "the graceful stop took longer than {grace:?}; killing at once"
                            );
                            hard.cancel();
                        }
                    });
                } else {
                    tracing::warn!(signal = name, "second signal: killing and removing at once");
                    eprintln!(
                        "vllm-grid: {name} received again; killing and removing the server at once"
                    );
                    hard.cancel();
                    break;
                }
            }
        });
        Ok(signals)
    }

    /// The first signal received, if any.
    pub fn received(&self) -> Option<i32> {
        match self.received.load(Ordering::SeqCst) {
            0 => None,
            n => Some(n),
        }
    }
}
