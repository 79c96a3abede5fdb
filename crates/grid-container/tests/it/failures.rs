//! Each failure class, produced for real by a simulator fault or setting (or
//! the engine) and diagnosed.

use std::time::{Duration, Instant};

use grid_container::{Backend, DockerBackend, DockerBackendConfig, FailureClass, LaunchFailure};
use tokio_util::sync::CancellationToken;

use crate::common::*;

/// Launches `profile` on a fresh run and returns the failure, checking that
/// nothing of the run is left on the engine.
async fn docker_failure(
    profile: &grid_container::Profile,
    adjust: impl FnOnce(&mut grid_container::LaunchSpec),
) -> LaunchFailure {
    let docker = docker().await;
    let run_id = unique("fail");
    let mut spec = spec(profile, &run_id, "c", &scratch_dir("fail"));
    adjust(&mut spec);
    let backend = Backend::Docker(docker);
    let outcome = backend
        .launch(profile, &spec, &CancellationToken::new())
        .await;
    let Backend::Docker(docker) = &backend else {
        unreachable!()
    };
    let left = containers_of_run(docker, &run_id).await;
    remove_run(docker, &run_id).await;
    assert!(left.is_empty(), "a failed launch left containers: {left:?}");
    match outcome {
        Ok(server) => {
            let _ = server.teardown().await;
            panic!("the launch was expected to fail");
        }
        Err(failure) => {
            // Whatever the class, the secret never reaches the failure record.
            let record = format!("{failure} {:?}", failure.log_tail);
            assert!(
                !record.contains(TEST_API_KEY),
                "the key leaked into the failure: {record}"
            );
            failure
        }
    }
}

async fn process_failure(profile: &grid_container::Profile) -> LaunchFailure {
    let state_dir = scratch_dir("fail-pids");
    let backend = Backend::Process(process_backend(state_dir.clone()));
    let spec = spec(
        profile,
        &unique("fail-process"),
        "c",
        &scratch_dir("fail-process"),
    );
    let failure = match backend
        .launch(profile, &spec, &CancellationToken::new())
        .await
    {
        Ok(server) => {
            let _ = server.teardown().await;
            panic!("the launch was expected to fail");
        }
        Err(failure) => failure,
    };
    let pid_files: Vec<_> = std::fs::read_dir(&state_dir)
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(
        pid_files.is_empty(),
        "a failed launch left pid files: {pid_files:?}"
    );
    failure
}

#[track_caller]
fn assert_class(failure: &LaunchFailure, class: FailureClass, needle: &str) {
    assert_eq!(failure.class, class, "{failure}\n{:#?}", failure.log_tail);
    let text = format!("{} {}", failure.message, failure.log_tail.join("\n"));
    assert!(
        text.contains(needle),
        "`{needle}` missing from {failure}\n{:#?}",
        failure.log_tail
    );
}

/// The startup failures the simulator's memory model and faults produce,
/// on both backends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_failures_are_diagnosed() {
    let cases: &[(&str, &[&str], FailureClass, &str)] = &[
        (
            "utilization above free memory",
            &["--gpu-memory-utilization", "0.95"],
            FailureClass::FreeMemoryBelowUtilization,
            "less than desired GPU memory utilization",
        ),
        (
            "kv cache too small for max-model-len",
            &[
                "--gpu-memory-utilization",
                "0.5",
                "--max-model-len",
                "40960",
            ],
            FailureClass::KvCacheTooSmall,
            "KV cache",
        ),
        (
            "cuda out of memory",
            &["--sim-startup-failure", "cuda-oom"],
            FailureClass::GpuOutOfMemory,
            "out of memory",
        ),
        (
            "unknown flag",
            &["--enable-prefix-cache"],
            FailureClass::InvalidArgument,
            "unrecognized arguments",
        ),
        (
            "invalid choice",
            &["--kv-cache-dtype", "fp4"],
            FailureClass::InvalidArgument,
            "invalid choice",
        ),
        (
            "generic crash",
            &["--sim-startup-failure", "crash"],
            FailureClass::ExitedWithCode(1),
            "exited with code 1",
        ),
    ];
    for (name, extra, class, needle) in cases {
        let profile = sim_profile(&unique("gc-fail"), extra);
        let failure = docker_failure(&profile, |_| {}).await;
        assert_class(&failure, class.clone(), needle);
        assert!(
            !failure.log_tail.is_empty(),
            "{name}: the failure carries the log tail"
        );
        let failure = process_failure(&profile).await;
        assert_class(&failure, class.clone(), needle);
    }
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let profile = sim_profile(&unique("gc-hang"), &["--sim-startup-failure", "hang"]);
    let failure =
        docker_failure(&profile, |spec| spec.ready_timeout = Duration::from_secs(3)).await;
    assert_class(&failure, FailureClass::HealthTimeout, "not ready within");
    assert!(failure.transient);
    let failure = {
        let state_dir = scratch_dir("hang-pids");
        let backend = Backend::Process(process_backend(state_dir));
        let mut spec = spec(&profile, &unique("hang"), "c", &scratch_dir("hang"));
        spec.ready_timeout = Duration::from_secs(2);
        backend
            .launch(&profile, &spec, &CancellationToken::new())
            .await
            .expect_err("hangs")
    };
    assert_class(&failure, FailureClass::HealthTimeout, "not ready within");
}

#[tokio::test]
async fn a_missing_image_is_named() {
    let yaml = "services:\n  s:\n    image: vllm-grid-test-no-such-image:never\n    command: [--model, m]\n";
    let profile = grid_container::parse_profile(yaml, "inline")
        .expect("parses")
        .profile;
    let failure = docker_failure(&profile, |_| {}).await;
    assert_class(
        &failure,
        FailureClass::MissingImage,
        "vllm-grid-test-no-such-image:never",
    );
    assert!(failure.message.contains("docker pull"), "{failure}");
}

#[tokio::test]
async fn a_taken_port_is_refused_before_starting() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = holder.local_addr().expect("address").port();
    let text = format!(
        "services:\n  s:\n    image: {SIM_IMAGE}\n    container_name: {}\n    command: [--model, m]\n    ports: ['127.0.0.1:{port}:8000']\n",
        unique("gc-port")
    );
    let profile = grid_container::parse_profile(&text, "inline")
        .expect("parses")
        .profile;
    let failure = docker_failure(&profile, |_| {}).await;
    assert_class(&failure, FailureClass::PortInUse, &port.to_string());
    // The process backend listens on the published port, so it is refused too.
    let failure = {
        let backend = Backend::Process(process_backend(scratch_dir("port-pids")));
        let mut text = text.clone();
        text.push_str("x-vllm-grid:\n  process:\n    entrypoint: [vllm-sim, serve]\n");
        let profile = grid_container::parse_profile(&text, "inline")
            .expect("parses")
            .profile;
        let spec = spec(&profile, &unique("port"), "c", &scratch_dir("port"));
        backend
            .launch(&profile, &spec, &CancellationToken::new())
            .await
            .expect_err("port taken")
    };
    assert_class(&failure, FailureClass::PortInUse, &port.to_string());
    drop(holder);
}

#[tokio::test]
async fn an_unset_variable_is_named_and_nothing_starts() {
    let variable = format!("VLLM_GRID_TEST_UNSET_{}", std::process::id());
    let name = unique("gc-secret");
    let profile = sim_profile(&name, &["--sim-seed", &format!("${{{variable}}}")]);
    let failure = docker_failure(&profile, |_| {}).await;
    assert_class(&failure, FailureClass::MissingSecret, &variable);
    assert!(failure.message.contains("nothing was started"), "{failure}");
    let docker = docker().await;
    assert!(
        !container_exists(&docker, &name).await,
        "no container was created"
    );
    let failure = process_failure(&profile).await;
    assert_class(&failure, FailureClass::MissingSecret, &variable);
}

#[tokio::test]
async fn a_missing_program_is_named() {
    let yaml = "services:\n  s:\n    image: i\n    command: [--model, m]\n    ports: ['127.0.0.1::8000']\nx-vllm-grid:\n  process:\n    entrypoint: [vllm-grid-test-no-such-program, serve]\n";
    let profile = grid_container::parse_profile(yaml, "inline")
        .expect("parses")
        .profile;
    let failure = process_failure(&profile).await;
    assert_class(
        &failure,
        FailureClass::MissingProgram,
        "vllm-grid-test-no-such-program",
    );
}

#[tokio::test]
async fn a_dead_docker_host_is_a_clear_error_within_seconds() {
    // A port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let host = format!("tcp://127.0.0.1:{port}");
    let config = DockerBackendConfig {
        docker_host: Some(host.clone()),
        ..DockerBackendConfig::default()
    };
    let started = Instant::now();
    let error = DockerBackend::connect(config.clone())
        .await
        .expect_err("nothing listens there");
    let elapsed = started.elapsed();
    let text = error.to_string();
    assert!(
        text.contains(&host) && text.contains("DOCKER_HOST"),
        "{text}"
    );
    // The connection timeout bounds it; a refused port answers at once.
    assert!(
        elapsed < config.connect_timeout + Duration::from_secs(2),
        "took {elapsed:?}"
    );
    let failure = LaunchFailure::from(error);
    assert_eq!(failure.class, FailureClass::DaemonUnavailable);
    assert!(failure.transient);
}

#[tokio::test]
async fn a_dead_docker_host_with_tls_is_a_clear_error() {
    // An address that accepts nothing; with TLS settings that do not exist.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let config = DockerBackendConfig {
        docker_host: Some(format!("https://127.0.0.1:{port}")),
        ..DockerBackendConfig::default()
    };
    let error = DockerBackend::connect(config)
        .await
        .expect_err("nothing listens there");
    assert!(
        error.to_string().contains("cannot reach the Docker engine"),
        "{error}"
    );
}

#[tokio::test]
async fn cancellation_is_its_own_class() {
    let profile = sim_profile(&unique("gc-cancel-class"), &[]);
    let cancel = CancellationToken::new();
    cancel.cancel();
    let backend = Backend::Docker(docker().await);
    let spec = spec(
        &profile,
        &unique("cancel-class"),
        "c",
        &scratch_dir("cancel-class"),
    );
    let failure = backend
        .launch(&profile, &spec, &cancel)
        .await
        .expect_err("cancelled");
    assert_eq!(failure.class, FailureClass::Cancelled);
    let Backend::Docker(docker) = &backend else {
        unreachable!()
    };
    assert!(containers_of_run(docker, &spec.run_id).await.is_empty());
}

/// Issue 9 defect 6, through a real launch: the server prints a recorded
/// vLLM log whose root cause sits 62 lines above its end, and exits 1; the
/// whole startup log is read and the cause is quoted.
#[tokio::test]
async fn a_root_cause_far_above_the_end_of_the_log_is_found() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/startup-failures/vllm-0.32.0-cpu/startup_kv_too_small.log"
    );
    let yaml = format!(
        "services:\n  s:\n    image: i\n    command: [--model, m]\n    ports: ['127.0.0.1::8000']\nx-vllm-grid:\n  process:\n    entrypoint: [sh, -c, 'cat \"{fixture}\" >&2; exit 1']\n"
    );
    let profile = grid_container::parse_profile(&yaml, "inline")
        .expect("parses")
        .profile;
    let failure = process_failure(&profile).await;
    assert_class(
        &failure,
        FailureClass::KvCacheTooSmall,
        "ValueError: To serve at least one request with the model's max seq len (32768)",
    );
    assert!(
        failure.message.contains("KV cache is needed"),
        "the message quotes the root cause: {failure}"
    );
}

/// Issue 9 defect 3: a full disk while the server's log is written is an
/// environment failure, not a verdict on the configuration; the server is
/// stopped. (`container.log` is a link to /dev/full, which answers every
/// write with ENOSPC.)
#[tokio::test]
async fn a_full_disk_under_the_log_is_an_environment_failure() {
    let state_dir = scratch_dir("full-pids");
    let backend = Backend::Process(process_backend(state_dir.clone()));
    let profile = sim_profile(&unique("gc-full"), &[]);
    let spec = spec(&profile, &unique("full"), "c", &scratch_dir("full"));
    std::fs::create_dir_all(&spec.log_dir).expect("log dir");
    std::os::unix::fs::symlink("/dev/full", spec.log_dir.join("container.log"))
        .expect("link container.log to /dev/full");
    let outcome = backend
        .launch(&profile, &spec, &CancellationToken::new())
        .await;
    let failure = match outcome {
        Ok(server) => {
            let pid = server.pid();
            let _ = server.teardown().await;
            panic!("a server whose log cannot be written was reported ready (pid {pid:?})");
        }
        Err(failure) => failure,
    };
    assert_class(&failure, FailureClass::DiskFull, "container.log");
    assert_eq!(failure.blame(), grid_container::Blame::Environment);
    assert!(
        failure.message.contains("No space left on device"),
        "{failure}"
    );
    let left: Vec<_> = std::fs::read_dir(&state_dir)
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "pid files left: {left:?}");
}
