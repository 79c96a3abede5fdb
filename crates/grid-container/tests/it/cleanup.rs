//! Cleanup that cannot be skipped: guards, cancellation, foreign containers,
//! sweeps after a SIGKILL'd owner.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use grid_container::{
    Backend, DockerBackend, DockerBackendConfig, FailureClass, RunningServer, SweepOptions, labels,
};
use grid_sys::{Owner, hostname, pid_alive};
use tokio_util::sync::CancellationToken;

use crate::common::*;

/// The owner of a process that has exited, as a SIGKILL'd vllm-grid would be.
fn dead_owner() -> Owner {
    let mut child = std::process::Command::new("true")
        .spawn()
        .expect("spawn true");
    let pid = child.id();
    child.wait().expect("wait for true");
    Owner {
        pid,
        start_ticks: None,
        host: hostname(),
    }
}

/// A Docker backend whose owner is dead: a vllm-grid that was SIGKILL'd.
async fn docker_with_dead_owner() -> DockerBackend {
    // Fails the test with the fix when the engine or image is missing.
    let _ = docker().await;
    DockerBackend::connect(DockerBackendConfig {
        owner: dead_owner(),
        ..DockerBackendConfig::default()
    })
    .await
    .expect("engine")
}

fn as_docker(backend: &Backend) -> &DockerBackend {
    match backend {
        Backend::Docker(docker) => docker,
        Backend::Process(_) => panic!("the test built a process backend where it needs Docker"),
    }
}

/// Launches a server that must start.
async fn start(
    backend: &Backend,
    profile: &grid_container::Profile,
    spec: &grid_container::LaunchSpec,
) -> RunningServer {
    backend
        .launch(profile, spec, &CancellationToken::new())
        .await
        .expect("starts")
}

/// A token that fires after `delay`.
fn cancel_after(delay: Duration) -> CancellationToken {
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        trigger.cancel();
    });
    cancel
}

/// How many pid files are left in the process backend's state directory.
fn pid_files(state_dir: &std::path::Path) -> usize {
    std::fs::read_dir(state_dir)
        .unwrap_or_else(|error| panic!("read the pid directory {}: {error}", state_dir.display()))
        .count()
}

/// Launches a simulator container, drops the server and checks the guard
/// removed the container before `drop` returned.
async fn dropping_a_container_removes_it(name: &str) {
    let run_id = unique(name);
    let profile = sim_profile(&unique(&format!("gc-{name}")), &[]);
    let spec = spec(&profile, &run_id, "c", &scratch_dir(name));
    let backend = Backend::Docker(docker().await);
    let server = start(&backend, &profile, &spec).await;
    let id = server.container_id().expect("a container").to_string();
    drop(server);
    // The guard waits for the removal, so it is gone as soon as drop returns.
    assert!(
        !container_exists(as_docker(&backend), &id).await,
        "the guard removed {id}"
    );
}

async fn eventually(mut condition: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..100 {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_running_server_removes_it() {
    dropping_a_container_removes_it("guard").await;

    let profile = sim_profile(&unique("gc-guard"), &[]);
    let backend = Backend::Process(process_backend(scratch_dir("guard-pids")));
    let server = start(
        &backend,
        &profile,
        &spec_for_process(&profile, "guard-process"),
    )
    .await;
    let pid = server.pid().expect("a pid");
    drop(server);
    assert!(
        eventually(async || !pid_alive(pid)).await,
        "the guard killed process {pid}"
    );
}

fn spec_for_process(profile: &grid_container::Profile, name: &str) -> grid_container::LaunchSpec {
    spec(profile, &unique(name), "c", &scratch_dir(name))
}

/// A guard inside a current-thread runtime (the default `#[tokio::test]`)
/// must not deadlock: it removes on its own thread and connection.
#[tokio::test]
async fn dropping_inside_a_current_thread_runtime_removes_it() {
    dropping_a_container_removes_it("guard-ct").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_during_the_health_wait_removes_the_container() {
    let docker = docker().await;
    let run_id = unique("cancel");
    // A long model load keeps the launch in its health wait.
    let profile = sim_profile(&unique("gc-cancel"), &["--sim-model-load-s", "60"]);
    let spec = spec(&profile, &run_id, "c", &scratch_dir("cancel"));
    let backend = Backend::Docker(docker);
    let cancel = cancel_after(Duration::from_millis(1500));
    let failure = backend
        .launch(&profile, &spec, &cancel)
        .await
        .expect_err("cancelled");
    assert_eq!(failure.class, FailureClass::Cancelled, "{failure}");
    let docker = as_docker(&backend);
    let left = containers_of_run(docker, &run_id).await;
    remove_run(docker, &run_id).await;
    assert!(left.is_empty(), "{left:?}");

    // Same on the process backend.
    let state_dir = scratch_dir("cancel-pids");
    let backend = Backend::Process(process_backend(state_dir.clone()));
    let cancel = cancel_after(Duration::from_millis(500));
    let spec = spec_for_process(&profile, "cancel-process");
    let failure = backend
        .launch(&profile, &spec, &cancel)
        .await
        .expect_err("cancelled");
    assert_eq!(failure.class, FailureClass::Cancelled);
    assert_eq!(pid_files(&state_dir), 0, "pid file removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_launch_future_mid_wait_removes_the_container() {
    let docker = docker().await;
    let run_id = unique("abandon");
    let profile = sim_profile(&unique("gc-abandon"), &["--sim-model-load-s", "60"]);
    let spec = spec(&profile, &run_id, "c", &scratch_dir("abandon"));
    let backend = Backend::Docker(docker);
    let cancel = CancellationToken::new();
    let outcome = tokio::time::timeout(
        Duration::from_millis(2000),
        backend.launch(&profile, &spec, &cancel),
    )
    .await;
    assert!(outcome.is_err(), "the launch was still waiting");
    let docker = as_docker(&backend);
    let left = containers_of_run(docker, &run_id).await;
    remove_run(docker, &run_id).await;
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn a_foreign_container_is_refused_and_left_untouched() {
    let docker = docker().await;
    let name = unique("gc-foreign");
    // The user's own service: same name, no vllm-grid labels, running.
    let body = ContainerCreateBody {
        image: Some(SIM_IMAGE.to_string()),
        cmd: Some(vec!["--model".into(), "user-model".into()]),
        labels: Some(HashMap::from([(
            "owner".to_string(),
            "production".to_string(),
        )])),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::new().name(&name).build();
    let foreign = docker
        .client()
        .create_container(Some(options), body)
        .await
        .expect("create the foreign container")
        .id;
    docker
        .client()
        .start_container(&foreign, None)
        .await
        .expect("start the foreign container");

    let profile = sim_profile(&name, &[]);
    let run_id = unique("foreign");
    let spec = spec(&profile, &run_id, "c", &scratch_dir("foreign"));
    let backend = Backend::Docker(docker);
    let failure = backend
        .launch(&profile, &spec, &CancellationToken::new())
        .await
        .expect_err("refused");
    let docker = as_docker(&backend);
    let inspect = docker
        .client()
        .inspect_container(&name, None)
        .await
        .expect("the foreign container still exists");
    let still_running = inspect.state.and_then(|s| s.running) == Some(true);
    let same = inspect.id.as_deref() == Some(foreign.as_str());

    // With the explicit flag it is replaced.
    let mut replacing = spec.clone();
    replacing.replace_foreign = true;
    let replaced = backend
        .launch(&profile, &replacing, &CancellationToken::new())
        .await;
    let foreign_gone = !container_exists(docker, &foreign).await;
    if let Ok(server) = replaced {
        server.teardown().await.expect("teardown");
    }
    let remove = RemoveContainerOptionsBuilder::new().force(true).build();
    let _ = docker
        .client()
        .remove_container(&foreign, Some(remove))
        .await;
    remove_run(docker, &run_id).await;

    assert_eq!(failure.class, FailureClass::ForeignContainer, "{failure}");
    assert!(
        failure.message.contains(&name) && failure.message.contains("left untouched"),
        "{failure}"
    );
    assert!(same && still_running, "the foreign container was touched");
    assert!(foreign_gone, "replace_foreign replaces it");
}

#[tokio::test]
async fn a_leftover_of_ours_with_a_dead_owner_is_replaced_and_swept() {
    let name = unique("gc-leftover");
    let run_id = unique("leftover");
    let profile = sim_profile(&name, &[]);
    // A vllm-grid that was SIGKILL'd: its server keeps running, no guard ran.
    let killed = docker_with_dead_owner().await;
    let backend = Backend::Docker(killed);
    let leftover = start(
        &backend,
        &profile,
        &spec(&profile, &run_id, "a", &scratch_dir("leftover")),
    )
    .await;
    let leftover_id = leftover.container_id().expect("id").to_string();
    std::mem::forget(leftover);
    let leftover_b = start(
        &backend,
        &sim_profile(&unique("gc-leftover-b"), &[]),
        &spec(&profile, &run_id, "b", &scratch_dir("leftover")),
    )
    .await;
    let swept_id = leftover_b.container_id().expect("id").to_string();
    std::mem::forget(leftover_b);

    // The next start: its sweep removes the dead owner's containers...
    let next = Backend::Docker(docker().await);
    let report = next
        .sweep_leftovers(&SweepOptions::default())
        .await
        .expect("sweep");
    let docker = as_docker(&next);
    assert!(
        report.removed.iter().any(|item| item.id == swept_id),
        "{report:?}"
    );
    assert!(!container_exists(docker, &swept_id).await);
    assert!(!container_exists(docker, &leftover_id).await);
    // ... and a launch with the same name works (had it survived, the name
    // check would have replaced it as ours).
    let server = next
        .launch(
            &profile,
            &spec(&profile, &run_id, "c", &scratch_dir("leftover")),
            &CancellationToken::new(),
        )
        .await
        .expect("starts again under the same name");
    server.teardown().await.expect("teardown");
    assert!(containers_of_run(docker, &run_id).await.is_empty());
}

#[tokio::test]
async fn the_name_check_replaces_our_own_leftover() {
    let name = unique("gc-ours");
    let run_id = unique("ours");
    let profile = sim_profile(&name, &[]);
    let killed = docker_with_dead_owner().await;
    let old = start(
        &Backend::Docker(killed),
        &profile,
        &spec(&profile, &run_id, "a", &scratch_dir("ours")),
    )
    .await;
    let old_id = old.container_id().expect("id").to_string();
    std::mem::forget(old);
    let next = Backend::Docker(docker().await);
    let server = next
        .launch(
            &profile,
            &spec(&profile, &run_id, "b", &scratch_dir("ours")),
            &CancellationToken::new(),
        )
        .await
        .expect("replaces the leftover");
    let docker = as_docker(&next);
    let old_gone = !container_exists(docker, &old_id).await;
    let labels_ok = docker
        .client()
        .inspect_container(server.container_id().expect("id"), None)
        .await
        .ok()
        .and_then(|i| i.config)
        .and_then(|c| c.labels)
        .map(|l| {
            l.get(labels::TOOL).map(String::as_str) == Some("vllm-grid")
                && l.get(labels::RUN_ID) == Some(&run_id)
                && l.get(labels::CONFIG_ID).map(String::as_str) == Some("b")
                && l.get(labels::OWNER_PID) == Some(&std::process::id().to_string())
                && l.get(labels::HOST) == Some(&hostname())
        })
        .unwrap_or(false);
    server.teardown().await.expect("teardown");
    remove_run(docker, &run_id).await;
    assert!(old_gone, "the leftover {old_id} was replaced");
    assert!(
        labels_ok,
        "every container carries tool, run, config, owner and host labels"
    );
}

#[tokio::test]
async fn a_process_left_by_a_dead_owner_is_swept() {
    let state_dir = scratch_dir("sweep-pids");
    let profile = sim_profile("unused", &[]);
    let mut config = grid_container::ProcessBackendConfig::new(state_dir.clone());
    config
        .program_overrides
        .insert("vllm-sim".into(), vec![sim_binary().display().to_string()]);
    config.owner = dead_owner();
    let killed = Backend::Process(grid_container::ProcessBackend::new(config));
    let server = start(&killed, &profile, &spec_for_process(&profile, "sweep")).await;
    let pid = server.pid().expect("pid");
    std::mem::forget(server);
    assert!(pid_alive(pid));

    // A live owner's server is left alone.
    let live = Backend::Process(process_backend(state_dir.clone()));
    let kept = start(&live, &profile, &spec_for_process(&profile, "sweep-live")).await;

    let report = live
        .sweep_leftovers(&SweepOptions::default())
        .await
        .expect("sweep");
    assert_eq!(report.removed.len(), 1, "{report:?}");
    assert_eq!(report.skipped_live_owner.len(), 1, "{report:?}");
    assert!(
        eventually(async || !pid_alive(pid)).await,
        "the leftover {pid} was killed"
    );
    assert!(
        pid_alive(kept.pid().expect("pid")),
        "the live owner's server still runs"
    );
    kept.teardown().await.expect("teardown");
    assert_eq!(pid_files(&state_dir), 0, "pid files removed");
}

/// The pids of our processes whose environment carries `NAME=value`,
/// read from /proc independently of the crate.
fn processes_with_env(name: &str, value: &str) -> Vec<u32> {
    let needle = format!("{name}={value}").into_bytes();
    proc_files("environ")
        .into_iter()
        .filter(|(_, environ)| environ.split(|b| *b == 0).any(|v| v == needle.as_slice()))
        .map(|(pid, _)| pid)
        .collect()
}

/// Issue 9 defect 1: vllm-grid killed (SIGKILL) between starting a server
/// and recording its pid. The launch is held at exactly that moment (the
/// test hook); its owner counts as dead, as a killed vllm-grid's would. The
/// server must already be findable: the sweep of the next start stops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_between_spawn_and_pid_record_leaves_nothing_the_sweep_misses() {
    let state_dir = scratch_dir("gap-pids");
    let gate = std::sync::Arc::new(grid_container::SpawnGate::default());
    let mut config = grid_container::ProcessBackendConfig::new(state_dir.clone());
    config
        .program_overrides
        .insert("vllm-sim".into(), vec![sim_binary().display().to_string()]);
    config.owner = dead_owner();
    config.spawn_gate = Some(gate.clone());
    let killed = Backend::Process(grid_container::ProcessBackend::new(config));
    let profile = sim_profile("unused", &[]);
    let spec = spec_for_process(&profile, "gap");
    let launch = tokio::spawn(async move {
        killed
            .launch(&profile, &spec, &CancellationToken::new())
            .await
            .map(|server| server.pid())
    });
    gate.reached.notified().await;

    // What a kill at this moment leaves: a record without a pid, and the
    // server running with its launch ID.
    let records: Vec<grid_container::PidRecord> = std::fs::read_dir(&state_dir)
        .expect("the pid directory exists")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "pid"))
        .map(|e| {
            serde_json::from_str(&std::fs::read_to_string(e.path()).expect("read the record"))
                .expect("a pid record")
        })
        .collect();
    assert_eq!(records.len(), 1, "the intent is recorded before the spawn");
    assert_eq!(records[0].pid, None, "{:?}", records[0]);
    let launch_id = records[0].launch_id.clone().expect("a launch id");
    // The spawn has returned, so the server has exec'd; on a loaded machine
    // give /proc a moment rather than read it once.
    let mut running = Vec::new();
    let found = eventually(async || {
        running = processes_with_env(grid_container::LAUNCH_ID_VARIABLE, &launch_id);
        running.len() == 1
    })
    .await;
    assert!(
        found,
        "the server with launch id {launch_id} runs: {running:?}"
    );

    let report = Backend::Process(process_backend(state_dir.clone()))
        .sweep_leftovers(&SweepOptions::default())
        .await
        .expect("sweep");
    assert_eq!(report.removed.len(), 1, "{report:?}");
    assert!(
        eventually(async || !pid_alive(running[0])).await,
        "the sweep stopped the server {}",
        running[0]
    );

    // The held launch goes on, finds its server gone, and fails cleanly.
    gate.release.notify_one();
    let outcome = launch.await.expect("the launch task");
    assert!(outcome.is_err(), "{outcome:?}");
    assert_eq!(pid_files(&state_dir), 0, "pid files removed");
}

/// Temporaries of a pid-file write that was cut short (grid-sys names them
/// `.<name>.<random>.tmp`) are removed by the sweep once stale; a young one
/// may be a live writer's and stays.
#[tokio::test]
async fn the_sweep_removes_stale_temporaries() {
    let state_dir = scratch_dir("tmp-pids");
    let stale = state_dir.join(".run.c.123.pid.a1b2c3.tmp");
    let young = state_dir.join(".run.c.456.pid.d4e5f6.tmp");
    for path in [&stale, &young] {
        std::fs::write(path, "{").expect("write a temporary");
    }
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .and_then(|f| f.set_modified(old))
        .expect("age the stale temporary");
    let report = Backend::Process(process_backend(state_dir.clone()))
        .sweep_leftovers(&SweepOptions::default())
        .await
        .expect("sweep");
    assert!(!stale.exists(), "the stale temporary was removed");
    assert!(young.exists(), "a young temporary is left alone");
    assert_eq!(report.stale_files, vec![stale]);
}
