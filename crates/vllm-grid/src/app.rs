//! What each subcommand does.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use grid_container::{
    Backend, DockerBackend, DockerBackendConfig, ProcessBackend, ProcessBackendConfig, Profile,
    Redactor, SweepOptions,
};
use grid_plan::{Plan, Retries};
use grid_search::archive::{archive_run, compare, open_archive};
use grid_search::store::{RunStore, new_run_id, read_json};
use grid_search::{SearchMode, SearchOptions, SearchOutcome, SearchSetup};

use crate::cli::{BackendKind, CleanupScope, Cli, Command};
use crate::error::{AppError, EXIT_INTERRUPTED, EXIT_NO_VALID_CONFIG, EXIT_NOT_CONFIRMED, EXIT_OK};
use crate::signals::Signals;
use crate::ui;

/// The shipped plan and simulator profile, for a dry run from any directory.
const EMBEDDED_PLAN: &str = include_str!("../../../grid_search_configs.json");
const EMBEDDED_SIM_PROFILE: &str = include_str!("../../../profiles/sim.yml");
const EMBEDDED_PLAN_LABEL: &str = "embedded:grid_search_configs.json";
const EMBEDDED_SIM_LABEL: &str = "embedded:profiles/sim.yml";

/// How long a graceful stop may take after the first signal before the
/// servers are killed at once: the teardown grace plus a margin.
const STOP_GRACE: Duration = Duration::from_secs(45);

pub fn main(cli: Cli) -> Result<u8, AppError> {
    ui::init_tracing(cli.verbose);
    // Secrets for a simulated run must be in the environment before any
    // thread exists (setting the environment is not thread-safe).
    prepare_simulated_environment(&cli)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| AppError::Runtime { source })?;
    let code = runtime.block_on(run(cli));
    // Do not wait for stray blocking tasks (a hung log reader) at exit.
    runtime.shutdown_timeout(Duration::from_secs(2));
    code
}

async fn run(cli: Cli) -> Result<u8, AppError> {
    let logs = cli.logs_dir.clone();
    match cli.command {
        Command::Plan {
            configs,
            profile,
            show_commands,
        } => plan_command(&configs, profile.as_deref(), show_commands),
        Command::Search {
            configs,
            profile,
            backend,
            run_id,
            dry_run,
            replace_foreign,
        } => {
            let backend_kind = backend.unwrap_or(if dry_run {
                BackendKind::Process
            } else {
                BackendKind::Docker
            });
            let run_id = run_id.unwrap_or_else(new_run_id);
            let (plan_path, plan) = load_plan(&configs, dry_run)?;
            let plan = if dry_run { dry_run_plan(plan) } else { plan };
            let (profile_file, profile_text, profile) = if dry_run {
                dry_run_profile(profile.as_deref(), &plan_path)?
            } else {
                let path = match profile {
                    Some(p) => p,
                    None => relative_to(&plan_path, &plan.profile),
                };
                load_profile_file(&path)?
            };
            let options = SearchOptions {
                mode: SearchMode::New,
                replace_foreign,
                ..SearchOptions::default()
            };
            let inputs = SearchInputs {
                run_id,
                plan_path,
                plan,
                profile_file,
                profile_text,
                profile,
                simulated: dry_run,
            };
            start_search(&logs, backend_kind, inputs, &options).await
        }
        Command::Resume {
            run_id,
            allow_changes,
            replace_foreign,
        } => {
            let store = RunStore::at(&logs, &run_id)?;
            let manifest = store.read_manifest()?;
            let (plan_path, plan) = if manifest.plan_file == EMBEDDED_PLAN_LABEL
                || !Path::new(&manifest.plan_file).exists()
            {
                if manifest.plan_file != EMBEDDED_PLAN_LABEL {
                    tracing::warn!(file = %manifest.plan_file, "the plan file is gone; resuming with the plan recorded in the manifest");
                }
                (PathBuf::from(&manifest.plan_file), manifest.plan.clone())
            } else {
                let (path, plan) = load_plan(Path::new(&manifest.plan_file), false)?;
                let plan = if manifest.simulated {
                    dry_run_plan(plan)
                } else {
                    plan
                };
                (path, plan)
            };
            let (profile_file, profile_text, profile) = if manifest.profile_file
                == EMBEDDED_SIM_LABEL
            {
                parse_embedded_sim()?
            } else if Path::new(&manifest.profile_file).exists() {
                load_profile_file(Path::new(&manifest.profile_file))?
            } else {
                tracing::warn!(file = %manifest.profile_file, "the profile is gone; resuming with the copy in the run directory");
                let (_, text, profile) = load_profile_file(&store.profile_copy_path())?;
                (manifest.profile_file.clone(), text, profile)
            };
            let kind = if manifest.backend == "docker" {
                BackendKind::Docker
            } else {
                BackendKind::Process
            };
            let options = SearchOptions {
                mode: SearchMode::Resume { allow_changes },
                replace_foreign,
                ..SearchOptions::default()
            };
            let inputs = SearchInputs {
                run_id,
                plan_path,
                plan,
                profile_file,
                profile_text,
                profile,
                simulated: manifest.simulated,
            };
            start_search(&logs, kind, inputs, &options).await
        }
        Command::Status { run_id } => {
            let store = RunStore::at(&logs, &run_id)?;
            let status = grid_search::status::run_status(&store)?;
            print!("{}", status.render());
            Ok(EXIT_OK)
        }
        Command::Report { run_id } => {
            let store = RunStore::at(&logs, &run_id)?;
            let files = grid_search::write_report(&store)?;
            println!("{}", champion_line(&files.report));
            println!("report: {}", files.markdown.display());
            println!("json:   {}", files.json.display());
            for chart in &files.charts {
                println!("chart:  {}", chart.display());
            }
            Ok(EXIT_OK)
        }
        Command::Archive { run_id } => {
            let store = RunStore::at(&logs, &run_id)?;
            // Without the profile the redactor would not know which
            // environment values are secrets: refuse rather than archive
            // them unredacted.
            let profile_path = store.profile_copy_path();
            let profile_text = std::fs::read_to_string(&profile_path).map_err(|source| {
                AppError::ReadProfileCopy {
                    path: profile_path.clone(),
                    source,
                }
            })?;
            let redactor = environment_redactor(&profile_text);
            let dir = archive_run(&store, &cli.archives_dir, &redactor)?;
            println!("archived run {run_id} to {}", dir.display());
            println!("index: {}", cli.archives_dir.join("INDEX.md").display());
            Ok(EXIT_OK)
        }
        Command::Reproduce {
            dir,
            profile,
            backend,
            run_id,
        } => reproduce_command(&logs, &dir, profile.as_deref(), backend, run_id).await,
        Command::Bench {
            base_url,
            model,
            api_key_env,
            only,
            out,
            battery,
            seed,
        } => bench_command(base_url, model, api_key_env, only, out, battery, seed).await,
        Command::Cleanup { backend } => cleanup_command(&logs, backend).await,
        // Dispatched in main before parsing; reached only through odd
        // argument orders such as `vllm-grid -v sim`.
        Command::Sim { args } => {
            let code = tokio::task::spawn_blocking(move || {
                vllm_sim::run_cli(args.into_iter().map(std::ffi::OsString::from))
            })
            .await
            .map_err(|e| AppError::BadInput(format!("the simulator stopped: {e}")))?;
            Ok(if code == std::process::ExitCode::SUCCESS {
                0
            } else {
                1
            })
        }
    }
}

// ---------------------------------------------------------------------------
// Plans and profiles.

fn load_plan(path: &Path, dry_run: bool) -> Result<(PathBuf, Plan), AppError> {
    let (label, text) = match std::fs::read_to_string(path) {
        Ok(text) => (
            std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
            text,
        ),
        Err(err)
            if dry_run
                && err.kind() == std::io::ErrorKind::NotFound
                && path == Path::new("grid_search_configs.json") =>
        {
            tracing::info!("no grid_search_configs.json here; the dry run uses the shipped plan");
            (
                PathBuf::from(EMBEDDED_PLAN_LABEL),
                EMBEDDED_PLAN.to_string(),
            )
        }
        Err(source) => {
            return Err(AppError::ReadPlan {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let plan = grid_plan::parse_plan(&text).map_err(|source| AppError::Plan {
        path: path.to_path_buf(),
        source,
    })?;
    for warning in &plan.warnings {
        tracing::warn!("{}: {warning}", path.display());
    }
    Ok((label, plan))
}

/// A path from the plan, relative to the plan file's directory.
fn relative_to(plan_path: &Path, target: &str) -> PathBuf {
    let target = Path::new(target);
    if target.is_absolute() {
        return target.to_path_buf();
    }
    match plan_path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && plan_path.exists() => dir.join(target),
        _ => target.to_path_buf(),
    }
}

/// What a new or resumed search runs: the plan and profile as loaded.
struct SearchInputs {
    run_id: String,
    plan_path: PathBuf,
    plan: Plan,
    profile_file: String,
    profile_text: String,
    profile: Profile,
    simulated: bool,
}

/// Checks the profile's secrets, connects the backend, then runs (or
/// resumes) the search and writes its report.
async fn start_search(
    logs: &Path,
    kind: BackendKind,
    inputs: SearchInputs,
    options: &SearchOptions,
) -> Result<u8, AppError> {
    preflight_secrets(&inputs.profile)?;
    let backend = make_backend(kind, logs).await?;
    let battery = grid_search::battery::battery_config(&inputs.plan.battery)?;
    let image = image_fingerprint(&backend, &inputs.profile).await;
    let setup = SearchSetup {
        logs_root: logs.to_path_buf(),
        run_id: inputs.run_id,
        plan_file: inputs.plan_path.display().to_string(),
        plan: inputs.plan,
        profile_file: inputs.profile_file,
        profile_text: inputs.profile_text,
        profile: inputs.profile,
        image,
        simulated: inputs.simulated,
        battery,
    };
    search_and_report(&backend, &setup, options).await
}

fn load_profile_file(path: &Path) -> Result<(String, String, Profile), AppError> {
    let text = std::fs::read_to_string(path).map_err(|source| AppError::Profile {
        path: path.to_path_buf(),
        source: grid_container::ProfileError::Read {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let loaded = grid_container::load_profile(path).map_err(|source| AppError::Profile {
        path: path.to_path_buf(),
        source,
    })?;
    for warning in &loaded.warnings {
        tracing::warn!("{}: {warning}", path.display());
    }
    let label = std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string();
    Ok((label, text, loaded.profile))
}

fn parse_embedded_sim() -> Result<(String, String, Profile), AppError> {
    let loaded = grid_container::parse_profile(EMBEDDED_SIM_PROFILE, EMBEDDED_SIM_LABEL).map_err(
        |source| AppError::Profile {
            path: PathBuf::from(EMBEDDED_SIM_LABEL),
            source,
        },
    )?;
    let mut profile = loaded.profile;
    profile.base_dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    Ok((
        EMBEDDED_SIM_LABEL.to_string(),
        EMBEDDED_SIM_PROFILE.to_string(),
        profile,
    ))
}

/// The dry run's profile: --profile, else profiles/sim.yml here or next to
/// the plan, else the copy built into the binary.
fn dry_run_profile(
    given: Option<&Path>,
    plan_path: &Path,
) -> Result<(String, String, Profile), AppError> {
    if let Some(path) = given {
        return load_profile_file(path);
    }
    let candidates = [
        PathBuf::from("profiles/sim.yml"),
        relative_to(plan_path, "profiles/sim.yml"),
    ];
    for candidate in candidates {
        if candidate.exists() {
            return load_profile_file(&candidate);
        }
    }
    parse_embedded_sim()
}

/// The dry run's battery: every benchmark, sized so that the default
/// 12-config grid finishes in about two minutes on a 2-core machine against
/// the simulator at `--sim-time-scale 0.02`. Keys the plan's own `battery`
/// section sets are laid over these.
pub fn dry_run_battery() -> serde_json::Value {
    // The study's counts where they are cheap on a time-scaled simulator
    // (kv_cache 5 x 5, 15-turn conversations x 3, 20 stability requests with
    // the study's output lengths, concurrency levels 1/5/10/32); the
    // wall-clock bounds (concurrency seconds per level, stability interval)
    // are shortened, since they do not scale with --sim-time-scale.
    serde_json::json!({
        "request_timeout_s": 20.0,
        "min_successful_samples": 3,
        "bootstrap_resamples": 500,
        "kv_cache": { "iterations": 5, "turns": 5, "prefix_words": 1500, "turn_words": 12,
                      "max_tokens": 16, "equal_length_variant": true },
        "long_conversation": { "iterations": 3, "turns": 15, "user_words": 30, "max_tokens": 24 },
        "reasoning": { "max_tokens": 256, "repetitions": 1 },
        "tool_calling": { "max_tokens": 256, "repetitions": 1 },
        "stability": { "requests": 20, "interval_s": 0.1, "short_output_tokens": [50, 100],
                       "long_output_tokens": [800, 900], "compare_window": 5, "prompt_words": 20 },
        "concurrency": { "levels": [1, 5, 10, 32], "duration_s": 2.0, "max_requests_per_level": 64,
                         "turns_per_conversation": 2, "prompt_words": 40, "max_tokens": 32 },
        "gpu_profile": { "standalone_duration_s": 0.5 }
    })
}

fn merge_json(base: &mut serde_json::Value, overlay: &serde_json::Value) {
    match (base, overlay) {
        (serde_json::Value::Object(base), serde_json::Value::Object(overlay)) => {
            for (key, value) in overlay {
                merge_json(
                    base.entry(key.clone()).or_insert(serde_json::Value::Null),
                    value,
                );
            }
        }
        (base, overlay) => *base = overlay.clone(),
    }
}

/// The plan as a dry run runs it: the dry-run battery under the plan's own
/// battery keys, and limits that suit a simulator that starts in a second.
pub fn dry_run_plan(mut plan: Plan) -> Plan {
    let mut battery = dry_run_battery();
    merge_json(&mut battery, &plan.battery);
    plan.battery = battery;
    plan.limits.health_timeout = plan.limits.health_timeout.min(Duration::from_secs(60));
    plan.limits.per_config_timeout = plan.limits.per_config_timeout.min(Duration::from_secs(180));
    plan.limits.search_timeout = plan.limits.search_timeout.min(Duration::from_secs(1800));
    plan.limits.transient_retries = plan.limits.transient_retries.min(Retries::saturating(1));
    plan.limits.retry_backoff = plan.limits.retry_backoff.min(Duration::from_millis(200));
    plan
}

/// A missing secret is bad input, found before anything starts.
fn preflight_secrets(profile: &Profile) -> Result<(), AppError> {
    match profile.resolve(&|name| std::env::var(name).ok()) {
        Ok(_) => Ok(()),
        Err(grid_container::ResolveError::MissingVariables { variables, .. }) => {
            Err(AppError::MissingSecret {
                path: profile.source.clone(),
                variables: variables
                    .iter()
                    .map(|v| format!("{} ({})", v.name, v.reason))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
        Err(err) => Err(AppError::BadInput(err.to_string())),
    }
}

/// For a simulated run (dry run, or resuming/reproducing one), give every
/// variable the profile references and the environment lacks a random value
/// for this process, so the profile's `${VAR}` expansion runs exactly as in
/// a real run (the API key reaches the simulator through it).
fn prepare_simulated_environment(cli: &Cli) -> Result<(), AppError> {
    let profile_text: Option<String> = match &cli.command {
        Command::Search {
            dry_run: true,
            profile,
            configs,
            ..
        } => {
            let candidates: Vec<PathBuf> = match profile {
                Some(p) => vec![p.clone()],
                None => vec![
                    PathBuf::from("profiles/sim.yml"),
                    relative_to(configs, "profiles/sim.yml"),
                ],
            };
            Some(
                candidates
                    .iter()
                    .find_map(|p| std::fs::read_to_string(p).ok())
                    .unwrap_or_else(|| EMBEDDED_SIM_PROFILE.to_string()),
            )
        }
        Command::Resume { run_id, .. } => {
            let store = RunStore::at(&cli.logs_dir, run_id)?;
            match read_json::<grid_search::Manifest>(&store.manifest_path()) {
                Ok(m) if m.simulated => Some(
                    std::fs::read_to_string(&m.profile_file)
                        .or_else(|_| std::fs::read_to_string(store.profile_copy_path()))
                        .unwrap_or_else(|_| EMBEDDED_SIM_PROFILE.to_string()),
                ),
                _ => None,
            }
        }
        Command::Reproduce { dir, profile, .. } => {
            match read_json::<grid_search::Manifest>(&dir.join("manifest.json")) {
                Ok(m) if m.simulated => profile
                    .as_ref()
                    .and_then(|p| std::fs::read_to_string(p).ok())
                    .or_else(|| std::fs::read_to_string(dir.join("profile.yml")).ok()),
                _ => None,
            }
        }
        _ => None,
    };
    let Some(text) = profile_text else {
        return Ok(());
    };
    let Ok(loaded) = grid_container::parse_profile(&text, "simulated profile") else {
        // Reported properly once the profile is loaded for real.
        return Ok(());
    };
    for name in loaded.profile.referenced_variables() {
        if std::env::var_os(&name).is_none() {
            set_env(&name, &random_token());
            tracing::info!(variable = %name, "simulated run: generated a random value for this run");
        }
    }
    Ok(())
}

#[allow(unsafe_code)]
fn set_env(name: &str, value: &str) {
    // SAFETY: called from `main` before the tokio runtime or any other
    // thread exists, so nothing reads the environment concurrently.
    unsafe { std::env::set_var(name, value) };
}

fn random_token() -> String {
    let mut bytes = [0u8; 16];
    let from_os = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_ok();
    if !from_os {
        let seed = format!(
            "{:?}:{}:{:p}",
            std::time::SystemTime::now(),
            std::process::id(),
            &bytes
        );
        bytes[..8].copy_from_slice(&grid_core::fnv1a64(seed.as_bytes()).to_le_bytes());
        let second = grid_core::fnv1a64(&bytes[..8]).to_le_bytes();
        bytes[8..].copy_from_slice(&second);
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sim-{hex}")
}

/// Values of the profile's variables in this environment, to scrub from
/// archived files.
fn environment_redactor(profile_text: &str) -> Redactor {
    let mut redactor = Redactor::new();
    if let Ok(loaded) = grid_container::parse_profile(profile_text, "archived profile") {
        for name in loaded.profile.referenced_variables() {
            if let Ok(value) = std::env::var(&name) {
                let upper = name.to_ascii_uppercase();
                if ["KEY", "TOKEN", "SECRET", "PASSWORD"]
                    .iter()
                    .any(|w| upper.contains(w))
                {
                    redactor.add_always(&value);
                } else {
                    redactor.add(&value);
                }
            }
        }
    }
    redactor
}

// ---------------------------------------------------------------------------
// Backends.

async fn make_backend(kind: BackendKind, logs: &Path) -> Result<Backend, AppError> {
    match kind {
        BackendKind::Process => {
            let mut config = ProcessBackendConfig::new(logs.join(".pids"));
            // `vllm-sim` in a profile runs the simulator built into this binary.
            if let Ok(exe) = std::env::current_exe() {
                config.program_overrides.insert(
                    "vllm-sim".to_string(),
                    vec![exe.display().to_string(), "sim".to_string()],
                );
            }
            Ok(Backend::Process(ProcessBackend::new(config)))
        }
        BackendKind::Docker => {
            let backend = DockerBackend::connect(DockerBackendConfig::default())
                .await
                .map_err(|source| AppError::Docker { source })?;
            Ok(Backend::Docker(backend))
        }
    }
}

/// What the server runs: the image ID on docker; the program's path, size
/// and modification time on the process backend.
async fn image_fingerprint(backend: &Backend, profile: &Profile) -> Option<String> {
    match backend {
        Backend::Docker(docker) => {
            let image = docker.client().inspect_image(&profile.image).await.ok()?;
            Some(format!(
                "{} {}",
                profile.image,
                image.id.unwrap_or_else(|| "unknown-id".to_string())
            ))
        }
        Backend::Process(process) => {
            // The program path may hold ${VAR} references (cpu-tiny.yml's
            // venv): fingerprint the file the launch will really run. A
            // profile that cannot resolve has no fingerprint; the launch's
            // preflight reports the missing variable itself.
            let resolved_profile = profile.resolve(&|name| std::env::var(name).ok()).ok()?;
            let entry = resolved_profile
                .process_entrypoint
                .or(resolved_profile.entrypoint)
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| process.config().default_entrypoint.clone());
            let program = entry.first()?.clone();
            let resolved = match process.config().program_overrides.get(&program) {
                Some(replacement) if !replacement.is_empty() => PathBuf::from(&replacement[0]),
                _ => which(&program).unwrap_or_else(|| PathBuf::from(&program)),
            };
            // A program we cannot stat has no fingerprint (as an image the
            // engine cannot inspect), rather than a made-up size and mtime of 0.
            let meta = std::fs::metadata(&resolved).ok()?;
            let modified = meta
                .modified()
                .ok()?
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_secs();
            Some(format!(
                "process:{program}={} size={} mtime={modified}",
                resolved.display(),
                meta.len()
            ))
        }
    }
}

fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

// ---------------------------------------------------------------------------
// Running a search.

/// Runs the search under the signal handler. `None`: killed by a second
/// signal (the search future was dropped, its guards removed the server).
async fn drive(
    backend: &Backend,
    setup: &SearchSetup,
    options: &SearchOptions,
) -> Result<(Option<SearchOutcome>, bool), AppError> {
    let signals = Signals::install(STOP_GRACE).map_err(|source| AppError::Runtime { source })?;
    if let Err(err) = ui::set_run_log(&setup.logs_root.join(&setup.run_id)) {
        tracing::warn!(error = %err, "cannot open run.log; logging to the console only");
    }
    tracing::info!(
        run_id = %setup.run_id,
        backend = backend.name(),
        simulated = setup.simulated,
        configs = setup.plan.configs.len(),
        "vllm-grid {} starting",
        env!("CARGO_PKG_VERSION")
    );
    let progress = ui::UiProgress::new();
    let search = grid_search::run_search(backend, setup, options, &signals.soft, &progress);
    let outcome = tokio::select! {
        result = search => Some(result),
        _ = signals.hard.cancelled() => None,
    };
    progress.finish();
    let interrupted = signals.received().is_some();
    match outcome {
        Some(result) => Ok((Some(result?), interrupted)),
        None => Ok((None, true)),
    }
}

fn champion_line(report: &grid_search::report::ReportJson) -> String {
    let simulated = if report.simulated { " (SIMULATED)" } else { "" };
    match &report.champion {
        Some(c) => format!(
            "champion{simulated}: {} [{}] KV-cache acceleration ×{:.2} (95 % CI {:.2}–{:.2})",
            c.name,
            c.id,
            c.kv_cache_acceleration,
            c.kv_cache_acceleration_ci95[0],
            c.kv_cache_acceleration_ci95[1]
        ),
        None => format!("no champion{simulated}: no config passed every gate"),
    }
}

async fn search_and_report(
    backend: &Backend,
    setup: &SearchSetup,
    options: &SearchOptions,
) -> Result<u8, AppError> {
    let (outcome, interrupted) = drive(backend, setup, options).await?;
    let Some(outcome) = outcome else {
        eprintln!(
            "vllm-grid: killed at once; resume with `vllm-grid resume {}`",
            setup.run_id
        );
        return Ok(EXIT_INTERRUPTED);
    };
    if interrupted || outcome.interrupted {
        eprintln!(
            "vllm-grid: interrupted; the run is resumable: `vllm-grid resume {}`",
            setup.run_id
        );
        return Ok(EXIT_INTERRUPTED);
    }
    println!(
        "run {} finished: {}",
        outcome.run_id,
        champion_line(&outcome.report.report)
    );
    println!("report: {}", outcome.report.markdown.display());
    Ok(if outcome.champion.is_some() {
        EXIT_OK
    } else {
        EXIT_NO_VALID_CONFIG
    })
}

// ---------------------------------------------------------------------------
// Other subcommands.

fn shell_quote(token: &str) -> String {
    if !token.is_empty()
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@${}+".contains(c))
    {
        token.to_string()
    } else {
        format!("'{}'", token.replace('\'', "'\\''"))
    }
}

fn plan_command(
    configs: &Path,
    profile: Option<&Path>,
    show_commands: bool,
) -> Result<u8, AppError> {
    let (plan_path, plan) = load_plan(configs, false)?;
    println!(
        "plan {}: {} config(s), {} repeat(s) each, profile {}",
        configs.display(),
        plan.configs.len(),
        plan.repeats,
        plan.profile
    );
    let width = plan
        .configs
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:>3}  {:<width$}  {:<16}  {:>5}  {:<7}  {:<6}  other",
        "#", "name", "id", "gmu", "chunked", "prefix"
    );
    let on_off = |v: Option<bool>| match v {
        Some(true) => "on",
        Some(false) => "off",
        None => "-",
    };
    for (i, c) in plan.configs.iter().enumerate() {
        let s = &c.settings;
        let mut other = s.clone();
        other.gpu_memory_utilization = None;
        other.enable_chunked_prefill = None;
        other.enable_prefix_caching = None;
        println!(
            "{:>3}  {:<width$}  {:<16}  {:>5}  {:<7}  {:<6}  {}",
            i + 1,
            c.name,
            c.id,
            s.gpu_memory_utilization
                .map(|g| format!("{g:.2}"))
                .unwrap_or_else(|| "-".to_string()),
            on_off(s.enable_chunked_prefill),
            on_off(s.enable_prefix_caching),
            other.summary()
        );
    }
    for e in &plan.excluded {
        println!(
            "excluded: {} [{}] by {}: {}",
            e.name, e.id, e.rule, e.reason
        );
    }
    for w in &plan.warnings {
        println!("warning: {w}");
    }
    if show_commands {
        let path = match profile {
            Some(p) => p.to_path_buf(),
            None => relative_to(&plan_path, &plan.profile),
        };
        let (_, _, profile) = load_profile_file(&path)?;
        println!(
            "\nserver commands (profile {}, image {}):",
            path.display(),
            profile.image
        );
        // The process backend runs its own program (an image's entrypoint
        // does not exist outside the image): say so, or the lines below
        // would name a program the process backend never starts.
        if let Some(program) = &profile.process.entrypoint {
            println!(
                "  (the process backend runs `{}` with the same arguments)",
                program.join(" ")
            );
        }
        for c in &plan.configs {
            let command = grid_container::render_command(&profile.command, &c.flags());
            let entry = profile
                .entrypoint
                .clone()
                .unwrap_or_else(|| vec!["vllm".to_string(), "serve".to_string()]);
            let line: Vec<String> = entry
                .iter()
                .chain(command.iter())
                .map(|t| shell_quote(t))
                .collect();
            println!("{}:\n  {}", c.name, line.join(" "));
        }
    }
    Ok(EXIT_OK)
}

async fn reproduce_command(
    logs: &Path,
    dir: &Path,
    profile_override: Option<&Path>,
    backend_kind: Option<BackendKind>,
    run_id: Option<String>,
) -> Result<u8, AppError> {
    let archive = open_archive(dir)?;
    let manifest = &archive.manifest;
    let (profile_file, profile_text, profile) = match profile_override {
        Some(path) => load_profile_file(path)?,
        None => {
            let path = dir.join("profile.yml");
            load_profile_file(&path)?
        }
    };
    preflight_secrets(&profile)?;
    let kind = backend_kind.unwrap_or(if manifest.backend == "docker" {
        BackendKind::Docker
    } else {
        BackendKind::Process
    });
    let backend = make_backend(kind, logs).await?;
    let battery = grid_search::battery::battery_config(&manifest.battery)?;
    let image = image_fingerprint(&backend, &profile).await;
    let run_id = run_id.unwrap_or_else(|| format!("reproduce-{}", new_run_id()));
    // The archived profile's path: a reproduction from the archive's own
    // copy counts as the same profile (its hash is what is compared).
    let setup = SearchSetup {
        logs_root: logs.to_path_buf(),
        run_id: run_id.clone(),
        plan_file: dir.join("manifest.json").display().to_string(),
        plan: manifest.plan.clone(),
        profile_file,
        profile_text,
        profile,
        image,
        simulated: manifest.simulated,
        battery,
    };
    let options = SearchOptions {
        mode: SearchMode::Reproduce,
        ..SearchOptions::default()
    };
    let (outcome, interrupted) = drive(&backend, &setup, &options).await?;
    let Some(outcome) = outcome.filter(|o| !o.interrupted && !interrupted) else {
        eprintln!(
            "vllm-grid: reproduction interrupted; resume it with `vllm-grid resume {run_id}`"
        );
        return Ok(EXIT_INTERRUPTED);
    };
    let store = RunStore::at(logs, &run_id)?;
    let new_manifest = store.read_manifest()?;
    let reproduction = compare(&archive, &new_manifest, &outcome.report.ranking);
    reproduction.write(&store)?;
    print!("{}", reproduction.render());
    println!(
        "\nreproduction: {}",
        store.dir.join("reproduction.md").display()
    );
    Ok(if reproduction.champion_holds {
        EXIT_OK
    } else {
        EXIT_NOT_CONFIRMED
    })
}

async fn bench_command(
    base_url: String,
    model: String,
    api_key_env: Option<String>,
    only: Vec<String>,
    out: Option<PathBuf>,
    battery: Option<PathBuf>,
    seed: u64,
) -> Result<u8, AppError> {
    let api_key = match api_key_env {
        Some(name) => Some(grid_core::Secret::new(
            std::env::var(&name).map_err(|_| AppError::MissingApiKeyEnv { name: name.clone() })?,
        )),
        None => None,
    };
    let only = if only.is_empty() {
        None
    } else {
        Some(
            only.iter()
                .map(|name| {
                    name.parse::<grid_bench::BenchmarkName>()
                        .map_err(|e| AppError::BadInput(format!("--only: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?,
        )
    };
    let config = match battery {
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|source| AppError::ReadBattery {
                path: path.clone(),
                source,
            })?;
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| AppError::BadInput(format!("{}: not JSON: {e}", path.display())))?;
            grid_search::battery::battery_config(&value)?
        }
        None => grid_bench::BatteryConfig::default(),
    };
    let signals = Signals::install(STOP_GRACE).map_err(|source| AppError::Runtime { source })?;
    let endpoint = grid_bench::Endpoint {
        base_url,
        model,
        api_key,
    };
    let options = grid_bench::RunOptions {
        only,
        out_dir: out.clone(),
        progress: ui::fancy()
            .then(|| Arc::new(ui::BatteryBars::new()) as Arc<dyn grid_bench::BatteryProgress>),
        cancel: signals.soft.clone(),
        seed,
    };
    let report = tokio::select! {
        result = grid_bench::run_battery_isolated(endpoint, config, options) => result,
        _ = signals.hard.cancelled() => return Ok(EXIT_INTERRUPTED),
    };
    let report = match report {
        Ok(report) => report,
        Err(grid_bench::BatteryError::Cancelled) => return Ok(EXIT_INTERRUPTED),
        Err(source) => return Err(AppError::Battery { source }),
    };
    print!("{}", grid_bench::render_table(&report));
    if let Some(out) = out {
        println!("results: {}", out.display());
    }
    Ok(EXIT_OK)
}

async fn cleanup_command(logs: &Path, scope: CleanupScope) -> Result<u8, AppError> {
    let mut removed = 0;
    if matches!(scope, CleanupScope::Process | CleanupScope::All) {
        let backend = make_backend(BackendKind::Process, logs).await?;
        removed += sweep_and_print(&backend, "process").await?;
    }
    if matches!(scope, CleanupScope::Docker | CleanupScope::All) {
        match make_backend(BackendKind::Docker, logs).await {
            Ok(backend) => removed += sweep_and_print(&backend, "container").await?,
            Err(err) if scope == CleanupScope::All => {
                eprintln!("vllm-grid: docker not swept: {err}");
            }
            Err(err) => return Err(err),
        }
    }
    println!("cleanup: removed {removed} leftover server(s)");
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
        println!(
            "removed {what} {} (run {}, config {})",
            item.id, item.run_id, item.config_id
        );
    }
    for item in &report.skipped_live_owner {
        println!(
            "kept {what} {} of run {}: its vllm-grid still runs",
            item.id, item.run_id
        );
    }
    Ok(report.removed.len())
}
