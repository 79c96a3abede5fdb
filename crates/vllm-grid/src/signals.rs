//! One handler for SIGINT, SIGTERM and SIGHUP.
//!
//! The first signal cancels `soft`: the search stops at once, the current
//! server is torn down gracefully (SIGTERM, grace period, SIGKILL), the
//! journal records the interruption and the process exits 130. A second
//! signal, or the grace period running out, cancels `hard`: the caller
//! drops the search future, whose guards kill and remove the server
//! immediately.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use grid_sys::Signal;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::out::errln;

#[derive(Clone)]
pub struct Signals {
    pub soft: CancellationToken,
    pub hard: CancellationToken,
    received: Arc<OnceLock<Signal>>,
}

impl Signals {
    /// Install the handler. `grace` bounds the graceful stop.
    pub fn install(grace: Duration) -> std::io::Result<Signals> {
        let soft = CancellationToken::new();
        let hard = CancellationToken::new();
        let received = Arc::new(OnceLock::new());
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
                let (name, which) = tokio::select! {
                    _ = interrupt.recv() => ("SIGINT", Signal::Interrupt),
                    _ = terminate.recv() => ("SIGTERM", Signal::Terminate),
                    _ = hangup.recv() => ("SIGHUP", Signal::Hangup),
                };
                count += 1;
                // Only the first one counts; later ones find it set.
                let _ = received.set(which);
                if count == 1 {
                    tracing::warn!(
                        signal = name,
                        "stopping: tearing down the current server; the run stays resumable (signal again to kill at once)"
                    );
                    errln!(
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
                    errln!(
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
    pub fn received(&self) -> Option<Signal> {
        self.received.get().copied()
    }
}
