//! `vllm-grid archive RUN`: copy a run, redacted, into the archives.

use grid_search::archive::archive_run;
use grid_search::store::RunStore;

use super::Dirs;
use crate::error::{AppError, EXIT_OK};
use crate::load::environment_redactor;
use crate::out::outln;

pub fn run(dirs: &Dirs, run_id: &str) -> Result<u8, AppError> {
    let store = RunStore::at(&dirs.logs, run_id)?;
    // Without the profile the redactor would not know which environment
    // values are secrets: refuse rather than archive them unredacted.
    let profile_path = store.profile_copy_path();
    let profile_text =
        std::fs::read_to_string(&profile_path).map_err(|source| AppError::ReadProfileCopy {
            path: profile_path.clone(),
            source,
        })?;
    let redactor = environment_redactor(&profile_text);
    let dir = archive_run(&store, &dirs.archives, &redactor)?;
    outln!("archived run {run_id} to {}", dir.display())?;
    outln!("index: {}", dirs.archives.join("INDEX.md").display())?;
    Ok(EXIT_OK)
}
