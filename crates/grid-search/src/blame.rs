//! Who a failure blames, decided in one place per source of failures.
//!
//! * [`Blame::Config`]: a verdict on the config, recorded as its result
//!   (the ranking shows it as rejected).
//! * [`Blame::Environment`]: something outside the config failed (a full
//!   disk, the Docker daemon, a port taken by another program, a missing
//!   image). Never a verdict: after the plan's transient retries the run
//!   stops with exit 5, the config is recorded as `not_measured`, and
//!   `resume` runs it again.
//! * [`Blame::BadInput`]: the user's input cannot work (an unset secret, an
//!   unusable profile): the run stops with exit 2, resumable the same way.
//! * [`Blame::Internal`]: a bug of ours (the battery panicked): the run stops
//!   with exit 1, resumable the same way.
//!
//! grid-container's `FailureClass` says whom a launch failure blames; this
//! module maps it, and classifies the battery's errors.

use std::io;

use grid_bench::{BatteryError, BatteryErrorKind};
use grid_container::FailureClass;

use crate::ErrorKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    Config,
    Environment,
    BadInput,
    Internal,
}

impl Blame {
    /// How the binary treats a run stopped for this reason.
    pub fn error_kind(self) -> ErrorKind {
        match self {
            Blame::BadInput => ErrorKind::BadInput,
            Blame::Internal => ErrorKind::Internal,
            // A config fault never stops a run; should one arrive here, it
            // is no more the user's fault than the environment's.
            Blame::Environment | Blame::Config => ErrorKind::EnvironmentUnavailable,
        }
    }
}

/// A server that did not start (or went away), by its diagnosed class:
/// grid-container decides ([`FailureClass::blame`]); this maps its answer.
pub fn launch_blame(class: &FailureClass) -> Blame {
    match class.blame() {
        grid_container::Blame::Config => Blame::Config,
        grid_container::Blame::Setup => Blame::BadInput,
        // A cancelled launch that reaches here was not the user's cancel
        // (that is handled before): no config could get past it.
        grid_container::Blame::Environment | grid_container::Blame::Cancelled => Blame::Environment,
    }
}

/// A battery that could not run to its report. (A benchmark that failed
/// inside a finished battery is in the report, and the gates judge it.)
pub fn battery_blame(error: &BatteryError) -> Blame {
    // grid-bench decides; a cancel that reaches here was not the user's
    // (that is handled before), so no config could get past it.
    match error.kind() {
        BatteryErrorKind::BadInput => Blame::BadInput,
        BatteryErrorKind::Internal => Blame::Internal,
        BatteryErrorKind::Environment | BatteryErrorKind::Cancelled => Blame::Environment,
    }
}

/// A file of the run store that could not be read or written: a full disk,
/// an exhausted quota, a read-only or foreign-owned directory is the
/// environment; anything else is unexpected.
pub fn io_blame(error: &io::Error) -> Blame {
    match error.kind() {
        io::ErrorKind::StorageFull
        | io::ErrorKind::QuotaExceeded
        | io::ErrorKind::ReadOnlyFilesystem
        | io::ErrorKind::FileTooLarge
        | io::ErrorKind::PermissionDenied => Blame::Environment,
        _ => Blame::Internal,
    }
}
