//! What the steps of a run share: the backend, the setup, and where they
//! report. Only the orchestrator writes the journal and the results; the
//! steps report through here. A worker running a unit on its own (see
//! [`super::executor`]) collects its journal events instead, and hands
//! them back in its unit result for the orchestrator to append.

use std::sync::Mutex;

use grid_container::Backend;
use grid_plan::PlannedConfig;

use crate::SearchError;
use crate::progress::{Phase, Progress, SearchEvent};
use crate::store::{JournalEvent, RunStore};

use super::{SearchOptions, SearchSetup};

/// Where a step's journal events go.
pub(crate) enum JournalTarget<'a> {
    /// The run's journal: the orchestrator's process.
    Store,
    /// Kept for the unit's result: a worker, which writes no run file.
    Collect(&'a Mutex<Vec<JournalEvent>>),
}

pub(crate) struct RunContext<'a> {
    pub backend: &'a Backend,
    pub setup: &'a SearchSetup,
    /// The run directory's paths; only the orchestrator writes its journal
    /// and results.
    pub store: &'a RunStore,
    pub options: &'a SearchOptions,
    pub progress: &'a dyn Progress,
    pub journal: JournalTarget<'a>,
}

impl RunContext<'_> {
    pub(crate) fn journal(&self, event: JournalEvent) -> Result<(), SearchError> {
        match &self.journal {
            JournalTarget::Store => self.store.append_journal(event),
            JournalTarget::Collect(events) => {
                // A poisoned lock only means another step panicked; the
                // events gathered so far are still whole.
                events
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(event);
                Ok(())
            }
        }
    }

    pub(crate) fn event(&self, event: &SearchEvent) {
        self.progress.event(event)
    }

    pub(crate) fn phase(&self, config: &PlannedConfig, phase: Phase) {
        self.progress.event(&SearchEvent::Phase {
            config: config.name.clone(),
            phase,
        })
    }
}
