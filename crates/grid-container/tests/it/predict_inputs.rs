//! `x-vllm-grid.predict` and where a profile's model files are on this host:
//! the memory prediction's inputs.

use std::path::PathBuf;

use grid_container::{DeclaredHardware, ModelSource, ProfileError, parse_profile};

fn profile_with(extension: &str, service_extra: &str) -> String {
    format!(
        "services:\n  s:\n    image: img\n    command: [\"--model\", \"Qwen/Qwen3-32B-AWQ\"]\n{service_extra}x-vllm-grid:\n{extension}"
    )
}

#[test]
fn declared_hardware_model_and_overheads_are_read_with_units() {
    let text = profile_with(
        "  predict:\n    hardware: {gpus: 2, gpu_memory: 24g, gpu_memory_used: 2g, gpu_name: NVIDIA L4}\n    \
         model:\n      weights: 18g\n      config: {num_hidden_layers: 64, num_attention_heads: 64, \
         num_key_value_heads: 8, head_dim: 128, hidden_size: 5120, max_position_embeddings: 131072}\n    \
         overheads: {non_torch: 0.5g, activation: {fixed: 0.5g, per_batched_token: 64k}, cuda_graphs: 0}\n",
        "",
    );
    let loaded = parse_profile(&text, "p.yml").expect("parses");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let predict = loaded.profile.predict;
    let Some(DeclaredHardware::Gpus(gpus)) = &predict.hardware else {
        panic!("{:?}", predict.hardware);
    };
    assert_eq!(gpus.len(), 2);
    assert_eq!(gpus[0].total_bytes, 24 << 30);
    assert_eq!(gpus[0].used_bytes, 2 << 30);
    assert_eq!(gpus[1].name.as_deref(), Some("NVIDIA L4"));
    let model = predict.model.expect("a declared model");
    assert_eq!(model.weights_bytes, 18 << 30);
    assert_eq!(model.config["num_key_value_heads"], 8);
    assert_eq!(predict.overheads.non_torch_bytes, Some(1 << 29));
    let activation = predict.overheads.activation.expect("an activation line");
    assert_eq!(
        (activation.fixed_bytes, activation.per_batched_token_bytes),
        (1 << 29, 65536)
    );
    assert_eq!(predict.overheads.cuda_graph_bytes, Some(0));

    let cpu = parse_profile(
        &profile_with("  predict:\n    hardware: {device: cpu}\n", ""),
        "p.yml",
    )
    .expect("parses")
    .profile;
    assert_eq!(
        cpu.predict.hardware,
        Some(DeclaredHardware::Cpu {
            total_bytes: None,
            available_bytes: None
        })
    );
    // No declaration: nothing declared, nothing warned.
    let plain = parse_profile(
        &profile_with("  process: {entrypoint: [vllm, serve]}\n", ""),
        "p.yml",
    )
    .expect("parses");
    assert!(plain.warnings.is_empty());
    assert_eq!(plain.profile.predict, Default::default());
}

#[test]
fn bad_declarations_are_refused_naming_the_key() {
    for (extension, key) in [
        (
            "  predict:\n    hardware: {gpus: 2}\n",
            "x-vllm-grid.predict.hardware",
        ),
        (
            "  predict:\n    hardware: {gpus: 0, gpu_memory: 24g}\n",
            "x-vllm-grid.predict.hardware.gpus",
        ),
        (
            "  predict:\n    hardware: {gpu_memory: lots}\n",
            "x-vllm-grid.predict.hardware.gpu_memory",
        ),
        (
            "  predict:\n    hardware: {gpu_memory: 8g, gpu_memory_used: 9g}\n",
            "x-vllm-grid.predict.hardware.gpu_memory_used",
        ),
        (
            "  predict:\n    hardware: {device: tpu}\n",
            "x-vllm-grid.predict.hardware.device",
        ),
        (
            "  predict:\n    model: {weights: 1g}\n",
            "x-vllm-grid.predict.model",
        ),
        (
            "  predict:\n    model: {weights: 1g, config: {hidden_size: 8}}\n",
            "x-vllm-grid.predict.model.config",
        ),
        ("  predict: [1]\n", "x-vllm-grid.predict"),
    ] {
        let err = parse_profile(&profile_with(extension, ""), "p.yml").expect_err(extension);
        match &err {
            ProfileError::InvalidValue { key: got, .. } | ProfileError::Size { key: got, .. } => {
                assert_eq!(got, key, "{extension}: {err}")
            }
            other => panic!("{extension}: {other:?}"),
        }
    }
    let loaded =
        parse_profile(&profile_with("  predict:\n    gpu: {}\n", ""), "p.yml").expect("parses");
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.contains("x-vllm-grid.predict.gpu")),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn a_hub_model_is_looked_up_through_the_mounted_cache() {
    let text = profile_with(
        "  predict: {}\n",
        "    volumes:\n      - ~/.cache/huggingface:/root/.cache/huggingface\n    environment:\n      HF_HOME: /root/.cache/huggingface\n",
    );
    let profile = parse_profile(&text, "p.yml").expect("parses").profile;
    let lookup = |name: &str| (name == "HOME").then(|| "/home/u".to_string());
    assert_eq!(
        profile.model_source(&profile.command, &lookup),
        Some(ModelSource::Hub {
            repo_id: "Qwen/Qwen3-32B-AWQ".into(),
            cache_dirs: vec![
                PathBuf::from("/home/u/.cache/huggingface/hub"),
                PathBuf::from("/root/.cache/huggingface/hub"),
            ],
        })
    );
}

#[test]
fn a_model_directory_is_the_path_itself_or_its_mount() {
    let text = "services:\n  s:\n    image: img\n    command: [\"--model\", \"${MODELS:-/models}/tiny\"]\n    \
                volumes: [\"/srv/weights:/models:ro\", \"cache:/cache\"]\n";
    let profile = parse_profile(text, "p.yml").expect("parses").profile;
    let none = |_: &str| None;
    assert_eq!(
        profile.model_source(&profile.command, &none),
        Some(ModelSource::Directory {
            model: "/models/tiny".into(),
            candidates: vec![
                PathBuf::from("/srv/weights/tiny"),
                PathBuf::from("/models/tiny")
            ],
        })
    );
    let positional = parse_profile(
        "services:\n  s:\n    image: img\n    command: [\"/m\", \"--port\", \"8000\"]\n",
        "p.yml",
    )
    .expect("parses")
    .profile;
    assert!(matches!(
        positional.model_source(&positional.command, &none),
        Some(ModelSource::Directory { model, .. }) if model == "/m"
    ));
    let nameless = parse_profile(
        "services:\n  s:\n    image: img\n    command: [\"--port\", \"8000\"]\n",
        "p.yml",
    )
    .expect("parses")
    .profile;
    assert_eq!(nameless.model_source(&nameless.command, &none), None);
}
