//! What the steps of a run share: the backend, the setup, and where they
//! report. Only the orchestrator writes the journal and the results; the
//! steps report through here, which is the seam a remote worker's messages
//! will come back through.

use grid_container::Backend;
use grid_plan::PlannedConfig;

use crate::SearchError;
use crate::progress::{Phase, Progress, SearchEvent};
use crate::store::{JournalEvent, RunStore};

use super::{SearchOptions, SearchSetup};

pub(crate) struct RunContext<'a> {
    pub backend: &'a Backend,
    pub setup: &'a SearchSetup,
    pub store: &'a RunStore,
    pub options: &'a SearchOptions,
    pub progress: &'a dyn Progress,
}

impl RunContext<'_> {
    pub(crate) fn journal(&self, event: JournalEvent) -> Result<(), SearchError> {
        self.store.append_journal(event)
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
