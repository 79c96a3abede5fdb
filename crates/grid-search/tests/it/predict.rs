//! The memory prediction against its truth in the dry run, the simulator:
//! `profiles/sim.yml` declares what its `--sim-*` flags say; on the default
//! grid every prediction matches the simulator's memory model (12/12, the 8
//! startup failures with their classes); the search skips the predicted
//! failures (0 server starts) and `verify_predictions` starts them and
//! records that each prediction held.

use std::collections::BTreeMap;

use grid_container::{DeclaredHardware, EnvEntry, Profile, parse_profile, render_command};
use grid_predict::{FailureClass, Overheads, Prediction};
use grid_search::predict::{gather, predict_config};
use grid_search::store::RunOutcome;
use grid_search::{SearchMode, SearchOptions, SearchSetup};
use vllm_sim::{ServeConfig, StartupError, memory};

use crate::sim::{Sim, TINY_BATTERY};

const SHIPPED_PLAN: &str = include_str!("../../../../grid_search_configs.json");
const SIM_PROFILE: &str = include_str!("../../../../profiles/sim.yml");

fn sim_profile() -> Profile {
    parse_profile(SIM_PROFILE, "profiles/sim.yml")
        .expect("profiles/sim.yml parses")
        .profile
}

fn no_variables(_: &str) -> Option<String> {
    None
}

/// The simulator's own verdict: (class, KV tokens).
fn simulator(command: &[String]) -> (Option<FailureClass>, Option<u64>) {
    let cfg =
        ServeConfig::from_args_with_env(command, None).expect("the simulator takes the command");
    match memory::plan(&cfg) {
        Ok(plan) => (None, Some(plan.kv_cache_tokens() as u64)),
        Err(StartupError::FreeMemory { .. }) => {
            (Some(FailureClass::FreeMemoryBelowUtilization), None)
        }
        Err(StartupError::KvCacheTooSmall { .. } | StartupError::NoKvMemory) => {
            (Some(FailureClass::KvCacheTooSmall), None)
        }
        Err(StartupError::CudaOom { .. }) => (Some(FailureClass::GpuOutOfMemory), None),
        Err(other) => panic!("{command:?}: the default grid does not fail with {other}"),
    }
}

fn predicted(prediction: &Prediction) -> (Option<FailureClass>, Option<u64>) {
    let class = prediction.failure_class();
    let tokens = if class.is_none() {
        prediction.kv_capacity_tokens
    } else {
        None
    };
    (class, tokens)
}

#[test]
fn the_sim_profile_declares_what_its_sim_flags_say() {
    let profile = sim_profile();
    let sim = ServeConfig::from_args_with_env(&profile.command, None)
        .expect("the simulator takes the command")
        .sim;
    let gib = |bytes: u64| bytes as f64 / (1u64 << 30) as f64;
    let Some(DeclaredHardware::Gpus(gpus)) = &profile.predict.hardware else {
        panic!("sim.yml declares no GPUs: {:?}", profile.predict.hardware);
    };
    assert_eq!(gpus.len(), sim.gpu_count);
    for gpu in gpus {
        assert_eq!(gib(gpu.total_bytes), sim.gpu_memory_gib);
        assert_eq!(gib(gpu.used_bytes), sim.gpu_memory_used_gib);
    }
    let model = profile
        .predict
        .model
        .as_ref()
        .expect("sim.yml declares the model");
    assert_eq!(gib(model.weights_bytes), sim.weights_gib);
    let facts = grid_predict::ModelFacts::from_config(&model.config, model.weights_bytes)
        .expect("supported");
    assert_eq!(facts.num_hidden_layers as usize, sim.num_layers);
    assert_eq!(facts.num_key_value_heads as usize, sim.num_kv_heads);
    assert_eq!(facts.head_dim as usize, sim.head_dim);
    assert_eq!(facts.max_model_len as usize, sim.model_max_len);
    let overheads = profile.predict.overheads;
    assert_eq!(overheads.non_torch_bytes.map(gib), Some(sim.non_torch_gib));
    let activation = overheads.activation.expect("an activation line");
    assert_eq!(gib(activation.fixed_bytes), sim.activation_base_gib);
    assert_eq!(
        activation.per_batched_token_bytes as f64 / 1024.0,
        sim.activation_kib_per_token
    );
}

#[tokio::test]
async fn predictions_match_the_simulator_on_the_default_grid() {
    let plan = grid_plan::parse_plan(SHIPPED_PLAN).expect("the shipped plan");
    let profile = sim_profile();
    let inputs = gather(&profile, &no_variables, "nvidia-smi").await;
    assert!(inputs.missing.is_empty(), "{:?}", inputs.missing);
    let mut defaults = inputs.clone();
    defaults.overheads = Overheads::default();
    let mut failures: BTreeMap<&str, usize> = BTreeMap::new();
    let mut table = Vec::new();
    let mut same_start = 0;
    for config in &plan.configs {
        let command = render_command(&profile.command, &config.flags());
        let truth = simulator(&command);
        let prediction = predict_config(&inputs, &profile, config, &no_variables);
        assert_eq!(
            predicted(&prediction),
            truth,
            "{}: {prediction:?}",
            config.name
        );
        if let Some(class) = truth.0 {
            *failures.entry(class.as_str()).or_default() += 1;
        }
        // With grid-predict's own estimates instead of the declared constants.
        let estimate = predict_config(&defaults, &profile, config, &no_variables);
        same_start += usize::from(estimate.failure_class().is_some() == truth.0.is_some());
        let (declared, estimated) = (predicted(&prediction), predicted(&estimate));
        table.push(format!(
            "{:<34} simulator {:<48} declared {:<48} estimated {estimated:?}",
            config.name,
            format!("{truth:?}"),
            format!("{declared:?}"),
        ));
    }
    eprintln!("{}", table.join("\n"));
    assert_eq!(plan.configs.len(), 12);
    assert_eq!(
        failures,
        BTreeMap::from([
            ("free_memory_below_utilization", 4),
            ("kv_cache_too_small", 4)
        ])
    );
    // The estimates differ from the simulator's constants (see the notes),
    // but not on which configs start.
    assert_eq!(same_start, 12);
}

/// The default grid's physics on the test binary's simulator: sim.yml with
/// a literal key, the child role, a faster clock, one repeat.
fn dry_run_setup(sim: &Sim, run_id: &str) -> SearchSetup {
    let mut profile = sim_profile();
    profile.environment = vec![
        EnvEntry {
            name: "VLLM_API_KEY".into(),
            value: Some("k".into()),
        },
        EnvEntry {
            name: crate::child::ROLE_ENV.into(),
            value: Some("vllm-sim".into()),
        },
    ];
    if let Some(scale) = profile.command.iter().position(|t| t == "--sim-time-scale") {
        profile.command[scale + 1] = "0.005".into();
    }
    let plan = grid_plan::parse_plan(&format!(
        r#"{{"format_version": 1, "profile": "sim.yml",
            "axes": {{"gpu_memory_utilization": [0.85, 0.90, 0.95],
                      "enable_chunked_prefill": [true, false], "enable_prefix_caching": [true, false]}},
            "battery": {TINY_BATTERY}, "repeats": 1,
            "ranking": {{"max_stability_degradation": 100.0, "max_request_error_rate": 0.01}},
            "limits": {{"health_timeout_s": 30, "per_config_timeout_s": 120, "transient_retries": 1, "retry_backoff_s": 0.1}},
            "seed": 7}}"#
    ))
    .expect("the test plan parses");
    let battery = grid_search::battery::battery_config(&plan.battery).expect("tiny battery");
    SearchSetup {
        logs_root: sim.logs(),
        run_id: run_id.into(),
        plan_file: "plan.json".into(),
        plan,
        profile_file: "profiles/sim.yml".into(),
        profile_text: SIM_PROFILE.into(),
        profile,
        image: Some("img".into()),
        simulated: true,
        battery,
    }
}

/// Launch attempts per config name, from the journal.
fn starts(sim: &Sim, run_id: &str) -> BTreeMap<String, usize> {
    let mut starts = BTreeMap::new();
    for entry in sim
        .store(run_id)
        .read_journal(false)
        .expect("the journal")
        .entries
    {
        let event = serde_json::to_value(&entry.event).expect("an event");
        if event["event"] == "config_started" {
            *starts
                .entry(event["name"].as_str().unwrap_or_default().to_string())
                .or_default() += 1;
        }
    }
    starts
}

#[tokio::test]
async fn predicted_failures_are_not_started_and_verifying_starts_them() {
    let sim = Sim::new();
    let setup = dry_run_setup(&sim, "predicted");
    sim.run(&setup, SearchOptions::default())
        .await
        .expect("the search runs");
    let results = sim.store("predicted").read_results().expect("results");
    assert_eq!(results.len(), 12);
    let started = starts(&sim, "predicted");
    let mut skipped = 0;
    for result in results.values() {
        let settings = &result.config.settings;
        let expected = if settings.gpu_memory_utilization == Some(0.95) {
            Some("free_memory_below_utilization")
        } else if settings.enable_chunked_prefill == Some(false) {
            Some("kv_cache_too_small")
        } else {
            None
        };
        let record = result
            .prediction
            .as_ref()
            .expect("every result has its prediction");
        match expected {
            Some(class) => {
                skipped += 1;
                assert_eq!(
                    result.outcome,
                    RunOutcome::PredictedInfeasible,
                    "{}",
                    result.config.name
                );
                assert_eq!(
                    result.failure.as_ref().map(|f| f.class.as_str()),
                    Some(class)
                );
                assert!(result.is_final());
                assert_eq!(
                    started.get(&result.config.name),
                    None,
                    "{} was started",
                    result.config.name
                );
                assert_eq!(record.held, None);
            }
            None => {
                assert_eq!(
                    result.outcome,
                    RunOutcome::Completed,
                    "{}: {:?}",
                    result.config.name,
                    result.failure
                );
                assert_eq!(record.prediction.verdict_name(), "fits");
                assert_eq!(record.held, Some(true));
            }
        }
    }
    assert_eq!(skipped, 8);
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sim.store("predicted").dir.join("report.json"))
            .expect("report.json"),
    )
    .expect("json");
    assert_eq!(report["predictions"]["skipped"], 8);
    let rejected: Vec<&serde_json::Value> = report["configs"]
        .as_array()
        .expect("configs")
        .iter()
        .filter(|c| {
            c["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with("predicted infeasible"))
        })
        .collect();
    assert_eq!(rejected.len(), 8, "{report:#}");

    // Resume with verification: the 8 start (and fail as predicted), the
    // 4 measured configs are kept.
    let options = SearchOptions {
        mode: SearchMode::Resume {
            allow_changes: false,
        },
        verify_predictions: true,
        ..SearchOptions::default()
    };
    sim.run(&setup, options)
        .await
        .expect("the verifying resume runs");
    let results = sim.store("predicted").read_results().expect("results");
    let mut held = 0;
    for result in results.values() {
        let record = result.prediction.as_ref().expect("a prediction");
        assert_eq!(
            record.held,
            Some(true),
            "{}: {:?} {:?}",
            result.config.name,
            result.outcome,
            result.failure
        );
        held += 1;
        if record.prediction.failure_class().is_some() {
            assert_eq!(
                result.outcome,
                RunOutcome::LaunchFailed,
                "{}",
                result.config.name
            );
            assert_eq!(
                result.failure.as_ref().map(|f| f.class.as_str()),
                record.prediction.failure_class().map(|c| c.as_str())
            );
        }
    }
    assert_eq!(held, 12);
    let started = starts(&sim, "predicted");
    assert_eq!(
        started.len(),
        12,
        "every config was started once verified: {started:?}"
    );
    let report =
        std::fs::read_to_string(sim.store("predicted").dir.join("report.md")).expect("report.md");
    assert!(report.contains("12/12 predictions held"), "{report}");
    sim.assert_nothing_running();
}
