//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "vllm-grid",
    version,
    about = "Find the best vLLM serving configuration: restart the server per config, benchmark, rank, report.",
    after_help = "Exit codes: 0 success, 1 internal error, 2 bad input, 3 no valid config, \
                  4 reproduce did not confirm the champion, 5 environment unavailable, 130 interrupted."
)]
pub struct Cli {
    /// More console output (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Where run directories live.
    #[arg(
        long,
        global = true,
        env = "VLLM_GRID_LOGS_DIR",
        default_value = "logs"
    )]
    pub logs_dir: PathBuf,
    /// Where archives live.
    #[arg(
        long,
        global = true,
        env = "VLLM_GRID_ARCHIVES_DIR",
        default_value = "archives"
    )]
    pub archives_dir: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    Docker,
    Process,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CleanupScope {
    Docker,
    Process,
    All,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the plan as a table (no Docker needed).
    Plan {
        /// The plan file.
        #[arg(long, default_value = "grid_search_configs.json")]
        configs: PathBuf,
        /// Use this profile instead of the plan's.
        #[arg(long)]
        profile: Option<PathBuf>,
        /// Add each config's exact server command (`${VAR}` unexpanded).
        #[arg(long)]
        show_commands: bool,
    },
    /// Run the search: every config of the plan, unattended.
    Search {
        #[arg(long, default_value = "grid_search_configs.json")]
        configs: PathBuf,
        /// Use this profile instead of the plan's.
        #[arg(long)]
        profile: Option<PathBuf>,
        /// Default: docker (process with --dry-run).
        #[arg(long, value_enum)]
        backend: Option<BackendKind>,
        /// Default: a new ID from the date and time.
        #[arg(long)]
        run_id: Option<String>,
        /// Run on the simulator through the process backend: no Docker, no
        /// GPU, time-scaled; the report says the numbers are simulated.
        #[arg(long)]
        dry_run: bool,
        /// Replace a same-named container that vllm-grid did not create.
        #[arg(long)]
        replace_foreign: bool,
    },
    /// Continue a run after a crash, Ctrl-C or kill -9.
    Resume {
        run_id: String,
        /// Resume even though the plan, profile or image changed.
        #[arg(long)]
        allow_changes: bool,
        #[arg(long)]
        replace_foreign: bool,
    },
    /// Show a live or stopped run's progress from its files.
    Status { run_id: String },
    /// Re-render report.md, report.json and the charts from the results.
    Report { run_id: String },
    /// Copy a run (no secrets) to archives/<date>_<run-id>/ and update the index.
    Archive { run_id: String },
    /// Re-run an archived plan and compare config by config.
    Reproduce {
        /// An archive directory, e.g. archives/2025-01-31_20250131-220000-ab12.
        dir: PathBuf,
        /// Use this profile instead of the archived one (reported as a change).
        #[arg(long)]
        profile: Option<PathBuf>,
        /// Default: the archived run's backend.
        #[arg(long, value_enum)]
        backend: Option<BackendKind>,
        #[arg(long)]
        run_id: Option<String>,
    },
    /// Run the benchmark battery against a server that is already up.
    Bench {
        #[arg(long)]
        base_url: String,
        #[arg(long)]
        model: String,
        /// The environment variable holding the API key (never the key itself).
        #[arg(long)]
        api_key_env: Option<String>,
        /// Comma-separated benchmarks, e.g. kv_cache,tool_calling.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Where to write one JSON per benchmark and records.jsonl.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Battery parameters: a JSON file like the plan's `battery` section.
        #[arg(long)]
        battery: Option<PathBuf>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Remove servers left behind by runs whose process died.
    Cleanup {
        #[arg(long, value_enum, default_value = "all")]
        backend: CleanupScope,
    },
    /// The simulator (`vllm-grid sim serve MODEL [FLAGS]`), for the process
    /// backend's dry run. Handled before argument parsing.
    #[command(hide = true)]
    Sim {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}
