//! Configurations started, checked ready and torn down in sequence, on the
//! real engine with the simulator image, and as local processes.

use grid_container::{Backend, render_command};
use grid_plan::FlagSetting;
use tokio_util::sync::CancellationToken;

use crate::common::*;

/// Twelve configurations: utilization × chunked prefill × prefix caching.
fn twelve_configs() -> Vec<(String, Vec<FlagSetting>)> {
    let mut configs = Vec::new();
    for utilization in ["0.85", "0.90", "0.91"] {
        for chunked in [true, false] {
            for prefix in [true, false] {
                configs.push((
                    format!("u{utilization}-c{}-p{}", chunked as u8, prefix as u8),
                    vec![
                        FlagSetting::Value {
                            flag: "gpu-memory-utilization".into(),
                            value: utilization.into(),
                        },
                        FlagSetting::Switch {
                            flag: "enable-chunked-prefill".into(),
                            enabled: chunked,
                        },
                        FlagSetting::Switch {
                            flag: "enable-prefix-caching".into(),
                            enabled: prefix,
                        },
                    ],
                ));
            }
        }
    }
    configs
}

/// What the server says it runs with: `GET /v1/models` through the endpoint.
async fn models(server: &grid_container::RunningServer) -> serde_json::Value {
    let endpoint = server.endpoint();
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let mut request = client.get(format!("{}/v1/models", endpoint.base_url));
    if let Some(key) = &endpoint.api_key {
        request = request.bearer_auth(key.expose());
    }
    request
        .send()
        .await
        .expect("models answers")
        .json()
        .await
        .expect("models JSON")
}

async fn run_twelve(backend: &Backend, run_id: &str, container_name: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    let cancel = CancellationToken::new();
    let log_root = scratch_dir("twelve");
    for (config_id, settings) in twelve_configs() {
        let profile = sim_profile(container_name, &[]);
        let mut spec = spec(&profile, run_id, &config_id, &log_root);
        spec.command = render_command(&profile.command, &settings);
        let server = backend
            .launch(&profile, &spec, &cancel)
            .await
            .unwrap_or_else(|failure| {
                panic!(
                    "{config_id} did not start: {failure}\n{:#?}",
                    failure.log_tail
                )
            });
        assert_eq!(server.endpoint().served_model, "qwen3-test");
        assert_eq!(
            server.endpoint().api_key.as_ref().map(|k| k.expose()),
            Some(TEST_API_KEY)
        );
        let listed = models(&server).await;
        assert_eq!(
            listed["data"][0]["id"], "qwen3-test",
            "{config_id}: {listed}"
        );
        assert!(server.exited().await.is_none(), "{config_id} is running");
        let log_path = server.log_path().to_path_buf();
        pids.extend(server.pid());
        let report = server
            .teardown()
            .await
            .unwrap_or_else(|e| panic!("{config_id} teardown: {e}"));
        assert!(
            !report.killed,
            "{config_id}: the simulator honours SIGTERM, so no SIGKILL was needed"
        );
        let log = std::fs::read_to_string(&log_path).expect("container.log exists");
        // The unexpanded command is recorded, the key nowhere.
        assert!(
            log.contains("--api-key ${TEST_API_KEY}"),
            "{config_id}: {log}"
        );
        assert!(
            log.contains("Application startup complete"),
            "{config_id}: logs streamed from the start:\n{log}"
        );
        assert!(
            !log.contains(TEST_API_KEY),
            "{config_id}: the API key leaked into {}",
            log_path.display()
        );
        let utilization = settings.iter().find_map(|s| match s {
            FlagSetting::Value { value, .. } => Some(value.clone()),
            _ => None,
        });
        assert!(
            log.contains(&format!(
                "'gpu_memory_utilization': {}",
                utilization.unwrap_or_default()
            )),
            "{config_id}: the server ran with the rendered flags:\n{log}"
        );
    }
    pids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_configs_in_sequence_leave_no_container() {
    let docker = docker().await;
    let run_id = unique("twelve-docker");
    let container_name = unique("gc-twelve");
    let backend = Backend::Docker(docker);
    run_twelve(&backend, &run_id, &container_name).await;
    let Backend::Docker(docker) = &backend else {
        unreachable!()
    };
    let left = containers_of_run(docker, &run_id).await;
    remove_run(docker, &run_id).await;
    assert!(left.is_empty(), "containers left behind: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_configs_as_processes_leave_no_process() {
    let state_dir = scratch_dir("pids");
    let backend = Backend::Process(process_backend(state_dir.clone()));
    let run_id = unique("twelve-process");
    let pids = run_twelve(&backend, &run_id, "unused").await;
    assert_eq!(pids.len(), 12);
    let pid_files: Vec<_> = std::fs::read_dir(&state_dir).expect("state dir").collect();
    assert!(pid_files.is_empty(), "pid files left: {pid_files:?}");
    // Every server process (and its group) is gone.
    let survivors: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|pid| grid_sys::pid_alive(*pid))
        .collect();
    assert!(survivors.is_empty(), "still running: {survivors:?}");
}

#[tokio::test]
async fn a_server_that_dies_later_is_reported_by_exited() {
    let docker = docker().await;
    let run_id = unique("dies");
    let profile = sim_profile(&unique("gc-dies"), &["--sim-crash-after-requests", "1"]);
    let spec = spec(&profile, &run_id, "c", &scratch_dir("dies"));
    let backend = Backend::Docker(docker);
    let server = backend
        .launch(&profile, &spec, &CancellationToken::new())
        .await
        .expect("starts");
    // Readiness probes are not requests; the first chat request crashes it.
    let endpoint = server.endpoint().clone();
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let _ = client
        .post(format!("{}/v1/chat/completions", endpoint.base_url))
        .bearer_auth(endpoint.api_key.as_ref().map(|k| k.expose()).unwrap_or_default())
        .json(&serde_json::json!({"model": "qwen3-test", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}))
        .send()
        .await;
    let mut exit = None;
    for _ in 0..200 {
        exit = server.exited().await;
        if exit.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let exit = exit.expect("the crash is seen");
    assert_ne!(exit.code, Some(0), "{exit:?}");
    let Backend::Docker(docker) = &backend else {
        unreachable!()
    };
    let report = server.teardown().await.expect("a dead server tears down");
    assert!(!report.killed);
    let left = containers_of_run(docker, &run_id).await;
    remove_run(docker, &run_id).await;
    assert!(left.is_empty());
}
