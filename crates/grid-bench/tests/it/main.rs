//! Integration tests of grid-bench. Tabular cases go through `check`, which
//! runs every case and reports all mismatches at once.

mod accuracy;
mod bad_replies;
mod battery;
mod config;
mod gpu;
mod grading;
mod kv_cache;
mod metrics;
mod schema;
mod sse;
mod stats;
mod tools;

use std::fmt::Debug;
use std::path::PathBuf;

/// Runs `actual` on each case's input and compares with the expectation.
pub fn check<I: Debug, O: Debug + PartialEq>(cases: &[(&str, I, O)], actual: impl Fn(&I) -> O) {
    let mut failures = Vec::new();
    for (name, input, expected) in cases {
        let got = actual(input);
        if &got != expected {
            failures.push(format!(
                "case {name:?}: input {input:?}\n  expected {expected:?}\n  got      {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

pub fn data(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// Serialises the tests that run a simulator: each simulator's engine
/// thread spins to exact deadlines, and several at once on a 2-core
/// machine would measure CPU contention instead of the client.
static ONE_SIMULATOR_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The simulator's router (`vllm_sim::app`) served on 127.0.0.1:0.
///
/// It is served here rather than through `vllm_sim::TestServer` for one
/// reason: `TestServer` does not set TCP_NODELAY on accepted connections,
/// so a token written right after the role chunk waits for the client's
/// delayed ACK (about 40 ms on Linux) and every TTFT measured against it
/// alternates between the truth and truth + 40 ms. Real vLLM (uvicorn)
/// sets TCP_NODELAY. Everything else is the simulator's own code.
pub struct Sim {
    addr: std::net::SocketAddr,
    state: std::sync::Arc<vllm_sim::SimState>,
    stop: tokio_util::sync::CancellationToken,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Sim {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop.cancel();
        self.state.engine.shutdown();
    }
}

/// A simulator started from `vllm serve` arguments.
pub async fn sim(args: &[&str]) -> Sim {
    use axum::serve::ListenerExt as _;
    let turn = ONE_SIMULATOR_AT_A_TIME.lock().await;
    let config = vllm_sim::ServeConfig::from_args_with_env(args, None)
        .unwrap_or_else(|error| panic!("bad simulator arguments {args:?}: {error:?}"));
    let state = vllm_sim::SimState::new(config)
        .unwrap_or_else(|error| panic!("the simulator did not start with {args:?}: {error:?}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    state.set_ready();
    let router = vllm_sim::app(state.clone());
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let stop = tokio_util::sync::CancellationToken::new();
    let (shutdown, crashed) = (stop.clone(), state.crashed.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = crashed.cancelled() => {}
                }
            })
            .await;
    });
    Sim {
        addr,
        state,
        stop,
        _turn: turn,
    }
}

pub fn endpoint(server: &Sim, key: Option<&str>) -> grid_bench::Endpoint {
    grid_bench::Endpoint {
        base_url: server.base_url(),
        model: "tiny".into(),
        api_key: key.map(|k| grid_bench::ApiKey::new(k.to_string())),
    }
}

/// A unique scratch directory under the system temp dir.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "grid-bench-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}
