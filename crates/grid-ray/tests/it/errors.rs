//! The client's errors name the address and the fix, for the recorded error
//! replies (served back by a one-shot local server) and for no server.

use std::time::Duration;

use grid_core::testing::check;
use grid_ray::{ClientOptions, RayClient, SubmissionId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::common::fixture;

/// Serves the recorded reply `name` to one request on 127.0.0.1.
async fn replay(name: &str) -> String {
    let (status, body) = fixture(name);
    let text = match body {
        serde_json::Value::String(text) => text,
        other => other.to_string(),
    };
    serve(vec![(status, text)]).await
}

/// Serves these replies to one request each, in order, on 127.0.0.1.
async fn serve(replies: Vec<(u16, String)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        for (status, text) in replies {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = vec![0u8; 16384];
            // Headers and a small body arrive in one read or two; enough here.
            let _ =
                tokio::time::timeout(Duration::from_millis(200), socket.read(&mut request)).await;
            let reply = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
            let _ = socket.write_all(reply.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    address
}

#[tokio::test]
async fn a_head_whose_job_agent_is_not_up_yet_is_asked_again() {
    // The reply a fresh head gave on a loaded machine (seen 2026-12-01 in the
    // workspace test run), then the recorded success.
    let busy = "No available agent to submit job, please try again later.".to_string();
    let accepted = fixture("submit-2gpu").1.to_string();
    let address = serve(vec![(500, busy.clone()), (200, accepted)]).await;
    let spec = crate::spec::a_spec("vg-fixture-2gpu");
    let id = client(&address)
        .submit(&spec)
        .await
        .expect("the second try");
    assert_eq!(id.as_str(), "vg-fixture-2gpu");

    // Past `agent_wait` the 500 is the error.
    let address = serve(vec![(500, busy)]).await;
    let options = ClientOptions {
        agent_wait: Duration::ZERO,
        ..ClientOptions::default()
    };
    let client = RayClient::new(&address, options).expect("an address");
    let error = client.submit(&spec).await.expect_err("no agent");
    assert!(error.cause().is_agent_unavailable(), "{error}");
}

fn client(address: &str) -> RayClient {
    RayClient::new(address, ClientOptions::default()).expect("an address")
}

fn id(text: &str) -> SubmissionId {
    SubmissionId::new(text).expect("an id")
}

#[tokio::test]
async fn no_dashboard_says_to_start_one() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let address = format!("http://127.0.0.1:{port}");
    let error = client(&address)
        .version()
        .await
        .expect_err("nothing listens");
    assert_eq!(
        error.to_string(),
        format!(
            "cannot reach the Ray dashboard at {address}: is `ray start --head` running, with the dashboard (ray[default]) on this address?"
        )
    );
    assert!(std::error::Error::source(&error).is_some());
}

#[tokio::test]
async fn recorded_error_replies_become_messages_with_the_cause() {
    let address = replay("status-unknown-job").await;
    let error = client(&address)
        .status(&id("vg-no-such-job"))
        .await
        .expect_err("404");
    assert_eq!(
        error.to_string(),
        format!(
            "cannot read the status of Ray job vg-no-such-job at {address}: Ray does not know it (Job vg-no-such-job does not exist)"
        )
    );
    assert!(error.cause().is_not_found());

    let address = replay("stop-unknown-job").await;
    let error = client(&address)
        .stop(&id("vg-no-such-job"))
        .await
        .expect_err("404");
    assert!(error.cause().is_not_found(), "{error}");

    let address = replay("submit-duplicate-id").await;
    let spec = crate::spec::a_spec("vg-fixture-2gpu");
    let error = client(&address).submit(&spec).await.expect_err("500");
    assert_eq!(
        error.to_string(),
        format!(
            "cannot submit job vg-fixture-2gpu to the Ray dashboard at {address}: ValueError: Job with submission_id vg-fixture-2gpu already exists. Please use a different submission_id. (a job of this unit was submitted before: adopt it rather than resubmit)"
        )
    );

    let address = replay("submit-bad-request").await;
    let error = client(&address).submit(&spec).await.expect_err("400");
    assert!(
        error.to_string().ends_with(
            "Ray refused the request: TypeError: entrypoint must be a string, got <class 'int'>"
        ),
        "{error}"
    );
}

#[tokio::test]
async fn a_reply_that_is_not_rays_is_a_decode_error() {
    // A 200 whose body is text, where JSON is expected.
    let address = replay("package-absent").await;
    let error = client(&address).list().await.expect_err("404 text");
    assert!(error.cause().is_not_found());
    let address = replay("package-put").await;
    let error = client(&address).list().await.expect_err("empty 200");
    assert!(
        error
            .to_string()
            .contains("is this a Ray 2.60-compatible dashboard"),
        "{error}"
    );
}

#[test]
fn only_plain_dashboard_addresses_are_taken() {
    let cases = [
        ("http", "http://127.0.0.1:8265", true),
        ("trailing slash", "http://127.0.0.1:8265/", true),
        ("https", "https://ray.example:443", true),
        ("no scheme", "127.0.0.1:8265", false),
        ("a path", "http://127.0.0.1:8265/api", false),
        ("ray client", "ray://127.0.0.1:10001", false),
        ("credentials", "http://u:p@127.0.0.1:8265", false),
        ("empty", "", false),
    ];
    check(&cases, |address| {
        RayClient::new(address, ClientOptions::default()).is_ok()
    });
    let error = RayClient::new("127.0.0.1:8265", ClientOptions::default()).expect_err("no scheme");
    assert!(
        error.to_string().contains("give it as http://HOST:PORT"),
        "{error}"
    );
}
