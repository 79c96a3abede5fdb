//! The search loop and resume.
//!
//! Per config and repeat: launch through the container manager, run the
//! battery, tear down, record. A config whose server cannot start is
//! recorded with its diagnosed class and log tail and the search goes on;
//! transient failures are retried with exponential backoff up to the plan's
//! limit; a deadline per config and one for the whole search cut work short
//! (recorded, never waited out); nothing ever prompts.
//!
//! Failures that are not the config's (a full disk, a taken port, the
//! Docker daemon gone, an unset secret; see [`crate::blame`]) are never a
//! verdict: the config is recorded as `not_measured`, the search stops with
//! an error naming the cause, and `resume` runs the config again.
//!
//! Files, one step each:
//! * `open`: take the lock, then write or check the manifest;
//! * `exhaustive`: the order of the work (every config, in plan order, one
//!   per GPU slot at a time);
//! * `config`: one config's units under its deadline, and its result;
//! * `executor/`: the seam where a unit (one config × one repeat) runs:
//!   the local executor, the worker's spec and result files; a unit is
//!   `launch` (start the server, retrying transient failures), then
//!   `repeat` (the battery on the ready server, the teardown);
//! * `slots`: which configs ran beside which (for the results);
//! * `record`: the orchestrator writes results and the journal (only it);
//! * `predicted`: the memory prediction before the loop (predicted
//!   failures are recorded, not started) and after it (each result gets
//!   its prediction and whether it held);
//! * `context`: what the steps share and where they report;
//! * `deadline`, `failure`, `summary`, `setup`: helpers.

mod config;
mod context;
mod deadline;
pub mod executor;
mod exhaustive;
mod failure;
mod launch;
mod open;
mod predicted;
mod record;
mod repeat;
mod setup;
mod slots;
mod summary;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use grid_container::{Backend, GpuSlot, LaunchSpec, Profile, SweepOptions};
use grid_plan::{ConfigId, Plan};
use tokio_util::sync::CancellationToken;

pub use failure::{died_during_battery, failure_record, is_config_fault};
pub use setup::{config_gpus, manifest_for, profile_hash, setup_changes};

use crate::SearchError;
use crate::progress::{Progress, SearchEvent};
use crate::rank::ConfigRef;
use crate::report::{ReportFiles, write_report};
use crate::store::{ConfigResult, JournalEvent, RunOutcome, RunStore};
use context::{JournalTarget, RunContext};
use deadline::Deadline;

/// What to run: prepared by the caller from the plan file and the profile.
#[derive(Debug, Clone)]
pub struct SearchSetup {
    /// Parent of the run directories (normally `logs/`).
    pub logs_root: PathBuf,
    pub run_id: String,
    /// The plan file as the user gave it (shown and recorded).
    pub plan_file: String,
    pub plan: Plan,
    /// The profile file as given, its text (hashed and copied into the run
    /// directory; it holds `${VAR}` references, never their values) and the
    /// parsed profile.
    pub profile_file: String,
    pub profile_text: String,
    pub profile: Profile,
    /// The image ID (docker) or program fingerprint (process).
    pub image: Option<String>,
    /// True for a dry run on the simulator.
    pub simulated: bool,
    /// The effective battery parameters.
    pub battery: grid_bench::BatteryConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchMode {
    /// A new run; refused if the run ID exists.
    New,
    /// Continue a run; refused if its setup changed, unless allowed.
    Resume { allow_changes: bool },
    /// Reproduce an archived run into a new run ID (no resume checks).
    Reproduce,
}

#[derive(Debug, Clone)]
pub struct SearchOptions {
    pub mode: SearchMode,
    /// Remove a same-named container vllm-grid did not create.
    pub replace_foreign: bool,
    /// SIGTERM-to-SIGKILL grace at teardown.
    pub grace_period: Duration,
    /// On resume, run again every config whose recorded outcome is not
    /// `completed` (launch failures, deadlines, servers that died), not only
    /// those that were not measured (`resume --retry-failed`).
    pub retry_failed: bool,
    /// Values for the profile's `${VAR}` that take precedence over the
    /// environment (the dry run's generated secrets), passed to every launch
    /// as [`LaunchSpec::variables`].
    pub variables: std::collections::BTreeMap<String, grid_core::Secret>,
    /// Start the configs the memory prediction says vLLM refuses, and
    /// record whether the prediction held (`--verify-predictions`); by
    /// default they are recorded as `predicted_infeasible`, not started.
    pub verify_predictions: bool,
    /// GPU slots to run configs on side by side, one config per slot
    /// (`--gpu-slots`); empty: one slot, the profile's GPUs as written.
    pub slots: Vec<GpuSlot>,
    /// Where units run: here, or as jobs on a Ray cluster.
    pub executor: ExecutorKind,
}

/// Where a search's units run.
#[derive(Debug, Clone, Default)]
pub enum ExecutorKind {
    /// In this process, on this host's backend and GPU slots.
    #[default]
    Local,
    /// One Ray job per unit (`--executor ray`).
    Ray(executor::RayTarget),
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            mode: SearchMode::New,
            replace_foreign: false,
            grace_period: LaunchSpec::DEFAULT_GRACE_PERIOD,
            retry_failed: false,
            variables: std::collections::BTreeMap::new(),
            verify_predictions: false,
            slots: Vec::new(),
            executor: ExecutorKind::Local,
        }
    }
}

/// How a search ended.
#[derive(Debug)]
pub struct SearchOutcome {
    pub run_id: String,
    pub dir: PathBuf,
    pub champion: Option<ConfigRef>,
    /// Stopped by a signal; the run is resumable.
    pub interrupted: bool,
    /// Configs run by this invocation.
    pub configs_run: usize,
    pub report: ReportFiles,
}

/// Run (or resume) a search. Returns when every config has a result, when
/// `cancel` fires (interrupted, resumable), or on an error that stops the
/// whole search (resumable too).
pub async fn run_search(
    backend: &Backend,
    setup: &SearchSetup,
    options: &SearchOptions,
    cancel: &CancellationToken,
    progress: &dyn Progress,
) -> Result<SearchOutcome, SearchError> {
    let fresh = manifest_for(setup, backend.name())?;
    let run = open::open_run(setup, options, &fresh, progress)?;
    let store = &run.store;

    // Servers left by a run whose process died (kill -9) go first.
    let swept = backend
        .sweep_leftovers(&SweepOptions::default())
        .await
        .map_err(|source| SearchError::Sweep { source })?;
    if !swept.removed.is_empty() {
        tracing::warn!(
            count = swept.removed.len(),
            "removed leftover servers of dead runs"
        );
        store.append_journal(JournalEvent::LeftoversSwept {
            removed: swept.removed.len(),
        })?;
    }

    let mut results = kept_results(store, &setup.plan, options)?;
    let plan = &setup.plan;
    let total = plan.configs.len();
    let done = plan
        .configs
        .iter()
        .filter(|c| results.contains_key(&c.id))
        .count();
    store.append_journal(JournalEvent::RunStarted {
        resumed: run.resumed,
        configs_total: total,
        configs_done: done,
    })?;
    tracing::info!(run_id = %setup.run_id, total, done, resumed = run.resumed, "search started");
    progress.event(&SearchEvent::RunStarted {
        run_id: setup.run_id.clone(),
        total,
        done,
    });

    // The search deadline runs from this invocation's start. `halt` is
    // the user's cancel, or a slot's config that stops the run.
    let halt = cancel.child_token();
    let search = Deadline::start(&halt, plan.limits.search_timeout);
    let ctx = RunContext {
        backend,
        setup,
        store,
        options,
        progress,
        journal: JournalTarget::Store,
    };
    let ray = match &options.executor {
        ExecutorKind::Local => None,
        ExecutorKind::Ray(target) => Some(executor::RayExecutor::connect(&ctx, target).await?),
    };
    let predictions = predicted::skip_predicted(&ctx, &mut results).await?;
    let end = match &ray {
        None => {
            exhaustive::run_all(
                &ctx,
                &executor::LocalExecutor,
                &options.slots,
                1,
                &results,
                &halt,
                &search,
            )
            .await
        }
        Some(ray) => {
            let end =
                exhaustive::run_all(&ctx, ray, &[], ray.lanes(), &results, &halt, &search).await;
            ray.finish().await;
            end
        }
    };
    drop(search);
    let recorded = predicted::record_predictions(&ctx, &predictions);
    let exhaustive::LoopEnd {
        configs_run,
        interrupted,
    } = end?;
    recorded?;

    let report = write_report(store)?;
    let champion = report.ranking.champion.clone();
    if interrupted {
        store.append_journal(JournalEvent::RunInterrupted {
            reason: "cancelled by a signal".to_string(),
        })?;
        tracing::warn!(run_id = %setup.run_id, "search interrupted; resume with `vllm-grid resume {}`", setup.run_id);
    } else {
        store.append_journal(JournalEvent::RunFinished {
            champion: champion.as_ref().map(|c| c.name.clone()),
        })?;
    }
    Ok(SearchOutcome {
        run_id: setup.run_id.clone(),
        dir: store.dir.clone(),
        champion,
        interrupted,
        configs_run,
        report,
    })
}

/// The recorded results this invocation keeps; the others are set aside
/// (journaled) and their configs run again: those that are no verdict, and
/// on request (`retry_failed`, resume only) every one not completed.
fn kept_results(
    store: &RunStore,
    plan: &Plan,
    options: &SearchOptions,
) -> Result<BTreeMap<ConfigId, ConfigResult>, SearchError> {
    let mut results = store.read_results()?;
    let retry_failed = options.retry_failed && matches!(options.mode, SearchMode::Resume { .. });
    for config in &plan.configs {
        let Some(result) = results.get(&config.id) else {
            continue;
        };
        let why = if !result.is_final() {
            "it was not measured, for a reason outside the config"
        } else if retry_failed && result.outcome != RunOutcome::Completed {
            "--retry-failed"
        } else {
            continue;
        };
        tracing::info!(config = %config.name, outcome = ?result.outcome, "running it again: {why}");
        store.append_journal(JournalEvent::ConfigRerun {
            config_id: config.id.clone(),
            name: config.name.clone(),
            previous: result.outcome,
            why: why.to_string(),
        })?;
        results.remove(&config.id);
    }
    Ok(results)
}
