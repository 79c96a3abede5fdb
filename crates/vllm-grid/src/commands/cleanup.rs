//! `vllm-grid cleanup`: remove servers whose owning vllm-grid died.

use grid_container::{Backend, SweepOptions};

use super::Dirs;
use crate::cli::{BackendKind, CleanupScope};
use crate::error::{AppError, EXIT_OK};
use crate::load::make_backend;
use crate::out::{errln, outln};

pub async fn run(dirs: &Dirs, scope: CleanupScope) -> Result<u8, AppError> {
    let mut removed = 0;
    if matches!(scope, CleanupScope::Process | CleanupScope::All) {
        let backend = make_backend(BackendKind::Process, &dirs.logs).await?;
        removed += sweep_and_print(&backend, "process").await?;
    }
    if matches!(scope, CleanupScope::Docker | CleanupScope::All) {
        match make_backend(BackendKind::Docker, &dirs.logs).await {
            Ok(backend) => removed += sweep_and_print(&backend, "container").await?,
            Err(err) if scope == CleanupScope::All => {
                errln!("vllm-grid: docker not swept: {err}");
            }
            Err(err) => return Err(err),
        }
    }
    outln!("cleanup: removed {removed} leftover server(s)")?;
    Ok(EXIT_OK)
}

/// Sweeps one backend's leftovers and prints what it did with each
/// (`what` names the kind of server: "process" or "container").
async fn sweep_and_print(backend: &Backend, what: &str) -> Result<usize, AppError> {
    let report = backend
        .sweep_leftovers(&SweepOptions::default())
        .await
        .map_err(|source| AppError::Sweep { source })?;
    for item in &report.removed {
        outln!(
            "removed {what} {} (run {}, config {})",
            item.id,
            item.run_id,
            item.config_id
        )?;
    }
    for item in &report.skipped_live_owner {
        outln!(
            "kept {what} {} of run {}: its vllm-grid still runs",
            item.id,
            item.run_id
        )?;
    }
    Ok(report.removed.len())
}
