//! Integration tests of grid-bench. Tabular cases go through `check`, which
//! runs every case and reports all mismatches at once.

mod accuracy;
mod bad_replies;
mod battery;
mod bounds;
mod chunk_scan;
mod config;
mod fakes;
mod gpu;
mod grading;
mod hostile;
mod kv_cache;
mod metrics;
mod pressure;
mod probe;
mod schema;
mod sse;
mod tools;

use std::path::PathBuf;

pub use grid_core::testing::check;

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

/// A simulator (`vllm_sim::TestServer`, which sets TCP_NODELAY on accepted
/// sockets as uvicorn does for real vLLM) holding the one-at-a-time turn.
pub struct Sim {
    server: vllm_sim::TestServer,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Sim {
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        // Join the engine thread before the turn passes to the next test,
        // so its spinning does not overlap the next simulator's.
        self.server.state.engine.shutdown();
    }
}

/// A simulator started from `vllm serve` arguments.
pub async fn sim(args: &[&str]) -> Sim {
    let turn = ONE_SIMULATOR_AT_A_TIME.lock().await;
    let server = vllm_sim::TestServer::start_args(args)
        .await
        .unwrap_or_else(|error| panic!("the simulator did not start with {args:?}: {error:?}"));
    Sim {
        server,
        _turn: turn,
    }
}

pub fn endpoint(server: &Sim, key: Option<&str>) -> grid_bench::Endpoint {
    grid_bench::Endpoint {
        base_url: server.base_url(),
        model: "tiny".into(),
        api_key: key.map(|k| grid_core::Secret::new(k.to_string())),
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
