//! The state one simulated server shares between its handlers: the parsed
//! command line, the memory plan, the engine thread, metrics and ground
//! truth, and whether it is ready.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use crate::config::ServeConfig;
use crate::engine::EngineHandle;
use crate::log;
use crate::memory::{self, MemoryPlan, StartupError};
use crate::metrics::Metrics;
use crate::truth::GroundTruth;

/// Errors while starting the simulator in-process.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("the simulated vLLM failed to start")]
    Startup(#[from] StartupError),
    #[error("cannot start the engine thread")]
    EngineThread(#[source] std::io::Error),
    #[error("cannot bind {addr}; pick another --port or free it")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the address {addr} was bound to")]
    LocalAddr {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// Shared state of one simulated server.
#[derive(Debug)]
pub struct SimState {
    pub cfg: Arc<ServeConfig>,
    pub plan: MemoryPlan,
    pub engine: EngineHandle,
    pub metrics: Metrics,
    pub truth: GroundTruth,
    /// False while "loading" (with `--sim-listen-during-load`) or after a crash.
    pub ready: AtomicBool,
    pub start: Instant,
    pub start_unix_ms: u64,
    /// Cancelled when the engine "crashes" (`--sim-crash-after-requests`).
    pub crashed: CancellationToken,
    /// Generation requests received so far (numbers them from 1).
    received: AtomicU64,
    /// Generation requests finished so far (for `--sim-crash-after-requests`).
    finished: AtomicU64,
    /// The `created` of every reply: the start, in Unix seconds.
    pub(super) created: u64,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The labels of `vllm:cache_config_info`, as vLLM 0.32 writes them.
fn cache_info(cfg: &ServeConfig, plan: &MemoryPlan) -> String {
    format!(
        "block_size=\"{}\",cache_dtype=\"{}\",enable_prefix_caching=\"{}\",engine=\"0\",gpu_memory_utilization=\"{}\",kv_cache_memory_bytes=\"{}\",kv_cache_size_tokens=\"{}\",num_gpu_blocks=\"{}\",prefix_caching_hash_algo=\"sha256\"",
        plan.block_size,
        cfg.kv_cache_dtype,
        if cfg.enable_prefix_caching {
            "True"
        } else {
            "False"
        },
        cfg.gpu_memory_utilization,
        (plan.kv_cache_gib * 1024.0 * 1024.0 * 1024.0) as u64,
        plan.kv_cache_tokens(),
        plan.num_gpu_blocks
    )
}

impl SimState {
    /// Runs the memory model and starts the engine thread. Not ready yet:
    /// call [`SimState::set_ready`] once "loaded".
    pub fn new(cfg: ServeConfig) -> Result<Arc<SimState>, SimError> {
        let plan = memory::plan(&cfg)?;
        let engine = EngineHandle::start(&cfg, &plan).map_err(SimError::EngineThread)?;
        let start = Instant::now();
        let start_unix_ms = unix_ms();
        let mut metrics = Metrics::new(
            cfg.served_model_name(),
            plan.max_model_len,
            cache_info(&cfg, &plan),
        );
        // vLLM does not count prefix-cache queries at all with caching off.
        metrics.prefix_caching = cfg.enable_prefix_caching;
        let truth = GroundTruth::new(start, start_unix_ms, cfg.sim.max_records);
        Ok(Arc::new(SimState {
            cfg: Arc::new(cfg),
            plan,
            engine,
            metrics,
            truth,
            ready: AtomicBool::new(false),
            start,
            start_unix_ms,
            crashed: CancellationToken::new(),
            received: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            created: start_unix_ms / 1000,
        }))
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    pub(super) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Numbers a new generation request (from 1).
    pub(super) fn next_request(&self) -> u64 {
        self.received.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Counts a finished request; "crashes" the engine once
    /// `--sim-crash-after-requests` have finished.
    pub(super) fn request_finished(&self) {
        let finished = self.finished.fetch_add(1, Ordering::SeqCst) + 1;
        if self
            .cfg
            .sim
            .crash_after_requests
            .is_some_and(|c| finished >= c)
        {
            self.crash();
        }
    }

    fn crash(&self) {
        if self.crashed.is_cancelled() {
            return;
        }
        self.ready.store(false, Ordering::SeqCst);
        log::error(
            "core.py:935",
            "EngineCore encountered a fatal error (simulated by --sim-crash-after-requests).",
        );
        log::error("async_llm.py:480", "AsyncLLM output_handler failed.");
        log::error(
            "async_llm.py:480",
            "vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue. See stack trace (above) for the root cause.",
        );
        self.crashed.cancel();
        self.engine.shutdown();
    }
}
