//! Exit codes and messages of the commands that need no server.

use crate::common::*;

#[test]
fn bad_input_exits_2_and_names_the_problem() {
    let ws = Workspace::new();
    std::fs::write(
        ws.path().join("bad.json"),
        r#"{"format_version": 1, "profile": "sim.yml", "axes": {"gpu_memory_utilization": [1.5]}}"#,
    )
    .unwrap();
    ws.write_profile("sim.yml", 0.005, 20.0, 2.0);
    let cases: &[(&[&str], &str)] = &[
        (
            &["plan", "--configs", "bad.json"],
            "axes.gpu_memory_utilization[0]",
        ),
        (
            &["search", "--configs", "bad.json", "--backend", "process"],
            "outside (0, 1]",
        ),
        (&["plan", "--configs", "missing.json"], "missing.json"),
        (&["search", "--bogus"], "--bogus"),
        (
            &[
                "bench",
                "--base-url",
                "http://127.0.0.1:9",
                "--model",
                "m",
                "--api-key-env",
                "VLLM_GRID_UNSET_VAR",
            ],
            "VLLM_GRID_UNSET_VAR",
        ),
        (&["status", "no-such-run"], "no-such-run"),
        (&["reproduce", "nowhere"], "manifest.json"),
    ];
    for (args, fragment) in cases {
        let out = ws.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(fragment),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn a_missing_secret_is_refused_before_anything_starts() {
    let ws = Workspace::new();
    ws.write_plan("plan.json", None);
    ws.write_profile("sim.yml", 0.005, 20.0, 2.0);
    let out = ws
        .command(&search_args("process", "nokey"))
        .env_remove(KEY_VAR)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(KEY_VAR), "{}", stderr(&out));
    assert!(!ws.run_dir("nokey").join("manifest.json").exists());
}

#[test]
fn an_unreachable_docker_engine_exits_5_within_seconds() {
    let ws = Workspace::new();
    ws.write_plan("plan.json", None);
    ws.write_profile("sim.yml", 0.005, 20.0, 2.0);
    let started = std::time::Instant::now();
    let out = ws
        .command(&["search", "--configs", "plan.json", "--backend", "docker"])
        .env("DOCKER_HOST", "tcp://127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("Docker engine"), "{}", stderr(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn plan_shows_the_table_and_the_rendered_commands() {
    let ws = Workspace::new();
    ws.write_plan("plan.json", None);
    ws.write_profile("sim.yml", 0.005, 20.0, 2.0);
    let out = ws.run(&["plan", "--configs", "plan.json", "--show-commands"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for name in [
        "chunked_only_safe",
        "safe_conservative",
        "optimized_balanced",
        "aggressive_cache",
        "gmu0.90_chunked-on_prefix-off",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    let aggressive = text
        .lines()
        .skip_while(|l| *l != "aggressive_cache:")
        .nth(1)
        .unwrap_or_else(|| panic!("no command for aggressive_cache:\n{text}"));
    for flag in [
        "--gpu-memory-utilization 0.95",
        "--enable-chunked-prefill",
        "--enable-prefix-caching",
        "--max-num-seqs 48",
    ] {
        assert!(aggressive.contains(flag), "{flag} missing: {aggressive}");
    }
    // The secret stays a reference.
    assert!(
        aggressive.contains(&format!("${{{KEY_VAR}}}")),
        "{aggressive}"
    );
    assert!(!text.contains(&ws.key));
}

#[test]
fn resume_refuses_a_live_run_and_a_changed_plan() {
    let ws = Workspace::new();
    ws.write_plan("plan.json", Some(r#"{"gpu_memory_utilization": [0.95], "enable_chunked_prefill": [true], "enable_prefix_caching": [true]}"#));
    ws.write_profile("sim.yml", 0.005, 20.0, 2.0);
    // A plan whose only grid point fails fast (free memory): no valid
    // config, exit 3. aggressive_cache claims the point; the other named
    // configs are extra and start, so restrict to the grid alone.
    ws.edit_plan("plan.json", |plan| {
        plan["named_configs"] = serde_json::json!([])
    });
    let out = ws.run_search("process", "r1");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stdout(&out).contains("no champion"), "{}", stdout(&out));

    // A live process holds the lock: refused with 5.
    let mut sleeper = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let lock = serde_json::json!({"pid": sleeper.id(), "host": grid_sys::hostname(), "start_ticks": null, "since_unix_ms": 0});
    std::fs::write(ws.run_dir("r1").join("lock"), lock.to_string()).unwrap();
    let out = ws.run(&["resume", "r1"]);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("process {}", sleeper.id())),
        "{}",
        stderr(&out)
    );

    // The plan changed: refused with 2 and the change listed...
    ws.edit_plan("plan.json", |plan| plan["repeats"] = serde_json::json!(2));
    let out = ws.run(&["resume", "r1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("repeats changed: 1 -> 2"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("--allow-changes"), "{}", stderr(&out));
    // ...unless allowed.
    let out = ws.run(&["resume", "r1", "--allow-changes"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[test]
fn a_new_search_refuses_an_existing_run_id() {
    let ws = Workspace::new();
    ws.write_plan("plan.json", Some(r#"{"gpu_memory_utilization": [0.95], "enable_chunked_prefill": [true], "enable_prefix_caching": [false]}"#));
    ws.edit_plan("plan.json", |plan| {
        plan["named_configs"] = serde_json::json!([])
    });
    ws.write_profile("sim.yml", 0.005, 20.0, 2.0);
    let first = ws.run_search("process", "dup");
    assert_eq!(first.status.code(), Some(3), "{}", stderr(&first));
    let second = ws.run_search("process", "dup");
    assert_eq!(second.status.code(), Some(2));
    assert!(
        stderr(&second).contains("vllm-grid resume dup"),
        "{}",
        stderr(&second)
    );
}
