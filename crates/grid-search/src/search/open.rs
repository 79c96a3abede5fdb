//! Opening a run: take its lock, then write (new run) or check (resume)
//! its manifest. The lock comes first, so two processes starting the same
//! run ID never both get past this point: the second finds the lock held,
//! or, once the first let go, the manifest written.

use crate::SearchError;
use crate::progress::{Progress, SearchEvent};
use crate::store::{JournalEvent, Manifest, RunLock, RunStore, write_atomic};

use super::{SearchMode, SearchOptions, SearchSetup};

/// A run this process owns until the lock is dropped.
pub(crate) struct OpenRun {
    pub store: RunStore,
    /// Held until the run returns; dropping it lets another process in.
    pub _lock: RunLock,
    pub resumed: bool,
}

pub(crate) fn open_run(
    setup: &SearchSetup,
    options: &SearchOptions,
    fresh: &Manifest,
    progress: &dyn Progress,
) -> Result<OpenRun, SearchError> {
    let store = RunStore::at(&setup.logs_root, &setup.run_id)?;
    let run_exists = |store: &RunStore| SearchError::RunExists {
        run_id: setup.run_id.clone(),
        dir: store.dir.clone(),
    };
    match options.mode {
        SearchMode::New | SearchMode::Reproduce => {
            // Cheap first: a finished run is "exists", not "in use".
            if store.exists() {
                return Err(run_exists(&store));
            }
            let lock = RunLock::acquire(&store)?;
            // Again under the lock: another starter may have written it and
            // let go between our check and our lock.
            if store.exists() {
                return Err(run_exists(&store));
            }
            store.write_manifest(fresh)?;
            write_atomic(&store.profile_copy_path(), setup.profile_text.as_bytes())?;
            Ok(OpenRun {
                store,
                _lock: lock,
                resumed: false,
            })
        }
        SearchMode::Resume { allow_changes } => {
            // Before the lock, which would create the directory of a run
            // that does not exist.
            if !store.exists() {
                return Err(SearchError::NoSuchRun {
                    run_id: setup.run_id.clone(),
                    dir: store.dir.clone(),
                });
            }
            let lock = RunLock::acquire(&store)?;
            let old = store.read_manifest()?;
            let changes = super::setup_changes(&old, fresh);
            if !changes.is_empty() {
                if !allow_changes {
                    return Err(SearchError::ChangedSinceStart {
                        run_id: setup.run_id.clone(),
                        changes,
                    });
                }
                for change in &changes {
                    tracing::warn!(change = %change, "resuming with a changed setup (--allow-changes)");
                    store.append_journal(JournalEvent::Warning {
                        message: format!("resumed with a change: {change}"),
                    })?;
                }
                let mut updated = fresh.clone();
                updated.created_unix_ms = old.created_unix_ms;
                store.write_manifest(&updated)?;
                write_atomic(&store.profile_copy_path(), setup.profile_text.as_bytes())?;
            }
            let journal = store.read_journal(true)?;
            for warning in &journal.warnings {
                tracing::warn!("{warning}");
                progress.event(&SearchEvent::Warning {
                    message: warning.clone(),
                });
            }
            Ok(OpenRun {
                store,
                _lock: lock,
                resumed: true,
            })
        }
    }
}
