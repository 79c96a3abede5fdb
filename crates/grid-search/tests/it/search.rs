//! Searches on the simulator (the test binary as `vllm-sim`): a config is
//! measured; environment failures stop the run without a verdict and
//! `resume` measures the config; a server that dies during the battery is
//! said to have died there; `retry_failed` runs failed configs again.

use grid_search::store::RunOutcome;
use grid_search::{ErrorKind, SearchError, SearchMode, SearchOptions};

use crate::sim::*;

/// An error and its causes, as the binary prints them.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!("\n  caused by: {cause}"));
        source = cause.source();
    }
    text
}

fn report_json(sim: &Sim, run_id: &str) -> serde_json::Value {
    let text =
        std::fs::read_to_string(sim.store(run_id).dir.join("report.json")).expect("report.json");
    serde_json::from_str(&text).expect("report.json parses")
}

#[tokio::test]
async fn a_config_on_the_simulator_is_measured_and_wins() {
    let sim = Sim::new();
    let setup = sim.setup("smoke", plan(&[("only", STARTS)]), &profile(None, &[]));
    let outcome = sim
        .run(&setup, SearchOptions::default())
        .await
        .expect("the search runs");
    let result = only_result(&sim, "smoke");
    assert_eq!(result.outcome, RunOutcome::Completed, "{result:#?}");
    // The profile declares no prediction inputs and model `m` has no files
    // here: the prediction is unknown, with the reason, and the config ran.
    let prediction = &result.prediction.as_ref().expect("a prediction").prediction;
    let grid_predict::Verdict::Unknown { reasons } = &prediction.verdict else {
        panic!("{prediction:?}");
    };
    assert!(
        reasons.iter().any(|r| r.contains("config.json of m")),
        "{reasons:?}"
    );
    assert_eq!(
        outcome.champion.map(|c| c.name).as_deref(),
        Some("only"),
        "{:#?}",
        outcome.report.ranking
    );
    sim.assert_nothing_running();
}

/// Issue 9, defect 3: a port taken by another program is no verdict on the
/// config. The run stops (exit 5) naming the cause, the config is recorded
/// as not measured, the report names no champion and says why, and
/// `resume` measures the config once the port is free.
#[tokio::test]
async fn a_taken_port_stops_the_run_without_a_verdict_and_resume_measures_the_config() {
    let sim = Sim::new();
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("a port to hold");
    let port = holder.local_addr().expect("its address").port();
    let setup = sim.setup("port", plan(&[("only", STARTS)]), &profile(Some(port), &[]));
    let err = sim
        .run(&setup, SearchOptions::default())
        .await
        .expect_err("a taken port stops the run");
    assert!(matches!(err, SearchError::Launch { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::EnvironmentUnavailable);
    let text = chain(&err);
    for fragment in [
        "port in use",
        "says nothing about the config",
        "vllm-grid resume port",
        "already in use",
    ] {
        assert!(text.contains(fragment), "{fragment:?} missing: {text}");
    }
    let result = only_result(&sim, "port");
    assert_eq!(result.outcome, RunOutcome::NotMeasured, "{result:#?}");
    assert!(!result.is_final());
    let failure = result.failure.as_ref().expect("the cause");
    assert_eq!(failure.class, "port_in_use");
    assert!(!failure.config_fault);
    // The plan allows one transient retry.
    assert_eq!(result.failed_attempts.len(), 1);
    let events = sim.events("port");
    assert!(
        events.contains(&"config_not_measured".to_string()),
        "{events:?}"
    );
    assert_eq!(events.last().map(String::as_str), Some("run_interrupted"));
    let report = report_json(&sim, "port");
    assert!(report["champion"].is_null(), "{report:#}");
    assert_eq!(report["incomplete"]["not_measured"][0]["name"], "only");
    assert!(
        report["incomplete"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("no champion")),
        "{report:#}"
    );

    drop(holder);
    let outcome = sim.run(&setup, resume()).await.expect("the resume runs");
    assert_eq!(outcome.configs_run, 1);
    assert_eq!(outcome.champion.map(|c| c.name).as_deref(), Some("only"));
    assert_eq!(only_result(&sim, "port").outcome, RunOutcome::Completed);
    assert!(sim.events("port").contains(&"config_rerun".to_string()));
    assert!(report_json(&sim, "port").get("incomplete").is_none());
    sim.assert_nothing_running();
}

/// Issue 9, defect 3: the battery failing to write its results (here its
/// output directory cannot be made, as on a full disk) stops the run as an
/// environment failure; the config is run again on resume.
#[tokio::test]
async fn a_battery_that_cannot_write_stops_the_run_and_resume_measures_the_config() {
    let sim = Sim::new();
    let setup = sim.setup("write", plan(&[("only", STARTS)]), &profile(None, &[]));
    let blocker = sim.store("write").dir.join("only/repeat-0");
    std::fs::create_dir_all(blocker.parent().expect("the config directory")).expect("mkdir");
    std::fs::write(&blocker, "a file where the battery's directory goes").expect("write");

    let err = sim
        .run(&setup, SearchOptions::default())
        .await
        .expect_err("the battery cannot write");
    assert!(matches!(err, SearchError::Battery { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::EnvironmentUnavailable);
    let text = chain(&err);
    assert!(
        text.contains("cannot create the output directory"),
        "{text}"
    );
    let result = only_result(&sim, "write");
    assert_eq!(result.outcome, RunOutcome::NotMeasured, "{result:#?}");
    // The result keeps a readable message with the causes.
    let message = &result.failure.as_ref().expect("the cause").message;
    assert!(message.contains("repeat-0"), "{message}");
    sim.assert_nothing_running();

    std::fs::remove_file(&blocker).expect("unblock");
    let outcome = sim.run(&setup, resume()).await.expect("the resume runs");
    assert_eq!(outcome.champion.map(|c| c.name).as_deref(), Some("only"));
    assert_eq!(only_result(&sim, "write").outcome, RunOutcome::Completed);
}

/// Issue 9, defect 8: a server that crashes under the battery's load is
/// reported as having died during the battery, with its diagnosis, never
/// as exiting "before it was ready".
#[tokio::test]
async fn a_server_that_dies_during_the_battery_is_said_to_have_died_there() {
    let sim = Sim::new();
    let setup = sim.setup(
        "crash",
        plan(&[("only", STARTS)]),
        &profile(None, &["--sim-crash-after-requests", "3"]),
    );
    let outcome = sim
        .run(&setup, SearchOptions::default())
        .await
        .expect("a crash is a verdict, not a stop");
    assert!(outcome.champion.is_none());
    let result = only_result(&sim, "crash");
    assert_eq!(result.outcome, RunOutcome::Failed, "{result:#?}");
    let failure = result.failure.as_ref().expect("the failure");
    assert!(failure.config_fault, "{failure:#?}");
    assert!(
        failure.message.contains("died during the battery"),
        "{failure:#?}"
    );
    assert!(
        !failure.message.contains("before it was ready"),
        "{failure:#?}"
    );
    assert!(
        failure
            .log_tail
            .iter()
            .any(|l| l.contains("EngineDeadError")),
        "{failure:#?}"
    );
    let ranked = outcome
        .report
        .ranking
        .get(&result.config.id)
        .expect("ranked");
    assert_eq!(ranked.status, grid_search::ConfigStatus::Rejected);
    sim.assert_nothing_running();
}

/// Issue 9, defect 3: `resume` keeps verdicts, and `retry_failed` runs the
/// failed configs again (here the GPU memory another process held is free
/// by then).
#[tokio::test]
async fn retry_failed_runs_failed_configs_again() {
    let sim = Sim::new();
    let held = profile(None, &["--sim-gpu-memory-used-gib", "5"]);
    let free = profile(None, &[]);
    let first = sim.setup("retry", plan(&[("only", STARTS)]), &held);
    let outcome = sim
        .run(&first, SearchOptions::default())
        .await
        .expect("a config that does not fit is a verdict");
    assert!(outcome.champion.is_none());
    let result = only_result(&sim, "retry");
    assert_eq!(result.outcome, RunOutcome::LaunchFailed, "{result:#?}");
    assert!(result.is_final());
    assert_eq!(
        result.failure.as_ref().map(|f| f.class.as_str()),
        Some("free_memory_below_utilization")
    );

    // A plain resume keeps the verdict.
    let second = sim.setup("retry", plan(&[("only", STARTS)]), &free);
    let allow = SearchMode::Resume {
        allow_changes: true,
    };
    let outcome = sim
        .run(
            &second,
            SearchOptions {
                mode: allow,
                ..SearchOptions::default()
            },
        )
        .await
        .expect("the resume runs");
    assert_eq!(outcome.configs_run, 0);
    assert_eq!(only_result(&sim, "retry").outcome, RunOutcome::LaunchFailed);

    // On request, failed configs run again.
    let outcome = sim
        .run(
            &second,
            SearchOptions {
                retry_failed: true,
                ..resume()
            },
        )
        .await
        .expect("the retry runs");
    assert_eq!(outcome.configs_run, 1);
    assert_eq!(outcome.champion.map(|c| c.name).as_deref(), Some("only"));
    assert_eq!(only_result(&sim, "retry").outcome, RunOutcome::Completed);
    let journal = sim.store("retry").read_journal(false).expect("journal");
    assert!(journal.entries.iter().any(|e| matches!(
        &e.event,
        grid_search::store::JournalEvent::ConfigRerun { why, previous: RunOutcome::LaunchFailed, .. }
            if why == "--retry-failed"
    )));
}

/// Issue 9, defect 8: a damaged result file is bad input whose message says
/// the fix (delete it and resume), and the fix works; a damaged manifest is
/// bad input too.
#[tokio::test]
async fn a_damaged_result_says_delete_it_and_resume_and_that_works() {
    let sim = Sim::new();
    let setup = sim.setup("damaged", plan(&[("only", STARTS)]), &profile(None, &[]));
    sim.run(&setup, SearchOptions::default())
        .await
        .expect("the search runs");
    let store = sim.store("damaged");
    let id = &setup.plan.configs[0].id;
    let path = store.result_path(id);
    std::fs::write(&path, "{\"format_version\": 1, \"config\": ").expect("damage it");

    let err = sim
        .run(&setup, resume())
        .await
        .expect_err("a damaged result stops the resume");
    assert!(matches!(err, SearchError::DamagedResult { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::BadInput);
    let text = err.to_string();
    for fragment in [
        format!("{} is damaged", path.display()),
        "delete it and resume".to_string(),
        "vllm-grid resume damaged".to_string(),
        "re-run that config".to_string(),
    ] {
        assert!(text.contains(&fragment), "{fragment:?} missing: {text}");
    }

    std::fs::remove_file(&path).expect("the fix the message gives");
    let outcome = sim.run(&setup, resume()).await.expect("the resume runs");
    assert_eq!(outcome.configs_run, 1);
    assert_eq!(only_result(&sim, "damaged").outcome, RunOutcome::Completed);

    std::fs::write(store.manifest_path(), "{").expect("damage the manifest");
    let err = sim
        .run(&setup, resume())
        .await
        .expect_err("a damaged manifest stops the resume");
    assert!(
        matches!(err, SearchError::DamagedManifest { .. }),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::BadInput);
    assert!(
        err.to_string()
            .contains("restore it from the run's archive")
    );
    sim.assert_nothing_running();
}
