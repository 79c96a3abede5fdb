//! The manifest a setup gives, and what changed between two.

use crate::SearchError;
use crate::store::{HostFacts, Manifest, STORE_FORMAT_VERSION, Seeds, TOOL_VERSION, now_unix_ms};

use super::SearchSetup;

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

/// The GPUs a config's server uses: tensor × pipeline parallel size of its
/// rendered command (1 × 1 where the command sets neither). A command vLLM
/// would refuse is diagnosed at its launch; for sizing, its parallelism
/// counts as vLLM's default.
pub fn config_gpus(profile: &grid_container::Profile, config: &grid_plan::PlannedConfig) -> u32 {
    let command = grid_container::render_command(&profile.command, &config.flags());
    let args = grid_predict::ServeArgs::parse(&command).ok();
    let tp = args
        .as_ref()
        .and_then(|a| a.tensor_parallel_size)
        .unwrap_or(1);
    let pp = args
        .as_ref()
        .and_then(|a| a.pipeline_parallel_size)
        .unwrap_or(1);
    u32::try_from(tp.saturating_mul(pp).max(1)).unwrap_or(u32::MAX)
}
