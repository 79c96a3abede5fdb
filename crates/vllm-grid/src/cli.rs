//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The exit-code table, shown by `--help` (README.md has the same table).
const EXIT_CODES: &str = "Exit codes:
  0    success (a champion found, the champion holds, the command did its job)
  1    unexpected internal error
  2    bad input (command line, plan, profile, battery, missing secret, damaged run file)
  3    no valid result: the search found no valid config; `bench`: a benchmark did not complete
  4    reproduce did not confirm the champion
  5    environment unavailable (Docker, a run locked by another process, image or program
       missing, disk full, `bench`: the endpoint does not answer)
  130  interrupted by a signal (the run is left resumable)";

#[derive(Debug, Parser)]
#[command(
    name = "vllm-grid",
    version,
    about = "Find the best vLLM serving configuration: restart the server per config, benchmark, rank, report.",
    after_help = EXIT_CODES
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

impl BackendKind {
    /// The backend a manifest names (`docker` or `process`).
    pub fn from_manifest(name: &str) -> BackendKind {
        if name == "docker" {
            BackendKind::Docker
        } else {
            BackendKind::Process
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CleanupScope {
    Docker,
    Process,
    All,
}

/// Which service of a compose file with several services to use.
#[derive(Debug, Clone, Default, Args)]
pub struct ServiceArg {
    /// The service to use when the profile defines several.
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the plan as a table and check its battery section (no Docker needed).
    Plan(PlanArgs),
    /// Run the search: every config of the plan, unattended.
    Search(SearchArgs),
    /// Continue a run after a crash, Ctrl-C or kill -9.
    Resume(ResumeArgs),
    /// Show a live or stopped run's progress from its files.
    Status { run_id: String },
    /// Re-render report.md, report.json and the charts from the results.
    Report { run_id: String },
    /// Copy a run (no secrets) to archives/<date>_<run-id>/ and update the index.
    Archive { run_id: String },
    /// Re-run an archived plan and compare config by config.
    Reproduce(ReproduceArgs),
    /// Run the benchmark battery against a server that is already up.
    #[command(
        after_help = "Exit codes: 0 every benchmark completed; 2 bad input; 3 a benchmark failed \
                      or had too few successful requests (the table says which, with the top \
                      failure reasons); 5 the endpoint does not answer (checked before the \
                      battery starts); 130 interrupted."
    )]
    Bench(BenchArgs),
    /// Run one unit of work (one config × one repeat) from a unit spec and
    /// write its result: the entry point of an executor's job on the node
    /// that holds the GPUs. The API key is read from this environment.
    Worker(WorkerArgs),
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

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The plan file.
    #[arg(long, default_value = "grid_search_configs.json")]
    pub configs: PathBuf,
    /// Use this profile instead of the plan's.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    #[command(flatten)]
    pub service: ServiceArg,
    /// Add each config's exact server command (`${VAR}` unexpanded).
    #[arg(long)]
    pub show_commands: bool,
    /// The plan as `search --dry-run` runs it: the simulator's profile
    /// (profiles/sim.yml, or the copy built in) unless --profile is given.
    #[arg(long)]
    pub dry_run: bool,
    /// Print each config's memory prediction as JSON (nothing else).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    #[arg(long, default_value = "grid_search_configs.json")]
    pub configs: PathBuf,
    /// Use this profile instead of the plan's.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    #[command(flatten)]
    pub service: ServiceArg,
    /// Default: docker (process with --dry-run).
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,
    /// Default: a new ID from the date and time.
    #[arg(long)]
    pub run_id: Option<String>,
    /// Run on the simulator through the process backend: no Docker, no
    /// GPU, time-scaled, on a free port; the report says the numbers are
    /// simulated.
    #[arg(long)]
    pub dry_run: bool,
    /// Replace a same-named container that vllm-grid did not create.
    #[arg(long)]
    pub replace_foreign: bool,
    /// Start the configs the memory prediction says vLLM refuses (by
    /// default they are recorded as predicted infeasible, not started) and
    /// record whether each prediction held.
    #[arg(long)]
    pub verify_predictions: bool,
    #[command(flatten)]
    pub slots: SlotsArg,
    #[command(flatten)]
    pub executor: ExecutorArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ExecutorName {
    /// Here: this host's Docker engine or processes, on its GPU slots.
    #[default]
    Local,
    /// One Ray job per config × repeat, on the cluster at --ray-address.
    Ray,
}

/// Where the units run.
#[derive(Debug, Clone, Default, Args)]
pub struct ExecutorArg {
    /// Where configs run: `local`, or `ray` (a Ray job per config ×
    /// repeat with TP × PP GPUs; needs --ray-address).
    #[arg(long, value_enum, default_value = "local")]
    pub executor: ExecutorName,
    /// The Ray dashboard's address, `http://HOST:8265` (with --executor ray).
    #[arg(long, value_name = "URL")]
    pub ray_address: Option<String>,
}

/// GPU slots: configs side by side, one per slot.
#[derive(Debug, Clone, Default, Args)]
pub struct SlotsArg {
    /// Run configs side by side on these GPU slots, one config per slot:
    /// one word per slot, its GPUs comma-separated (`--gpu-slots 0,1 2,3`),
    /// or `auto` (every GPU nvidia-smi lists, TP × PP per slot). Default:
    /// one slot, the profile's GPUs as written.
    #[arg(long, num_args = 1.., value_name = "GPUS")]
    pub gpu_slots: Vec<String>,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The unit spec (JSON, written by the orchestrator).
    #[arg(long)]
    pub spec: PathBuf,
    /// Where to write the unit result (JSON, atomically).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    pub run_id: String,
    /// Resume even though the plan, profile or image changed.
    #[arg(long)]
    pub allow_changes: bool,
    /// Run the configs that failed again (their old results are replaced).
    #[arg(long)]
    pub retry_failed: bool,
    /// Start the configs recorded as predicted infeasible, and record
    /// whether each prediction held.
    #[arg(long)]
    pub verify_predictions: bool,
    #[command(flatten)]
    pub service: ServiceArg,
    #[arg(long)]
    pub replace_foreign: bool,
    #[command(flatten)]
    pub slots: SlotsArg,
    #[command(flatten)]
    pub executor: ExecutorArg,
}

#[derive(Debug, Args)]
pub struct ReproduceArgs {
    /// An archive directory, e.g. archives/2025-01-31_20250131-220000-ab12.
    pub dir: PathBuf,
    /// Use this profile instead of the archived one (reported as a change).
    #[arg(long)]
    pub profile: Option<PathBuf>,
    #[command(flatten)]
    pub service: ServiceArg,
    /// Default: the archived run's backend.
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,
    #[arg(long)]
    pub run_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The server's root, e.g. http://127.0.0.1:5002.
    #[arg(long, value_parser = parse_base_url)]
    pub base_url: String,
    #[arg(long)]
    pub model: String,
    /// The environment variable holding the API key (never the key itself).
    #[arg(long)]
    pub api_key_env: Option<String>,
    /// Comma-separated benchmarks, e.g. kv_cache,tool_calling.
    #[arg(long, value_delimiter = ',', value_parser = parse_benchmark)]
    pub only: Vec<grid_bench::BenchmarkName>,
    /// Where to write one JSON per benchmark and records.jsonl.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Battery parameters: a JSON file like the plan's `battery` section.
    #[arg(long)]
    pub battery: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

fn parse_benchmark(
    text: &str,
) -> Result<grid_bench::BenchmarkName, grid_bench::config::UnknownBenchmark> {
    text.parse()
}

/// An `http://` or `https://` URL with a host: anything else cannot be
/// reached and is bad input, not an unavailable server.
fn parse_base_url(text: &str) -> Result<String, String> {
    let rest = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))
        .ok_or_else(|| {
            format!("`{text}` is not an http:// or https:// URL, e.g. http://127.0.0.1:5002")
        })?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!(
            "`{text}` names no host, e.g. http://127.0.0.1:5002"
        ));
    }
    Ok(text.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::parse_base_url;

    #[test]
    fn base_urls_are_parsed_at_the_boundary() {
        // Errors are compared by the phrase that tells the user what is wrong.
        let phrase = |message: String| {
            ["not an http", "names no host"]
                .into_iter()
                .find(|p| message.contains(p))
                .unwrap_or("another message")
        };
        grid_core::testing::check(
            &[
                (
                    "plain",
                    "http://127.0.0.1:5002",
                    Ok("http://127.0.0.1:5002".to_string()),
                ),
                (
                    "trailing slash",
                    "https://api.example/v1/",
                    Ok("https://api.example/v1".to_string()),
                ),
                ("no scheme", "127.0.0.1:5002", Err("not an http")),
                ("no host", "http://", Err("names no host")),
                ("other scheme", "ftp://x", Err("not an http")),
            ],
            |input: &&str| parse_base_url(input).map_err(phrase),
        );
    }
}
