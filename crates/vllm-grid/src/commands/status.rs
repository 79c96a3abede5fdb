//! `vllm-grid status RUN`: a live or stopped run's progress, from its files.

use grid_search::store::RunStore;

use super::Dirs;
use crate::error::{AppError, EXIT_OK};
use crate::out::out;

pub fn run(dirs: &Dirs, run_id: &str) -> Result<u8, AppError> {
    let store = RunStore::at(&dirs.logs, run_id)?;
    let status = grid_search::status::run_status(&store)?;
    out!("{}", status.render())?;
    Ok(EXIT_OK)
}
