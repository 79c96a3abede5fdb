//! Helpers: temporary workspaces, plans and profiles sized for a 2-core
//! machine, running the binary, reading what it wrote.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_vllm-grid");

/// The variable the test profiles take their API key from.
pub const KEY_VAR: &str = "VLLM_GRID_TEST_API_KEY";

/// A tiny battery: the benchmarks the gates read, a few requests each.
/// Only a confirmed cache effect makes a champion, and three iterations'
/// lower bound is about their smallest value: on a loaded 2-core host one
/// slow warm turn put a ×2 prefix-on config under the default ×1.2, and the
/// run ended without a champion (exit 3). ×1.05 still rejects prefix-off
/// configs (×0.9–1.0).
pub const TINY_BATTERY: &str = r#"{
    "enabled": ["kv_cache", "tool_calling", "stability", "concurrency"],
    "request_timeout_s": 20.0,
    "bootstrap_resamples": 200,
    "kv_cache": { "iterations": 3, "turns": 2, "prefix_words": 3000, "turn_words": 8, "max_tokens": 4,
                  "effect_threshold": 1.05 },
    "tool_calling": { "max_tokens": 256 },
    "stability": { "requests": 6, "interval_s": 0.02, "short_output_tokens": [4, 6],
                   "long_output_tokens": [10, 12], "compare_window": 2, "prompt_words": 10 },
    "concurrency": { "levels": [2], "duration_s": 0.5, "max_requests_per_level": 6,
                     "turns_per_conversation": 1, "prompt_words": 10, "max_tokens": 6 }
}"#;

/// A test workspace: `logs/`, `archives/`, a plan and profiles.
pub const SIGINT: i32 = 2;
pub const SIGTERM: i32 = 15;

/// `vllm-grid search` on the workspace's plan.json.
pub fn search_args<'a>(backend: &'a str, run_id: &'a str) -> [&'a str; 7] {
    [
        "search",
        "--configs",
        "plan.json",
        "--backend",
        backend,
        "--run-id",
        run_id,
    ]
}

/// `search --dry-run` on the workspace's plan.json and sim.yml, on the GPU
/// `slots` given (none: one slot).
pub fn dry_run_args<'a>(run_id: &'a str, slots: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "search",
        "--dry-run",
        "--configs",
        "plan.json",
        "--profile",
        "sim.yml",
        "--run-id",
        run_id,
    ];
    if !slots.is_empty() {
        args.push("--gpu-slots");
        args.extend(slots);
    }
    args
}

/// The text a child writes to stderr, collected in the background.
pub type CapturedText = std::sync::Arc<std::sync::Mutex<String>>;

pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub key: String,
}

impl Workspace {
    pub fn new() -> Workspace {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = format!(
            "test-key-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        Workspace { dir, key }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn logs(&self) -> PathBuf {
        self.path().join("logs")
    }
    pub fn archives(&self) -> PathBuf {
        self.path().join("archives")
    }
    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.logs().join(run_id)
    }

    /// Write a plan: the study's axes (12 configs, 4 named) unless `axes`
    /// is given. The stability gate is loosened: at this time scale a few
    /// milliseconds of scheduler noise are a large fraction.
    pub fn write_plan(&self, name: &str, axes: Option<&str>) -> PathBuf {
        let axes = axes.unwrap_or(
            r#"{"gpu_memory_utilization": [0.85, 0.90, 0.95], "enable_chunked_prefill": [true, false], "enable_prefix_caching": [true, false]}"#,
        );
        let text = format!(
            r#"{{
  "format_version": 1,
  "profile": "sim.yml",
  "axes": {axes},
  "named_configs": [
    {{"name": "chunked_only_safe", "settings": {{"gpu_memory_utilization": 0.85, "enable_chunked_prefill": true, "enable_prefix_caching": false}}}},
    {{"name": "safe_conservative", "settings": {{"gpu_memory_utilization": 0.85, "enable_chunked_prefill": false, "enable_prefix_caching": false}}}},
    {{"name": "optimized_balanced", "settings": {{"gpu_memory_utilization": 0.90, "enable_chunked_prefill": true, "enable_prefix_caching": true}}}},
    {{"name": "aggressive_cache", "settings": {{"gpu_memory_utilization": 0.95, "enable_chunked_prefill": true, "enable_prefix_caching": true, "max_num_seqs": 48}}}}
  ],
  "battery": {TINY_BATTERY},
  "ranking": {{"max_stability_degradation": 100.0, "max_request_error_rate": 0.01}},
  "limits": {{"health_timeout_s": 30, "per_config_timeout_s": 120, "transient_retries": 1, "retry_backoff_s": 0.1}},
  "seed": 7
}}"#
        );
        let path = self.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `plan.json` with a single grid point that fails fast (0.95 fails the
    /// free-memory check) and no named configs, and `sim.yml`: a search of
    /// them records one rejected config and exits 3 within a second.
    pub fn write_fail_fast_inputs(&self) {
        self.write_plan(
            "plan.json",
            Some(r#"{"gpu_memory_utilization": [0.95], "enable_chunked_prefill": [true], "enable_prefix_caching": [true]}"#),
        );
        self.edit_plan("plan.json", |plan| {
            plan["named_configs"] = serde_json::json!([])
        });
        self.write_profile("sim.yml", 0.005, 20.0, 2.0);
    }

    /// A process-backend profile on the built-in simulator: an ephemeral
    /// port, `--sim-time-scale` `scale`, model load `load_s` simulated
    /// seconds, and `gpu_used_gib` GiB held by "other processes" (2 makes
    /// 0.95 fail its free-memory check, as in profiles/sim.yml).
    pub fn write_profile(&self, name: &str, scale: f64, load_s: f64, gpu_used_gib: f64) -> PathBuf {
        self.write_profile_for("process", name, scale, load_s, gpu_used_gib)
    }

    pub fn write_docker_profile(&self, name: &str, container: &str) -> PathBuf {
        self.write_profile_for(container, name, 0.005, 20.0, 2.0)
    }

    fn write_profile_for(
        &self,
        container: &str,
        name: &str,
        scale: f64,
        load_s: f64,
        gpu_used_gib: f64,
    ) -> PathBuf {
        let text = format!(
            r#"services:
  medium-qwen3:
    image: vllm-sim:latest
    container_name: vllm-grid-test-{container}
    command:
      - --model
      - Qwen/Qwen3-32B-AWQ
      - --served-model-name
      - Qwen/Qwen3-32B-AWQ
      - --tensor-parallel-size
      - "2"
      - --kv-cache-dtype
      - fp8
      - --max-model-len
      - "131072"
      - --enable-auto-tool-choice
      - --tool-call-parser
      - hermes
      - --reasoning-parser
      - qwen3
      - --api-key
      - ${{{KEY_VAR}}}
      - --sim-gpu-count
      - "2"
      - --sim-gpu-memory-gib
      - "24"
      - --sim-gpu-memory-used-gib
      - "{gpu_used_gib}"
      - --sim-model-max-len
      - "131072"
      - --sim-model-load-s
      - "{load_s}"
      - --sim-time-scale
      - "{scale}"
    ports:
      - "127.0.0.1::8000"
x-vllm-grid:
  process:
    entrypoint: ["vllm-sim", "serve"]
"#
        );
        let path = self.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The binary with this workspace's directories and the test key.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_with(BIN, args)
    }

    /// `program args...` with this workspace's directories and the test
    /// key (a wrapper that ends by exec'ing the binary, say).
    pub fn command_with(&self, program: &str, args: &[&str]) -> Command {
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(self.path())
            .env("VLLM_GRID_LOGS_DIR", self.logs())
            .env("VLLM_GRID_ARCHIVES_DIR", self.archives())
            .env(KEY_VAR, &self.key)
            .env_remove("VLLM_GRID_FAILPOINT")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        command
    }

    /// Run to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run vllm-grid")
    }

    pub fn spawn(&self, args: &[&str], env: &[(&str, &str)]) -> Child {
        let mut command = self.command(args);
        for (k, v) in env {
            command.env(k, v);
        }
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn vllm-grid")
    }

    /// Runs `search` on plan.json to completion.
    pub fn run_search(&self, backend: &str, run_id: &str) -> Output {
        self.run(&search_args(backend, run_id))
    }

    /// Starts `search` on plan.json in the background, its stdout drained
    /// (so it never blocks on a full pipe) and its stderr captured.
    pub fn spawn_search(
        &self,
        backend: &str,
        run_id: &str,
        env: &[(&str, &str)],
    ) -> (Child, CapturedText) {
        let mut child = self.spawn(&search_args(backend, run_id), env);
        drain_stdout(&mut child);
        let stderr_text = capture_stderr(&mut child);
        (child, stderr_text)
    }

    /// Rewrites the JSON file `name` (a plan) through `edit`.
    pub fn edit_plan(&self, name: &str, edit: impl FnOnce(&mut serde_json::Value)) {
        let path = self.path().join(name);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let mut plan: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        edit(&mut plan);
        std::fs::write(&path, plan.to_string())
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Temporary result files (`*.tmp`, a write not yet renamed into
    /// place) in the run's results directory.
    pub fn tmp_results(&self, run_id: &str) -> usize {
        let dir = self.run_dir(run_id).join("results");
        std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .count()
    }

    pub fn report(&self, run_id: &str) -> serde_json::Value {
        let text = std::fs::read_to_string(self.run_dir(run_id).join("report.json"))
            .unwrap_or_else(|e| panic!("report.json of {run_id}: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    pub fn journal_events(&self, run_id: &str) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.run_dir(run_id).join("journal.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Wait until the journal has an event matching `pred`.
    pub fn wait_for_event(
        &self,
        run_id: &str,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.journal_events(run_id).into_iter().find(|e| pred(e)) {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no matching journal event within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Each result's outcome and failure class (empty when none), by config ID.
    pub fn outcomes(&self, run_id: &str) -> BTreeMap<String, (String, String)> {
        self.result_ids(run_id)
            .into_iter()
            .map(|id| {
                let path = self
                    .run_dir(run_id)
                    .join("results")
                    .join(format!("{id}.json"));
                let result: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
                let class = result["failure"]["class"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                (id, (result["outcome"].to_string(), class))
            })
            .collect()
    }

    /// Config IDs with a result file.
    pub fn result_ids(&self, run_id: &str) -> BTreeSet<String> {
        std::fs::read_dir(self.run_dir(run_id).join("results"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
                    .map(|n| n.trim_end_matches(".json").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Config IDs of the run's plan.
    pub fn plan_ids(&self, run_id: &str) -> BTreeSet<String> {
        let manifest: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(self.run_dir(run_id).join("manifest.json")).unwrap(),
        )
        .unwrap();
        manifest["plan"]["configs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// How many times each config finished, from the journal.
    pub fn finished_counts(&self, run_id: &str) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for e in self.journal_events(run_id) {
            if e["event"] == "config_finished" {
                *counts
                    .entry(e["config_id"].as_str().unwrap().to_string())
                    .or_insert(0) += 1;
            }
        }
        counts
    }

    /// Pids of servers the process backend recorded and that still run.
    pub fn live_server_pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        if let Ok(dir) = std::fs::read_dir(self.logs().join(".pids")) {
            for entry in dir.flatten() {
                if let Ok(text) = std::fs::read_to_string(entry.path()) {
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                        if let Some(pid) = v["pid"].as_u64() {
                            if process_alive(pid as u32) {
                                pids.push(pid as u32);
                            }
                        }
                    }
                }
            }
        }
        pids.extend(sim_processes_for(self.path()));
        pids.sort();
        pids.dedup();
        pids
    }

    /// Every file under logs/ and archives/ that contains `needle`.
    pub fn files_containing(&self, needle: &str) -> Vec<PathBuf> {
        let mut hits = Vec::new();
        for root in [self.logs(), self.archives()] {
            walk(&root, &mut |path| {
                if let Ok(bytes) = std::fs::read(path) {
                    if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                        hits.push(path.to_path_buf());
                    }
                }
            });
        }
        hits
    }
}

fn walk(dir: &Path, visit: &mut dyn FnMut(&Path)) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, visit);
            } else {
                visit(&path);
            }
        }
    }
}

pub fn process_alive(pid: u32) -> bool {
    // A zombie has exited; only its parent has not reaped it yet.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Simulator processes (`vllm-grid sim serve`) whose working directory is
/// this workspace: catches a server without a pid file.
fn sim_processes_for(workspace: &Path) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(proc_dir) = std::fs::read_dir("/proc") else {
        return pids;
    };
    let canonical = std::fs::canonicalize(workspace).unwrap_or_else(|_| workspace.to_path_buf());
    for entry in proc_dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).to_string())
            .collect();
        if args.len() >= 3 && args[0] == BIN && args[1] == "sim" && args[2] == "serve" {
            if let Ok(cwd) = std::fs::read_link(format!("/proc/{pid}/cwd")) {
                if cwd == canonical && process_alive(pid) {
                    pids.push(pid);
                }
            }
        }
    }
    pids
}

/// Wait for a child with a timeout; kill it if it overstays.
pub fn wait_with_timeout(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("vllm-grid did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Read a child's stderr in the background, returning a handle to the text.
pub fn capture_stderr(child: &mut Child) -> CapturedText {
    let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = text.clone();
    std::thread::spawn(move || {
        let reader = BufReader::new(stderr);
        for line in reader.lines().map_while(Result::ok) {
            let mut guard = sink.lock().unwrap();
            guard.push_str(&line);
            guard.push('\n');
        }
    });
    text
}

pub fn drain_stdout(child: &mut Child) {
    if let Some(mut out) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = out.read_to_end(&mut sink);
        });
    }
}

pub fn wait_for_text(text: &std::sync::Mutex<String>, needle: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !text.lock().unwrap().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} on stderr within {timeout:?}; got:\n{}",
            text.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn send_signal(child: &Child, signal: i32) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// Wait until no server of this workspace runs (teardown is asynchronous
/// only in the sense that a killed group takes a moment to be reaped).
pub fn assert_nothing_running(ws: &Workspace) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let live = ws.live_server_pids();
        if live.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "servers still running: {live:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
