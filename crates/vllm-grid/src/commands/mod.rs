//! One file per subcommand; this one dispatches.

mod archive;
mod bench;
mod cleanup;
mod plan;
mod plan_predict;
mod report;
mod reproduce;
mod resume;
mod search;
mod sim;
mod status;
mod worker;

use std::path::PathBuf;

use crate::cli::{Cli, Command};
use crate::error::AppError;

/// Where runs and archives live (global options).
pub struct Dirs {
    pub logs: PathBuf,
    pub archives: PathBuf,
}

pub async fn run(cli: Cli) -> Result<u8, AppError> {
    let dirs = Dirs {
        logs: cli.logs_dir,
        archives: cli.archives_dir,
    };
    match cli.command {
        Command::Plan(args) => plan::run(&args).await,
        Command::Search(args) => search::run(&dirs, args).await,
        Command::Resume(args) => resume::run(&dirs, args).await,
        Command::Status { run_id } => status::run(&dirs, &run_id),
        Command::Report { run_id } => report::run(&dirs, &run_id),
        Command::Archive { run_id } => archive::run(&dirs, &run_id),
        Command::Reproduce(args) => reproduce::run(&dirs, args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Worker(args) => worker::run(&dirs, args).await,
        Command::Cleanup { backend } => cleanup::run(&dirs, backend).await,
        Command::Sim { args } => sim::run(args).await,
    }
}
