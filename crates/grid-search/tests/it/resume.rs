use grid_container::{Backend, ProcessBackend, ProcessBackendConfig};
use grid_search::store::RunStore;
use grid_search::{QuietProgress, SearchError, SearchMode, SearchOptions, SearchSetup, run_search};
use tokio_util::sync::CancellationToken;

use crate::fixtures::*;

const PROFILE: &str = "services:\n  s:\n    image: vllm-sim:latest\n    command: [\"--model\", \"m\", \"--api-key\", \"${NO_SUCH_TEST_KEY}\"]\n";

fn setup(dir: &std::path::Path, plan: grid_plan::Plan, profile_text: &str) -> SearchSetup {
    let profile = grid_container::parse_profile(profile_text, "test.yml")
        .unwrap()
        .profile;
    SearchSetup {
        logs_root: dir.to_path_buf(),
        run_id: "run".into(),
        plan_file: "plan.json".into(),
        plan,
        profile_file: "test.yml".into(),
        profile_text: profile_text.into(),
        profile,
        image: Some("img".into()),
        simulated: false,
        battery: grid_bench::BatteryConfig::default(),
    }
}

#[tokio::test]
async fn resume_refuses_a_changed_setup_and_an_unknown_run() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::Process(ProcessBackend::new(ProcessBackendConfig::new(
        dir.path().join(".pids"),
    )));
    let options = SearchOptions {
        mode: SearchMode::Resume {
            allow_changes: false,
        },
        ..SearchOptions::default()
    };
    let cancel = CancellationToken::new();

    let original = setup(dir.path(), plan(""), PROFILE);
    match run_search(&backend, &original, &options, &cancel, &QuietProgress).await {
        Err(SearchError::NoSuchRun { run_id, .. }) => assert_eq!(run_id, "run"),
        other => panic!("{other:?}"),
    }
    // Record a run as if it had started with `original`.
    let store = RunStore::at(dir.path(), "run").unwrap();
    let manifest = grid_search::search::manifest_for(&original, "process").unwrap();
    store.write_manifest(&manifest).unwrap();

    let mut changed = setup(
        dir.path(),
        plan(r#""repeats": 3"#),
        &format!("{PROFILE}# edited\n"),
    );
    changed.image = Some("other".into());
    match run_search(&backend, &changed, &options, &cancel, &QuietProgress).await {
        Err(err @ SearchError::ChangedSinceStart { .. }) => {
            let text = err.to_string();
            for fragment in [
                "repeats changed: 1 -> 3",
                "profile changed",
                "image changed: img -> other",
                "--allow-changes",
            ] {
                assert!(text.contains(fragment), "{text}");
            }
            assert_eq!(err.kind(), grid_search::ErrorKind::BadInput);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !store.lock_path().exists(),
        "a refused resume releases the lock"
    );
}
