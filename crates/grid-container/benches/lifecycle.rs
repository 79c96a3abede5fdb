//! Readiness lag and teardown time, for the docker and process backends.
//!
//! The simulator logs `vllm-sim: ready unix_ms=<ms>` the moment it can serve;
//! the lag is from that instant until `launch` returned a ready server.
//! Goals: lag under 100 ms at the median, teardown under 2 s.
//!
//! Needs the Docker engine, the `vllm-sim:latest` image and the simulator
//! binary: run scripts/build-sim-image.sh first.
//! Run: `cargo bench -p grid-container --bench lifecycle` (ITERATIONS=N to
//! change the count, default 10).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use grid_container::render_command;
use grid_container::{
    Backend, DockerBackend, DockerBackendConfig, LaunchSpec, ProcessBackend, ProcessBackendConfig,
    Profile, load_profile,
};
use grid_core::Secret;
use grid_plan::FlagSetting;
use tokio_util::sync::CancellationToken;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn percentile(values: &mut [f64], fraction: f64) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let index = ((values.len() as f64 - 1.0) * fraction).round() as usize;
    values[index.min(values.len() - 1)]
}

/// The simulator's own ready instant, from the server log.
async fn sim_ready_ms(log: &Path) -> Option<u128> {
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(log) {
            if let Some(ms) = text.lines().find_map(|line| {
                line.split("vllm-sim: ready unix_ms=")
                    .nth(1)
                    .and_then(|rest| {
                        rest.split(|c: char| !c.is_ascii_digit())
                            .next()
                            .and_then(|digits| digits.parse().ok())
                    })
            }) {
                return Some(ms);
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

async fn measure(
    name: &str,
    backend: &Backend,
    profile: &Profile,
    iterations: usize,
    scratch: &Path,
) {
    let cancel = CancellationToken::new();
    let run_id = format!("bench-{}-{}", std::process::id(), name);
    let mut lags = Vec::new();
    let mut teardowns = Vec::new();
    let mut ready_afters = Vec::new();
    for i in 0..iterations {
        let config_id = format!("{name}-{i}");
        let mut spec = LaunchSpec::new(
            &run_id,
            &config_id,
            &config_id,
            profile.command.clone(),
            scratch.join(&config_id),
        );
        spec.variables.insert(
            "VLLM_MEDIUM_API_KEY".into(),
            Secret::new("bench-key-0123456789"),
        );
        spec.grace_period = Duration::from_secs(5);
        spec.ready_timeout = Duration::from_secs(60);
        let server = match backend.launch(profile, &spec, &cancel).await {
            Ok(server) => server,
            Err(failure) => {
                eprintln!(
                    "{name}: launch {i} failed: {failure}\n{:#?}",
                    failure.log_tail
                );
                std::process::exit(1);
            }
        };
        let noticed_ms = server
            .ready_at()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let log = server.log_path().to_path_buf();
        ready_afters.push(server.ready_after().as_secs_f64() * 1000.0);
        match sim_ready_ms(&log).await {
            Some(ready_ms) => lags.push(noticed_ms as f64 - ready_ms as f64),
            None => eprintln!(
                "{name}: no `vllm-sim: ready unix_ms=` line in {}",
                log.display()
            ),
        }
        match server.teardown().await {
            Ok(report) => teardowns.push(report.duration.as_secs_f64() * 1000.0),
            Err(error) => {
                eprintln!("{name}: teardown {i} failed: {error}");
                std::process::exit(1);
            }
        }
    }
    if lags.is_empty() {
        eprintln!("{name}: no readiness lag could be measured");
        std::process::exit(1);
    }
    println!(
        "{name:8} n={iterations:3}  readiness lag ms: median {:7.1}  p90 {:7.1}  max {:7.1}   \
         start-to-ready ms: median {:7.1}   teardown ms: median {:7.1}  p90 {:7.1}  max {:7.1}",
        percentile(&mut lags.clone(), 0.5),
        percentile(&mut lags.clone(), 0.9),
        percentile(&mut lags, 1.0),
        percentile(&mut ready_afters, 0.5),
        percentile(&mut teardowns.clone(), 0.5),
        percentile(&mut teardowns.clone(), 0.9),
        percentile(&mut teardowns, 1.0),
    );
}

fn main() {
    let iterations: usize = std::env::var("ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut profile = load_profile(&repo_root().join("profiles/sim.yml")).expect("profiles/sim.yml loads").profile;
        // A name and an ephemeral loopback port of its own.
        let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        profile.container_name = Some(format!("vllm-grid-bench-{stamp}"));
        profile.ports = vec!["127.0.0.1::8000".to_string()];
        // A configuration the study ran (the profile leaves utilization to
        // the grid, and the simulator's default 0.92 does not fit).
        profile.command = render_command(
            &profile.command,
            &[FlagSetting::Value { flag: "gpu-memory-utilization".into(), value: "0.90".into() }],
        );
        let scratch = repo_root().join(format!("target/tmp/lifecycle-bench-{stamp}"));
        println!("profile profiles/sim.yml (model load {}), goal: lag < 100 ms median, teardown < 2000 ms",
            profile.command.windows(2).find(|w| w[0] == "--sim-model-load-s").map(|w| format!("{} s simulated", w[1])).unwrap_or_default());

        match DockerBackend::connect(DockerBackendConfig::default()).await {
            Ok(docker) => measure("docker", &Backend::Docker(docker), &profile, iterations, &scratch).await,
            Err(error) => {
                eprintln!("docker: {error}");
                std::process::exit(1);
            }
        }
        let sim = std::env::var_os("VLLM_SIM_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target/vllm-sim-static/vllm-sim"));
        if !sim.is_file() {
            eprintln!("process: simulator binary {} missing; run scripts/build-sim-image.sh", sim.display());
            std::process::exit(1);
        }
        let mut config = ProcessBackendConfig::new(scratch.join("pids"));
        config.program_overrides.insert("vllm-sim".into(), vec![sim.display().to_string()]);
        measure("process", &Backend::Process(ProcessBackend::new(config)), &profile, iterations, &scratch).await;
    });
}
