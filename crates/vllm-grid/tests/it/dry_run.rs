//! The dry run shares a machine: it serves on a free port whatever the
//! profile publishes, and its generated API key reaches the simulator in
//! the environment, never on a command line another user can read.

use std::time::Duration;

use crate::common::*;

const TWO_CONFIGS: &str = r#"{"gpu_memory_utilization": [0.85], "enable_chunked_prefill": [true], "enable_prefix_caching": [true, false]}"#;

/// Every process's command line, as `ps -eo args` shows it.
fn all_command_lines() -> Vec<(u32, String)> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(bytes) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            lines.push((pid, String::from_utf8_lossy(&bytes).replace('\0', " ")));
        }
    }
    lines
}

/// One variable of a process's environment.
fn environment_value(pid: u32, name: &str) -> Option<String> {
    let bytes = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    bytes.split(|b| *b == 0).find_map(|entry| {
        let entry = String::from_utf8_lossy(entry);
        entry.strip_prefix(&format!("{name}=")).map(str::to_string)
    })
}

#[test]
fn a_dry_run_serves_on_a_free_port_with_its_key_in_the_environment() {
    let ws = Workspace::new();
    ws.write_plan("plan.json", Some(TWO_CONFIGS));
    ws.edit_plan("plan.json", |plan| {
        plan["named_configs"] = serde_json::json!([])
    });
    // The profile publishes on a fixed port that something else holds (a
    // leaked simulator, another user's dry run): here a listener of ours
    // on a port the kernel picked. A model load of 2 s (400 simulated
    // seconds) leaves time to look at the running server.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let taken = holder.local_addr().unwrap().port();
    let path = ws.write_profile("sim.yml", 0.005, 400.0, 2.0);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("127.0.0.1::8000", &format!("127.0.0.1:{taken}:8000")),
    )
    .unwrap();
    // No key in the environment: the dry run generates one.
    let mut command = ws.command(&dry_run_args("shared", &[]));
    command
        .env_remove(KEY_VAR)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("spawn vllm-grid");
    drain_stdout(&mut child);
    let stderr_text = capture_stderr(&mut child);
    ws.wait_for_event("shared", Duration::from_secs(60), |e| {
        e["event"] == "config_started"
    });
    // The simulator is up (loading): find it and read its key.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let server = loop {
        if let Some(pid) = ws.live_server_pids().first() {
            break *pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no simulator started; stderr:\n{}",
            stderr_text.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let key = environment_value(server, "VLLM_API_KEY");
    let argv = all_command_lines()
        .into_iter()
        .find(|(pid, _)| *pid == server)
        .map(|(_, line)| line)
        .unwrap_or_default();
    assert!(
        !argv.contains("--api-key"),
        "the key is on the command line: {argv}"
    );
    let key = key.unwrap_or_else(|| {
        panic!("VLLM_API_KEY is not in the simulator's environment; argv: {argv}")
    });
    assert!(
        key.starts_with("sim-") && key.len() == 36,
        "not a generated key: {key:?}"
    );
    // Nobody's command line shows it (`ps -eo args`).
    let showing: Vec<(u32, String)> = all_command_lines()
        .into_iter()
        .filter(|(_, line)| line.contains(&key))
        .collect();
    assert!(showing.is_empty(), "the key is visible in {showing:?}");
    // Nor vllm-grid's own environment: the value lives in memory only.
    assert_ne!(
        environment_value(child.id(), KEY_VAR).as_deref(),
        Some(key.as_str())
    );

    let status = wait_with_timeout(&mut child, Duration::from_secs(120));
    assert_eq!(
        status.code(),
        Some(0),
        "stderr:\n{}",
        stderr_text.lock().unwrap()
    );
    drop(holder);
    let report = ws.report("shared");
    for c in report["configs"].as_array().unwrap() {
        assert_eq!(c["status"], "valid", "{c:#}");
        assert!(c["failure_class"].is_null(), "{c:#}");
    }
    assert_nothing_running(&ws);
    let leaks = ws.files_containing(&key);
    assert!(leaks.is_empty(), "the generated key leaked into {leaks:?}");
}
