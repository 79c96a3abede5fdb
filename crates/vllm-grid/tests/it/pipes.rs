//! A reader that goes away (`vllm-grid plan | head -1`) is a normal end of
//! the output, for every command that prints: no panic (exit 101), the
//! command's own exit code. A full disk behind a redirect is exit 5.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::process::Stdio;

use crate::common::*;

/// Runs the binary with a stdout whose reader is already gone: the first
/// write fails with EPIPE, whatever the timing.
fn run_with_closed_stdout(ws: &Workspace, args: &[&str]) -> std::process::Output {
    let (ours, theirs) = UnixStream::pair().expect("socket pair");
    drop(ours);
    ws.command(args)
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
        .stderr(Stdio::piped())
        .output()
        .expect("run vllm-grid")
}

/// A plan of `n` grid points (max_num_seqs values × the two booleans).
fn big_plan(ws: &Workspace, n_seqs: usize) {
    let seqs: Vec<String> = (1..=n_seqs).map(|i| i.to_string()).collect();
    ws.write_plan(
        "big.json",
        Some(&format!(
            r#"{{"gpu_memory_utilization": [0.85], "enable_chunked_prefill": [true, false], "enable_prefix_caching": [true, false], "max_num_seqs": [{}]}}"#,
            seqs.join(", ")
        )),
    );
    ws.edit_plan("big.json", |plan| {
        plan["named_configs"] = serde_json::json!([])
    });
}

#[test]
fn every_printing_command_ends_quietly_when_its_reader_is_gone() {
    let ws = Workspace::new();
    // A run to print: one grid point that fails fast (free memory), exit 3.
    ws.write_fail_fast_inputs();
    // The search itself prints its last lines into the closed pipe: it
    // still ends with its own code (3: no valid config).
    let out = run_with_closed_stdout(&ws, &search_args("process", "piped"));
    assert_eq!(out.status.code(), Some(3), "search: {}", stderr(&out));
    let cases: &[(&[&str], i32)] = &[
        (&["plan", "--configs", "plan.json", "--show-commands"], 0),
        (&["status", "piped"], 0),
        (&["report", "piped"], 0),
        (&["archive", "piped"], 0),
        (&["cleanup", "--backend", "process"], 0),
        (&["resume", "piped"], 3),
        (&["--help"], 0),
        (&["plan", "--help"], 0),
    ];
    for (args, code) in cases {
        let out = run_with_closed_stdout(&ws, args);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {}", stderr(&out));
        assert!(
            !stderr(&out).contains("panicked"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn plan_and_status_piped_into_head_exit_0() {
    let ws = Workspace::new();
    // More output than a pipe buffers (64 KiB), so the writer is still
    // writing when `head` has gone.
    big_plan(&ws, 200);
    ws.write_profile("sim.yml", 0.005, 20.0, 2.0);
    let mut child = ws
        .command(&["plan", "--configs", "big.json", "--show-commands"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vllm-grid");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    reader.read_line(&mut first).expect("first line");
    assert!(first.starts_with("plan big.json: 800 config(s)"), "{first}");
    drop(reader); // `head -1` exits
    let status = wait_with_timeout(&mut child, std::time::Duration::from_secs(30));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // Through a real shell pipeline, as a user types it.
    ws.write_fail_fast_inputs();
    assert_eq!(ws.run_search("process", "headed").status.code(), Some(3));
    for args in ["plan --configs big.json --show-commands", "status headed"] {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "\"{BIN}\" {args} | head -1; echo \"vllm-grid exit=${{PIPESTATUS[0]}}\" >&2"
            ))
            .current_dir(ws.path())
            .env("VLLM_GRID_LOGS_DIR", ws.logs())
            .env(KEY_VAR, &ws.key)
            .output()
            .unwrap();
        assert!(
            !stderr(&out).contains("panicked"),
            "{args}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("vllm-grid exit=0"),
            "{args}: {}",
            stderr(&out)
        );
        assert_eq!(stdout(&out).lines().count(), 1, "{args}: {}", stdout(&out));
    }
}

#[test]
fn a_full_disk_behind_the_output_is_exit_5() {
    let ws = Workspace::new();
    ws.write_plan("plan.json", None);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let out = ws
        .command(&["plan", "--configs", "plan.json"])
        .stdout(Stdio::from(full))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("standard output"), "{}", stderr(&out));
}
