//! `vllm-grid sim ...`: the simulator, normally dispatched in `main` before
//! argument parsing; reached here only through odd argument orders such as
//! `vllm-grid -v sim`.

use crate::error::{AppError, EXIT_INTERNAL, EXIT_OK};

pub async fn run(args: Vec<String>) -> Result<u8, AppError> {
    let code = tokio::task::spawn_blocking(move || {
        vllm_sim::run_cli(args.into_iter().map(std::ffi::OsString::from))
    })
    .await
    .map_err(|source| AppError::Simulator { source })?;
    Ok(if code == std::process::ExitCode::SUCCESS {
        EXIT_OK
    } else {
        EXIT_INTERNAL
    })
}
