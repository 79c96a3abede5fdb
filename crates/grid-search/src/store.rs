//! The run store: everything a run leaves in `logs/<run-id>/`.
//!
//! ```text
//! logs/<run-id>/
//!   manifest.json        what was run: plan with IDs, profile hash, image, battery, seeds, host
//!   profile.yml          the profile as written (unexpanded `${VAR}`), for reproduce
//!   journal.jsonl        append-only events, fsync'd one by one
//!   lock                 {"pid", "host", "start_ticks"} of the live process
//!   run.log              tracing output of every invocation on this run
//!   results/<id>.json    one result per config, written atomically
//!   <config-name>/       container log and battery output of that config
//!   report.md, report.json, acceleration.svg, ttft.svg
//! ```
//!
//! Every file except the journal and `run.log` is written to a temporary
//! name, fsync'd and renamed, so a kill at any instant leaves either the old
//! or the new content, never half of it.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use grid_core::Estimate;
use grid_plan::{ConfigId, Plan, PlannedConfig};
use grid_sys::{Owner, hostname};
use serde::{Deserialize, Serialize};

use crate::SearchError;

/// Format version of `manifest.json`, result files and the journal.
pub const STORE_FORMAT_VERSION: u32 = 1;

/// The tool's version, recorded in every manifest.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Facts about the machine a run ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostFacts {
    pub hostname: String,
    pub os: String,
    pub arch: String,
    pub cpus: usize,
    #[serde(default)]
    pub memory_total_mib: Option<u64>,
    #[serde(default)]
    pub kernel: Option<String>,
}

impl HostFacts {
    pub fn collect() -> Self {
        let read = |path: &str| fs::read_to_string(path).ok().map(|s| s.trim().to_string());
        let memory_total_mib = read("/proc/meminfo").and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
                .map(|kb| kb / 1024)
        });
        HostFacts {
            hostname: grid_sys::hostname(),
            os: std::env::consts::OS.to_string(),
            arch: std::env::consts::ARCH.to_string(),
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            memory_total_mib,
            kernel: read("/proc/sys/kernel/osrelease"),
        }
    }
}

/// The seeds of a run: one per config and repeat, derived from the plan's
/// base seed as `fnv1a64("{base}:{config_id}:{repeat}")`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seeds {
    pub base: u64,
    pub derivation: String,
    pub per_config: BTreeMap<ConfigId, Vec<u64>>,
}

pub fn derive_seed(base: u64, id: &ConfigId, repeat: u32) -> u64 {
    grid_core::fnv1a64(format!("{base}:{id}:{repeat}").as_bytes())
}

impl Seeds {
    pub fn for_plan(plan: &Plan) -> Self {
        let per_config = plan
            .configs
            .iter()
            .map(|c| {
                (
                    c.id.clone(),
                    (0..plan.repeats.get())
                        .map(|r| derive_seed(plan.seed, &c.id, r))
                        .collect(),
                )
            })
            .collect();
        Seeds {
            base: plan.seed,
            derivation: "fnv1a64(\"{base}:{config_id}:{repeat}\")".to_string(),
            per_config,
        }
    }
}

/// What a run is: enough to resume it, re-render its report and reproduce it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub tool: String,
    pub tool_version: String,
    pub run_id: String,
    pub created_unix_ms: u64,
    /// True for `--dry-run`: every number comes from the simulator.
    pub simulated: bool,
    /// The simulator's `--sim-time-scale` in a simulated run: every measured
    /// duration is this multiple of the simulated server's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim_time_scale: Option<f64>,
    /// `docker` or `process`.
    pub backend: String,
    /// The plan file as given on the command line.
    pub plan_file: String,
    pub plan: Plan,
    /// The profile file as given, and the FNV-1a 64 hash of its text.
    pub profile_file: String,
    pub profile_hash: String,
    /// The image ID (docker) or the program's fingerprint (process).
    pub image: Option<String>,
    /// The effective battery parameters (defaults filled in).
    pub battery: serde_json::Value,
    pub seeds: Seeds,
    pub host: HostFacts,
}

/// A launch attempt that failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// The diagnosed class, snake case (`gpu_out_of_memory`, `exited_with_code`).
    pub class: String,
    /// Human name of the class (`gpu out of memory`, `exited with code 1`).
    pub class_name: String,
    pub message: String,
    /// Last lines of the (redacted) server log.
    #[serde(default)]
    pub log_tail: Vec<String>,
    /// Whether retrying the same config could succeed.
    pub transient: bool,
    /// True when the config itself cannot run (memory, arguments): a gate
    /// rejection. False when the environment failed (image, daemon, secret).
    pub config_fault: bool,
}

/// One repeat's headline numbers, copied from the battery's headline so a
/// report can be re-rendered from result files alone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub kv_cache_acceleration: Option<Estimate>,
    pub ttft_miss_ms: Option<f64>,
    pub ttft_hit_ms: Option<f64>,
    pub cache_confirmed_by_server: Option<bool>,
    pub output_throughput: Option<f64>,
    pub mean_itl_ms: Option<f64>,
    pub mean_e2e_ms: Option<f64>,
    pub request_error_rate: Option<f64>,
    pub stability_degradation: Option<f64>,
    pub tool_call_success_rate: Option<f64>,
    pub vram_peak_mib: Option<f64>,
    #[serde(default)]
    pub benchmarks_completed: Vec<String>,
    /// Benchmark name → why it failed.
    #[serde(default)]
    pub benchmarks_failed: BTreeMap<String, String>,
    /// Per-iteration accelerations when the battery reports them, pooled
    /// across repeats for the interval.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acceleration_samples: Vec<f64>,
    /// The resamples the battery's bootstrap used, so the ranking pools
    /// repeats with the same count (results written before it was recorded
    /// read as [`grid_core::DEFAULT_RESAMPLES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_resamples: Option<usize>,
}

/// One repeat of a config: a server start and a full battery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepeatResult {
    pub repeat: u32,
    pub seed: u64,
    pub measurement: Measurement,
    /// Battery output directory, relative to the run directory.
    pub output_dir: String,
    pub server_start_s: f64,
    pub battery_s: f64,
    pub teardown_s: f64,
}

/// How a config's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Every repeat ran its battery (benchmarks may still have failed).
    Completed,
    /// The server never became ready (after retries for transient causes).
    LaunchFailed,
    /// Something else stopped it: the battery could not run, the deadline.
    Failed,
    /// Never started: the search deadline passed first.
    Skipped,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigTiming {
    /// Wall time from the config's start to its result.
    pub wall_s: f64,
    pub server_start_s: f64,
    pub battery_s: f64,
    pub teardown_s: f64,
    /// What the orchestrator itself spent: wall − start − battery − teardown
    /// − retry backoff.
    pub overhead_s: f64,
    #[serde(default)]
    pub backoff_s: f64,
}

/// The result file of one config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigResult {
    pub format_version: u32,
    pub config: PlannedConfig,
    pub outcome: RunOutcome,
    /// The rendered server command, `${VAR}` unexpanded.
    pub command: Vec<String>,
    /// Every failed launch attempt, in order.
    #[serde(default)]
    pub failed_attempts: Vec<FailureRecord>,
    #[serde(default)]
    pub repeats: Vec<RepeatResult>,
    /// Why the config did not complete (the last failure).
    pub failure: Option<FailureRecord>,
    pub timing: ConfigTiming,
    pub started_unix_ms: u64,
    pub finished_unix_ms: u64,
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub unix_ms: u64,
    pub pid: u32,
    #[serde(flatten)]
    pub event: JournalEvent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum JournalEvent {
    RunStarted {
        resumed: bool,
        configs_total: usize,
        configs_done: usize,
    },
    LeftoversSwept {
        removed: usize,
    },
    ConfigStarted {
        config_id: ConfigId,
        name: String,
        repeat: u32,
        attempt: u32,
    },
    ServerReady {
        config_id: ConfigId,
        startup_s: f64,
    },
    LaunchFailed {
        config_id: ConfigId,
        class: String,
        transient: bool,
        attempt: u32,
    },
    BatteryStarted {
        config_id: ConfigId,
        repeat: u32,
    },
    BatteryFinished {
        config_id: ConfigId,
        repeat: u32,
        kv_cache_acceleration: Option<f64>,
    },
    ConfigFinished {
        config_id: ConfigId,
        name: String,
        outcome: RunOutcome,
    },
    ConfigInterrupted {
        config_id: ConfigId,
        name: String,
    },
    RunFinished {
        champion: Option<String>,
    },
    RunInterrupted {
        reason: String,
    },
    Warning {
        message: String,
    },
}

/// What reading the journal found.
#[derive(Debug, Default)]
pub struct JournalRead {
    pub entries: Vec<JournalEntry>,
    /// Lines that could not be read, with why; a truncated last line is one.
    pub warnings: Vec<String>,
}

/// Write `bytes` to `path` atomically ([`grid_sys::write_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SearchError> {
    write_atomic_with_hook(path, bytes, || {})
}

/// As [`write_atomic`], calling `before_rename` between the fsync of the
/// temporary file and the rename (the failpoint of the kill tests).
pub fn write_atomic_with_hook(
    path: &Path,
    bytes: &[u8],
    before_rename: impl FnOnce(),
) -> Result<(), SearchError> {
    grid_sys::write_atomic_with_hook(path, bytes, before_rename).map_err(|source| {
        SearchError::WriteFile {
            path: path.to_path_buf(),
            source,
        }
    })
}

pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<(), SearchError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|source| SearchError::Encode {
        what: path.display().to_string(),
        source,
    })?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, SearchError> {
    let text = fs::read_to_string(path).map_err(|source| SearchError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    let deserializer = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(deserializer).map_err(|err| SearchError::Corrupt {
        path: path.to_path_buf(),
        message: format!("at `{}`: {}", err.path(), err.inner()),
    })
}

/// The run directory and its files.
#[derive(Debug, Clone)]
pub struct RunStore {
    pub dir: PathBuf,
    pub run_id: String,
}

impl RunStore {
    /// `logs_root/<run_id>`; nothing is created.
    pub fn at(logs_root: &Path, run_id: &str) -> Result<Self, SearchError> {
        validate_run_id(run_id)?;
        Ok(RunStore {
            dir: logs_root.join(run_id),
            run_id: run_id.to_string(),
        })
    }

    pub fn manifest_path(&self) -> PathBuf {
        self.dir.join("manifest.json")
    }
    pub fn journal_path(&self) -> PathBuf {
        self.dir.join("journal.jsonl")
    }
    pub fn lock_path(&self) -> PathBuf {
        self.dir.join("lock")
    }
    pub fn results_dir(&self) -> PathBuf {
        self.dir.join("results")
    }
    pub fn result_path(&self, id: &ConfigId) -> PathBuf {
        self.results_dir().join(format!("{id}.json"))
    }
    pub fn profile_copy_path(&self) -> PathBuf {
        self.dir.join("profile.yml")
    }
    pub fn config_dir(&self, config: &PlannedConfig) -> PathBuf {
        self.dir.join(&config.name)
    }

    pub fn exists(&self) -> bool {
        self.manifest_path().exists()
    }

    pub fn read_manifest(&self) -> Result<Manifest, SearchError> {
        if !self.manifest_path().exists() {
            return Err(SearchError::NoSuchRun {
                run_id: self.run_id.clone(),
                dir: self.dir.clone(),
            });
        }
        read_json(&self.manifest_path())
    }

    pub fn write_manifest(&self, manifest: &Manifest) -> Result<(), SearchError> {
        write_json_atomic(&self.manifest_path(), manifest)
    }

    /// Every result file, keyed by config ID. Temporary files left by a kill
    /// during a write are removed.
    pub fn read_results(&self) -> Result<BTreeMap<ConfigId, ConfigResult>, SearchError> {
        let mut results = BTreeMap::new();
        let dir = self.results_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(results),
            Err(source) => return Err(SearchError::ReadFile { path: dir, source }),
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if name.starts_with('.') && name.ends_with(".tmp") {
                tracing::warn!(file = %path.display(), "removing a result left half-written by an interrupted run");
                let _ = fs::remove_file(&path);
                continue;
            }
            if !name.ends_with(".json") {
                continue;
            }
            let result: ConfigResult = read_json(&path)?;
            let expected = format!("{}.json", result.config.id);
            if name != expected {
                return Err(SearchError::Corrupt {
                    path,
                    message: format!("holds the result of config {}", result.config.id),
                });
            }
            results.insert(result.config.id.clone(), result);
        }
        Ok(results)
    }

    /// Write one config's result atomically. `VLLM_GRID_FAILPOINT=result-write`
    /// pauses between the temporary file and the rename (tests kill us there).
    pub fn write_result(&self, result: &ConfigResult) -> Result<(), SearchError> {
        let mut text =
            serde_json::to_string_pretty(result).map_err(|source| SearchError::Encode {
                what: format!("result of {}", result.config.name),
                source,
            })?;
        text.push('\n');
        write_atomic_with_hook(
            &self.result_path(&result.config.id),
            text.as_bytes(),
            || crate::failpoint::hit("result-write"),
        )
    }

    /// Append one event and fsync it.
    pub fn append_journal(&self, event: JournalEvent) -> Result<(), SearchError> {
        let entry = JournalEntry {
            unix_ms: now_unix_ms(),
            pid: std::process::id(),
            event,
        };
        let mut line = serde_json::to_string(&entry).map_err(|source| SearchError::Encode {
            what: "journal entry".to_string(),
            source,
        })?;
        line.push('\n');
        let path = self.journal_path();
        let io_err = |source: io::Error| SearchError::WriteFile {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err)?;
        file.write_all(line.as_bytes()).map_err(io_err)?;
        file.sync_data().map_err(io_err)?;
        Ok(())
    }

    /// Read the journal. A last line cut short by a kill is reported as a
    /// warning and, with `repair`, cut off so later appends stay valid JSONL.
    pub fn read_journal(&self, repair: bool) -> Result<JournalRead, SearchError> {
        let path = self.journal_path();
        let mut text = String::new();
        match File::open(&path) {
            Ok(mut file) => {
                file.read_to_string(&mut text)
                    .map_err(|source| SearchError::ReadFile {
                        path: path.clone(),
                        source,
                    })?;
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Ok(JournalRead::default());
            }
            Err(source) => return Err(SearchError::ReadFile { path, source }),
        }
        let mut read = JournalRead::default();
        let complete_len = if text.ends_with('\n') || text.is_empty() {
            text.len()
        } else {
            text.rfind('\n').map(|i| i + 1).unwrap_or(0)
        };
        for (number, line) in text[..complete_len].lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<JournalEntry>(line) {
                Ok(entry) => read.entries.push(entry),
                Err(err) => read.warnings.push(format!(
                    "{}: line {} cannot be read ({err}); skipped",
                    path.display(),
                    number + 1
                )),
            }
        }
        if complete_len < text.len() {
            read.warnings.push(format!(
                "{}: the last line was cut short ({} bytes, probably by a kill during a write); {}",
                path.display(),
                text.len() - complete_len,
                if repair { "removed it" } else { "ignored it" }
            ));
            if repair {
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|source| SearchError::WriteFile {
                        path: path.clone(),
                        source,
                    })?;
                file.set_len(complete_len as u64)
                    .and_then(|_| file.sync_all())
                    .map_err(|source| SearchError::WriteFile {
                        path: path.clone(),
                        source,
                    })?;
            }
        }
        Ok(read)
    }
}

/// Run IDs become directory names.
pub fn validate_run_id(run_id: &str) -> Result<(), SearchError> {
    let ok = !run_id.is_empty()
        && run_id.len() <= 100
        && !run_id.starts_with('.')
        && run_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(SearchError::BadRunId {
            run_id: run_id.to_string(),
        })
    }
}

/// A fresh run ID: `YYYYMMDD-HHMMSS-<4 hex>` in UTC.
pub fn new_run_id() -> String {
    let ms = now_unix_ms();
    let secs = ms / 1000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let salt = grid_core::fnv1a64(format!("{ms}:{}", std::process::id()).as_bytes()) & 0xffff;
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}-{salt:04x}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Today's UTC date as `YYYY-MM-DD`.
pub fn utc_date(unix_ms: u64) -> String {
    let (y, m, d) = civil_from_days((unix_ms / 1000 / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to a (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

// ---------------------------------------------------------------------------
// The lock.

/// Who holds a run's lock: the process (pid, start time, host; the same
/// JSON keys as before) and since when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockOwner {
    #[serde(flatten)]
    pub process: Owner,
    pub since_unix_ms: u64,
}

impl LockOwner {
    fn current() -> Self {
        LockOwner {
            process: Owner::current(),
            since_unix_ms: now_unix_ms(),
        }
    }

    /// Whether the owner is a live process. A lock taken on another host
    /// (a run directory on a shared filesystem) counts as live: we cannot
    /// tell, so the user removes it.
    pub fn is_alive(&self) -> bool {
        self.process.is_alive()
    }
}

/// The held lock; released (file removed) on drop.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    owner: LockOwner,
}

impl RunLock {
    /// Take the run's lock. A lock held by a live process is refused; a
    /// stale one (its process is dead) is taken over.
    pub fn acquire(store: &RunStore) -> Result<RunLock, SearchError> {
        let path = store.lock_path();
        fs::create_dir_all(&store.dir).map_err(|source| SearchError::WriteFile {
            path: store.dir.clone(),
            source,
        })?;
        for _ in 0..3 {
            if path.exists() {
                match read_json::<LockOwner>(&path) {
                    Ok(owner) if owner.is_alive() && owner.process.pid != std::process::id() => {
                        return Err(SearchError::Locked {
                            run_id: store.run_id.clone(),
                            pid: owner.process.pid,
                            host: owner.process.host,
                            path: path.clone(),
                        });
                    }
                    Ok(owner) => {
                        tracing::info!(
                            pid = owner.process.pid,
                            "taking over the lock of a dead process"
                        );
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "the lock file cannot be read; taking it over");
                    }
                }
                let _ = fs::remove_file(&path);
            }
            let owner = LockOwner::current();
            let text = serde_json::to_string(&owner).map_err(|source| SearchError::Encode {
                what: "lock".to_string(),
                source,
            })?;
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    file.write_all(text.as_bytes())
                        .and_then(|_| file.sync_all())
                        .map_err(|source| SearchError::WriteFile {
                            path: path.clone(),
                            source,
                        })?;
                    return Ok(RunLock { path, owner });
                }
                // Another process created it between our check and create.
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(source) => return Err(SearchError::WriteFile { path, source }),
            }
        }
        Err(SearchError::Locked {
            run_id: store.run_id.clone(),
            pid: 0,
            host: hostname(),
            path,
        })
    }

    /// The live owner of a run's lock, if any.
    pub fn live_owner(store: &RunStore) -> Option<LockOwner> {
        read_json::<LockOwner>(&store.lock_path())
            .ok()
            .filter(|owner| owner.is_alive())
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Remove it only if it is still ours.
        if let Ok(owner) = read_json::<LockOwner>(&self.path) {
            if owner.process.pid == self.owner.process.pid {
                let _ = fs::remove_file(&self.path);
            }
        }
    }
}
