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

/// The inputs as a real box gives them: nvidia-smi's memory (a stand-in
/// script printing recorded-shape CSV), narrowed by CUDA_VISIBLE_DEVICES;
/// the model's config.json and weights in a hub cache snapshot, found
/// through the profile's bind mount of the cache.
#[tokio::test]
async fn inputs_come_from_nvidia_smi_and_the_mounted_hub_cache() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let dir = tempfile::tempdir().expect("a temporary directory");
    let smi = dir.path().join("nvidia-smi");
    std::fs::write(
        &smi,
        "#!/bin/sh\nprintf '0, NVIDIA H100 80GB HBM3, 81559, 1200\\n1, NVIDIA H100 80GB HBM3, 81559, 40000\\n2, NVIDIA H100 80GB HBM3, 81559, 3\\n'\n",
    )
    .expect("the script");
    std::fs::set_permissions(&smi, std::fs::Permissions::from_mode(0o755)).expect("executable");
    // ~/.cache/huggingface/hub/models--Qwen--Qwen3-8B/{refs/main, snapshots/<rev>/, blobs/}
    let hub = dir.path().join("hf/hub/models--Qwen--Qwen3-8B");
    let snapshot = hub.join("snapshots/abc123");
    std::fs::create_dir_all(&snapshot).expect("snapshot dir");
    std::fs::create_dir_all(hub.join("refs")).expect("refs");
    std::fs::create_dir_all(hub.join("blobs")).expect("blobs");
    std::fs::write(hub.join("refs/main"), "abc123\n").expect("refs/main");
    std::fs::write(
        snapshot.join("config.json"),
        r#"{"architectures": ["Qwen3ForCausalLM"], "num_hidden_layers": 36, "num_attention_heads": 32,
            "num_key_value_heads": 8, "head_dim": 128, "hidden_size": 4096, "intermediate_size": 12288,
            "vocab_size": 151936, "max_position_embeddings": 40960, "torch_dtype": "bfloat16"}"#,
    )
    .expect("config.json");
    for (name, size) in [("a", 3000), ("b", 2000)] {
        let blob = hub.join("blobs").join(name);
        std::fs::write(&blob, vec![0u8; size]).expect("a blob");
        symlink(&blob, snapshot.join(format!("model-{name}.safetensors"))).expect("a link");
    }
    let text = format!(
        "services:\n  s:\n    image: vllm/vllm-openai:latest\n    command: [--model, Qwen/Qwen3-8B, --max-model-len, \"8192\"]\n    \
         environment:\n      CUDA_VISIBLE_DEVICES: \"2,1\"\n    volumes:\n      - {}:/root/.cache/huggingface\n",
        dir.path().join("hf").display()
    );
    let profile = parse_profile(&text, "p.yml").expect("parses").profile;
    let inputs = gather(&profile, &no_variables, smi.to_str().expect("a path")).await;
    assert!(inputs.missing.is_empty(), "{:?}", inputs.missing);
    let Some(grid_predict::Hardware::Gpus(gpus)) = &inputs.hardware else {
        panic!("{:?}", inputs.hardware);
    };
    // GPU 2 then GPU 1, as CUDA_VISIBLE_DEVICES orders them; MiB to bytes.
    assert_eq!(gpus.len(), 2);
    assert_eq!(gpus[0].used_bytes, 3 << 20);
    assert_eq!(gpus[1].used_bytes, 40000 << 20);
    assert_eq!(gpus[0].total_bytes, 81559 << 20);
    assert_eq!(gpus[0].name.as_deref(), Some("NVIDIA H100 80GB HBM3"));
    let model = inputs.model.as_ref().expect("the model");
    assert_eq!(model.weights_bytes, 5000, "the weights through their links");
    assert_eq!(model.num_hidden_layers, 36);
    // One worker on GPU 2 (the first visible): it fits.
    let plan = grid_plan::parse_plan(
        r#"{"format_version": 1, "profile": "p.yml", "axes": {}, "named_configs": [{"name": "a", "settings": {}}]}"#,
    )
    .expect("a plan");
    let prediction = predict_config(&inputs, &profile, &plan.configs[0], &no_variables);
    assert_eq!(prediction.verdict_name(), "fits", "{prediction:?}");
    // With TP 2 the second worker, GPU 1, has 40000 MiB used: 0.92 of 80 GiB is not free.
    let tp2 = grid_plan::parse_plan(
        r#"{"format_version": 1, "profile": "p.yml", "axes": {},
            "named_configs": [{"name": "b", "settings": {"extra_args": {"tensor-parallel-size": "2"}}}]}"#,
    )
    .expect("a plan");
    let prediction = predict_config(&inputs, &profile, &tp2.configs[0], &no_variables);
    assert_eq!(
        prediction.failure_class(),
        Some(FailureClass::FreeMemoryBelowUtilization),
        "{prediction:?}"
    );
    let grid_predict::Verdict::PredictedFailure { message, .. } = &prediction.verdict else {
        unreachable!()
    };
    assert!(message.contains("cuda:1"), "{message}");

    // A failing nvidia-smi and no model: unknown, each with its reason.
    std::fs::write(
        &smi,
        "#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n",
    )
    .expect("the script");
    let bare = parse_profile(
        "services:\n  s:\n    image: i\n    command: [--model, /nowhere/m]\n",
        "p.yml",
    )
    .expect("parses")
    .profile;
    let inputs = gather(&bare, &no_variables, smi.to_str().expect("a path")).await;
    assert_eq!(inputs.missing.len(), 2, "{:?}", inputs.missing);
    assert!(
        inputs.missing[0].contains("NVIDIA-SMI has failed"),
        "{:?}",
        inputs.missing
    );
    assert!(
        inputs.missing[1].contains("/nowhere/m"),
        "{:?}",
        inputs.missing
    );
}
