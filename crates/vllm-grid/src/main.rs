//! `vllm-grid`: find the best vLLM serving configuration for a model on this
//! box, unattended, and check later that it still holds.
//!
//! Exit codes (also in the crate README):
//! 0 success (champion found / champion holds / command done),
//! 1 unexpected internal error, 2 bad input (CLI, config, profile, missing
//! secret at preflight), 3 search finished but no config was valid,
//! 4 reproduce: champion not confirmed, 5 environment unavailable (Docker
//! daemon unreachable, run locked by a live process, image missing),
//! 130 interrupted by a signal (the run is left resumable).

mod app;
mod cli;
mod error;
mod signals;
mod ui;

use std::process::ExitCode;

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
                0
            };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    match app::main(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            ui::print_error_chain(&err);
            ExitCode::from(err.exit_code())
        }
    }
}
