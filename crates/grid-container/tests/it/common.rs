//! Shared helpers: the engine, the simulator, unique names, test profiles.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
use grid_container::{
    DockerBackend, DockerBackendConfig, LaunchSpec, ProcessBackend, ProcessBackendConfig, Profile,
    labels, parse_profile,
};
use grid_core::Secret;

pub const SIM_IMAGE: &str = "vllm-sim:latest";
pub const FIX: &str = "build the simulator image and binary with scripts/build-sim-image.sh";

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{:x}", std::process::id(), nanos)
}

pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("grid-container")
        .join(unique(name));
    std::fs::create_dir_all(&dir).expect("create a scratch directory under the target dir");
    dir
}

/// The Docker backend; fails the test (never skips) when the engine is down.
pub async fn docker() -> DockerBackend {
    let backend = DockerBackend::connect(DockerBackendConfig::default())
        .await
        .unwrap_or_else(|error| panic!("these tests need the Docker engine: {error}. Then {FIX}"));
    if let Err(error) = backend.client().inspect_image(SIM_IMAGE).await {
        panic!("image {SIM_IMAGE} is missing from the engine ({error}); {FIX}");
    }
    backend
}

/// The static simulator binary for the process backend.
pub fn sim_binary() -> PathBuf {
    let path = std::env::var_os("VLLM_SIM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/vllm-sim-static/vllm-sim")
        });
    assert!(
        path.is_file(),
        "the simulator binary {} is missing; {FIX} (or set VLLM_SIM_BIN)",
        path.display()
    );
    path
}

pub fn process_backend(state_dir: PathBuf) -> ProcessBackend {
    let mut config = ProcessBackendConfig::new(state_dir);
    config.program_overrides.insert(
        "vllm-sim".to_string(),
        vec![sim_binary().display().to_string()],
    );
    ProcessBackend::new(config)
}

/// A simulator profile with a container name of its own and an ephemeral
/// loopback port, so tests run in parallel. `extra` lines are added to the
/// command (YAML list items).
pub fn sim_profile(container_name: &str, extra: &[&str]) -> Profile {
    let mut command = String::new();
    for token in [
        "--model",
        "Qwen/Qwen3-32B-AWQ",
        "--served-model-name",
        "qwen3-test",
        "--tensor-parallel-size",
        "2",
        "--max-model-len",
        "32768",
        "--api-key",
        "${TEST_API_KEY}",
        "--gpu-memory-utilization",
        "0.9",
        "--sim-gpu-memory-used-gib",
        "2",
        "--sim-model-load-s",
        "0.3",
    ]
    .iter()
    .chain(extra.iter())
    {
        command.push_str(&format!("      - \"{token}\"\n"));
    }
    let text = format!(
        "services:\n  sim:\n    image: {SIM_IMAGE}\n    container_name: {container_name}\n    command:\n{command}    ports:\n      - \"127.0.0.1::8000\"\nx-vllm-grid:\n  process:\n    entrypoint: [\"vllm-sim\", \"serve\"]\n"
    );
    parse_profile(&text, "test profile")
        .expect("the test profile parses")
        .profile
}

pub const TEST_API_KEY: &str = "sk-test-4f1d2c9a8b7e6d5c";

pub fn spec(
    profile: &Profile,
    run_id: &str,
    config_id: &str,
    log_root: &std::path::Path,
) -> LaunchSpec {
    let mut spec = LaunchSpec::new(
        run_id,
        config_id,
        config_id,
        profile.command.clone(),
        log_root.join(run_id).join(config_id),
    );
    spec.variables
        .insert("TEST_API_KEY".to_string(), Secret::new(TEST_API_KEY));
    spec.grace_period = std::time::Duration::from_secs(5);
    spec.ready_timeout = std::time::Duration::from_secs(60);
    spec
}

/// Containers carrying a run id label (running or not).
pub async fn containers_of_run(backend: &DockerBackend, run_id: &str) -> Vec<String> {
    let mut filters = HashMap::new();
    filters.insert(
        "label".to_string(),
        vec![format!("{}={run_id}", labels::RUN_ID)],
    );
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    backend
        .client()
        .list_containers(Some(options))
        .await
        .expect("list containers")
        .into_iter()
        .filter_map(|c| c.id)
        .collect()
}

/// Test cleanup: removes whatever a failed test left behind.
pub async fn remove_run(backend: &DockerBackend, run_id: &str) {
    for id in containers_of_run(backend, run_id).await {
        let options = RemoveContainerOptionsBuilder::new().force(true).build();
        let _ = backend.client().remove_container(&id, Some(options)).await;
    }
}

/// Whether a container with this id still exists.
pub async fn container_exists(backend: &DockerBackend, id: &str) -> bool {
    backend.client().inspect_container(id, None).await.is_ok()
}

/// `/proc/<pid>/<file>` of every process this user can read it for.
pub fn proc_files(file: &str) -> Vec<(u32, Vec<u8>)> {
    std::fs::read_dir("/proc")
        .expect("read /proc")
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bytes = std::fs::read(entry.path().join(file)).ok()?;
            Some((pid, bytes))
        })
        .collect()
}
