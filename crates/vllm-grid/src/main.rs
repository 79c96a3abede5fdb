//! `vllm-grid`: find the best vLLM serving configuration for a model on this
//! box, unattended, and check later that it still holds.
//!
//! Exit codes (also in `--help` and the READMEs):
//! 0 success (champion found / champion holds / command done),
//! 1 unexpected internal error, 2 bad input (CLI, config, profile, missing
//! secret at preflight, a damaged run file), 3 no valid result (the search
//! found no valid config; `bench`: a benchmark did not complete),
//! 4 reproduce: champion not confirmed, 5 environment unavailable (Docker
//! daemon unreachable, run locked by a live process, image missing, disk
//! full, `bench`'s endpoint not answering), 130 interrupted by a signal
//! (the run is left resumable).

mod cli;
mod commands;
mod drive;
mod dry_run;
mod error;
mod executor;
mod load;
mod out;
mod signals;
mod slots;
mod ui;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // The simulator runs in-process so a dry run needs no second binary:
    // the process backend maps the profile's `vllm-sim` to `<this exe> sim`.
    if args.get(1).is_some_and(|a| a == "sim") {
        return vllm_sim::run_cli(args.into_iter().skip(2));
    }
    let cli = match cli::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() {
                error::EXIT_BAD_INPUT
            } else {
                error::EXIT_OK
            };
            // `--help | head -1` is a normal end, not a failure.
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            ui::print_error_chain(&err);
            ExitCode::from(err.exit_code())
        }
    }
}

fn run(cli: cli::Cli) -> Result<u8, error::AppError> {
    ui::init_tracing(cli.verbose);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| error::AppError::Runtime { source })?;
    let code = runtime.block_on(commands::run(cli));
    // Do not wait for stray blocking tasks (a hung log reader) at exit.
    runtime.shutdown_timeout(Duration::from_secs(2));
    code
}
