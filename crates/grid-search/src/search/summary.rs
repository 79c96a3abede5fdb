//! The one console line of a config's result.

use crate::store::{ConfigResult, RunOutcome};

pub(crate) fn summary_line(result: &ConfigResult) -> String {
    match result.outcome {
        RunOutcome::Completed => {
            let accel: Vec<String> = result
                .repeats
                .iter()
                .map(|r| {
                    r.measurement
                        .kv_cache_acceleration
                        .map(|a| format!("×{:.2}", a.median))
                        .unwrap_or_else(|| "not measured".to_string())
                })
                .collect();
            format!(
                "completed: KV-cache acceleration {} ({:.1} s)",
                accel.join(", "),
                result.timing.wall_s
            )
        }
        _ => {
            let failure = result
                .failure
                .as_ref()
                .map(|f| format!("{}: {}", f.class_name, f.message))
                .unwrap_or_default();
            let outcome = match result.outcome {
                RunOutcome::LaunchFailed => "server did not start",
                RunOutcome::Failed => "failed",
                RunOutcome::Skipped => "skipped",
                RunOutcome::NotMeasured => "not measured (not the config's fault)",
                RunOutcome::PredictedInfeasible => "predicted infeasible, not started",
                RunOutcome::Completed => "completed",
            };
            format!("{outcome}: {failure}")
        }
    }
}
