//! The engine loop: a vLLM-V1-like scheduler running on its own OS thread.
//!
//! Tokio's timers have about 1 ms granularity, too coarse once
//! `--sim-time-scale 0.01` turns a 25 ms decode step into 0.25 ms. The engine
//! therefore runs on a dedicated thread and sleeps to *absolute* deadlines:
//! `std::thread::sleep` until ~250 µs before, then spins (yielding) to the
//! instant. Tokens go to the HTTP handlers over unbounded channels, stamped
//! with the instant they were produced.
//!
//! ## One step
//!
//! Every step has a token budget `B = max_num_batched_tokens`.
//!
//! 1. *Running* sequences first, in admission order. A decoding sequence
//!    takes 1 token; a sequence still prefilling (chunked) takes
//!    `min(remaining, budget)`. Each needs KV blocks for
//!    `num_computed + new_tokens` slots. When the pool has too few free
//!    blocks, the most recently admitted running sequence is **preempted**:
//!    its blocks are freed, `num_computed = 0`, it goes to the front of the
//!    waiting queue and will recompute its prompt plus the tokens it already
//!    produced (vLLM's recompute preemption; `vllm:num_preemptions_total`).
//! 2. If nothing was preempted, *waiting* sequences are admitted in FCFS
//!    order while `running < max_num_seqs` and budget remains. With prefix
//!    caching on, the longest cached prefix is taken first (see [`crate::kv`]);
//!    `cached_tokens` is that length. With chunked prefill on, the admitted
//!    prefill is `min(uncached, budget)` tokens and the rest continues next
//!    steps; with it off, the whole uncached prompt must fit the budget in
//!    one step, or the sequence waits.
//! 3. The step's duration (simulated milliseconds, then `× time_scale`):
//!
//! ```text
//! step_ms = (decode_base_ms                                   --sim-decode-base-ms (25)
//!            + decode_per_seq_ms × decoding_seqs              --sim-decode-per-seq-ms (0.12)
//!            + decode_ctx_us_per_token × context_tokens / 1000  --sim-decode-ctx-us-per-token (0.125)
//!            + 1000 × prefill_tokens / prefill_tokens_per_s)  --sim-prefill-tokens-per-s (6000)
//!           × (1 + degradation_per_hour × simulated_uptime_hours)
//! ```
//!
//!    `context_tokens` sums the lengths of the decoding sequences (attention
//!    reads their KV). So decode time grows with batch size and context, and
//!    prefill cost grows with *uncached* prompt tokens only: a prefix-cache
//!    hit skips that part of the prefill.
//! 4. At the step's end, every sequence whose computed tokens reach its
//!    length samples one token (the prefill's last chunk gives the first
//!    token: TTFT = queueing + prefill steps). A sequence finishes when it
//!    has produced its output length.
//!
//! **Chunked prefill and inter-token gaps.** Without chunked prefill, a
//! 12 000-token prompt is one 2 s step and every running stream waits for
//! it: the inter-token gaps show a 2 s spike. With chunked prefill the same
//! prompt runs as 2048-token chunks interleaved with the decodes, so no gap
//! exceeds one chunk's step (~0.37 s).
//!
//! ## Fixed-latency mode
//!
//! With `--sim-fixed-ttft-ms T` and/or `--sim-fixed-itl-ms I`, the scheduler
//! and memory effects are switched off: token `k` of every request is written
//! at `received + T + k × I` (× time_scale), however many requests run.

pub(crate) mod clock;
mod fixed;
mod scheduler;

use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::config::ServeConfig;
use crate::memory::MemoryPlan;
use clock::Clock;

/// What the engine tells a request's handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineEvent {
    /// First admitted into the running batch (after any queueing).
    Scheduled { cached_tokens: usize, at: Instant },
    /// Output token `index` (0-based) was produced at `at`.
    Token { index: usize, at: Instant },
    /// The sequence was preempted (it will recompute and continue).
    Preempted,
}

/// A request handed to the engine.
#[derive(Debug)]
pub struct EngineRequest {
    pub id: u64,
    pub prompt: Vec<u32>,
    /// Output token ids; the engine produces exactly this many tokens.
    pub output: Vec<u32>,
    pub received: Instant,
    pub events: tokio::sync::mpsc::UnboundedSender<EngineEvent>,
}

/// Counters and gauges the engine exposes to `/metrics`.
#[derive(Debug, Default, Clone)]
pub struct EngineStats {
    pub running: usize,
    pub waiting: usize,
    pub kv_usage: f64,
    pub preemptions: u64,
    pub prefix_queries: u64,
    pub prefix_hits: u64,
    pub prompt_tokens_computed: u64,
    pub steps: u64,
    /// Tokens scheduled per step, for `vllm:iteration_tokens_total`.
    pub iteration_tokens: Vec<(u64, u64)>,
}

enum Msg {
    Submit(Box<EngineRequest>),
    ResetPrefixCache,
    Shutdown,
}

/// The handle the HTTP side holds. Dropping it stops the engine thread.
#[derive(Debug)]
pub struct EngineHandle {
    tx: Mutex<Sender<Msg>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    pub stats: Arc<Mutex<EngineStats>>,
}

impl EngineHandle {
    /// Starts the engine thread for a configuration that passed the memory model.
    pub fn start(cfg: &ServeConfig, plan: &MemoryPlan) -> std::io::Result<EngineHandle> {
        let (tx, rx) = std::sync::mpsc::channel();
        let stats = Arc::new(Mutex::new(EngineStats::default()));
        let params = Params::new(cfg, plan);
        let stats_thread = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("vllm-sim-engine".into())
            .spawn(move || {
                if params.fixed {
                    fixed::run_fixed(params, rx, stats_thread)
                } else {
                    scheduler::Engine::new(params, stats_thread).run(rx)
                }
            })?;
        Ok(EngineHandle {
            tx: Mutex::new(tx),
            thread: Mutex::new(Some(thread)),
            stats,
        })
    }

    /// Queues a request. False when the engine has stopped.
    pub fn submit(&self, req: EngineRequest) -> bool {
        self.send(Msg::Submit(Box::new(req)))
    }

    pub fn reset_prefix_cache(&self) -> bool {
        self.send(Msg::ResetPrefixCache)
    }

    fn send(&self, msg: Msg) -> bool {
        match self.tx.lock() {
            Ok(tx) => tx.send(msg).is_ok(),
            Err(_) => false,
        }
    }

    /// Stops the engine thread; in-flight requests see their channel close.
    pub fn shutdown(&self) {
        self.send(Msg::Shutdown);
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(h) = handle {
            // The loop checks for Shutdown at least once per step.
            let _ = h.join();
        }
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        self.send(Msg::Shutdown);
    }
}

/// What both loops need from the configuration and the memory plan.
#[derive(Debug, Clone)]
struct Params {
    fixed: bool,
    fixed_ttft_ms: f64,
    fixed_itl_ms: f64,
    max_num_seqs: usize,
    max_batched: usize,
    chunked: bool,
    caching: bool,
    num_blocks: usize,
    block_size: usize,
    decode_base_ms: f64,
    decode_per_seq_ms: f64,
    decode_ctx_us_per_token: f64,
    prefill_tokens_per_s: f64,
    clock: Clock,
}

impl Params {
    fn new(cfg: &ServeConfig, plan: &MemoryPlan) -> Self {
        let sim = &cfg.sim;
        Self {
            fixed: sim.fixed_latency(),
            fixed_ttft_ms: sim.fixed_ttft_ms.unwrap_or(0.0),
            fixed_itl_ms: sim.fixed_itl_ms.unwrap_or(0.0),
            max_num_seqs: plan.max_num_seqs,
            max_batched: plan.max_num_batched_tokens,
            chunked: cfg.enable_chunked_prefill,
            caching: cfg.enable_prefix_caching,
            num_blocks: plan.num_gpu_blocks,
            block_size: plan.block_size,
            decode_base_ms: sim.decode_base_ms,
            decode_per_seq_ms: sim.decode_per_seq_ms,
            decode_ctx_us_per_token: sim.decode_ctx_us_per_token,
            prefill_tokens_per_s: sim.prefill_tokens_per_s,
            clock: Clock {
                time_scale: sim.time_scale,
                degradation_per_hour: sim.degradation_per_hour,
                start: Instant::now(),
            },
        }
    }
}

/// Buckets of `vllm:iteration_tokens_total` (vLLM's cudagraph-size buckets).
pub const ITERATION_BUCKETS: &[u64] = &[
    1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384,
];

/// Counts one step of `tokens` scheduled tokens in the histogram
/// `(count, sum)` then one count per bucket.
fn record_iteration(hist: &mut Vec<(u64, u64)>, tokens: u64) {
    if hist.is_empty() {
        hist.push((0, 0)); // (count, sum)
        hist.extend(ITERATION_BUCKETS.iter().map(|_| (0, 0)));
    }
    hist[0].0 += 1;
    hist[0].1 += tokens;
    for (i, le) in ITERATION_BUCKETS.iter().enumerate() {
        if tokens <= *le {
            hist[i + 1].0 += 1;
        }
    }
}
