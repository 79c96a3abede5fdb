//! The probe: a working endpoint passes; every kind of broken one fails
//! fast with its typed reason.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use grid_bench::client::FailureKind;
use grid_bench::{ProbeConfig, ProbeError, probe};
use grid_core::Secret;

use crate::fakes::{self, endpoint, serve};
use crate::{check, sim};

/// A short name for a probe's outcome.
fn verdict(result: &Result<grid_bench::ProbeReport, ProbeError>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(ProbeError::ConnectionRefused { .. }) => "connection_refused".into(),
        Err(ProbeError::Connect { .. }) => "connect".into(),
        Err(ProbeError::Timeout { .. }) => "timeout".into(),
        Err(ProbeError::Unauthorized { status, .. }) => format!("unauthorized {status}"),
        Err(ProbeError::HtmlPage { .. }) => "html_page".into(),
        Err(ProbeError::HttpStatus { status, .. }) => format!("http {status}"),
        Err(ProbeError::NotAModelList { .. }) => "not_a_model_list".into(),
        Err(ProbeError::UnknownModel { .. }) => "unknown_model".into(),
        Err(ProbeError::Chat { failure, .. }) => format!("chat {}", failure.kind),
        Err(ProbeError::Client { .. }) => "client".into(),
    }
}

#[tokio::test]
async fn each_broken_endpoint_fails_the_probe_fast_with_its_reason() {
    let config = ProbeConfig {
        request_timeout: Duration::from_secs(2),
        ..ProbeConfig::default()
    };
    let server = sim(&["tiny", "--api-key", "k", "--sim-time-scale", "0.01"]).await;
    let sim_endpoint = |model: &str, key: Option<&str>| grid_bench::Endpoint {
        base_url: server.base_url(),
        model: model.to_string(),
        api_key: key.map(Secret::new),
    };
    let endpoints: Vec<(&str, grid_bench::Endpoint)> = vec![
        ("simulator", sim_endpoint("tiny", Some("k"))),
        ("wrong key", sim_endpoint("tiny", Some("wrong"))),
        ("unknown model", sim_endpoint("nope", Some("k"))),
        ("closed port", endpoint(&fakes::closed_port_url())),
        ("html page", endpoint(&serve(fakes::html_page()).await)),
        (
            "malformed sse",
            endpoint(&serve(fakes::malformed_sse()).await),
        ),
        (
            "keep-alives only",
            endpoint(&serve(fakes::keep_alive_only()).await),
        ),
        (
            "50 MiB event",
            endpoint(&serve(fakes::one_huge_event(50 << 20)).await),
        ),
        (
            "gateway without prompt_tokens",
            endpoint(&serve(fakes::gateway_without_prompt_tokens()).await),
        ),
    ];
    let mut results = BTreeMap::new();
    for (name, endpoint) in &endpoints {
        let started = Instant::now();
        let result = probe(endpoint, &config).await;
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_secs(5),
            "{name}: the probe took {elapsed:?}"
        );
        results.insert(*name, result);
    }
    let cases: Vec<(&str, &str, String)> = vec![
        ("simulator", "simulator", "ok".to_string()),
        ("wrong key", "wrong key", "unauthorized 401".to_string()),
        (
            "unknown model",
            "unknown model",
            "unknown_model".to_string(),
        ),
        (
            "closed port",
            "closed port",
            "connection_refused".to_string(),
        ),
        ("html page", "html page", "html_page".to_string()),
        (
            "malformed sse",
            "malformed sse",
            "chat malformed_event".to_string(),
        ),
        (
            "keep-alives only",
            "keep-alives only",
            "chat idle_timeout".to_string(),
        ),
        (
            "50 MiB event",
            "50 MiB event",
            "chat oversized_event".to_string(),
        ),
        (
            "gateway without prompt_tokens",
            "gateway without prompt_tokens",
            "ok".to_string(),
        ),
    ];
    check(&cases, |name| verdict(&results[name]));

    let message = |name: &str| {
        results[name]
            .as_ref()
            .err()
            .map_or_else(String::new, ToString::to_string)
    };
    assert!(
        message("unknown model").contains("it serves \"tiny\""),
        "{}",
        message("unknown model")
    );
    assert!(
        message("closed port").contains("connection was refused"),
        "{}",
        message("closed port")
    );
    assert!(
        !message("wrong key").contains("wrong"),
        "no key in the message: {}",
        message("wrong key")
    );
    match &results["simulator"] {
        Ok(report) => {
            assert_eq!(report.models, vec!["tiny".to_string()]);
            assert!(report.ttft_ms.is_some() && report.token_counts_complete);
        }
        Err(error) => panic!("the simulator failed the probe: {error}"),
    }
    match &results["gateway without prompt_tokens"] {
        Ok(report) => assert!(!report.token_counts_complete),
        Err(error) => panic!("the gateway failed the probe: {error}"),
    }
    match &results["keep-alives only"] {
        Err(ProbeError::Chat { failure, .. }) => {
            assert_eq!(failure.kind, FailureKind::IdleTimeout)
        }
        other => panic!("{other:?}"),
    }
}
