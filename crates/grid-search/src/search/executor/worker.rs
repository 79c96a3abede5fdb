//! A unit run from its spec, on whatever node holds the GPUs: what
//! `vllm-grid worker` does. It writes only the server's log and the
//! battery's outputs (under the node's `logs/<run-id>/<config>/`); its
//! journal events go into the result, for the orchestrator to append.

use std::sync::Mutex;

use grid_container::Backend;
use tokio_util::sync::CancellationToken;

use crate::SearchError;
use crate::progress::Progress;
use crate::search::context::{JournalTarget, RunContext};
use crate::search::deadline::Deadline;
use crate::search::{SearchOptions, SearchSetup};
use crate::store::RunStore;

use super::unit::{Unit, UnitLog};
use super::unit_spec::{UNIT_FORMAT_VERSION, UnitEndRecord, UnitResult, UnitSpec};
use super::{Executor, LocalExecutor};

/// Runs the unit `spec` names under the config's deadline (or until
/// `cancel`), with `setup` built from the spec by the caller.
pub async fn run_unit_spec(
    backend: &Backend,
    setup: &SearchSetup,
    spec: &UnitSpec,
    options: &SearchOptions,
    cancel: &CancellationToken,
    progress: &dyn Progress,
) -> Result<UnitResult, SearchError> {
    let Some(config) = setup.plan.configs.iter().find(|c| c.id == spec.config_id) else {
        return Err(SearchError::UnitWithoutConfig {
            config_id: spec.config_id.clone(),
        });
    };
    let store = RunStore::at(&setup.logs_root, &setup.run_id)?;
    let events = Mutex::new(Vec::new());
    let ctx = RunContext {
        backend,
        setup,
        store: &store,
        options,
        progress,
        journal: JournalTarget::Collect(&events),
    };
    let command = grid_container::render_command(&setup.profile.command, &config.flags());
    let unit = Unit {
        config,
        repeat: spec.repeat,
        seed: spec.seed,
        command: &command,
        slot: spec.slot.as_ref(),
    };
    let deadline = Deadline::start(cancel, setup.plan.limits.per_config_timeout);
    let mut log = UnitLog::default();
    let end = LocalExecutor
        .run_unit(&ctx, &unit, &deadline, &mut log)
        .await?;
    drop(deadline);
    let mut end = UnitEndRecord::from_end(end);
    if let UnitEndRecord::Measured { result } = &mut end {
        result.slot = spec.slot.clone();
    }
    Ok(UnitResult {
        format_version: UNIT_FORMAT_VERSION,
        run_id: spec.run_id.clone(),
        config_id: spec.config_id.clone(),
        repeat: spec.repeat,
        end,
        failed_attempts: log.failed_attempts,
        timing: log.timing,
        journal: events
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    })
}
