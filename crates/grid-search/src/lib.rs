//! The search: run every config of a plan (start a server through the
//! container manager, run the battery, tear down, record), checkpoint each
//! step so a crashed or interrupted run resumes where it stopped, rank the
//! results, write the reports, archive a run and reproduce an archived one.
//!
//! Modules:
//! * [`store`]: the run directory (manifest, journal, results, lock);
//! * [`search`]: opening a run, the loop over configs, one config's
//!   repeats, a repeat's launch, battery and teardown;
//! * [`blame`]: whether a failure is a verdict on the config or not;
//! * [`progress`]: the events a search reports ([`SearchEvent`]);
//! * [`battery`]: the bridge to the battery (its config, its run, its numbers);
//! * [`rank`]: gates, champion, significance, recommendations;
//! * [`report`]: Markdown, JSON and SVG reports;
//! * [`archive`]: archive and reproduce;
//! * [`predict`]: the memory prediction's inputs, gathered, and each
//!   config's prediction (the search skips predicted failures);
//! * [`status`]: progress of a live or stopped run, read from its files;
//! * [`failpoint`]: kill points for the tests (debug builds only).

pub mod archive;
pub mod battery;
pub mod blame;
mod error;
pub mod failpoint;
pub mod predict;
pub mod progress;
pub mod rank;
pub mod report;
pub mod search;
pub mod status;
pub mod store;

pub use error::{ErrorKind, JsonError, SearchError};
pub use progress::{Phase, Progress, QuietProgress, SearchEvent};
pub use rank::{ConfigStatus, Ranking, rank};
pub use report::{ReportFiles, write_report};
pub use search::{ExecutorKind, SearchMode, SearchOptions, SearchOutcome, SearchSetup, run_search};
pub use store::{ConfigResult, Manifest, RunStore};
