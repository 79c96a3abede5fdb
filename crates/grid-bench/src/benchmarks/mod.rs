//! The eight benchmarks and what they share.

pub mod concurrency;
pub mod kv_cache;
pub mod kv_cache_pressure;
pub mod long_conversation;
pub mod reasoning;
pub mod stability;
pub mod tool_calling;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use grid_core::SplitMix64;
use grid_core::rng::GOLDEN_GAMMA;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::client::{Client, Exchange, FailureKind, RequestRecord};
use crate::config::{BatteryConfig, BenchmarkName};
use crate::openai::ChatRequest;
use crate::progress::{BatteryEvent, BatteryProgress};

/// The run was cancelled; the benchmark stops at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

/// What every benchmark gets.
pub struct Context<'a> {
    pub client: Client,
    pub config: &'a BatteryConfig,
    pub cancel: CancellationToken,
    pub seed: u64,
    /// Unique per run (time, process, seed), so no prompt of this run can
    /// share a cached prefix with an earlier run.
    pub run_nonce: String,
    pub records: mpsc::UnboundedSender<RequestRecord>,
    /// The benchmark this context runs, named in its progress events.
    pub benchmark: BenchmarkName,
    pub progress: Option<Arc<dyn BatteryProgress>>,
    /// The benchmark's wall-clock bound (`None`: beyond any instant).
    pub deadline: Option<Instant>,
    /// Set once the bound has cut the benchmark short; the outcome is then
    /// `timed_out`.
    pub timed_out: Arc<AtomicBool>,
}

impl Context<'_> {
    /// Sends one request now (closed loop: scheduled start = now), records
    /// it, and reports it as finished.
    pub async fn send(
        &self,
        benchmark: BenchmarkName,
        request: &ChatRequest,
        label: String,
    ) -> Result<Exchange, Cancelled> {
        let exchange = self
            .client
            .chat_until(
                request,
                Instant::now(),
                &self.cancel,
                self.deadline,
                benchmark.as_str(),
                label,
            )
            .await;
        self.record(&exchange.record);
        if self.cancel.is_cancelled() {
            return Err(Cancelled);
        }
        Ok(exchange)
    }

    /// Whether the benchmark's wall-clock bound has passed; if so, marks the
    /// benchmark timed out. Benchmarks ask before each new request and end
    /// with what they have.
    pub fn expired(&self) -> bool {
        let expired = self
            .deadline
            .is_some_and(|deadline| Instant::now() >= deadline);
        if expired {
            self.timed_out.store(true, Ordering::Relaxed);
        }
        expired
    }

    pub fn record(&self, record: &RequestRecord) {
        if record
            .failure
            .as_ref()
            .is_some_and(|failure| failure.kind == FailureKind::BenchmarkTimeout)
        {
            self.timed_out.store(true, Ordering::Relaxed);
        }
        // The aggregator outlives every benchmark; a closed channel only
        // happens during shutdown, when the record no longer matters.
        let _ = self.records.send(record.clone());
        if let Some(progress) = &self.progress {
            progress.event(&BatteryEvent::RequestFinished {
                benchmark: self.benchmark,
                ok: record.succeeded(),
            });
        }
    }

    pub fn rng(&self, stream: u64) -> SplitMix64 {
        SplitMix64::new(self.seed ^ stream.wrapping_mul(GOLDEN_GAMMA))
    }

    pub fn nonce(&self, benchmark: BenchmarkName, part: &str) -> String {
        format!("{}-{}-{}", self.run_nonce, benchmark.as_str(), part)
    }
}

/// The turn that ended a conversation early.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedTurn {
    pub turn: usize,
    pub kind: FailureKind,
    pub message: String,
}

impl FailedTurn {
    pub(crate) fn from_record(turn: usize, record: &RequestRecord) -> Option<Self> {
        record.failure.as_ref().map(|failure| FailedTurn {
            turn,
            kind: failure.kind,
            message: failure.message.clone(),
        })
    }
}

/// How many good samples a group needs: the configured minimum, but never
/// more than the group can hold.
pub fn required_samples(config: &BatteryConfig, group_size: usize) -> usize {
    config.min_successful_samples.min(group_size).max(1)
}

const WORDS: [&str; 96] = [
    "system", "river", "memory", "signal", "garden", "engine", "market", "window", "pattern",
    "orbit", "lantern", "harbor", "circuit", "meadow", "ledger", "canyon", "thread", "beacon",
    "vector", "summit", "glacier", "archive", "compass", "forest", "kernel", "velvet", "quarry",
    "mosaic", "tunnel", "prairie", "cobalt", "granite", "willow", "crystal", "falcon", "matrix",
    "harvest", "island", "journey", "keystone", "lattice", "monsoon", "nebula", "oasis", "pilot",
    "quartz", "ribbon", "saddle", "timber", "umbra", "valley", "wander", "yonder", "zephyr",
    "anchor", "bridge", "candle", "delta", "ember", "fabric", "gravel", "hollow", "ivory",
    "jasper", "kettle", "linen", "marble", "nectar", "olive", "pepper", "quiver", "raven",
    "silver", "tundra", "unison", "violet", "walnut", "yarrow", "atlas", "basin", "cedar", "dune",
    "estuary", "fjord", "grove", "heron", "inlet", "juniper", "knoll", "lagoon", "mesa", "north",
    "ocean", "plateau", "reef", "spruce",
];

/// `count` pseudo-random words: stable for a seed, different between
/// streams, cheap to make.
pub fn filler(rng: &mut SplitMix64, count: usize) -> String {
    let mut text = String::with_capacity(count * 8);
    for index in 0..count {
        if index > 0 {
            text.push(if index % 12 == 0 { '.' } else { ' ' });
            if index % 12 == 0 {
                text.push(' ');
            }
        }
        text.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
    }
    text.push('.');
    text
}
