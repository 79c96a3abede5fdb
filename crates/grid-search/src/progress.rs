//! Progress as events: the search says what happens, the binary draws it
//! (bars on a terminal, plain lines otherwise); tests stay quiet or record.

use std::time::Duration;

use grid_bench::BatteryEvent;
use grid_container::FailureClass;

/// What a search reports while it runs.
///
/// `#[non_exhaustive]`: later work adds variants (a race round, a slot of
/// a parallel executor), so a sink matches with a `_ => {}` arm.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SearchEvent {
    /// This invocation starts; `done` configs of `total` already have a result.
    RunStarted {
        run_id: String,
        total: usize,
        done: usize,
    },
    /// A repeat of a config begins (attempt > 1 after a transient failure).
    ConfigStarted {
        config: String,
        repeat: u32,
        attempt: u32,
    },
    /// What the config's repeat is doing now.
    Phase { config: String, phase: Phase },
    /// The config has its result; `summary` is one line for the console.
    ConfigFinished { config: String, summary: String },
    /// Something the user should see that does not stop the run.
    Warning { message: String },
    /// An event of the battery running for `config`.
    Battery { config: String, event: BatteryEvent },
}

/// A step of one repeat.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Phase {
    StartingServer,
    /// The launch failed for a transient reason; the next attempt starts
    /// after `backoff`.
    RetryingLaunch {
        class: FailureClass,
        backoff: Duration,
    },
    RunningBattery,
    TearingDown,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Phase::StartingServer => f.write_str("starting the server"),
            Phase::RetryingLaunch { class, backoff } => write!(
                f,
                "{class} (transient); retrying in {:.1} s",
                backoff.as_secs_f64()
            ),
            Phase::RunningBattery => f.write_str("running the battery"),
            Phase::TearingDown => f.write_str("tearing down"),
        }
    }
}

/// Receives the search's events, on the search's task: keep it quick.
pub trait Progress: Send + Sync {
    fn event(&self, event: &SearchEvent);
}

/// No progress display (tests, `--quiet`).
pub struct QuietProgress;

impl Progress for QuietProgress {
    fn event(&self, _event: &SearchEvent) {}
}
