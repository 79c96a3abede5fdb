//! Exit codes and messages for damaged run files, a full disk, a profile
//! with several services and a plan whose battery section is invalid.

use crate::common::*;

/// A finished run of one grid point that fails fast (free memory): exit 3.
fn finished_run(ws: &Workspace, run_id: &str) -> String {
    ws.write_fail_fast_inputs();
    let out = ws.run_search("process", run_id);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    ws.result_ids(run_id)
        .into_iter()
        .next()
        .expect("the run has a result")
}

#[test]
fn a_damaged_result_or_manifest_is_bad_input() {
    let ws = Workspace::new();
    let id = finished_run(&ws, "damaged");
    let result = ws.run_dir("damaged").join(format!("results/{id}.json"));
    std::fs::write(&result, "{\"config\": {\"na").unwrap();
    for args in [&["report", "damaged"][..], &["resume", "damaged"]] {
        let out = ws.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("{id}.json")),
            "{args:?} does not name the file: {}",
            stderr(&out)
        );
    }
    // Deleting the damaged result and resuming works: the config runs again.
    std::fs::remove_file(&result).unwrap();
    let out = ws.run(&["resume", "damaged"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(ws.result_ids("damaged"), ws.plan_ids("damaged"));

    let manifest = ws.run_dir("damaged").join("manifest.json");
    std::fs::write(&manifest, "[1, 2").unwrap();
    for args in [&["status", "damaged"][..], &["resume", "damaged"]] {
        let out = ws.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("manifest.json"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn a_full_disk_is_an_unavailable_environment() {
    let ws = Workspace::new();
    ws.write_fail_fast_inputs();
    std::fs::create_dir_all(ws.logs()).unwrap();
    // A 1 MiB tmpfs as logs/, in a private user and mount namespace (gone
    // with the shell): a run fits, then a filler takes the rest, and the
    // resume's first write meets a full disk.
    let script = format!(
        r#"set -u
mount -t tmpfs -o size=1m tmpfs "{logs}" || exit 90
"{BIN}" search --configs plan.json --backend process --run-id full >/dev/null 2>&1
echo "search=$?"
dd if=/dev/zero of="{logs}/filler" bs=64k 2>/dev/null
"{BIN}" resume full 2>resume.err
echo "resume=$?""#,
        logs = ws.logs().display()
    );
    let out = std::process::Command::new("unshare")
        .args(["-rm", "sh", "-c", &script])
        .current_dir(ws.path())
        .env("VLLM_GRID_LOGS_DIR", ws.logs())
        .env(KEY_VAR, &ws.key)
        .env_remove("VLLM_GRID_FAILPOINT")
        .env_remove("RUST_LOG")
        .output()
        .expect("run unshare");
    let text = stdout(&out);
    assert!(
        out.status.success() && !text.is_empty(),
        "this test mounts a small tmpfs with `unshare -rm` (user and mount namespaces); it failed: {}{}",
        text,
        stderr(&out)
    );
    let resume_err = std::fs::read_to_string(ws.path().join("resume.err")).unwrap_or_default();
    assert!(text.contains("search=3"), "{text}");
    assert!(text.contains("resume=5"), "{text}\n{resume_err}");
    assert!(
        resume_err.contains("No space left on device"),
        "{resume_err}"
    );
}

/// A compose file with two services, `sim-a` and `sim-b`.
fn two_services(ws: &Workspace) {
    let one = ws.write_profile("one.yml", 0.005, 20.0, 2.0);
    let text = std::fs::read_to_string(one).unwrap();
    let service = text
        .split_once("services:\n")
        .unwrap()
        .1
        .split_once("x-vllm-grid:")
        .unwrap()
        .0;
    let a = service.replace("medium-qwen3:", "sim-a:");
    let b = service.replace("medium-qwen3:", "sim-b:").replace(
        "--max-model-len\n      - \"131072\"",
        "--max-model-len\n      - \"65536\"",
    );
    let tail = text.split_once("x-vllm-grid:").unwrap().1;
    std::fs::write(
        ws.path().join("two.yml"),
        format!("services:\n{a}{b}x-vllm-grid:{tail}"),
    )
    .unwrap();
}

#[test]
fn a_profile_with_two_services_needs_service() {
    let ws = Workspace::new();
    ws.write_plan("plan.json", None);
    two_services(&ws);
    let plan = [
        "plan",
        "--configs",
        "plan.json",
        "--show-commands",
        "--profile",
        "two.yml",
    ];
    let out = ws.run(&plan);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--service NAME"), "{}", stderr(&out));
    assert!(stderr(&out).contains("sim-a"), "{}", stderr(&out));

    let mut chosen = plan.to_vec();
    chosen.extend(["--service", "sim-b"]);
    let out = ws.run(&chosen);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("service sim-b"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("--max-model-len 65536"),
        "{}",
        stdout(&out)
    );

    let out = ws.run(&[
        "search",
        "--configs",
        "plan.json",
        "--profile",
        "two.yml",
        "--backend",
        "process",
        "--service",
        "sim-c",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("sim-c"), "{}", stderr(&out));
    assert!(!ws.logs().exists() || std::fs::read_dir(ws.logs()).unwrap().next().is_none());
}

#[test]
fn plan_refuses_a_battery_section_that_search_would_refuse() {
    let ws = Workspace::new();
    ws.write_plan("plan.json", None);
    ws.write_profile("sim.yml", 0.005, 20.0, 2.0);
    let cases = [
        (
            "kv_cache",
            "iterations",
            serde_json::json!(-3),
            "battery.kv_cache.iterations",
        ),
        (
            "concurrency",
            "levels",
            serde_json::json!("many"),
            "battery.concurrency.levels",
        ),
    ];
    for (section, key, value, path) in cases {
        ws.write_plan("plan.json", None);
        ws.edit_plan("plan.json", |plan| {
            plan["battery"][section][key] = value.clone();
        });
        for args in [
            &["plan", "--configs", "plan.json"][..],
            &["search", "--configs", "plan.json", "--backend", "process"],
        ] {
            let out = ws.run(args);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
            assert!(stderr(&out).contains(path), "{args:?}: {}", stderr(&out));
        }
    }
}
