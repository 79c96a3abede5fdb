//! GPU slots: a server on slot N gets that slot's devices, the container
//! name `<name>-slotN`, the host port `port + N`, and our labels; on the
//! real engine (created, not started: this host has no GPUs to start it
//! on) and as a process (`CUDA_VISIBLE_DEVICES`, started and checked).

use grid_container::{GpuSlot, labels};
use tokio_util::sync::CancellationToken;

use crate::common::*;

fn slot(index: u32, devices: &[&str]) -> GpuSlot {
    GpuSlot {
        index,
        devices: devices.iter().map(|d| d.to_string()).collect(),
    }
}

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_slot_gets_its_devices_name_port_and_labels_on_the_engine() {
    let docker = docker().await;
    let run_id = unique("slots-docker");
    let name = unique("slotted");
    let log_root = scratch_dir("slots-docker");
    // A fixed host port, so the slot's offset shows; two free ones in a row.
    let port = loop {
        let port = free_port();
        if std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            break port;
        }
    };
    let mut profile = sim_profile(&name, &[]);
    profile.ports = vec![format!("127.0.0.1:{port}:8000")];
    let mut created = Vec::new();
    for slot in [slot(0, &["0", "1"]), slot(1, &["2", "3"])] {
        let mut spec = spec(&profile, &run_id, &format!("cfg{}", slot.index), &log_root);
        spec.slot = Some(slot.clone());
        let id = docker
            .create_stopped(&profile, &spec)
            .await
            .unwrap_or_else(|failure| panic!("{slot}: not created: {failure}"));
        created.push((slot, id));
    }
    let mut seen = Vec::new();
    for (_, id) in &created {
        let inspected = docker
            .client()
            .inspect_container(id, None)
            .await
            .expect("the engine knows the container");
        let host = inspected.host_config.clone().unwrap_or_default();
        let devices: Vec<Option<Vec<String>>> = host
            .device_requests
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.device_ids)
            .collect();
        let bound: Vec<String> = host
            .port_bindings
            .unwrap_or_default()
            .get("8000/tcp")
            .cloned()
            .flatten()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|b| b.host_port)
            .collect();
        let container_labels = inspected.config.and_then(|c| c.labels).unwrap_or_default();
        let label = |key: &str| container_labels.get(key).cloned().unwrap_or_default();
        seen.push((
            inspected.name.unwrap_or_default(),
            devices,
            bound,
            label(labels::TOOL),
            label(labels::RUN_ID),
            label(labels::SLOT),
            label(labels::DEVICES),
        ));
    }
    remove_run(&docker, &run_id).await;
    let expected = |index: u32, devices: &[&str]| {
        (
            format!("/{name}-slot{index}"),
            vec![Some(devices.iter().map(|d| d.to_string()).collect())],
            vec![(port + index as u16).to_string()],
            labels::TOOL_VALUE.to_string(),
            run_id.clone(),
            index.to_string(),
            devices.join(","),
        )
    };
    assert_eq!(
        seen,
        vec![expected(0, &["0", "1"]), expected(1, &["2", "3"])]
    );
    assert!(containers_of_run(&docker, &run_id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_on_a_slot_sees_only_its_gpus() {
    let state = scratch_dir("slots-process");
    let backend = process_backend(state.join(".pids"));
    let profile = sim_profile("unused", &[]);
    let run_id = unique("slots-process");
    let mut spec = spec(&profile, &run_id, "cfg", &state);
    spec.slot = Some(slot(1, &["2", "3"]));
    let server = backend
        .launch(&profile, &spec, &CancellationToken::new())
        .await
        .unwrap_or_else(|failure| panic!("not started: {failure}\n{:#?}", failure.log_tail));
    let pid = server.pid().expect("a process server has a pid");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("read its environment");
    let visible: Vec<String> = environ
        .split(|b| *b == 0)
        .filter_map(|v| std::str::from_utf8(v).ok())
        .filter(|v| v.starts_with("CUDA_VISIBLE_DEVICES="))
        .map(str::to_string)
        .collect();
    server.teardown().await.expect("teardown");
    assert_eq!(visible, vec!["CUDA_VISIBLE_DEVICES=2,3".to_string()]);
}
