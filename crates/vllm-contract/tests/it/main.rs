//! Runs the contract checks against the in-process simulator, and also
//! against a real server when `VLLM_CONTRACT_BASE_URL` is set:
//!
//! ```text
//! VLLM_CONTRACT_BASE_URL=http://127.0.0.1:8000 VLLM_CONTRACT_MODEL=tiny \
//! VLLM_CONTRACT_API_KEY=... VLLM_CONTRACT_FEATURES=prompt_tokens_details,reasoning_parser \
//! VLLM_CONTRACT_MAX_MODEL_LEN=4096 cargo test -p vllm-contract
//! ```

use vllm_contract::{ServerFeatures, Target, failures, run_all};
use vllm_sim::TestServer;

async fn sim(args: &[&str]) -> TestServer {
    TestServer::start_args(args)
        .await
        .unwrap_or_else(|e| panic!("simulator did not start with {args:?}: {e:?}"))
}

fn check(server: &TestServer, key: Option<&str>) -> Target {
    Target {
        base_url: server.base_url(),
        model: "tiny".into(),
        api_key: key.map(str::to_owned),
    }
}

#[tokio::test]
async fn simulator_meets_the_contract_with_details_and_key() {
    let server = sim(&[
        "tiny",
        "--api-key",
        "sk-contract",
        "--enable-prompt-tokens-details",
        "--max-model-len",
        "4096",
        "--sim-time-scale",
        "0.01",
    ])
    .await;
    let features = ServerFeatures {
        prompt_tokens_details: true,
        max_model_len: Some(4096),
        ..ServerFeatures::default()
    };
    let results = run_all(&check(&server, Some("sk-contract")), &features).await;
    assert!(results.iter().any(|r| r.name == "unauthorized_body"));
    let f = failures(&results);
    assert!(f.is_empty(), "{f}");
}

#[tokio::test]
async fn simulator_meets_the_contract_with_parsers() {
    let server = sim(&[
        "tiny",
        "--reasoning-parser",
        "qwen3",
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        "hermes",
        "--sim-time-scale",
        "0.01",
    ])
    .await;
    let features = ServerFeatures {
        reasoning_parser: true,
        auto_tool_choice: true,
        ..ServerFeatures::default()
    };
    let results = run_all(&check(&server, None), &features).await;
    assert!(results.iter().any(|r| r.name == "reasoning_fields"));
    let f = failures(&results);
    assert!(f.is_empty(), "{f}");
}

#[tokio::test]
async fn checks_catch_a_server_that_breaks_the_contract() {
    // A parser mismatch server: reasoning tags leak, so the reasoning check
    // must fail (the checks can fail).
    let server = sim(&["tiny", "--sim-thinking", "on", "--sim-time-scale", "0.01"]).await;
    let features = ServerFeatures {
        reasoning_parser: true,
        ..ServerFeatures::default()
    };
    let results = run_all(&check(&server, None), &features).await;
    let reasoning = results
        .iter()
        .find(|r| r.name == "reasoning_fields")
        .expect("ran");
    assert!(reasoning.outcome.is_err());
}

/// The `logit_bias` of the file named by `VLLM_CONTRACT_TOOL_LOGIT_BIAS_FILE`
/// (written by scripts/setup-real-vllm.sh next to the tiny model).
fn tool_call_logit_bias() -> Option<serde_json::Value> {
    let path = std::env::var("VLLM_CONTRACT_TOOL_LOGIT_BIAS_FILE")
        .ok()
        .filter(|p| !p.is_empty())?;
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("cannot read VLLM_CONTRACT_TOOL_LOGIT_BIAS_FILE {path}: {e}; run scripts/setup-real-vllm.sh or unset the variable")
    });
    let bias: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!("VLLM_CONTRACT_TOOL_LOGIT_BIAS_FILE {path} is not JSON: {e}; expected an object of token id -> bias")
    });
    assert!(
        bias.is_object(),
        "VLLM_CONTRACT_TOOL_LOGIT_BIAS_FILE {path} must hold a JSON object of token id -> bias"
    );
    Some(bias)
}

#[tokio::test]
async fn simulator_meets_the_contract_without_prefix_caching() {
    // The counters must not move, and the harness's logit_bias shape (string
    // token ids) must be accepted.
    let server = sim(&[
        "tiny",
        "--no-enable-prefix-caching",
        "--enable-prompt-tokens-details",
        "--sim-time-scale",
        "0.01",
    ])
    .await;
    let features = ServerFeatures {
        prompt_tokens_details: true,
        prefix_caching_disabled: true,
        tool_call_logit_bias: Some(serde_json::json!({"220": -100, "198": -100})),
        ..ServerFeatures::default()
    };
    let results = run_all(&check(&server, None), &features).await;
    assert!(results.iter().any(|r| r.name == "prefix_cache_counters"));
    let f = failures(&results);
    assert!(f.is_empty(), "{f}");
}

#[tokio::test]
async fn prefix_cache_check_catches_counters_that_move_with_caching_off() {
    // A server with caching ON described as caching OFF must fail the check.
    let server = sim(&["tiny", "--sim-time-scale", "0.01"]).await;
    let features = ServerFeatures {
        prefix_caching_disabled: true,
        ..ServerFeatures::default()
    };
    let results = run_all(&check(&server, None), &features).await;
    let r = results
        .iter()
        .find(|r| r.name == "prefix_cache_counters")
        .expect("ran");
    assert!(r.outcome.is_err(), "{:?}", r.outcome);
}

#[tokio::test]
async fn reasoning_check_rejects_the_old_reasoning_content_mirror() {
    // 0.32 sends `reasoning` only: a server mirroring `reasoning_content`
    // (the simulator's explicit `both`) fails the check.
    let server = sim(&[
        "tiny",
        "--reasoning-parser",
        "qwen3",
        "--sim-reasoning-field",
        "both",
        "--sim-time-scale",
        "0.01",
    ])
    .await;
    let features = ServerFeatures {
        reasoning_parser: true,
        ..ServerFeatures::default()
    };
    let results = run_all(&check(&server, None), &features).await;
    let r = results
        .iter()
        .find(|r| r.name == "reasoning_fields")
        .expect("ran");
    assert!(r.outcome.is_err(), "{:?}", r.outcome);
}

#[tokio::test]
async fn real_server_meets_the_contract_when_configured() {
    // Runs against a real `vllm serve` when VLLM_CONTRACT_BASE_URL is set;
    // otherwise this checks the environment parsing against the simulator.
    let (target, features, _guard) = match std::env::var("VLLM_CONTRACT_BASE_URL") {
        Ok(url) if !url.is_empty() => {
            let flags = std::env::var("VLLM_CONTRACT_FEATURES").unwrap_or_default();
            let features = ServerFeatures {
                prompt_tokens_details: flags.contains("prompt_tokens_details"),
                reasoning_parser: flags.contains("reasoning_parser"),
                auto_tool_choice: flags.contains("auto_tool_choice"),
                max_model_len: std::env::var("VLLM_CONTRACT_MAX_MODEL_LEN")
                    .ok()
                    .and_then(|v| v.parse().ok()),
                prefix_caching_disabled: flags.contains("no_prefix_caching"),
                tool_call_logit_bias: tool_call_logit_bias(),
            };
            let target = Target {
                base_url: url,
                model: std::env::var("VLLM_CONTRACT_MODEL").unwrap_or_else(|_| "tiny".into()),
                api_key: std::env::var("VLLM_CONTRACT_API_KEY")
                    .ok()
                    .filter(|k| !k.is_empty()),
            };
            (target, features, None)
        }
        _ => {
            let server = sim(&[
                "tiny",
                "--max-model-len",
                "2048",
                "--sim-time-scale",
                "0.01",
            ])
            .await;
            let target = check(&server, None);
            let features = ServerFeatures {
                max_model_len: Some(2048),
                ..ServerFeatures::default()
            };
            (target, features, Some(server))
        }
    };
    let results = run_all(&target, &features).await;
    let f = failures(&results);
    assert!(f.is_empty(), "{target:?}\n{f}");
}

#[tokio::test]
async fn a_closed_port_fails_every_check_with_its_cause() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let target = Target {
        base_url: format!("http://127.0.0.1:{port}"),
        model: "tiny".into(),
        api_key: None,
    };
    let results = run_all(&target, &ServerFeatures::default()).await;
    assert!(results.iter().all(|r| r.outcome.is_err()), "{results:?}");
    let f = failures(&results);
    assert!(
        f.contains(&format!(
            "health_and_metrics_need_no_key: health_and_metrics_need_no_key: request to http://127.0.0.1:{port}/health failed: "
        )),
        "{f}"
    );
    // The cause (reqwest's, then the OS's) follows the message.
    let first = f.lines().next().unwrap_or("");
    assert!(first.matches(": ").count() >= 3, "{first}");
}
