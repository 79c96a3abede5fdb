//! The memory prediction's inputs, gathered from this host, and the
//! prediction of each config of a plan (`grid_predict` computes).
//!
//! * hardware: the profile's declaration (`x-vllm-grid.predict.hardware`),
//!   else `nvidia-smi --query-gpu=index,name,memory.total,memory.used`
//!   (parsed by grid-bench's `nvidia-smi` reader), narrowed to the GPUs the
//!   profile gives the server (`CUDA_VISIBLE_DEVICES`, `device_ids`); a CPU
//!   declaration reads node 0's meminfo and the cgroup limit;
//! * model: the profile's declaration, else `config.json` and the weight
//!   files where the server finds its model (`Profile::model_source`: a
//!   directory, or the Hugging Face cache's snapshot of a repo id);
//! * overheads: the profile's calibration, else grid-predict's estimates.
//!
//! What cannot be read makes the predictions `unknown`, with the reason;
//! nothing is skipped then.

use std::path::{Path, PathBuf};

use grid_container::{DeclaredHardware, ModelSource, Profile, expand_leniently, render_command};
use grid_plan::PlannedConfig;
use grid_predict::{
    CpuMemory, Gpu, Hardware, Inputs, ModelFacts, Overheads, Prediction, ServeArgs,
};

/// The program asked for the GPUs' memory.
pub const NVIDIA_SMI: &str = "nvidia-smi";

/// How long `nvidia-smi` may take (a wedged driver must not hang a search).
const NVIDIA_SMI_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// The inputs every config of a search shares.
#[derive(Debug, Clone, Default)]
pub struct PredictionInputs {
    pub model: Option<ModelFacts>,
    pub hardware: Option<Hardware>,
    pub overheads: Overheads,
    /// `VLLM_CPU_KVCACHE_SPACE` of the server's environment (GiB).
    pub cpu_kvcache_space_gib: Option<u64>,
    /// Why the model or the hardware is missing.
    pub missing: Vec<String>,
    /// Where each input came from, for `vllm-grid plan`.
    pub sources: Vec<String>,
}

/// Reads the inputs for `profile`. `lookup` expands the profile's
/// references (the process environment); `nvidia_smi` is the program to
/// ask (normally [`NVIDIA_SMI`]).
pub async fn gather(
    profile: &Profile,
    lookup: &dyn Fn(&str) -> Option<String>,
    nvidia_smi: &str,
) -> PredictionInputs {
    let mut inputs = PredictionInputs {
        overheads: profile.predict.overheads,
        ..PredictionInputs::default()
    };
    let environment = |name: &str| -> Option<String> {
        profile
            .environment
            .iter()
            .find(|e| e.name == name)
            .and_then(|e| e.value.clone())
            .map(|v| expand_leniently(&[v], lookup).remove(0))
            .or_else(|| lookup(name))
            .filter(|v| !v.is_empty())
    };
    inputs.cpu_kvcache_space_gib =
        environment("VLLM_CPU_KVCACHE_SPACE").and_then(|v| v.trim().parse().ok());
    match hardware(profile, &environment, nvidia_smi).await {
        Ok((hardware, source)) => {
            inputs.hardware = Some(hardware);
            inputs.sources.push(source);
        }
        Err(reason) => inputs.missing.push(reason),
    }
    match model(profile, lookup) {
        Ok((model, source)) => {
            inputs.model = Some(model);
            inputs.sources.push(source);
        }
        Err(reason) => inputs.missing.push(reason),
    }
    inputs
}

/// The prediction for one config of the plan.
pub fn predict_config(
    inputs: &PredictionInputs,
    profile: &Profile,
    config: &PlannedConfig,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Prediction {
    let command = expand_leniently(&render_command(&profile.command, &config.flags()), lookup);
    let args = match ServeArgs::parse(&command) {
        Ok(args) => args,
        Err(error) => return Prediction::unknown(vec![error.to_string()]),
    };
    grid_predict::predict(&Inputs {
        args,
        model: inputs.model.clone(),
        hardware: inputs.hardware.clone(),
        overheads: inputs.overheads,
        cpu_kvcache_space_gib: inputs.cpu_kvcache_space_gib,
        missing: inputs.missing.clone(),
    })
}

const GIB: f64 = (1u64 << 30) as f64;

async fn hardware(
    profile: &Profile,
    environment: &dyn Fn(&str) -> Option<String>,
    nvidia_smi: &str,
) -> Result<(Hardware, String), String> {
    match &profile.predict.hardware {
        Some(DeclaredHardware::Gpus(gpus)) => Ok((
            Hardware::Gpus(gpus.clone()),
            format!(
                "hardware: {} GPU(s) of {:.1} GiB, {:.1} GiB used, declared by the profile (x-vllm-grid.predict.hardware)",
                gpus.len(),
                gpus.first().map_or(0.0, |g| g.total_bytes as f64 / GIB),
                gpus.first().map_or(0.0, |g| g.used_bytes as f64 / GIB),
            ),
        )),
        Some(DeclaredHardware::Cpu {
            total_bytes,
            available_bytes,
        }) => {
            let memory = match (total_bytes, available_bytes) {
                (Some(total), Some(available)) => CpuMemory {
                    total_bytes: *total,
                    available_bytes: *available,
                },
                _ => {
                    let read = node_memory()?;
                    CpuMemory {
                        total_bytes: total_bytes.unwrap_or(read.total_bytes),
                        available_bytes: available_bytes.unwrap_or(read.available_bytes),
                    }
                }
            };
            Ok((
                Hardware::Cpu(memory),
                format!(
                    "hardware: vLLM's CPU build, memory node 0 with {:.2} GiB total, {:.2} GiB available",
                    memory.total_bytes as f64 / GIB,
                    memory.available_bytes as f64 / GIB
                ),
            ))
        }
        None => {
            let gpus = query_gpus(nvidia_smi).await.map_err(|e| {
                format!(
                    "the GPUs' memory is not known: {e}; declare it in the profile (x-vllm-grid.predict.hardware)"
                )
            })?;
            let gpus = visible(gpus, profile, environment);
            if gpus.is_empty() {
                return Err(
                    "nvidia-smi lists none of the GPUs the profile gives the server".to_string(),
                );
            }
            let source = format!(
                "hardware: {} GPU(s) from {nvidia_smi}: {}",
                gpus.len(),
                gpus.iter()
                    .map(|g| format!(
                        "{} {:.1}/{:.1} GiB used",
                        g.name.as_deref().unwrap_or("GPU"),
                        g.used_bytes as f64 / GIB,
                        g.total_bytes as f64 / GIB
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Ok((Hardware::Gpus(gpus), source))
        }
    }
}

/// The GPUs as `nvidia-smi` lists them, with their index.
async fn query_gpus(command: &str) -> Result<Vec<(u32, Gpu)>, String> {
    const FIELDS: [&str; 4] = ["index", "name", "memory.total", "memory.used"];
    let run = tokio::process::Command::new(command)
        .arg(format!("--query-gpu={}", FIELDS.join(",")))
        .arg("--format=csv,noheader,nounits")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(NVIDIA_SMI_TIMEOUT, run)
        .await
        .map_err(|_| format!("{command} did not answer within {NVIDIA_SMI_TIMEOUT:?}"))?
        .map_err(|e| format!("cannot run {command} ({e})"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "{command} exited with {}: {}",
            output.status,
            stderr.trim().chars().take(200).collect::<String>()
        ));
    }
    let readings =
        grid_bench::gpu::parse_query_output(&String::from_utf8_lossy(&output.stdout), &FIELDS)
            .map_err(|e| format!("cannot read {command}'s output ({e})"))?;
    let mut gpus = Vec::new();
    for (position, reading) in readings.into_iter().enumerate() {
        let (Some(total), Some(used)) = (reading.memory_total_mib, reading.memory_used_mib) else {
            return Err(format!("{command} does not report GPU {position}'s memory"));
        };
        let mib = |v: f64| (v * 1024.0 * 1024.0) as u64;
        gpus.push((
            reading.index.unwrap_or(position as u32),
            Gpu {
                name: reading.name,
                total_bytes: mib(total),
                used_bytes: mib(used),
            },
        ));
    }
    if gpus.is_empty() {
        return Err(format!("{command} lists no GPU"));
    }
    Ok(gpus)
}

/// The GPUs the server is given, in its order: `CUDA_VISIBLE_DEVICES` of
/// its environment, else the compose reservation's `device_ids`, else all.
fn visible(
    gpus: Vec<(u32, Gpu)>,
    profile: &Profile,
    environment: &dyn Fn(&str) -> Option<String>,
) -> Vec<Gpu> {
    let ids: Option<Vec<u32>> = environment("CUDA_VISIBLE_DEVICES")
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .or_else(|| {
            let ids: Vec<u32> = profile
                .gpus
                .iter()
                .flat_map(|g| g.device_ids.iter())
                .filter_map(|s| s.trim().parse().ok())
                .collect();
            (!ids.is_empty()).then_some(ids)
        });
    match ids {
        Some(ids) => ids
            .iter()
            .filter_map(|id| {
                gpus.iter()
                    .find(|(index, _)| index == id)
                    .map(|(_, g)| g.clone())
            })
            .collect(),
        None => gpus.into_iter().map(|(_, g)| g).collect(),
    }
}

/// Node 0 of this host as vLLM's CPU worker reads it.
fn node_memory() -> Result<CpuMemory, String> {
    let node = Path::new("/sys/devices/system/node/node0/meminfo");
    let path = if node.exists() {
        node
    } else {
        Path::new("/proc/meminfo")
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {} ({e})", path.display()))?;
    let number =
        |path: &str| -> Option<u64> { std::fs::read_to_string(path).ok()?.trim().parse().ok() };
    // cgroup v2, else v1 (vllm/utils/cpu_resource_utils.py).
    let limit = number("/sys/fs/cgroup/memory.max")
        .or_else(|| number("/sys/fs/cgroup/memory/memory.limit_in_bytes"));
    let usage = number("/sys/fs/cgroup/memory.current")
        .or_else(|| number("/sys/fs/cgroup/memory/memory.usage_in_bytes"));
    grid_predict::cpu_memory_from_meminfo(&text, limit, usage)
        .map_err(|e| format!("{} ({e})", path.display()))
}

fn model(
    profile: &Profile,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(ModelFacts, String), String> {
    if let Some(declared) = &profile.predict.model {
        let facts = ModelFacts::from_config(&declared.config, declared.weights_bytes)
            .map_err(|e| format!("the declared model (x-vllm-grid.predict.model): {e}"))?;
        return Ok((
            facts,
            format!(
                "model: declared by the profile (x-vllm-grid.predict.model), {:.2} GiB of weights",
                declared.weights_bytes as f64 / GIB
            ),
        ));
    }
    let source = profile
        .model_source(&profile.command, lookup)
        .ok_or_else(|| "the profile's command names no model (--model)".to_string())?;
    let (name, tried) = match &source {
        ModelSource::Directory { model, candidates } => (model.clone(), candidates.clone()),
        ModelSource::Hub {
            repo_id,
            cache_dirs,
        } => (
            repo_id.clone(),
            cache_dirs
                .iter()
                .filter_map(|dir| snapshot(dir, repo_id))
                .collect(),
        ),
    };
    let Some(dir) = tried.iter().find(|d| d.join("config.json").is_file()) else {
        let looked = match &source {
            ModelSource::Directory { candidates, .. } => candidates.clone(),
            ModelSource::Hub { cache_dirs, .. } => cache_dirs.clone(),
        };
        return Err(format!(
            "config.json of {name} is not on this host (looked in {}); mount or download it, or declare x-vllm-grid.predict.model",
            looked
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {} ({e})", path.display()))?;
    let config: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON ({e})", path.display()))?;
    let weights = weights_bytes(dir).ok_or_else(|| {
        format!(
            "no weight files (*.safetensors, *.bin, *.pt) next to {}",
            path.display()
        )
    })?;
    let facts = ModelFacts::from_config(&config, weights)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((
        facts,
        format!(
            "model: {} ({:.2} GiB of weights)",
            path.display(),
            weights as f64 / GIB
        ),
    ))
}

/// The snapshot of `repo_id` in a hub cache: `refs/main`'s revision, else
/// the only snapshot.
fn snapshot(cache: &Path, repo_id: &str) -> Option<PathBuf> {
    let repo = cache.join(format!("models--{}", repo_id.replace('/', "--")));
    let snapshots = repo.join("snapshots");
    if let Ok(revision) = std::fs::read_to_string(repo.join("refs/main")) {
        let dir = snapshots.join(revision.trim());
        if dir.is_dir() {
            return Some(dir);
        }
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&snapshots)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    (dirs.len() == 1).then(|| dirs.remove(0))
}

/// The weights' size: `*.safetensors`, else `*.bin` / `*.pt` / `*.pth`
/// (sizes through symlinks, as the hub cache links snapshots to blobs).
fn weights_bytes(dir: &Path) -> Option<u64> {
    let files: Vec<(String, u64)> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let size = std::fs::metadata(e.path()).ok()?.len();
            Some((name, size))
        })
        .collect();
    for extensions in [&["safetensors"][..], &["bin", "pt", "pth"][..]] {
        let total: u64 = files
            .iter()
            .filter(|(name, _)| extensions.iter().any(|x| name.ends_with(&format!(".{x}"))))
            .map(|(_, size)| size)
            .sum();
        if total > 0 {
            return Some(total);
        }
    }
    None
}
