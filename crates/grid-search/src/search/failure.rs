//! Failures as they are recorded in a result file.

use grid_container::{ExitInfo, FailureClass, LaunchFailure};

use crate::blame::{Blame, launch_blame};
use crate::store::FailureRecord;

/// Whether a failure class blames the config (a gate rejection) rather than
/// the environment (see [`crate::blame`]).
pub fn is_config_fault(class: &FailureClass) -> bool {
    launch_blame(class) == Blame::Config
}

fn class_key(class: &FailureClass) -> String {
    match class {
        FailureClass::ExitedWithCode(_) => "exited_with_code".to_string(),
        other => serde_json::to_value(other)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| format!("{other:?}")),
    }
}

pub fn failure_record(failure: &LaunchFailure) -> FailureRecord {
    FailureRecord {
        class: class_key(&failure.class),
        class_name: failure.class.name(),
        message: failure.message.clone(),
        log_tail: failure.log_tail.clone(),
        transient: failure.transient,
        config_fault: is_config_fault(&failure.class),
    }
}

/// A failure of our own naming (a deadline, a battery that could not run).
pub(crate) fn plain_failure(class: &str, message: String, config_fault: bool) -> FailureRecord {
    FailureRecord {
        class: class.to_string(),
        class_name: class.replace('_', " "),
        message,
        log_tail: Vec::new(),
        transient: false,
        config_fault,
    }
}

/// A server that went away while the battery ran: diagnosed from its exit
/// and log like a failed start, but said as what happened (it was ready,
/// then died), never "before it was ready". The config's fault: it did not
/// survive the load.
pub fn died_during_battery(exit: &ExitInfo, log_tail: &[String]) -> FailureRecord {
    let diagnosis = grid_container::diagnose(Some(exit), log_tail);
    let message = match (&diagnosis.class, exit.code) {
        (FailureClass::ExitedWithCode(_), None) => {
            "the server died during the battery (it had been ready); its exit code is unknown; see the log tail".to_string()
        }
        (FailureClass::ExitedWithCode(code), Some(_)) => format!(
            "the server died during the battery (it had been ready) with exit code {code}; see the log tail"
        ),
        _ => format!(
            "the server died during the battery (it had been ready): {}",
            diagnosis.message
        ),
    };
    FailureRecord {
        message,
        config_fault: true,
        ..failure_record(&diagnosis)
    }
}

/// An error and its causes as one readable line, for a result file (the
/// typed chain goes to `run.log`).
pub(crate) fn chain_text(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
