//! `manifest.json`: what a run is (plan with IDs, profile hash, image,
//! battery, seeds, host), enough to resume it, re-render its report and
//! reproduce it.

use std::collections::BTreeMap;
use std::fs;

use grid_plan::{ConfigId, Plan};
use serde::{Deserialize, Serialize};

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
