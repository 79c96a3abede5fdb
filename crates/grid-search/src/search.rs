//! The search loop and resume.
//!
//! Per config and repeat: launch through the container manager, run the
//! battery, tear down, record. A config whose server cannot start is
//! recorded with its diagnosed class and log tail and the search goes on;
//! transient failures are retried with exponential backoff up to the plan's
//! limit; a deadline per config and one for the whole search cut work short
//! (recorded, never waited out); nothing ever prompts.
//!
//! Failures that no config could get past (the image is missing, the Docker
//! daemon is gone, a secret is unset) stop the search instead of recording
//! every config as failed; the run stays resumable.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use grid_container::{Backend, FailureClass, LaunchFailure, LaunchSpec, Profile, SweepOptions};
use grid_plan::{Plan, PlannedConfig};
use tokio_util::sync::CancellationToken;

use crate::SearchError;
use crate::progress::{Phase, Progress, SearchEvent};
use crate::rank::ConfigRef;
use crate::report::{ReportFiles, write_report};
use crate::store::{
    ConfigResult, ConfigTiming, FailureRecord, HostFacts, JournalEvent, Manifest, RepeatResult,
    RunLock, RunOutcome, RunStore, STORE_FORMAT_VERSION, Seeds, TOOL_VERSION, derive_seed,
    now_unix_ms, write_atomic,
};

/// What to run: prepared by the caller from the plan file and the profile.
#[derive(Debug, Clone)]
pub struct SearchSetup {
    /// Parent of the run directories (normally `logs/`).
    pub logs_root: PathBuf,
    pub run_id: String,
    /// The plan file as the user gave it (shown and recorded).
    pub plan_file: String,
    pub plan: Plan,
    /// The profile file as given, its text (hashed and copied into the run
    /// directory; it holds `${VAR}` references, never their values) and the
    /// parsed profile.
    pub profile_file: String,
    pub profile_text: String,
    pub profile: Profile,
    /// The image ID (docker) or program fingerprint (process).
    pub image: Option<String>,
    /// True for a dry run on the simulator.
    pub simulated: bool,
    /// The effective battery parameters.
    pub battery: grid_bench::BatteryConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchMode {
    /// A new run; refused if the run ID exists.
    New,
    /// Continue a run; refused if its setup changed, unless allowed.
    Resume { allow_changes: bool },
    /// Reproduce an archived run into a new run ID (no resume checks).
    Reproduce,
}

#[derive(Debug, Clone)]
pub struct SearchOptions {
    pub mode: SearchMode,
    /// Remove a same-named container vllm-grid did not create.
    pub replace_foreign: bool,
    /// SIGTERM-to-SIGKILL grace at teardown.
    pub grace_period: Duration,
    /// Resume: run the configs whose result is a failure again (set by
    /// `vllm-grid resume --retry-failed`; the resume logic is grid-search's).
    pub retry_failed: bool,
    /// Values for the profile's `${VAR}` that take precedence over the
    /// environment (the dry run's generated secrets), passed to every launch
    /// as [`LaunchSpec::variables`].
    pub variables: std::collections::BTreeMap<String, grid_core::Secret>,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            mode: SearchMode::New,
            replace_foreign: false,
            grace_period: LaunchSpec::DEFAULT_GRACE_PERIOD,
            retry_failed: false,
            variables: std::collections::BTreeMap::new(),
        }
    }
}

/// How a search ended.
#[derive(Debug)]
pub struct SearchOutcome {
    pub run_id: String,
    pub dir: PathBuf,
    pub champion: Option<ConfigRef>,
    /// Stopped by a signal; the run is resumable.
    pub interrupted: bool,
    /// Configs run by this invocation.
    pub configs_run: usize,
    pub report: ReportFiles,
}

/// Whether a failure class blames the config (a gate rejection) rather than
/// the environment.
pub fn is_config_fault(class: &FailureClass) -> bool {
    matches!(
        class,
        FailureClass::GpuOutOfMemory
            | FailureClass::FreeMemoryBelowUtilization
            | FailureClass::KvCacheTooSmall
            | FailureClass::InvalidArgument
            | FailureClass::HostOutOfMemory
            | FailureClass::ExitedWithCode(_)
            | FailureClass::HealthTimeout
    )
}

/// Failures no config can get past: stop the search. `Some(bad_input)`.
fn stops_search(class: &FailureClass) -> Option<bool> {
    match class {
        FailureClass::MissingSecret | FailureClass::InvalidProfile => Some(true),
        FailureClass::MissingImage
        | FailureClass::MissingProgram
        | FailureClass::DaemonUnavailable
        | FailureClass::ForeignContainer => Some(false),
        _ => None,
    }
}

fn class_key(class: &FailureClass) -> String {
    match class {
        FailureClass::ExitedWithCode(_) => "exited_with_code".to_string(),
        other => serde_json::to_value(other)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| format!("{other:?}")),
    }
}

pub fn failure_record(failure: &LaunchFailure) -> FailureRecord {
    FailureRecord {
        class: class_key(&failure.class),
        class_name: failure.class.name(),
        message: failure.message.clone(),
        log_tail: failure.log_tail.clone(),
        transient: failure.transient,
        config_fault: is_config_fault(&failure.class),
    }
}

fn plain_failure(class: &str, message: String, config_fault: bool) -> FailureRecord {
    FailureRecord {
        class: class.to_string(),
        class_name: class.replace('_', " "),
        message,
        log_tail: Vec::new(),
        transient: false,
        config_fault,
    }
}

/// Build the manifest a setup would have.
pub fn manifest_for(setup: &SearchSetup, backend: &str) -> Result<Manifest, SearchError> {
    Ok(Manifest {
        format_version: STORE_FORMAT_VERSION,
        tool: "vllm-grid".to_string(),
        tool_version: TOOL_VERSION.to_string(),
        run_id: setup.run_id.clone(),
        created_unix_ms: now_unix_ms(),
        simulated: setup.simulated,
        sim_time_scale: setup
            .simulated
            .then(|| grid_container::flag_value(&setup.profile.command, "sim-time-scale"))
            .flatten()
            .and_then(|value| value.parse().ok()),
        backend: backend.to_string(),
        plan_file: setup.plan_file.clone(),
        plan: setup.plan.clone(),
        profile_file: setup.profile_file.clone(),
        profile_hash: profile_hash(&setup.profile_text),
        image: setup.image.clone(),
        battery: serde_json::to_value(&setup.battery).map_err(|source| SearchError::Encode {
            what: "battery parameters".to_string(),
            source,
        })?,
        seeds: Seeds::for_plan(&setup.plan),
        host: HostFacts::collect(),
    })
}

pub fn profile_hash(text: &str) -> String {
    format!("fnv1a64:{:016x}", grid_core::fnv1a64(text.as_bytes()))
}

/// Differences between a recorded manifest and a new setup.
pub fn setup_changes(old: &Manifest, new: &Manifest) -> Vec<String> {
    let mut changes = grid_plan::diff_plans(&old.plan, &new.plan).changes;
    if old.profile_hash != new.profile_hash {
        changes.push(format!(
            "profile changed: {} ({}) -> {} ({})",
            old.profile_file, old.profile_hash, new.profile_file, new.profile_hash
        ));
    }
    if old.image != new.image {
        changes.push(format!(
            "image changed: {} -> {}",
            old.image.as_deref().unwrap_or("unknown"),
            new.image.as_deref().unwrap_or("unknown")
        ));
    }
    if old.battery != new.battery {
        changes.push("effective battery parameters changed".to_string());
    }
    if old.backend != new.backend {
        changes.push(format!(
            "backend changed: {} -> {}",
            old.backend, new.backend
        ));
    }
    if old.simulated != new.simulated {
        changes.push(format!(
            "simulated changed: {} -> {}",
            old.simulated, new.simulated
        ));
    }
    changes
}

/// Run (or resume) a search. Returns when every config has a result, when
/// `cancel` fires (interrupted, resumable), or on an error that stops the
/// whole search.
pub async fn run_search(
    backend: &Backend,
    setup: &SearchSetup,
    options: &SearchOptions,
    cancel: &CancellationToken,
    progress: &dyn Progress,
) -> Result<SearchOutcome, SearchError> {
    let store = RunStore::at(&setup.logs_root, &setup.run_id)?;
    let fresh = manifest_for(setup, backend.name())?;
    let resumed;
    let _lock = match options.mode {
        SearchMode::New | SearchMode::Reproduce => {
            if store.exists() {
                return Err(SearchError::RunExists {
                    run_id: setup.run_id.clone(),
                    dir: store.dir.clone(),
                });
            }
            let lock = RunLock::acquire(&store)?;
            store.write_manifest(&fresh)?;
            write_atomic(&store.profile_copy_path(), setup.profile_text.as_bytes())?;
            resumed = false;
            lock
        }
        SearchMode::Resume { allow_changes } => {
            let old = store.read_manifest()?;
            let lock = RunLock::acquire(&store)?;
            let changes = setup_changes(&old, &fresh);
            if !changes.is_empty() {
                if !allow_changes {
                    return Err(SearchError::ChangedSinceStart {
                        run_id: setup.run_id.clone(),
                        changes,
                    });
                }
                for change in &changes {
                    tracing::warn!(change = %change, "resuming with a changed setup (--allow-changes)");
                    store.append_journal(JournalEvent::Warning {
                        message: format!("resumed with a change: {change}"),
                    })?;
                }
                let mut updated = fresh.clone();
                updated.created_unix_ms = old.created_unix_ms;
                store.write_manifest(&updated)?;
                write_atomic(&store.profile_copy_path(), setup.profile_text.as_bytes())?;
            }
            let journal = store.read_journal(true)?;
            for warning in &journal.warnings {
                tracing::warn!("{warning}");
                progress.event(&SearchEvent::Warning {
                    message: warning.clone(),
                });
            }
            resumed = true;
            lock
        }
    };

    // Servers left by a run whose process died (kill -9) go first.
    let swept = backend
        .sweep_leftovers(&SweepOptions::default())
        .await
        .map_err(|source| SearchError::Sweep { source })?;
    if !swept.removed.is_empty() {
        tracing::warn!(
            count = swept.removed.len(),
            "removed leftover servers of dead runs"
        );
        store.append_journal(JournalEvent::LeftoversSwept {
            removed: swept.removed.len(),
        })?;
    }

    let results = store.read_results()?;
    let plan = &setup.plan;
    let total = plan.configs.len();
    let done = plan
        .configs
        .iter()
        .filter(|c| results.contains_key(&c.id))
        .count();
    store.append_journal(JournalEvent::RunStarted {
        resumed,
        configs_total: total,
        configs_done: done,
    })?;
    tracing::info!(run_id = %setup.run_id, total, done, resumed, "search started");
    progress.event(&SearchEvent::RunStarted {
        run_id: setup.run_id.clone(),
        total,
        done,
    });

    // The search deadline runs from this invocation's start.
    let search_token = cancel.child_token();
    let search_deadline = plan.limits.search_timeout;
    let search_timer = {
        let token = search_token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(search_deadline).await;
            token.cancel();
        })
    };
    let context = ConfigContext {
        backend,
        setup,
        store: &store,
        options,
        progress,
    };
    let mut configs_run = 0;
    let mut interrupted = false;
    let mut first = true;
    for config in &plan.configs {
        if results.contains_key(&config.id) {
            continue;
        }
        if cancel.is_cancelled() {
            interrupted = true;
            break;
        }
        if !first {
            crate::failpoint::hit("between-configs");
        }
        first = false;
        if search_token.is_cancelled() {
            let now = now_unix_ms();
            let result = ConfigResult {
                format_version: STORE_FORMAT_VERSION,
                config: config.clone(),
                outcome: RunOutcome::Skipped,
                command: grid_container::render_command(&setup.profile.command, &config.flags()),
                failed_attempts: Vec::new(),
                repeats: Vec::new(),
                failure: Some(plain_failure(
                    "search_deadline",
                    format!(
                        "the search deadline ({} s, limits.search_timeout_s) passed before this config started",
                        plan.limits.search_timeout.as_secs_f64()
                    ),
                    false,
                )),
                timing: ConfigTiming::default(),
                started_unix_ms: now,
                finished_unix_ms: now,
            };
            store.write_result(&result)?;
            store.append_journal(JournalEvent::ConfigFinished {
                config_id: config.id.clone(),
                name: config.name.clone(),
                outcome: RunOutcome::Skipped,
            })?;
            progress.event(&SearchEvent::ConfigFinished {
                config: config.name.clone(),
                summary: "skipped: search deadline".to_string(),
            });
            continue;
        }
        match run_config(&context, config, cancel, &search_token).await? {
            ConfigRun::Done(result) => {
                store.write_result(&result)?;
                store.append_journal(JournalEvent::ConfigFinished {
                    config_id: config.id.clone(),
                    name: config.name.clone(),
                    outcome: result.outcome,
                })?;
                configs_run += 1;
                let summary = summary_line(&result);
                tracing::info!(config = %config.name, "{summary}");
                progress.event(&SearchEvent::ConfigFinished {
                    config: config.name.clone(),
                    summary,
                });
            }
            ConfigRun::Interrupted => {
                store.append_journal(JournalEvent::ConfigInterrupted {
                    config_id: config.id.clone(),
                    name: config.name.clone(),
                })?;
                interrupted = true;
                break;
            }
            ConfigRun::StopSearch(error) => {
                search_timer.abort();
                store.append_journal(JournalEvent::RunInterrupted {
                    reason: error.to_string(),
                })?;
                return Err(error);
            }
        }
    }
    search_timer.abort();

    let report = write_report(&store)?;
    let champion = report.ranking.champion.clone();
    if interrupted {
        store.append_journal(JournalEvent::RunInterrupted {
            reason: "cancelled by a signal".to_string(),
        })?;
        tracing::warn!(run_id = %setup.run_id, "search interrupted; resume with `vllm-grid resume {}`", setup.run_id);
    } else {
        store.append_journal(JournalEvent::RunFinished {
            champion: champion.as_ref().map(|c| c.name.clone()),
        })?;
    }
    Ok(SearchOutcome {
        run_id: setup.run_id.clone(),
        dir: store.dir.clone(),
        champion,
        interrupted,
        configs_run,
        report,
    })
}

fn summary_line(result: &ConfigResult) -> String {
    match result.outcome {
        RunOutcome::Completed => {
            let accel: Vec<String> = result
                .repeats
                .iter()
                .map(|r| {
                    r.measurement
                        .kv_cache_acceleration
                        .map(|a| format!("×{:.2}", a.median))
                        .unwrap_or_else(|| "not measured".to_string())
                })
                .collect();
            format!(
                "completed: KV-cache acceleration {} ({:.1} s)",
                accel.join(", "),
                result.timing.wall_s
            )
        }
        _ => {
            let failure = result
                .failure
                .as_ref()
                .map(|f| format!("{}: {}", f.class_name, f.message))
                .unwrap_or_default();
            let outcome = match result.outcome {
                RunOutcome::LaunchFailed => "server did not start",
                RunOutcome::Failed => "failed",
                RunOutcome::Skipped => "skipped",
                RunOutcome::Completed => "completed",
            };
            format!("{outcome}: {failure}")
        }
    }
}

struct ConfigContext<'a> {
    backend: &'a Backend,
    setup: &'a SearchSetup,
    store: &'a RunStore,
    options: &'a SearchOptions,
    progress: &'a dyn Progress,
}

enum ConfigRun {
    Done(Box<ConfigResult>),
    /// The user's cancel fired: no result, the config reruns on resume.
    Interrupted,
    StopSearch(SearchError),
}

/// Sleep that ends early when `token` fires; true if it slept through.
async fn sleep_unless(token: &CancellationToken, duration: Duration) -> bool {
    tokio::select! {
        _ = token.cancelled() => false,
        _ = tokio::time::sleep(duration) => true,
    }
}

async fn run_config(
    context: &ConfigContext<'_>,
    config: &PlannedConfig,
    user_cancel: &CancellationToken,
    search_token: &CancellationToken,
) -> Result<ConfigRun, SearchError> {
    let ConfigContext {
        backend,
        setup,
        store,
        options,
        progress,
    } = context;
    let plan = &setup.plan;
    let phase = |phase: Phase| {
        progress.event(&SearchEvent::Phase {
            config: config.name.clone(),
            phase,
        })
    };
    let started = Instant::now();
    let started_unix_ms = now_unix_ms();
    let command = grid_container::render_command(&setup.profile.command, &config.flags());
    let config_dir = store.config_dir(config);
    let mut timing = ConfigTiming::default();
    let mut repeats = Vec::new();
    let mut failed_attempts = Vec::new();

    // The config's own deadline: a child token fired by a timer.
    let token = search_token.child_token();
    let config_deadline_hit = Arc::new(AtomicBool::new(false));
    let timer = {
        let token = token.clone();
        let hit = config_deadline_hit.clone();
        let deadline = plan.limits.per_config_timeout;
        tokio::spawn(async move {
            tokio::time::sleep(deadline).await;
            hit.store(true, Ordering::SeqCst);
            token.cancel();
        })
    };
    // Why the token fired, once it has.
    let why_cut_short = || -> Option<FailureRecord> {
        if user_cancel.is_cancelled() {
            None
        } else if config_deadline_hit.load(Ordering::SeqCst) {
            Some(plain_failure(
                "config_deadline",
                format!(
                    "the config ran past its deadline ({} s, limits.per_config_timeout_s)",
                    plan.limits.per_config_timeout.as_secs_f64()
                ),
                false,
            ))
        } else {
            Some(plain_failure(
                "search_deadline",
                format!(
                    "the search deadline ({} s, limits.search_timeout_s) passed while this config ran",
                    plan.limits.search_timeout.as_secs_f64()
                ),
                false,
            ))
        }
    };

    let finish = |outcome: RunOutcome,
                  failure: Option<FailureRecord>,
                  repeats: Vec<RepeatResult>,
                  failed_attempts: Vec<FailureRecord>,
                  mut timing: ConfigTiming| {
        timing.wall_s = started.elapsed().as_secs_f64();
        timing.overhead_s = (timing.wall_s
            - timing.server_start_s
            - timing.battery_s
            - timing.teardown_s
            - timing.backoff_s)
            .max(0.0);
        ConfigRun::Done(Box::new(ConfigResult {
            format_version: STORE_FORMAT_VERSION,
            config: config.clone(),
            outcome,
            command: command.clone(),
            failed_attempts,
            repeats,
            failure,
            timing,
            started_unix_ms,
            finished_unix_ms: now_unix_ms(),
        }))
    };

    // The token fired: stop the timer and record why. A user's cancel
    // records nothing, so the config reruns on resume.
    let cut_short =
        |repeats: Vec<RepeatResult>, failed_attempts: Vec<FailureRecord>, timing: ConfigTiming| {
            timer.abort();
            match why_cut_short() {
                None => ConfigRun::Interrupted,
                Some(record) => finish(
                    RunOutcome::Failed,
                    Some(record),
                    repeats,
                    failed_attempts,
                    timing,
                ),
            }
        };

    let outcome = 'repeats: {
        for repeat in 0..plan.repeats.get() {
            let seed = derive_seed(plan.seed, &config.id, repeat);
            let mut attempt = 0;
            let server = loop {
                attempt += 1;
                store.append_journal(JournalEvent::ConfigStarted {
                    config_id: config.id.clone(),
                    name: config.name.clone(),
                    repeat,
                    attempt,
                })?;
                progress.event(&SearchEvent::ConfigStarted {
                    config: config.name.clone(),
                    repeat,
                    attempt,
                });
                phase(Phase::StartingServer);
                let mut spec = LaunchSpec::new(
                    &setup.run_id,
                    config.id.0.clone(),
                    &config.name,
                    command.clone(),
                    &config_dir,
                );
                spec.ready_timeout = plan.limits.health_timeout;
                spec.grace_period = options.grace_period;
                spec.replace_foreign = options.replace_foreign;
                spec.variables = options.variables.clone();
                let launch_started = Instant::now();
                let launched = backend.launch(&setup.profile, &spec, &token).await;
                timing.server_start_s += launch_started.elapsed().as_secs_f64();
                match launched {
                    Ok(server) => break server,
                    Err(failure) => {
                        if token.is_cancelled() || failure.class == FailureClass::Cancelled {
                            return Ok(cut_short(repeats, failed_attempts, timing));
                        }
                        let record = failure_record(&failure);
                        tracing::info!(config = %config.name, class = %failure.class, attempt, "server did not start: {}", failure.message);
                        store.append_journal(JournalEvent::LaunchFailed {
                            config_id: config.id.clone(),
                            class: record.class.clone(),
                            transient: failure.transient,
                            attempt,
                        })?;
                        if let Some(bad_input) = stops_search(&failure.class) {
                            timer.abort();
                            return Ok(ConfigRun::StopSearch(SearchError::Environment {
                                class: failure.class.name(),
                                message: failure.message.clone(),
                                bad_input,
                            }));
                        }
                        if failure.transient && attempt <= plan.limits.transient_retries.get() {
                            let backoff = plan.limits.retry_backoff_after(attempt);
                            phase(Phase::RetryingLaunch {
                                class: failure.class.clone(),
                                backoff,
                            });
                            failed_attempts.push(record);
                            let slept = Instant::now();
                            let completed = sleep_unless(&token, backoff).await;
                            timing.backoff_s += slept.elapsed().as_secs_f64();
                            if !completed {
                                return Ok(cut_short(repeats, failed_attempts, timing));
                            }
                            continue;
                        }
                        break 'repeats (RunOutcome::LaunchFailed, Some(record));
                    }
                }
            };
            let startup_s = server.ready_after().as_secs_f64();
            store.append_journal(JournalEvent::ServerReady {
                config_id: config.id.clone(),
                startup_s,
            })?;

            // The battery, writing into a fresh directory per repeat.
            let out_dir = config_dir.join(format!("repeat-{repeat}"));
            if out_dir.exists() {
                let _ = std::fs::remove_dir_all(&out_dir);
            }
            store.append_journal(JournalEvent::BatteryStarted {
                config_id: config.id.clone(),
                repeat,
            })?;
            phase(Phase::RunningBattery);
            let endpoint_info = server.endpoint();
            let endpoint = grid_bench::Endpoint {
                base_url: endpoint_info.base_url.clone(),
                model: endpoint_info.served_model.clone(),
                api_key: endpoint_info.api_key.clone(),
            };
            let battery_started = Instant::now();
            let battery = crate::battery::run_battery_reporting(
                *progress,
                &config.name,
                endpoint,
                setup.battery.clone(),
                grid_bench::RunOptions {
                    only: None,
                    out_dir: Some(out_dir.clone()),
                    progress: None,
                    cancel: token.clone(),
                    seed,
                },
            )
            .await;
            let battery_s = battery_started.elapsed().as_secs_f64();
            timing.battery_s += battery_s;
            let died = server.exited().await;
            let tail = server.log_tail();
            phase(Phase::TearingDown);
            let teardown_started = Instant::now();
            if let Err(err) = server.teardown().await {
                tracing::error!(config = %config.name, error = %err, "teardown failed");
                store.append_journal(JournalEvent::Warning {
                    message: format!("teardown of {} failed: {err}", config.name),
                })?;
            }
            let teardown_s = teardown_started.elapsed().as_secs_f64();
            timing.teardown_s += teardown_s;
            if token.is_cancelled() {
                return Ok(cut_short(repeats, failed_attempts, timing));
            }
            let report = match battery {
                Ok(report) => report,
                Err(err) => {
                    let mut message = err.to_string();
                    let mut source = std::error::Error::source(&err);
                    while let Some(cause) = source {
                        message.push_str(&format!(": {cause}"));
                        source = cause.source();
                    }
                    break 'repeats (
                        RunOutcome::Failed,
                        Some(plain_failure("battery_error", message, false)),
                    );
                }
            };
            let measurement = crate::battery::measurement(&report);
            store.append_journal(JournalEvent::BatteryFinished {
                config_id: config.id.clone(),
                repeat,
                kv_cache_acceleration: measurement.kv_cache_acceleration.map(|a| a.median),
            })?;
            repeats.push(RepeatResult {
                repeat,
                seed,
                measurement,
                output_dir: out_dir
                    .strip_prefix(&store.dir)
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| out_dir.display().to_string()),
                server_start_s: startup_s,
                battery_s,
                teardown_s,
            });
            if let Some(exit) = died {
                // The server went away during the battery: diagnose it like
                // a failed start.
                let mut failure = grid_container::diagnose(Some(&exit), &tail);
                failure.message =
                    format!("the server died during the battery: {}", failure.message);
                break 'repeats (RunOutcome::Failed, Some(failure_record(&failure)));
            }
        }
        (RunOutcome::Completed, None)
    };
    timer.abort();
    Ok(finish(
        outcome.0,
        outcome.1,
        repeats,
        failed_attempts,
        timing,
    ))
}
