//! Submission IDs, public env vars and the submit body.

use std::collections::BTreeMap;

use grid_core::testing::check;
use grid_ray::{CpuShare, JobSpec, PublicEnv, SubmissionId, UnitMetadata};

pub fn unit(config: &str, repeat: u32) -> UnitMetadata {
    UnitMetadata {
        run_id: "fixture-run".into(),
        config_id: config.into(),
        repeat,
    }
}

/// The recorded 2-GPU submission, as a spec.
pub fn a_spec(id: &str) -> JobSpec {
    JobSpec {
        submission_id: SubmissionId::new(id).expect("an id"),
        entrypoint: "echo CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES; echo done".into(),
        unit: unit("small-a", 1),
        gpus: 2,
        cpus: CpuShare::new(0.5),
        working_dir: None,
        env: PublicEnv::default(),
    }
}

#[test]
fn the_body_is_the_recorded_request() {
    let recorded: serde_json::Value = serde_json::from_str::<serde_json::Value>(
        &std::fs::read_to_string(crate::common::fixture_dir().join("submit-2gpu.json"))
            .expect("read"),
    )
    .expect("json")["request"]["body"]
        .clone();
    let ours = serde_json::to_value(a_spec("vg-fixture-2gpu").body()).expect("serialises");
    assert_eq!(ours, recorded);
}

#[test]
fn no_gpus_means_no_gpu_field() {
    let mut spec = a_spec("x");
    spec.gpus = 0;
    spec.cpus = None;
    let body = serde_json::to_value(spec.body()).expect("serialises");
    assert!(body.get("entrypoint_num_gpus").is_none(), "{body}");
    assert!(body.get("entrypoint_num_cpus").is_none(), "{body}");
    assert!(body.get("runtime_env").is_none(), "{body}");
}

#[test]
fn submission_ids_are_url_safe() {
    let cases = [
        ("plain", "vg-run-cfg-r1-a0", true),
        ("dots and underscores", "a.b_c", true),
        ("empty", "", false),
        ("slash", "a/b", false),
        ("space", "a b", false),
        ("too long", &"x".repeat(129), false),
    ];
    check(&cases, |id| SubmissionId::new(id).is_ok());
    let id = SubmissionId::for_unit(
        &UnitMetadata {
            run_id: "2026-12-01T13:00 run".into(),
            config_id: "medium/qwen3".into(),
            repeat: 3,
        },
        1,
    );
    assert_eq!(id.as_str(), "vg-2026-12-01T13_00_run-medium_qwen3-r3-a1");
    let long = SubmissionId::for_unit(&unit(&"c".repeat(300), 2), 9);
    assert_eq!(long.as_str().len(), SubmissionId::MAX_LEN);
    assert!(long.as_str().ends_with("-r2-a9"));
}

#[test]
fn secret_looking_names_are_kept_out_of_env_vars() {
    let cases = [
        ("plain", "VLLM_GRID_LOG", true),
        ("api key", "OPENAI_API_KEY", false),
        ("token", "HF_TOKEN", false),
        ("lower case", "hf_token", false),
        ("aws", "AWS_SECRET_ACCESS_KEY", false),
        ("password", "DB_PASSWORD", false),
        ("key in the middle", "VLLM_API_KEY_VAR", true),
        ("keyring", "KEYRING_BACKEND", true),
    ];
    check(&cases, |name| {
        PublicEnv::new(BTreeMap::from([(name.to_string(), "v".to_string())])).is_ok()
    });
    let error =
        PublicEnv::new(BTreeMap::from([("HF_TOKEN".into(), "x".into())])).expect_err("secret");
    assert!(
        error
            .to_string()
            .contains("Ray shows a job's env_vars to anyone"),
        "{error}"
    );
}

#[test]
fn metadata_round_trips_and_foreign_jobs_have_none() {
    let unit = unit("small-a", 7);
    assert_eq!(UnitMetadata::from_map(&unit.to_map()), Some(unit.clone()));
    let mut bad = unit.to_map();
    bad.insert("vllm_grid_repeat".into(), "seven".into());
    assert_eq!(UnitMetadata::from_map(&bad), None);
    assert_eq!(UnitMetadata::from_map(&BTreeMap::new()), None);
    let cases = [
        ("half", 0.5, true),
        ("zero", 0.0, false),
        ("negative", -1.0, false),
        ("nan", f64::NAN, false),
    ];
    check(&cases, |cpus| CpuShare::new(*cpus).is_some());
}

#[test]
fn the_clusters_gpus_are_counted_over_its_alive_nodes() {
    let recorded: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crate::common::fixture_dir().join("nodes-reply.json"))
            .expect("read"),
    )
    .expect("json");
    let nodes = |list: serde_json::Value| serde_json::json!({"data": {"result": {"result": list}}});
    let node = |state: &str, gpus: f64| serde_json::json!({"state": state, "resources_total": {"GPU": gpus}});
    check(
        &[
            // `ray start --head --num-gpus=4`, recorded (GET /api/v0/nodes).
            ("recorded head", recorded, (4, 4)),
            // Right after start the head answers before its node registers.
            ("no node yet", nodes(serde_json::json!([])), (0, 0)),
            (
                "a dead node does not count",
                nodes(serde_json::json!([node("ALIVE", 2.0), node("DEAD", 8.0)])),
                (2, 2),
            ),
            (
                "two nodes, a fraction rounds down",
                nodes(serde_json::json!([node("ALIVE", 4.0), node("ALIVE", 2.5)])),
                (6, 4),
            ),
            (
                "not the state API's shape",
                serde_json::json!({"x": 1}),
                (0, 0),
            ),
        ],
        |reply| {
            let gpus = grid_ray::ClusterGpus::of_nodes(reply);
            (gpus.total, gpus.largest_node)
        },
    );
}
