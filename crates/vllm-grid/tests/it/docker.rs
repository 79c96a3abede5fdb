//! The same end-to-end search through the docker backend, on the
//! vllm-sim:latest image (scripts/build-sim-image.sh). Fails, never skips,
//! without a Docker engine.

use std::process::Command;

use crate::common::*;

fn require_docker() {
    let out = Command::new("docker")
        .args(["image", "inspect", "vllm-sim:latest", "--format", "{{.Id}}"])
        .output();
    match out {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "the image vllm-sim:latest is missing or the Docker engine is unreachable ({}); \
             start Docker and run scripts/build-sim-image.sh",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(err) => panic!("cannot run `docker` ({err}); install and start the Docker engine"),
    }
}

fn containers_of_run(run_id: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=vllm-grid.run-id={run_id}"),
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn assert_no_containers(run_id: &str) {
    let left = containers_of_run(run_id);
    assert!(left.is_empty(), "containers left: {left:?}");
}

#[test]
fn docker_backend_search_picks_the_best_valid_config() {
    require_docker();
    let ws = Workspace::new();
    ws.write_plan("plan.json", None);
    ws.write_docker_profile("sim.yml", &format!("e2e-{}", std::process::id()));
    let run_id = format!("docker-e2e-{}", std::process::id());
    let out = ws.run_search("docker", &run_id);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    crate::search::check_report(&ws, &run_id, 12);
    assert_no_containers(&run_id);
    let manifest = std::fs::read_to_string(ws.run_dir(&run_id).join("manifest.json")).unwrap();
    assert!(manifest.contains("sha256:"), "the image ID is recorded");
    let leaks = ws.files_containing(&ws.key);
    assert!(leaks.is_empty(), "the API key leaked into {leaks:?}");
}

#[test]
fn sigterm_during_the_health_wait_removes_the_container_and_exits_130() {
    require_docker();
    let ws = Workspace::new();
    ws.write_plan(
        "plan.json",
        Some(r#"{"gpu_memory_utilization": [0.85], "enable_chunked_prefill": [true], "enable_prefix_caching": [true]}"#),
    );
    // A model load of 2 s (400 simulated seconds at 0.005).
    let text = std::fs::read_to_string(
        ws.write_docker_profile("sim.yml", &format!("sig-{}", std::process::id())),
    )
    .unwrap()
    .replace("\"20\"", "\"400\"");
    std::fs::write(ws.path().join("sim.yml"), text).unwrap();
    let run_id = format!("docker-sig-{}", std::process::id());
    let (mut child, _stderr) = ws.spawn_search("docker", &run_id, &[]);
    ws.wait_for_event(&run_id, std::time::Duration::from_secs(60), |e| {
        e["event"] == "config_started"
    });
    std::thread::sleep(std::time::Duration::from_millis(400));
    send_signal(&child, SIGTERM);
    let status = wait_with_timeout(&mut child, std::time::Duration::from_secs(60));
    assert_eq!(status.code(), Some(130));
    assert_no_containers(&run_id);
}

#[test]
fn sigint_during_a_benchmark_removes_the_container_and_exits_130() {
    require_docker();
    let ws = Workspace::new();
    ws.write_plan(
        "plan.json",
        Some(r#"{"gpu_memory_utilization": [0.85], "enable_chunked_prefill": [true], "enable_prefix_caching": [true]}"#),
    );
    ws.write_docker_profile("sim.yml", &format!("sigint-{}", std::process::id()));
    let run_id = format!("docker-sigint-{}", std::process::id());
    let (mut child, _stderr) = ws.spawn_search("docker", &run_id, &[]);
    ws.wait_for_event(&run_id, std::time::Duration::from_secs(60), |e| {
        e["event"] == "battery_started"
    });
    // The container is up and serving the battery right now.
    assert!(
        !containers_of_run(&run_id).is_empty(),
        "no container while the battery runs"
    );
    send_signal(&child, SIGINT);
    let status = wait_with_timeout(&mut child, std::time::Duration::from_secs(60));
    assert_eq!(status.code(), Some(130));
    assert_no_containers(&run_id);
    // The run is left resumable: the interruption is in the journal.
    assert!(
        ws.journal_events(&run_id)
            .iter()
            .any(|e| e["event"] == "config_interrupted"),
        "no config_interrupted event"
    );
}
