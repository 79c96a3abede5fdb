//! [`TestServer`]: the simulator in-process on 127.0.0.1 with an OS-chosen
//! port, for tests (this crate's, grid-bench's, vllm-contract's).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::{CliError, ServeConfig};
use crate::server::{SimError, SimState, bind, spawn_server};

/// An in-process simulator on 127.0.0.1 with an OS-chosen port, for tests.
/// It is ready at once (no simulated model loading). Dropping it stops it.
#[derive(Debug)]
pub struct TestServer {
    pub addr: SocketAddr,
    pub state: Arc<SimState>,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server for a configuration (its host and port are ignored).
    pub async fn start(cfg: ServeConfig) -> Result<TestServer, SimError> {
        let state = SimState::new(cfg)?;
        let (listener, addr) = bind("127.0.0.1:0").await?;
        state.set_ready();
        let stop = CancellationToken::new();
        let task = spawn_server(listener, Arc::clone(&state), stop.clone());
        Ok(TestServer {
            addr,
            state,
            stop,
            task: Some(task),
        })
    }

    /// Parses a `vllm serve` argument list (without `serve`) and starts it.
    pub async fn start_args(args: &[&str]) -> Result<TestServer, TestServerError> {
        let cfg = ServeConfig::from_args_with_env(args, None)?;
        Ok(TestServer::start(cfg).await?)
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving and waits (at most 1 s) for the server task to end.
    pub async fn stop(mut self) {
        self.stop.cancel();
        self.state.engine.shutdown();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Why [`TestServer::start_args`] failed.
#[derive(Debug, thiserror::Error)]
pub enum TestServerError {
    #[error("invalid vllm serve arguments")]
    Args(#[from] CliError),
    #[error("the simulator did not start")]
    Start(#[from] SimError),
}
