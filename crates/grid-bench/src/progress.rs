//! Progress as events: the battery says what happens, the caller decides
//! how to show it (the binary draws bars; a search forwards them; tests
//! record them). No terminal type appears in the library's API.

use crate::config::BenchmarkName;
use crate::report::{FailureReason, OutcomeStatus};

/// What the battery reports while it runs.
///
/// `#[non_exhaustive]`: later work adds variants (a benchmark's phase, a
/// race round), so a sink matches with a `_ => {}` arm and lets unknown
/// events pass.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BatteryEvent {
    /// A benchmark begins; `expected_requests` is the number it plans to
    /// send (a bar's length), 0 when it sends none.
    BenchmarkStarted {
        benchmark: BenchmarkName,
        expected_requests: u64,
    },
    /// One request ended, successfully or not (its record is written).
    RequestFinished { benchmark: BenchmarkName, ok: bool },
    /// The benchmark ran to its end (whatever its verdict). `status`
    /// says whether it failed ([`OutcomeStatus::is_failure`]);
    /// `top_failures` are its most frequent failure reasons with counts and
    /// an example message, for the console.
    BenchmarkFinished {
        benchmark: BenchmarkName,
        requests_total: u64,
        requests_failed: u64,
        status: OutcomeStatus,
        top_failures: Vec<FailureReason>,
    },
    /// The benchmark stopped because the run was cancelled; every started
    /// benchmark ends with this or with `BenchmarkFinished`.
    BenchmarkCancelled { benchmark: BenchmarkName },
}

/// Receives the battery's events. Called from the battery's own thread
/// (see `run_battery_isolated`), between requests: keep it quick and never
/// block (draw, count or forward to a channel).
pub trait BatteryProgress: Send + Sync {
    fn event(&self, event: &BatteryEvent);
}
