//! The Ray executor against a real local head (`ray start --head
//! --num-gpus=4`, logical GPUs; grid-ray's `RayHead`, stopped on every
//! path): a dry run of the default grid with 2-GPU jobs, SIGINT and kill -9
//! of the orchestrator with jobs in flight then `resume`, and a config
//! that fails on its node. Needs `VLLM_GRID_RAY` (scripts/setup-ray.sh);
//! with `CI=true` a missing Ray fails these tests.

use std::path::Path;
use std::time::{Duration, Instant};

use grid_ray::testing::{HeadOptions, RayHead, require_ray};
use grid_ray::{JobStatus, RayClient};

use crate::common::*;

const FOUR_CONFIGS: &str = r#"{"gpu_memory_utilization": [0.85, 0.95], "enable_chunked_prefill": [true], "enable_prefix_caching": [true, false]}"#;

/// A head, or `None` (and a skip line) without Ray outside CI.
fn head(test: &str) -> Option<(tokio::runtime::Runtime, RayHead)> {
    let ray = require_ray(test)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let head = runtime
        .block_on(RayHead::start(&ray, &HeadOptions::default()))
        .unwrap_or_else(|e| panic!("start a Ray head: {e}"));
    Some((runtime, head))
}

/// `search --dry-run` through Ray on plan.json and sim.yml.
fn ray_search_args<'a>(address: &'a str, run_id: &'a str) -> Vec<&'a str> {
    let mut args = dry_run_args(run_id, &[]);
    args.extend(["--executor", "ray", "--ray-address", address]);
    args
}

fn four_config_inputs(ws: &Workspace, load_s: f64) {
    ws.write_plan("plan.json", Some(FOUR_CONFIGS));
    ws.edit_plan("plan.json", |plan| {
        plan["named_configs"] = serde_json::json!([])
    });
    // 2 GiB held by others: 0.95 fails its free-memory check.
    ws.write_profile("sim.yml", 0.005, load_s, 2.0);
}

/// The run's jobs by status.
fn job_statuses(
    runtime: &tokio::runtime::Runtime,
    client: &RayClient,
    run_id: &str,
) -> Vec<JobStatus> {
    runtime
        .block_on(client.list_run(run_id))
        .expect("list the run's jobs")
        .into_iter()
        .map(|(_, _, details)| details.status)
        .collect()
}

fn running(statuses: &[JobStatus]) -> usize {
    statuses
        .iter()
        .filter(|s| matches!(s, JobStatus::Running | JobStatus::Pending))
        .count()
}

/// Waits until `count` of the run's jobs run at once.
fn wait_for_running(
    runtime: &tokio::runtime::Runtime,
    client: &RayClient,
    run_id: &str,
    count: usize,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let statuses = job_statuses(runtime, client, run_id);
        let now = statuses
            .iter()
            .filter(|s| **s == JobStatus::Running)
            .count();
        if now >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{count} jobs never ran at once: {statuses:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Simulators (`vllm-grid sim`) still running from the head's job
/// directories.
fn simulators_under(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().to_string();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).to_string())
            .collect();
        let is_sim = args
            .first()
            .is_some_and(|a| a.contains(&needle) && a.ends_with("vllm-grid"))
            && args.get(1).is_some_and(|a| a == "sim");
        if is_sim {
            pids.push(pid);
        }
    }
    pids
}

/// Every config has exactly one result and finished once; no job of the
/// run runs; no simulator is left.
fn assert_whole_and_quiet(
    ws: &Workspace,
    runtime: &tokio::runtime::Runtime,
    head: &RayHead,
    run_id: &str,
) {
    assert_eq!(ws.result_ids(run_id), ws.plan_ids(run_id));
    for (config, count) in ws.finished_counts(run_id) {
        assert_eq!(count, 1, "config {config} finished {count} times");
    }
    let statuses = job_statuses(runtime, &head.client(), run_id);
    assert_eq!(
        running(&statuses),
        0,
        "jobs of the run still running: {statuses:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !simulators_under(head.temp_dir()).is_empty() {
        assert!(
            Instant::now() < deadline,
            "simulators left: {:?}",
            simulators_under(head.temp_dir())
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts a Ray search of four configs whose model loads take `load_s`
/// simulated seconds, and returns once two of its jobs run.
fn start_with_two_jobs_running(
    ws: &Workspace,
    runtime: &tokio::runtime::Runtime,
    head: &RayHead,
    run_id: &str,
    load_s: f64,
) -> (std::process::Child, CapturedText) {
    four_config_inputs(ws, load_s);
    let mut child = ws.spawn(&ray_search_args(head.address(), run_id), &[]);
    drain_stdout(&mut child);
    let text = capture_stderr(&mut child);
    wait_for_running(runtime, &head.client(), run_id, 2, Duration::from_secs(120));
    (child, text)
}

/// `resume RUN` through Ray finishes the run whole.
fn resume_through_ray(
    ws: &Workspace,
    runtime: &tokio::runtime::Runtime,
    head: &RayHead,
    run_id: &str,
) {
    let resumed = ws.run(&[
        "resume",
        run_id,
        "--executor",
        "ray",
        "--ray-address",
        head.address(),
    ]);
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    assert_whole_and_quiet(ws, runtime, head, run_id);
}

#[test]
fn the_default_grid_runs_through_ray_with_two_gpu_jobs() {
    let Some((runtime, head)) = head("the_default_grid_runs_through_ray_with_two_gpu_jobs") else {
        return;
    };
    let ws = Workspace::new();
    let started = Instant::now();
    let local = ws.run(&["search", "--dry-run", "--run-id", "local"]);
    let local_s = started.elapsed().as_secs_f64();
    assert_eq!(local.status.code(), Some(0), "{}", stderr(&local));

    let started = Instant::now();
    let ray = ws.run(&[
        "search",
        "--dry-run",
        "--run-id",
        "ray",
        "--executor",
        "ray",
        "--ray-address",
        head.address(),
    ]);
    let ray_s = started.elapsed().as_secs_f64();
    assert_eq!(ray.status.code(), Some(0), "{}", stderr(&ray));
    eprintln!(
        "default grid, dry run: local 1 slot {local_s:.1} s, Ray (4 GPUs, 2-GPU jobs) {ray_s:.1} s"
    );

    let ids = ws.result_ids("ray");
    assert_eq!(ids.len(), 12);
    assert_eq!(ids, ws.plan_ids("ray"));
    assert_eq!(ids, ws.result_ids("local"));
    let report = ws.report("ray");
    assert!(report["champion"].is_object(), "no champion: {report}");
    assert!(ws.run_dir("ray").join("report.md").exists());
    // A job per repeat of every config that was started (the memory
    // prediction keeps the others from starting), and two ran at once.
    let started_configs = ws
        .outcomes("ray")
        .values()
        .filter(|(outcome, _)| !outcome.contains("predicted_infeasible"))
        .count();
    assert!(started_configs >= 2, "{:?}", ws.outcomes("ray"));
    let jobs = runtime.block_on(head.client().list_run("ray")).unwrap();
    assert_eq!(
        jobs.len(),
        2 * started_configs,
        "2 repeats per started config"
    );
    assert!(
        jobs.iter()
            .all(|(_, _, d)| d.status == JobStatus::Succeeded)
    );
    let overlapped = jobs.iter().any(|(_, _, a)| {
        jobs.iter().any(|(_, _, b)| {
            a.submission_id != b.submission_id
                && a.start_time.zip(b.end_time).is_some_and(|(s, e)| s < e)
                && b.start_time
                    .zip(a.start_time)
                    .is_some_and(|(bs, as_)| bs <= as_)
        })
    });
    assert!(overlapped, "no two jobs ran at once");
    // The speed itself is a measurement, not an assertion (a loaded host
    // moves it): both wall times are printed above; that jobs ran side by
    // side is what this test asserts.
    assert_whole_and_quiet(&ws, &runtime, &head, "ray");
    head.stop().expect("stop the head");
}

#[test]
fn sigint_stops_the_runs_jobs_and_resume_completes() {
    let Some((runtime, head)) = head("sigint_stops_the_runs_jobs_and_resume_completes") else {
        return;
    };
    let client = head.client();
    let ws = Workspace::new();
    // A slow model load: the jobs are still running when the signal comes.
    let (mut child, text) = start_with_two_jobs_running(&ws, &runtime, &head, "int", 600.0);
    send_signal(&child, SIGINT);
    let status = wait_with_timeout(&mut child, Duration::from_secs(90));
    assert_eq!(status.code(), Some(130), "{}", text.lock().unwrap());
    let statuses = job_statuses(&runtime, &client, "int");
    assert_eq!(running(&statuses), 0, "{statuses:?}");
    assert!(statuses.contains(&JobStatus::Stopped), "{statuses:?}");

    resume_through_ray(&ws, &runtime, &head, "int");
    head.stop().expect("stop the head");
}

#[test]
fn kill_9_with_two_jobs_running_then_resume_runs_each_config_once() {
    let Some((runtime, head)) =
        head("kill_9_with_two_jobs_running_then_resume_runs_each_config_once")
    else {
        return;
    };
    let client = head.client();
    let ws = Workspace::new();
    let (mut child, _text) = start_with_two_jobs_running(&ws, &runtime, &head, "k9", 300.0);
    child.kill().expect("kill -9");
    let _ = child.wait();
    // The jobs outlive their orchestrator.
    assert!(running(&job_statuses(&runtime, &client, "k9")) > 0);

    resume_through_ray(&ws, &runtime, &head, "k9");
    // The jobs running at the kill were adopted, not run again: no unit
    // has a second attempt.
    let jobs = runtime.block_on(client.list_run("k9")).unwrap();
    let mut units = std::collections::BTreeSet::new();
    for (unit, id, _) in &jobs {
        assert!(units.insert(unit.clone()), "unit {unit:?} ran twice ({id})");
    }
    head.stop().expect("stop the head");
}

#[test]
fn a_config_that_fails_on_its_node_is_diagnosed_as_it_is_locally() {
    let Some((_runtime, head)) =
        head("a_config_that_fails_on_its_node_is_diagnosed_as_it_is_locally")
    else {
        return;
    };
    let ws = Workspace::new();
    four_config_inputs(&ws, 20.0);
    let mut args = dry_run_args("local", &[]);
    args.push("--verify-predictions");
    let local = ws.run(&args);
    assert_eq!(local.status.code(), Some(0), "{}", stderr(&local));
    // Started even where the memory prediction says vLLM refuses it: the
    // node's simulator fails its free-memory check.
    let mut args = ray_search_args(head.address(), "ray");
    args.push("--verify-predictions");
    let ray = ws.run(&args);
    assert_eq!(ray.status.code(), Some(0), "{}", stderr(&ray));
    let (local, ray) = (ws.outcomes("local"), ws.outcomes("ray"));
    assert_eq!(ray, local);
    assert!(
        ray.values()
            .any(|(outcome, class)| outcome.contains("launch_failed") && !class.is_empty()),
        "{ray:?}"
    );
    head.stop().expect("stop the head");
}

#[test]
fn ray_options_that_cannot_be_used_exit_naming_the_fix() {
    let ws = Workspace::new();
    four_config_inputs(&ws, 20.0);
    // A port nothing listens on: the dashboard is unreachable.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let unreachable = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    grid_core::testing::check(
        &[
            (
                "no address",
                vec!["--executor", "ray"],
                (Some(2), "--ray-address http://HOST:8265"),
            ),
            (
                "address without ray",
                vec!["--ray-address", "http://127.0.0.1:8265"],
                (Some(2), "--executor ray"),
            ),
            (
                "slots on ray",
                vec![
                    "--executor",
                    "ray",
                    "--ray-address",
                    "http://127.0.0.1:8265",
                    "--gpu-slots",
                    "0,1",
                ],
                (Some(2), "leave --gpu-slots out"),
            ),
            (
                "not an address",
                vec!["--executor", "ray", "--ray-address", "127.0.0.1:8265"],
                (Some(2), "http://HOST:PORT"),
            ),
            (
                "unreachable",
                vec!["--executor", "ray", "--ray-address", unreachable.as_str()],
                (Some(5), "ray start --head"),
            ),
        ],
        |extra: &Vec<&str>| {
            let mut args = dry_run_args("bad", &[]);
            args.extend(extra);
            let out = ws.run(&args);
            let text = stderr(&out);
            let phrase = [
                "--ray-address http://HOST:8265",
                "--executor ray",
                "leave --gpu-slots out",
                "http://HOST:PORT",
                "ray start --head",
            ]
            .into_iter()
            .find(|p| text.contains(p))
            .unwrap_or(text.leak());
            (out.status.code(), phrase)
        },
    );
}
