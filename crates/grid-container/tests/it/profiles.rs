//! Parsing compose profiles: supported keys, warnings, interpolation.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use grid_container::{
    EnvEntry, FailureClass, ProfileError, ProfileOptions, ResolveError, load_profile,
    parse_profile, parse_profile_with,
};

fn repo_profile(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../profiles")
        .join(name)
}

#[test]
fn medium_profile_is_the_studys_service() {
    let loaded = load_profile(&repo_profile("medium.yml")).expect("medium.yml loads");
    assert!(
        loaded.warnings.is_empty(),
        "warnings: {:?}",
        loaded.warnings
    );
    let profile = loaded.profile;
    assert_eq!(profile.image, "vllm/vllm-openai:latest");
    assert_eq!(profile.container_name.as_deref(), Some("medium-qwen3"));
    assert_eq!(
        profile.served_model_name().as_deref(),
        Some("Qwen/Qwen3-32B-AWQ")
    );
    assert_eq!(profile.endpoint_port(), Some(5002));
    assert_eq!(profile.ports, vec!["127.0.0.1:5002:8000".to_string()]);
    assert_eq!(profile.ipc.as_deref(), Some("host"));
    assert_eq!(profile.gpus.len(), 1);
    assert_eq!(profile.gpus[0].count, Some(2));
    assert_eq!(profile.gpus[0].driver, "nvidia");
    assert_eq!(profile.gpus[0].capabilities, vec!["gpu".to_string()]);
    assert!(
        profile
            .volumes
            .iter()
            .any(|v| v.ends_with(":/root/.cache/huggingface"))
    );
    assert!(
        profile
            .volumes
            .iter()
            .any(|v| v.ends_with(":/root/.cache/vllm"))
    );
    let expected: BTreeSet<String> = ["VLLM_MEDIUM_API_KEY".to_string()].into();
    assert_eq!(profile.referenced_variables(), expected);
    for pair in [
        ["--tensor-parallel-size", "2"],
        ["--tool-call-parser", "hermes"],
        ["--reasoning-parser", "qwen3"],
        ["--kv-cache-dtype", "fp8"],
        ["--max-model-len", "131072"],
        ["--quantization", "awq_marlin"],
    ] {
        assert!(
            profile.command.windows(2).any(|w| w == pair),
            "medium.yml lacks {pair:?}"
        );
    }
    assert!(
        profile
            .command
            .contains(&"--enable-auto-tool-choice".to_string())
    );
    // Issue 9: the key is in the environment, never on the command line.
    assert!(
        profile.environment.contains(&EnvEntry {
            name: "VLLM_API_KEY".to_string(),
            value: Some("${VLLM_MEDIUM_API_KEY}".to_string()),
        }),
        "{:?}",
        profile.environment
    );
    assert!(
        grid_container::flag_values(&profile.command, "api-key").is_empty(),
        "{:?}",
        profile.command
    );
}

#[test]
fn sim_profile_is_the_same_service_on_the_simulator() {
    let loaded = load_profile(&repo_profile("sim.yml")).expect("sim.yml loads");
    assert!(
        loaded.warnings.is_empty(),
        "warnings: {:?}",
        loaded.warnings
    );
    let sim = loaded.profile;
    let medium = load_profile(&repo_profile("medium.yml"))
        .expect("medium.yml loads")
        .profile;
    assert_eq!(sim.image, "vllm-sim:latest");
    assert_eq!(
        sim.process.entrypoint,
        Some(vec!["vllm-sim".to_string(), "serve".to_string()])
    );
    // Every vLLM token of the study's command is in the simulator's command.
    let sim_vllm: Vec<&String> = {
        let mut tokens = Vec::new();
        let mut skip_next = false;
        for token in &sim.command {
            if skip_next {
                skip_next = false;
                continue;
            }
            if token.starts_with("--sim-") {
                skip_next = true;
                continue;
            }
            tokens.push(token);
        }
        tokens
    };
    let medium_without_listen: Vec<&String> = {
        let mut tokens = Vec::new();
        let mut iter = medium.command.iter();
        while let Some(token) = iter.next() {
            if token == "--host" || token == "--port" {
                iter.next();
                continue;
            }
            tokens.push(token);
        }
        tokens
    };
    assert_eq!(sim_vllm, medium_without_listen);
}

#[track_caller]
fn check_warning(yaml: &str, expected_key: &str) {
    let loaded = parse_profile(yaml, "inline").unwrap_or_else(|e| panic!("{yaml}: {e}"));
    assert!(
        loaded.warnings.iter().any(|w| w.contains(expected_key)),
        "expected a warning naming `{expected_key}` for\n{yaml}\ngot {:?}",
        loaded.warnings
    );
}

#[test]
fn unsupported_keys_are_warned_by_name() {
    let cases = [
        (
            "services:\n  s:\n    image: i\n    cap_add: [SYS_ADMIN]\n",
            "services.s.cap_add",
        ),
        (
            "services:\n  s:\n    image: i\n    restart: unless-stopped\n",
            "services.s.restart",
        ),
        ("version: '3.8'\nservices:\n  s:\n    image: i\n", "version"),
        (
            "services:\n  s:\n    image: i\nnetworks:\n  n: {}\n",
            "networks",
        ),
        (
            "services:\n  s:\n    image: i\n    deploy:\n      replicas: 2\n",
            "services.s.deploy.replicas",
        ),
        (
            "services:\n  s:\n    image: i\n    deploy:\n      resources:\n        limits:\n          memory: 1g\n",
            "services.s.deploy.resources.limits",
        ),
        (
            "services:\n  s:\n    image: i\n    healthcheck:\n      test: [CMD, true]\n      bogus: 1\n",
            "healthcheck.bogus",
        ),
        (
            "services:\n  s:\n    image: i\nx-vllm-grid:\n  colour: blue\n",
            "x-vllm-grid.colour",
        ),
    ];
    for (yaml, key) in cases {
        check_warning(yaml, key);
    }
}

#[test]
fn supported_keys_are_read() {
    let yaml = r#"
services:
  server:
    image: "${IMAGE:-vllm/vllm-openai:v0.11.0}"
    container_name: my-server
    entrypoint: python3 -m vllm.entrypoints.openai.api_server
    command: --model "my model" --port 9000 --served-model-name served
    environment:
      - HF_TOKEN
      - VLLM_LOGGING_LEVEL=DEBUG
    ports:
      - target: 9000
        published: 6000
        host_ip: 127.0.0.1
      - "7000"
    volumes:
      - hf:/root/.cache/huggingface
      - type: bind
        source: ./models
        target: /models
        read_only: true
    ipc: host
    shm_size: 16g
    runtime: nvidia
    network_mode: bridge
    ulimits:
      memlock: -1
      nofile: {soft: 1024, hard: 2048}
    labels:
      team: ml
    healthcheck:
      test: curl -f http://localhost:9000/health
      interval: 1m30s
      timeout: 500ms
      retries: 3
    gpus: all
    x-note: kept
volumes:
  hf: {}
"#;
    let loaded = parse_profile(yaml, "inline").expect("parses");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let p = loaded.profile;
    assert_eq!(p.image, "${IMAGE:-vllm/vllm-openai:v0.11.0}");
    assert_eq!(
        p.entrypoint.as_deref(),
        Some(&["python3", "-m", "vllm.entrypoints.openai.api_server"].map(String::from)[..])
    );
    assert_eq!(p.command[1], "my model");
    assert_eq!(p.served_model_name().as_deref(), Some("served"));
    assert_eq!(p.server_port(), 9000);
    assert_eq!(p.endpoint_port(), Some(6000));
    assert_eq!(p.environment.len(), 2);
    assert_eq!(p.environment[0].value, None);
    assert_eq!(
        p.ports,
        vec!["127.0.0.1:6000:9000".to_string(), "7000".to_string()]
    );
    assert_eq!(p.volumes[1], "./models:/models:ro");
    assert_eq!(p.shm_size, Some(16 * 1024 * 1024 * 1024));
    assert_eq!(p.runtime.as_deref(), Some("nvidia"));
    assert_eq!(p.ulimits.len(), 2);
    assert_eq!(
        p.ulimits
            .iter()
            .find(|u| u.name == "nofile")
            .map(|u| (u.soft, u.hard)),
        Some((1024, 2048))
    );
    assert_eq!(p.labels.get("team").map(String::as_str), Some("ml"));
    let health = p.healthcheck.as_ref().expect("healthcheck");
    assert_eq!(health.test[0], "CMD-SHELL");
    assert_eq!(health.interval, Some(Duration::from_secs(90)));
    assert_eq!(health.timeout, Some(Duration::from_millis(500)));
    assert_eq!(p.gpus[0].count, Some(-1));
    assert!(p.extensions.contains_key("x-note"));
    assert!(p.named_volumes.contains("hf"));
    let names = p.referenced_variables();
    assert!(
        names.contains("IMAGE") && names.contains("HF_TOKEN"),
        "{names:?}"
    );

    // Resolution: defaults apply, `./` is relative to the profile's directory.
    let lookup = |name: &str| (name == "HOME").then(|| "/home/u".to_string());
    let resolved = p.resolve(&lookup).expect("resolves");
    assert_eq!(resolved.image, "vllm/vllm-openai:v0.11.0");
    assert!(
        resolved.binds[1].ends_with("/models:/models:ro") && resolved.binds[1].starts_with('/'),
        "{:?}",
        resolved.binds
    );
    assert_eq!(resolved.binds[0], "hf:/root/.cache/huggingface");
    // An unset pass-through variable is left out, as compose does.
    assert!(resolved.environment.iter().all(|(k, _)| k != "HF_TOKEN"));
}

#[test]
fn gpu_device_ids_and_conflicts() {
    let yaml = "services:\n  s:\n    image: i\n    deploy:\n      resources:\n        reservations:\n          devices:\n            - driver: nvidia\n              device_ids: ['0', '3']\n              capabilities: [gpu, utility]\n";
    let p = parse_profile(yaml, "inline").expect("parses").profile;
    assert_eq!(p.gpus[0].device_ids, vec!["0".to_string(), "3".to_string()]);
    assert_eq!(p.gpus[0].count, None);
    assert_eq!(
        p.gpus[0].capabilities,
        vec!["gpu".to_string(), "utility".to_string()]
    );
    let both = "services:\n  s:\n    image: i\n    deploy:\n      resources:\n        reservations:\n          devices:\n            - count: 1\n              device_ids: ['0']\n";
    assert!(matches!(
        parse_profile(both, "inline"),
        Err(ProfileError::InvalidValue { .. })
    ));
}

#[test]
fn bad_profiles_are_refused_with_the_reason() {
    let cases: &[(&str, &str)] = &[
        ("just text", "services"),
        ("services:\n  s:\n    command: [x]\n", "image"),
        (
            "services:\n  s:\n    image: i\n    ports: ['127.0.0.1:70000:8000']\n",
            "not a port number",
        ),
        (
            "services:\n  s:\n    image: i\n    ports: ['5000-5005:8000']\n",
            "ranges",
        ),
        (
            "services:\n  s:\n    image: i\n    shm_size: lots\n",
            "not a size",
        ),
        (
            "services:\n  s:\n    image: i\n    command: [--api-key, '${KEY']\n",
            "unterminated",
        ),
        (
            "services:\n  s:\n    image: i\n    command: \"--model 'open\"\n",
            "unterminated single quote",
        ),
        (
            "services:\n  a:\n    image: i\n  b:\n    image: j\n",
            "choose one",
        ),
        ("services:\n  s:\n    image: [i]\n", "string"),
        ("services: [1]\n", "mapping"),
        ("services:\n  s:\n    image: i\n  s2: {image: [x\n", "YAML"),
    ];
    for (yaml, expected) in cases {
        match parse_profile(yaml, "inline") {
            Ok(loaded) => panic!("{yaml:?} was accepted: {:?}", loaded.profile),
            Err(error) => {
                let text = format!(
                    "{error} {:?}",
                    std::error::Error::source(&error).map(|s| s.to_string())
                );
                assert!(
                    text.contains(expected),
                    "{yaml:?}: `{text}` should mention `{expected}`"
                );
            }
        }
    }
}

#[test]
fn a_service_is_picked_by_name() {
    let yaml = "services:\n  a:\n    image: ia\n  b:\n    image: ib\n";
    let options = ProfileOptions {
        service: Some("b".to_string()),
    };
    assert_eq!(
        parse_profile_with(yaml, "inline", &options)
            .expect("b exists")
            .profile
            .image,
        "ib"
    );
    let missing = ProfileOptions {
        service: Some("c".to_string()),
    };
    assert!(matches!(
        parse_profile_with(yaml, "inline", &missing),
        Err(ProfileError::ServiceNotFound { .. })
    ));
}

#[test]
fn unset_variables_are_named_and_secrets_collected() {
    let yaml = "services:\n  s:\n    image: i\n    command: [--api-key, '${KEY}', --model, '${MODEL:-m}', --x, '${SHORT}', --y, '${NEEDED:?set NEEDED to the thing}']\n    environment:\n      TOKEN: ${TOKEN}\n";
    let p = parse_profile(yaml, "inline").expect("parses").profile;
    let none = |_: &str| None;
    match p.resolve(&none) {
        Err(ResolveError::MissingVariables { variables, .. }) => {
            let names: Vec<&str> = variables.iter().map(|v| v.name.as_str()).collect();
            assert_eq!(names, vec!["KEY", "SHORT", "NEEDED", "TOKEN"]);
            assert!(variables[2].reason.contains("set NEEDED to the thing"));
        }
        other => panic!("expected missing variables, got {:?}", other.map(|_| ())),
    }
    let error = p
        .resolve(&none)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        error.contains("KEY") && error.contains("nothing was started") && error.contains("export"),
        "{error}"
    );
    let lookup = |name: &str| match name {
        "KEY" => Some("k3y-value-123".to_string()),
        "SHORT" => Some("abc".to_string()),
        "NEEDED" => Some("needed-value".to_string()),
        "TOKEN" => Some("tok-value-456".to_string()),
        _ => None,
    };
    let resolved = p.resolve(&lookup).expect("resolves");
    assert_eq!(
        resolved.api_key.as_ref().map(|k| k.expose()),
        Some("k3y-value-123")
    );
    assert_eq!(format!("{:?}", resolved.api_key), "Some(***)");
    let line = "args: {'api_key': ['k3y-value-123'], 'x': 'abc', 'y': 'needed-value', token=tok-value-456 model=m}";
    assert_eq!(
        resolved.redactor.redact(line),
        "args: {'api_key': ['***'], 'x': 'abc', 'y': '***', token=*** model=m}"
    );
    // Missing variables are their own failure class.
    assert!(
        FailureClass::MissingSecret
            .to_string()
            .contains("missing secret")
    );
}

#[test]
fn interpolation_forms() {
    let yaml = "services:\n  s:\n    image: i\n    command: ['a$$b', '${E-unset}', '${E:-empty}', '${V:+alt}', '$V/x', 'c$']\n";
    let p = parse_profile(yaml, "inline").expect("parses").profile;
    let lookup = |name: &str| match name {
        "E" => Some(String::new()),
        "V" => Some("value".to_string()),
        _ => None,
    };
    let resolved = p.resolve(&lookup).expect("resolves");
    assert_eq!(
        resolved.command,
        vec!["a$b", "", "empty", "alt", "value/x", "c$"]
    );
}

/// The error and its causes, as the CLI prints them.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(" / {cause}"));
        source = cause.source();
    }
    text
}

/// Issue 9 defect 7: durations become bounded `Duration`s when the profile
/// is read; an infinite or huge one is refused naming the key, never a panic.
#[test]
fn durations_out_of_bounds_are_refused_naming_the_key() {
    let cases: &[(&str, &str, bool)] = &[
        ("infinite by overflow", "1e400", true),
        ("infinite", "inf", true),
        ("not a number", "nan", true),
        ("negative", "-5s", true),
        ("longer than a day", "25h", true),
        ("in bounds", "1m30s", false),
    ];
    grid_core::testing::check(cases, |text| {
        let yaml = format!(
            "services:\n  s:\n    image: i\n    healthcheck:\n      test: [CMD, 'true']\n      interval: '{text}'\n"
        );
        match parse_profile(&yaml, "inline") {
            Ok(_) => false,
            Err(error) => {
                let text = chain(&error);
                assert!(
                    text.contains("services.s.healthcheck.interval"),
                    "the key is named: {text}"
                );
                true
            }
        }
    });
    assert!(matches!(
        grid_container::parse_duration("1e400"),
        Err(grid_container::DurationError::TooLong { .. })
    ));
}

/// Issue 9 defect 8: a `--port` the server cannot listen on is refused,
/// naming the line and the fix, instead of silently becoming 8000.
#[test]
fn a_bad_port_flag_is_refused_naming_the_line() {
    let yaml = "services:\n  s:\n    image: i\n    command:\n      - --model\n      - m\n      - --port\n      - eighty\n";
    let error = parse_profile(yaml, "inline").expect_err("a bad --port");
    let text = chain(&error);
    assert!(
        text.contains("line 7") && text.contains("--port eighty") && text.contains("--port 8000"),
        "{text}"
    );
    for bad in ["0", "65536", "-1"] {
        let yaml = format!("services:\n  s:\n    image: i\n    command: [--port={bad}]\n");
        assert!(parse_profile(&yaml, "inline").is_err(), "--port={bad}");
    }
    // A reference is checked once expanded, at launch.
    let yaml = "services:\n  s:\n    image: i\n    command: [--port, '${PORT}']\n";
    let profile = parse_profile(yaml, "inline")
        .expect("a reference parses")
        .profile;
    let lookup = |name: &str| (name == "PORT").then(|| "http".to_string());
    match profile.resolve(&lookup) {
        Err(error @ ResolveError::ServerPort { .. }) => {
            assert!(chain(&error).contains("--port 8000"), "{}", chain(&error));
        }
        other => panic!(
            "expected a bad port, got {:?}",
            other.map(|r| r.server_port)
        ),
    }
    let lookup = |name: &str| (name == "PORT").then(|| "9100".to_string());
    assert_eq!(
        profile.resolve(&lookup).expect("resolves").server_port,
        9100
    );
}

/// Issue 9 defect 8: a file with several services names them and the
/// option that chooses one, which exists (`--service NAME`).
#[test]
fn several_services_name_the_service_option() {
    use grid_container::{Profile, ServiceChoice};
    let yaml = "services:\n  a:\n    image: ia\n  b:\n    image: ib\n";
    let error = Profile::parse(yaml, "inline", &ServiceChoice::Only).expect_err("ambiguous");
    let text = error.to_string();
    assert!(
        text.contains("--service NAME") && text.contains("\"a\"") && text.contains("\"b\""),
        "{text}"
    );
    let chosen = Profile::parse(yaml, "inline", &ServiceChoice::Named("b".into()))
        .expect("b exists")
        .profile;
    assert_eq!(chosen.image, "ib");
    let error = Profile::parse(yaml, "inline", &ServiceChoice::Named("c".into()))
        .expect_err("no service c");
    assert!(error.to_string().contains("--service NAME"), "{error}");
}
