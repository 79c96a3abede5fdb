//! Searches on the simulator: the process backend starts the test binary
//! as `vllm-sim` (see [`crate::child`]), each config on a free port.

use std::path::PathBuf;

use grid_container::{Backend, ProcessBackend, ProcessBackendConfig};
use grid_search::{
    QuietProgress, SearchError, SearchMode, SearchOptions, SearchOutcome, SearchSetup, run_search,
};
use tokio_util::sync::CancellationToken;

/// The battery at its smallest: seconds per config on a time-scaled simulator.
/// Three iterations give a bootstrap lower bound near the slowest one, which
/// host load on a 2-core machine pulls below the default ×1.2 threshold; a
/// champion needs a confirmed cache effect, so the threshold is ×1.05 here
/// (the simulator's prefix cache gives about ×2–3 at this size).
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

/// A plan of the named configs given as `[name, settings JSON]`.
pub fn plan(configs: &[(&str, &str)]) -> grid_plan::Plan {
    let named: Vec<String> = configs
        .iter()
        .map(|(name, settings)| format!(r#"{{"name": "{name}", "settings": {settings}}}"#))
        .collect();
    grid_plan::parse_plan(&format!(
        r#"{{"format_version": 1, "profile": "sim.yml", "axes": {{}},
            "named_configs": [{}],
            "battery": {TINY_BATTERY},
            "ranking": {{"max_stability_degradation": 100.0, "max_request_error_rate": 0.01}},
            "limits": {{"health_timeout_s": 30, "per_config_timeout_s": 120, "transient_retries": 1, "retry_backoff_s": 0.1}},
            "seed": 7}}"#,
        named.join(", ")
    ))
    .expect("the test plan parses")
}

pub const STARTS: &str = r#"{"gpu_memory_utilization": 0.85, "enable_chunked_prefill": true, "enable_prefix_caching": true}"#;

/// A simulator profile; `port` is the host port (`None`: a free one) and
/// `extra` more `--sim-*` flags.
pub fn profile(port: Option<u16>, extra: &[&str]) -> String {
    let port = port.map(|p| p.to_string()).unwrap_or_default();
    let extra: String = extra.iter().map(|f| format!("      - \"{f}\"\n")).collect();
    format!(
        r#"services:
  sim:
    image: vllm-sim:latest
    command:
      - --model
      - m
      - --served-model-name
      - m
      - --max-model-len
      - "8192"
      - --enable-auto-tool-choice
      - --tool-call-parser
      - hermes
      - --sim-gpu-count
      - "2"
      - --sim-gpu-memory-gib
      - "24"
      - --sim-model-max-len
      - "8192"
      - --sim-model-load-s
      - "20"
      - --sim-time-scale
      - "0.005"
{extra}    ports:
      - "127.0.0.1:{port}:8000"
    environment:
      {role}: vllm-sim
x-vllm-grid:
  process:
    entrypoint: ["vllm-sim", "serve"]
"#,
        role = crate::child::ROLE_ENV
    )
}

/// A run directory under a temporary `logs/`, and its backend.
pub struct Sim {
    pub dir: tempfile::TempDir,
    pub backend: Backend,
}

impl Sim {
    pub fn new() -> Sim {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut config = ProcessBackendConfig::new(dir.path().join("logs/.pids"));
        config
            .program_overrides
            .insert("vllm-sim".to_string(), crate::child::program_prefix());
        Sim {
            dir,
            backend: Backend::Process(ProcessBackend::new(config)),
        }
    }

    pub fn logs(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    pub fn setup(&self, run_id: &str, plan: grid_plan::Plan, profile_text: &str) -> SearchSetup {
        let profile = grid_container::parse_profile(profile_text, "sim.yml")
            .expect("the test profile parses")
            .profile;
        let battery = grid_search::battery::battery_config(&plan.battery).expect("tiny battery");
        SearchSetup {
            logs_root: self.logs(),
            run_id: run_id.into(),
            plan_file: "plan.json".into(),
            plan,
            profile_file: "sim.yml".into(),
            profile_text: profile_text.into(),
            profile,
            image: Some("img".into()),
            simulated: true,
            battery,
        }
    }

    pub async fn run(
        &self,
        setup: &SearchSetup,
        options: SearchOptions,
    ) -> Result<SearchOutcome, SearchError> {
        run_search(
            &self.backend,
            setup,
            &options,
            &CancellationToken::new(),
            &QuietProgress,
        )
        .await
    }

    pub fn store(&self, run_id: &str) -> grid_search::RunStore {
        grid_search::RunStore::at(&self.logs(), run_id).expect("a valid run id")
    }

    /// The events of the run's journal, by name.
    pub fn events(&self, run_id: &str) -> Vec<String> {
        self.store(run_id)
            .read_journal(false)
            .expect("the journal reads")
            .entries
            .iter()
            .map(|e| {
                serde_json::to_value(&e.event).expect("an event")["event"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }

    /// No server of ours left: every pid file's process is gone.
    pub fn assert_nothing_running(&self) {
        let pids = self.logs().join(".pids");
        let Ok(entries) = std::fs::read_dir(&pids) else {
            return;
        };
        for entry in entries.flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            if let Ok(record) = serde_json::from_str::<grid_container::PidRecord>(&text) {
                // An intent record (written before the spawn) has no group
                // yet; the searches here always finish their spawns.
                if let Some(pgid) = record.pgid {
                    assert!(
                        !grid_sys::group_alive(pgid),
                        "server {pgid} is still running"
                    );
                }
            }
        }
    }
}

pub fn resume() -> SearchOptions {
    SearchOptions {
        mode: SearchMode::Resume {
            allow_changes: false,
        },
        ..SearchOptions::default()
    }
}

/// The only config's result file.
pub fn only_result(sim: &Sim, run_id: &str) -> grid_search::ConfigResult {
    let results = sim.store(run_id).read_results().expect("results read");
    assert_eq!(results.len(), 1, "{results:?}");
    results.into_values().next().expect("one result")
}
