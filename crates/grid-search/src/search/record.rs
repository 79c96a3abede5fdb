//! The orchestrator records what a config's run gave: its result file, its
//! journal line, its console line. Nothing else writes results.

use grid_plan::PlannedConfig;

use crate::SearchError;
use crate::progress::SearchEvent;
use crate::report::write_report;
use crate::store::{ConfigResult, JournalEvent, RunOutcome};

use super::config::{ConfigRun, skipped};
use super::context::RunContext;
use super::summary::summary_line;

/// What recording a config's run leaves the loop to do.
pub(crate) enum Recorded {
    /// A result was written; go on.
    Result,
    /// The user's cancel: stop, resumable.
    Interrupted,
    /// Not the config's fault: the run stops with this error.
    Stopped(SearchError),
}

pub(crate) fn record(
    ctx: &RunContext<'_>,
    config: &PlannedConfig,
    run: ConfigRun,
) -> Result<Recorded, SearchError> {
    match run {
        ConfigRun::Done(result) => {
            ctx.store.write_result(&result)?;
            ctx.journal(JournalEvent::ConfigFinished {
                config_id: config.id.clone(),
                name: config.name.clone(),
                outcome: result.outcome,
            })?;
            let summary = summary_line(&result);
            tracing::info!(config = %config.name, "{summary}");
            ctx.event(&SearchEvent::ConfigFinished {
                config: config.name.clone(),
                summary,
            });
            Ok(Recorded::Result)
        }
        ConfigRun::Interrupted => {
            ctx.journal(JournalEvent::ConfigInterrupted {
                config_id: config.id.clone(),
                name: config.name.clone(),
            })?;
            Ok(Recorded::Interrupted)
        }
        ConfigRun::Stop { result, error } => {
            record_stop(ctx, &result, &error);
            Ok(Recorded::Stopped(error))
        }
    }
}

/// A config the search deadline left no time for.
pub(crate) fn record_skipped(
    ctx: &RunContext<'_>,
    config: &PlannedConfig,
) -> Result<(), SearchError> {
    ctx.store.write_result(&skipped(ctx, config))?;
    ctx.journal(JournalEvent::ConfigFinished {
        config_id: config.id.clone(),
        name: config.name.clone(),
        outcome: RunOutcome::Skipped,
    })?;
    ctx.event(&SearchEvent::ConfigFinished {
        config: config.name.clone(),
        summary: "skipped: search deadline".to_string(),
    });
    Ok(())
}

/// A config could not be measured for a reason outside it: record that
/// (so the report says why the run is incomplete) and the stop, as far as
/// the store still takes writes; the run stops with `error` either way.
fn record_stop(ctx: &RunContext<'_>, result: &ConfigResult, error: &SearchError) {
    let config = &result.config;
    // The binary prints the error and writes its chain to run.log; here
    // only which config it stopped at, for the log.
    tracing::debug!(
        config = %config.name,
        error = error as &dyn std::error::Error,
        "the run stops"
    );
    let class = result
        .failure
        .as_ref()
        .map(|f| f.class.clone())
        .unwrap_or_default();
    let recorded = ctx.store.write_result(result).and_then(|()| {
        ctx.journal(JournalEvent::ConfigNotMeasured {
            config_id: config.id.clone(),
            name: config.name.clone(),
            class,
        })?;
        ctx.journal(JournalEvent::RunInterrupted {
            reason: error.to_string(),
        })
    });
    if let Err(err) = recorded.and_then(|()| write_report(ctx.store).map(|_| ())) {
        // A full disk, most likely: the config has no result then and
        // runs again on resume all the same.
        tracing::warn!(
            error = &err as &dyn std::error::Error,
            "cannot record the stop"
        );
    }
    ctx.event(&SearchEvent::ConfigFinished {
        config: config.name.clone(),
        summary: summary_line(result),
    });
}
