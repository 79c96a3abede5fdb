//! The client against a real local Ray head with 4 logical GPUs
//! (`VLLM_GRID_RAY`): GPU placement, two jobs at once, stop, list by
//! metadata, diagnosis of a failing entrypoint, a working-dir package; and
//! no process of the head left afterwards, on both ways of stopping it.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use grid_ray::testing::{HeadOptions, RayHead, processes_mentioning, require_ray};
use grid_ray::{
    JobDetails, JobFailureClass, JobOutcome, JobSpec, JobStatus, Package, PublicEnv, RayClient,
    SubmissionId, Upload, diagnose,
};

use crate::spec::unit;

fn job(id: &str, config: &str, gpus: u32, entrypoint: &str) -> JobSpec {
    JobSpec {
        submission_id: SubmissionId::new(id).expect("an id"),
        entrypoint: entrypoint.into(),
        unit: unit(config, 1),
        gpus,
        cpus: None,
        working_dir: None,
        env: PublicEnv::default(),
    }
}

async fn wait_for(
    client: &RayClient,
    id: &SubmissionId,
    done: impl Fn(JobStatus) -> bool,
) -> JobDetails {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let details = client.status(id).await.expect("status");
        if done(details.status) {
            return details;
        }
        assert!(
            Instant::now() < deadline,
            "{id} stuck in {:?}",
            details.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The GPUs a job's log reports (`CUDA_VISIBLE_DEVICES=0,1`).
async fn gpus_of(client: &RayClient, id: &SubmissionId) -> BTreeSet<u32> {
    let log = client.logs(id).await.expect("logs");
    let line = log
        .lines()
        .find_map(|l| l.strip_prefix("CUDA_VISIBLE_DEVICES="))
        .unwrap_or_else(|| panic!("no CUDA_VISIBLE_DEVICES line in {log:?}"));
    line.split(',')
        .map(|d| d.parse().expect("a device number"))
        .collect()
}

#[tokio::test]
async fn jobs_run_on_a_real_head_and_the_head_leaves_nothing() {
    let Some(ray) = require_ray("jobs_run_on_a_real_head_and_the_head_leaves_nothing") else {
        return;
    };
    let head = RayHead::start(&ray, &HeadOptions::default())
        .await
        .expect("a head");
    let client = head.client();
    let version = client.version().await.expect("version");
    assert_eq!(version.ray_version, "2.60.0");

    // One 2-GPU job sees two of the four logical GPUs.
    let print = "echo CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES";
    let one = client
        .submit(&job("vg-live-one", "a", 2, print))
        .await
        .expect("submit");
    assert_eq!(
        wait_for(&client, &one, JobStatus::is_terminal).await.status,
        JobStatus::Succeeded
    );
    assert_eq!(gpus_of(&client, &one).await.len(), 2);

    // Two 2-GPU jobs at once on 4 GPUs: both run together, on disjoint GPUs.
    let both = format!("{print}; sleep 4");
    let a = client
        .submit(&job("vg-live-a", "b", 2, &both))
        .await
        .expect("submit a");
    let b = client
        .submit(&job("vg-live-b", "c", 2, &both))
        .await
        .expect("submit b");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (sa, sb) = (
            client.status(&a).await.expect("a"),
            client.status(&b).await.expect("b"),
        );
        if sa.status == JobStatus::Running && sb.status == JobStatus::Running {
            break;
        }
        assert!(
            !sa.status.is_terminal() && !sb.status.is_terminal(),
            "{sa:?} {sb:?}"
        );
        assert!(
            Instant::now() < deadline,
            "never both running: {:?} {:?}",
            sa.status,
            sb.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A third cannot fit while they run, and one asking for 8 never does.
    let third = client
        .submit(&job("vg-live-huge", "huge", 8, "true"))
        .await
        .expect("submit");
    for id in [&a, &b] {
        assert_eq!(
            wait_for(&client, id, JobStatus::is_terminal).await.status,
            JobStatus::Succeeded
        );
    }
    let (ga, gb) = (gpus_of(&client, &a).await, gpus_of(&client, &b).await);
    assert_eq!(ga.len() + gb.len(), 4);
    assert!(ga.is_disjoint(&gb), "{ga:?} {gb:?}");
    assert_eq!(
        client.status(&third).await.expect("status").status,
        JobStatus::Pending
    );

    // Stop a running job.
    let long = client
        .submit(&job("vg-live-stop", "d", 2, "echo up; sleep 120"))
        .await
        .expect("submit");
    wait_for(&client, &long, |s| s == JobStatus::Running).await;
    assert!(client.stop(&long).await.expect("stop"));
    let stopped = wait_for(&client, &long, JobStatus::is_terminal).await;
    let JobOutcome::Failed(failure) =
        diagnose(&stopped, &client.logs(&long).await.expect("logs"), 5)
    else {
        panic!("a stopped job is not a success: {stopped:?}");
    };
    assert_eq!(failure.class, JobFailureClass::Stopped);
    // Stopping again is harmless. (Its answer can be either: Ray says
    // `stopped: true` while the supervisor actor outlives the STOPPED status.)
    client.stop(&long).await.expect("stop again");
    assert_eq!(
        client.status(&long).await.expect("status").status,
        JobStatus::Stopped
    );

    // An entrypoint that exits 1: job_failed with its output's tail.
    let failing = "echo preparing; echo 'error: the config asks for too much' >&2; exit 1";
    let bad = client
        .submit(&job("vg-live-exit1", "e", 2, failing))
        .await
        .expect("submit");
    let details = wait_for(&client, &bad, JobStatus::is_terminal).await;
    let log = client.logs_tail(&bad, 50).await.expect("logs");
    let JobOutcome::Failed(failure) = diagnose(&details, &log, 1) else {
        panic!("exit 1 is a failure: {details:?}");
    };
    assert_eq!(
        (failure.class, failure.exit_code, failure.log_tail.as_str()),
        (
            JobFailureClass::JobFailed,
            Some(1),
            "error: the config asks for too much"
        )
    );

    // A working-dir package: uploaded once, run from the job's directory.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("bin")).expect("mkdir");
    let script = dir.path().join("bin/worker");
    std::fs::write(
        &script,
        "#!/bin/sh\necho worker got $(cat spec.json) in $VLLM_GRID_LIVE\n",
    )
    .expect("write");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    std::fs::write(dir.path().join("spec.json"), "unit-f").expect("write");
    let package = Package::from_directory(dir.path()).expect("packs");
    assert_eq!(
        client.upload_package(&package).await.expect("upload"),
        Upload::Sent
    );
    assert_eq!(
        client.upload_package(&package).await.expect("again"),
        Upload::AlreadyThere
    );
    let mut spec = job("vg-live-package", "f", 0, "./bin/worker");
    spec.working_dir = Some(package.uri.clone());
    spec.env =
        PublicEnv::new([("VLLM_GRID_LIVE".to_string(), "ray".to_string())].into()).expect("public");
    let with_dir = client.submit(&spec).await.expect("submit");
    let details = wait_for(&client, &with_dir, JobStatus::is_terminal).await;
    let log = client.logs(&with_dir).await.expect("logs");
    assert_eq!(details.status, JobStatus::Succeeded, "{log}");
    assert!(log.contains("worker got unit-f in ray\n"), "{log}");

    // The run's jobs, found by metadata (another run's are not).
    let mut other = job("vg-live-other-run", "a", 0, "true");
    other.unit.run_id = "another-run".into();
    client.submit(&other).await.expect("submit");
    let mut found: Vec<String> = client
        .list_run("fixture-run")
        .await
        .expect("list")
        .into_iter()
        .map(|(unit, id, _)| format!("{}={id}", unit.config_id))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            "a=vg-live-one",
            "b=vg-live-a",
            "c=vg-live-b",
            "d=vg-live-stop",
            "e=vg-live-exit1",
            "f=vg-live-package",
            "huge=vg-live-huge"
        ]
    );

    // Stopped explicitly: its group and every process naming its temp dir gone.
    let (pgid, temp) = (head.pgid(), head.temp_dir().to_path_buf());
    assert!(
        !processes_mentioning(&temp).is_empty(),
        "the head's processes name its temp dir"
    );
    let took = head.stop().expect("stops");
    assert!(!grid_sys::group_alive(pgid));
    assert_eq!(processes_mentioning(&temp), Vec::<u32>::new());
    assert!(!temp.exists(), "the temp dir is removed");
    eprintln!("head stopped in {took:?}");
}

#[tokio::test]
async fn a_dropped_head_is_stopped() {
    let Some(ray) = require_ray("a_dropped_head_is_stopped") else {
        return;
    };
    let options = HeadOptions {
        num_gpus: 1,
        ..HeadOptions::default()
    };
    let head = RayHead::start(&ray, &options).await.expect("a head");
    let client = head.client();
    let id = client
        .submit(&job("vg-live-orphan", "a", 1, "sleep 300"))
        .await
        .expect("submit");
    wait_for(&client, &id, |s| s == JobStatus::Running).await;
    let (pgid, temp) = (head.pgid(), head.temp_dir().to_path_buf());
    drop(head);
    assert!(!grid_sys::group_alive(pgid));
    assert_eq!(
        processes_mentioning(&temp),
        Vec::<u32>::new(),
        "the job's sleep too"
    );
    let error = client.version().await.expect_err("the dashboard is gone");
    assert!(
        error.to_string().contains("is `ray start --head` running"),
        "{error}"
    );
}
