//! Running a search (new, resumed or a reproduction) under the signal
//! handler, drawing its events, and saying how it ended.

use std::path::{Path, PathBuf};
use std::time::Duration;

use grid_container::Backend;
use grid_plan::Plan;
use grid_search::{SearchOptions, SearchOutcome, SearchSetup};

use crate::cli::BackendKind;
use crate::error::{AppError, EXIT_INTERRUPTED, EXIT_NO_VALID_RESULT, EXIT_OK};
use crate::load::{self, LoadedProfile, Variables};
use crate::out::{errln, outln};
use crate::signals::Signals;
use crate::ui;

/// How long a graceful stop may take after the first signal before the
/// servers are killed at once: the teardown grace plus a margin.
pub const STOP_GRACE: Duration = Duration::from_secs(45);

/// What a new or resumed search runs: the plan and profile as loaded.
pub struct SearchInputs {
    pub run_id: String,
    pub plan_path: PathBuf,
    pub plan: Plan,
    pub profile: LoadedProfile,
    pub simulated: bool,
    /// The battery parameters: the plan's section, or a reproduced run's
    /// effective ones from its manifest.
    pub battery: serde_json::Value,
    /// `${VAR}` values the environment lacks (a simulated run's secrets).
    pub variables: Variables,
}

/// Checks the profile's secrets and the battery, connects the backend,
/// and prepares the search.
pub async fn prepare(
    logs: &Path,
    kind: BackendKind,
    inputs: SearchInputs,
) -> Result<(Backend, SearchSetup, Variables), AppError> {
    load::preflight_secrets(&inputs.profile.profile, &inputs.variables)?;
    let battery = load::check_battery(&inputs.plan_path, &inputs.battery)?;
    let backend = load::make_backend(kind, logs).await?;
    let image = load::image_fingerprint(&backend, &inputs.profile.profile, &inputs.variables).await;
    let setup = SearchSetup {
        logs_root: logs.to_path_buf(),
        run_id: inputs.run_id,
        plan_file: inputs.plan_path.display().to_string(),
        plan: inputs.plan,
        profile_file: inputs.profile.label,
        profile_text: inputs.profile.text,
        profile: inputs.profile.profile,
        image,
        simulated: inputs.simulated,
        battery,
    };
    Ok((backend, setup, inputs.variables))
}

/// Prepares, runs (or resumes) the search and prints its outcome.
pub async fn search_and_report(
    logs: &Path,
    kind: BackendKind,
    inputs: SearchInputs,
    options: SearchOptions,
) -> Result<u8, AppError> {
    let (backend, setup, variables) = prepare(logs, kind, inputs).await?;
    let options = SearchOptions {
        variables,
        ..options
    };
    let Some(outcome) = drive(&backend, &setup, &options).await? else {
        errln!(
            "vllm-grid: interrupted; the run is resumable: `vllm-grid resume {}`",
            setup.run_id
        );
        return Ok(EXIT_INTERRUPTED);
    };
    outln!(
        "run {} finished: {}",
        outcome.run_id,
        champion_line(&outcome.report.report)
    )?;
    outln!("report: {}", outcome.report.markdown.display())?;
    Ok(if outcome.champion.is_some() {
        EXIT_OK
    } else {
        EXIT_NO_VALID_RESULT
    })
}

/// Runs the search under the signal handler. `None`: stopped by a signal
/// (gracefully, or at once by a second one: the search future was dropped
/// and its guards removed the server); the run is resumable either way.
pub async fn drive(
    backend: &Backend,
    setup: &SearchSetup,
    options: &SearchOptions,
) -> Result<Option<SearchOutcome>, AppError> {
    let signals = Signals::install(STOP_GRACE).map_err(|source| AppError::Signals { source })?;
    if let Err(err) = ui::set_run_log(&setup.logs_root.join(&setup.run_id)) {
        tracing::warn!(error = %err, "cannot open run.log; logging to the console only");
    }
    tracing::info!(
        run_id = %setup.run_id,
        backend = backend.name(),
        simulated = setup.simulated,
        configs = setup.plan.configs.len(),
        "vllm-grid {} starting",
        env!("CARGO_PKG_VERSION")
    );
    let progress = ui::UiProgress::new();
    let search = grid_search::run_search(backend, setup, options, &signals.soft, &progress);
    let outcome = tokio::select! {
        result = search => Some(result),
        _ = signals.hard.cancelled() => None,
    };
    progress.finish();
    match outcome {
        Some(result) => {
            let outcome = result?;
            let interrupted = signals.received().is_some() || outcome.interrupted;
            Ok((!interrupted).then_some(outcome))
        }
        None => {
            errln!("vllm-grid: killed at once");
            Ok(None)
        }
    }
}

pub fn champion_line(report: &grid_search::report::ReportJson) -> String {
    let simulated = if report.simulated { " (SIMULATED)" } else { "" };
    // The figure the champion was chosen on (the plan's criterion).
    let figure = report
        .decision
        .as_ref()
        .map_or("KV-cache acceleration", |d| d.criterion.figure());
    match &report.champion {
        Some(c) => format!(
            "champion{simulated}: {} [{}] {figure} ×{:.2} (95 % CI {:.2}–{:.2})",
            c.name,
            c.id,
            c.criterion_acceleration.median,
            c.criterion_acceleration.ci95_low,
            c.criterion_acceleration.ci95_high
        ),
        // A valid config without a confirmed cache effect cannot be champion.
        None if report.decision.is_some() => format!(
            "no champion{simulated}: no valid config shows a confirmed cache effect (see the report)"
        ),
        None => format!("no champion{simulated}: no config passed every gate"),
    }
}
