//! Issue 9 defect 4: API keys never on a command line another user can
//! read, and no expanded value in a failure.

use grid_container::{
    Backend, FailureClass, LaunchFailure, RunningServer, flag_values, parse_profile,
};
use grid_core::Secret;
use tokio_util::sync::CancellationToken;

use crate::common::*;

/// Every process whose command line contains `needle` (all processes whose
/// /proc/<pid>/cmdline this user can read: what `ps -eo args` shows).
fn command_lines_with(needle: &str) -> Vec<(u32, String)> {
    proc_files("cmdline")
        .into_iter()
        .map(|(pid, cmdline)| (pid, String::from_utf8_lossy(&cmdline).replace('\0', " ")))
        .filter(|(_, text)| text.contains(needle))
        .collect()
}

/// A key of this run only, so other tests' servers cannot confuse the check.
fn fresh_key() -> String {
    format!("sk-{}", unique("cmdline-key").replace('-', ""))
}

/// The simulator profile (which passes `--api-key ${TEST_API_KEY}` on its
/// command line, as a user's own profile might) with a fresh key.
fn spec_with_key(
    profile: &grid_container::Profile,
    name: &str,
    key: &str,
) -> grid_container::LaunchSpec {
    let mut spec = spec(profile, &unique(name), "c", &scratch_dir(name));
    spec.variables
        .insert("TEST_API_KEY".to_string(), Secret::new(key));
    spec
}

/// Checks a running server: the key is on no command line, and the server
/// requires it (it came through the environment).
async fn assert_key_only_in_environment(server: &RunningServer, key: &str) {
    let leaks = command_lines_with(key);
    assert!(leaks.is_empty(), "the key is on a command line: {leaks:?}");
    assert_eq!(
        server.endpoint().api_key.as_ref().map(|k| k.expose()),
        Some(key)
    );
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let url = format!("{}/v1/models", server.endpoint().base_url);
    let without = client.get(&url).send().await.expect("models answers");
    assert_eq!(without.status(), 401, "the server requires the key");
    let with = client
        .get(&url)
        .bearer_auth(key)
        .send()
        .await
        .expect("models answers");
    assert_eq!(with.status(), 200, "the server accepts the moved key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_on_the_command_line_moves_into_the_process_environment() {
    let key = fresh_key();
    let profile = sim_profile("unused", &[]);
    assert_eq!(
        flag_values(&profile.command, "api-key"),
        vec!["${TEST_API_KEY}".to_string()],
        "the test profile passes the key on its command line"
    );
    let backend = Backend::Process(process_backend(scratch_dir("key-pids")));
    let server = backend
        .launch(
            &profile,
            &spec_with_key(&profile, "key-process", &key),
            &CancellationToken::new(),
        )
        .await
        .expect("starts");
    let pid = server.pid().expect("a pid");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("read its environment");
    let moved = format!("VLLM_API_KEY={key}").into_bytes();
    let in_environment = environ.split(|b| *b == 0).any(|v| v == moved.as_slice());
    assert_key_only_in_environment(&server, &key).await;
    let log_path = server.log_path().to_path_buf();
    server.teardown().await.expect("teardown");
    assert!(in_environment, "the server got the key as VLLM_API_KEY");
    let log = std::fs::read_to_string(&log_path).expect("container.log");
    assert!(!log.contains(&key), "the key is in {}", log_path.display());
    assert!(
        log.contains("passed to the server in VLLM_API_KEY"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_on_the_command_line_stays_out_of_the_containers_cmd() {
    let key = fresh_key();
    let docker = docker().await;
    let profile = sim_profile(&unique("gc-key"), &[]);
    let spec = spec_with_key(&profile, "key-docker", &key);
    let run_id = spec.run_id.clone();
    let backend = Backend::Docker(docker);
    let server = backend
        .launch(&profile, &spec, &CancellationToken::new())
        .await
        .expect("starts");
    let Backend::Docker(docker) = &backend else {
        unreachable!()
    };
    let config = docker
        .client()
        .inspect_container(server.container_id().expect("an id"), None)
        .await
        .expect("inspect")
        .config
        .expect("a config");
    // The host's process list shows the container's processes too.
    assert_key_only_in_environment(&server, &key).await;
    server.teardown().await.expect("teardown");
    remove_run(docker, &run_id).await;
    let cmd = config.cmd.unwrap_or_default();
    let entrypoint = config.entrypoint.unwrap_or_default();
    assert!(
        !cmd.iter()
            .chain(entrypoint.iter())
            .any(|t| t.contains(&key)),
        "docker inspect shows the key in Cmd: {cmd:?}"
    );
    assert!(
        !cmd.iter().any(|t| t.starts_with("--api-key")),
        "no --api-key in Cmd: {cmd:?}"
    );
    assert!(
        config
            .env
            .unwrap_or_default()
            .contains(&format!("VLLM_API_KEY={key}")),
        "the key is in the container's Env"
    );
}

/// Everything the failure carries, as it would reach a results file.
fn failure_text(failure: &LaunchFailure) -> String {
    let mut text = format!("{failure} {:?}", failure.log_tail);
    let mut source = std::error::Error::source(failure);
    while let Some(cause) = source {
        text.push_str(&format!(" / {cause}"));
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn a_failure_quoting_an_expanded_value_is_redacted() {
    // An image name and a port that come from the environment, both quoted
    // by the failures they cause.
    let image = format!("vllm-grid-secret-image-{}:never", std::process::id());
    let yaml = "services:\n  s:\n    image: ${TEST_SECRET_IMAGE}\n    command: [--model, m]\n";
    let profile = parse_profile(yaml, "inline").expect("parses").profile;
    let mut first = spec(&profile, &unique("redact"), "c", &scratch_dir("redact"));
    first
        .variables
        .insert("TEST_SECRET_IMAGE".to_string(), Secret::new(&image));
    let backend = Backend::Docker(docker().await);
    let failure = backend
        .launch(&profile, &first, &CancellationToken::new())
        .await
        .expect_err("no such image");
    assert_eq!(failure.class, FailureClass::MissingImage, "{failure}");
    let text = failure_text(&failure);
    assert!(!text.contains(&image), "the expanded image leaked: {text}");
    assert!(text.contains("***"), "{text}");

    let port = "notaportsecretvalue";
    let yaml = "services:\n  s:\n    image: i\n    command: [--model, m]\n    ports: ['127.0.0.1:${TEST_SECRET_PORT}:8000']\nx-vllm-grid:\n  process:\n    entrypoint: [vllm-sim, serve]\n";
    let profile = parse_profile(yaml, "inline").expect("parses").profile;
    let mut second = spec(
        &profile,
        &unique("redact-port"),
        "c",
        &scratch_dir("redact-port"),
    );
    second
        .variables
        .insert("TEST_SECRET_PORT".to_string(), Secret::new(port));
    let backend = Backend::Process(process_backend(scratch_dir("redact-pids")));
    let failure = backend
        .launch(&profile, &second, &CancellationToken::new())
        .await
        .expect_err("not a port");
    assert_eq!(failure.class, FailureClass::InvalidProfile, "{failure}");
    let text = failure_text(&failure);
    assert!(!text.contains(port), "the expanded port leaked: {text}");
    assert!(text.contains("not a port number"), "{text}");
}

#[test]
fn a_key_on_the_command_line_is_moved_and_warned_about_by_line() {
    let yaml = "services:\n  s:\n    image: i\n    command:\n      - --model\n      - m\n      - --api-key=${KEY}\n    environment:\n      VLLM_API_KEY: ${OLD}\n";
    let loaded = parse_profile(yaml, "inline").expect("parses");
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.contains("line 7") && w.contains("VLLM_API_KEY")),
        "{:?}",
        loaded.warnings
    );
    let lookup = |name: &str| match name {
        "KEY" => Some("cli-key-value".to_string()),
        "OLD" => Some("env-key-value".to_string()),
        _ => None,
    };
    let resolved = loaded.profile.resolve(&lookup).expect("resolves");
    assert_eq!(resolved.command, vec!["--model", "m"]);
    // The flag took precedence over the variable in vLLM, so it still does.
    let keys: Vec<&str> = resolved
        .environment
        .iter()
        .filter(|(name, _)| name == "VLLM_API_KEY")
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(keys, vec!["cli-key-value"]);
    assert!(resolved.api_key_moved);

    // Several keys cannot all move into one variable: refused, by line.
    let several = "services:\n  s:\n    image: i\n    command: [--model, m, --api-key, a, b]\n";
    let error = parse_profile(several, "inline").expect_err("several keys");
    assert!(
        error.to_string().contains("line 4") && error.to_string().contains("keep one"),
        "{error}"
    );
}
