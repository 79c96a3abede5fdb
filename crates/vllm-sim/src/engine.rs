//! The engine loop: a vLLM-V1-like scheduler running on its own OS thread.
//!
//! Tokio's timers have about 1 ms granularity, too coarse once
//! `--sim-time-scale 0.01` turns a 25 ms decode step into 0.25 ms. The engine
//! therefore runs on a dedicated thread and sleeps to *absolute* deadlines:
//! `std::thread::sleep` until ~150 µs before, then spins (yielding) to the
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

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::ServeConfig;
use crate::kv::BlockPool;
use crate::memory::MemoryPlan;

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
                    run_fixed(params, rx, stats_thread)
                } else {
                    Engine::new(params, stats_thread).run(rx)
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

#[derive(Debug, Clone)]
struct Params {
    fixed: bool,
    fixed_ttft_ms: f64,
    fixed_itl_ms: f64,
    time_scale: f64,
    degradation_per_hour: f64,
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
    start: Instant,
}

impl Params {
    fn new(cfg: &ServeConfig, plan: &MemoryPlan) -> Self {
        let sim = &cfg.sim;
        Self {
            fixed: sim.fixed_latency(),
            fixed_ttft_ms: sim.fixed_ttft_ms.unwrap_or(0.0),
            fixed_itl_ms: sim.fixed_itl_ms.unwrap_or(0.0),
            time_scale: sim.time_scale,
            degradation_per_hour: sim.degradation_per_hour,
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
            start: Instant::now(),
        }
    }

    /// Real duration of a simulated span, with time scale and degradation.
    fn real(&self, simulated_ms: f64, now: Instant) -> Duration {
        if self.time_scale <= 0.0 || simulated_ms <= 0.0 {
            return Duration::ZERO;
        }
        let uptime_h = now.duration_since(self.start).as_secs_f64() / self.time_scale / 3600.0;
        let factor = 1.0 + self.degradation_per_hour * uptime_h;
        Duration::from_secs_f64(simulated_ms * factor * self.time_scale / 1000.0)
    }
}

/// Sleeps until `deadline` precisely, taking messages that arrive meanwhile.
/// Returns early (false) on Shutdown.
fn wait_until(deadline: Instant, rx: &Receiver<Msg>, inbox: &mut VecDeque<Msg>) -> bool {
    const SPIN: Duration = Duration::from_micros(250);
    loop {
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        let left = deadline - now;
        if left > SPIN {
            match rx.recv_timeout(left - SPIN) {
                Ok(Msg::Shutdown) => return false,
                Ok(m) => inbox.push_back(m),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        } else {
            std::thread::yield_now();
        }
    }
}

#[derive(Debug)]
struct Seq {
    req: EngineRequest,
    num_computed: usize,
    generated: usize,
    blocks: Vec<usize>,
    hashes: Vec<u64>,
    registered: usize,
    reported_schedule: bool,
}

impl Seq {
    fn num_tokens(&self) -> usize {
        self.req.prompt.len() + self.generated
    }
    fn token_at(&self, pos: usize) -> u32 {
        let p = self.req.prompt.len();
        if pos < p {
            self.req.prompt[pos]
        } else {
            self.req.output.get(pos - p).copied().unwrap_or(0)
        }
    }
    fn known_tokens(&self) -> Vec<u32> {
        (0..self.num_tokens()).map(|p| self.token_at(p)).collect()
    }
}

struct Engine {
    p: Params,
    pool: BlockPool,
    running: Vec<Seq>,
    waiting: VecDeque<Seq>,
    stats: Arc<Mutex<EngineStats>>,
    local: EngineStats,
    hash_seed: u64,
}

/// The step being scheduled: which sequences compute how many tokens, and
/// what the step's duration depends on.
#[derive(Default)]
struct Batch {
    items: Vec<(u64, usize)>,
    /// Tokens the step may still take (`--max-num-batched-tokens`).
    budget: usize,
    decode_seqs: usize,
    ctx_tokens: usize,
    prefill_tokens: usize,
}

impl Batch {
    /// Adds `n` of the `need` tokens of sequence `id` (`context` tokens
    /// long). A sequence that needs one token is decoding.
    fn add(&mut self, id: u64, need: usize, n: usize, context: usize) {
        if need == 1 {
            self.decode_seqs += 1;
            self.ctx_tokens += context;
        } else {
            self.prefill_tokens += n;
        }
        self.items.push((id, n));
        self.budget -= n;
    }
}

struct Planned {
    /// (index into running, tokens scheduled)
    items: Vec<(u64, usize)>,
    duration_ms: f64,
}

impl Engine {
    fn new(p: Params, stats: Arc<Mutex<EngineStats>>) -> Self {
        let pool = BlockPool::new(p.num_blocks, p.block_size, p.caching);
        Self {
            p,
            pool,
            running: Vec::new(),
            waiting: VecDeque::new(),
            stats,
            local: EngineStats::default(),
            hash_seed: 0x5eed,
        }
    }

    fn accept(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Submit(req) => {
                self.waiting.push_back(Seq {
                    req: *req,
                    num_computed: 0,
                    generated: 0,
                    blocks: Vec::new(),
                    hashes: Vec::new(),
                    registered: 0,
                    reported_schedule: false,
                });
                true
            }
            Msg::ResetPrefixCache => {
                self.pool.reset_prefix_cache();
                true
            }
            Msg::Shutdown => false,
        }
    }

    fn run(mut self, rx: Receiver<Msg>) {
        let mut inbox = VecDeque::new();
        // Back-to-back steps start at the previous step's deadline, not at
        // the (slightly late) wake-up, so oversleeping does not accumulate.
        let mut last_deadline: Option<Instant> = None;
        loop {
            while let Some(m) = inbox.pop_front() {
                if !self.accept(m) {
                    return;
                }
            }
            loop {
                match rx.try_recv() {
                    Ok(m) => {
                        if !self.accept(m) {
                            return;
                        }
                    }
                    Err(std::sync::mpsc::TryRecvError::Empty) => break,
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
                }
            }
            self.drop_aborted();
            if self.running.is_empty() && self.waiting.is_empty() {
                last_deadline = None;
                self.publish();
                match rx.recv() {
                    Ok(m) => {
                        if !self.accept(m) {
                            return;
                        }
                        continue;
                    }
                    Err(_) => return,
                }
            }
            let now = Instant::now();
            let start = match last_deadline {
                Some(d) if now.saturating_duration_since(d) < Duration::from_millis(2) => d,
                _ => now,
            };
            let planned = self.schedule();
            self.publish();
            if planned.items.is_empty() {
                // Nothing fits (e.g. every block is held): wait for a change.
                match rx.recv_timeout(Duration::from_millis(5)) {
                    Ok(m) => {
                        if !self.accept(m) {
                            return;
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                last_deadline = None;
                continue;
            }
            let deadline = start + self.p.real(planned.duration_ms, start);
            last_deadline = Some(deadline);
            if !wait_until(deadline, &rx, &mut inbox) {
                return;
            }
            self.commit(&planned, Instant::now());
        }
    }

    fn drop_aborted(&mut self) {
        let mut i = 0;
        while i < self.running.len() {
            if self.running[i].req.events.is_closed() {
                let s = self.running.remove(i);
                self.pool.free(&s.blocks);
            } else {
                i += 1;
            }
        }
        self.waiting.retain(|s| !s.req.events.is_closed());
    }

    fn blocks_for(&self, tokens: usize) -> usize {
        tokens.div_ceil(self.p.block_size)
    }

    fn preempt_last(&mut self) -> Option<u64> {
        let mut victim = self.running.pop()?;
        self.pool.free(&victim.blocks);
        victim.blocks.clear();
        victim.num_computed = 0;
        victim.registered = 0;
        let _ = victim
            .req
            .events
            .send(crate::engine::EngineEvent::Preempted);
        self.local.preemptions += 1;
        let id = victim.req.id;
        self.waiting.push_front(victim);
        Some(id)
    }

    fn schedule(&mut self) -> Planned {
        let mut batch = Batch {
            budget: self.p.max_batched,
            ..Batch::default()
        };
        let mut preempted = false;
        let mut i = 0;
        while i < self.running.len() && batch.budget > 0 {
            let need = self.running[i].num_tokens() - self.running[i].num_computed;
            let n = need.min(batch.budget);
            let target_blocks = self.blocks_for(self.running[i].num_computed + n);
            let mut scheduled = false;
            loop {
                let extra = target_blocks.saturating_sub(self.running[i].blocks.len());
                if let Some(new_blocks) = self.pool.allocate(extra) {
                    self.running[i].blocks.extend(new_blocks);
                    scheduled = true;
                    break;
                }
                preempted = true;
                let victim_is_self = self.running.len() == i + 1;
                self.preempt_last();
                if victim_is_self {
                    break;
                }
            }
            if !scheduled {
                break;
            }
            let s = &self.running[i];
            batch.add(s.req.id, need, n, s.num_tokens());
            i += 1;
        }
        while !preempted && batch.budget > 0 && self.running.len() < self.p.max_num_seqs {
            let Some(mut s) = self.waiting.pop_front() else {
                break;
            };
            let known = s.known_tokens();
            s.hashes = self.pool.block_hashes(self.hash_seed, &known);
            let max_hit = (s.num_tokens().saturating_sub(1)) / self.p.block_size;
            let hit_blocks = self.pool.take_cached_prefix(&s.hashes, max_hit);
            let cached = hit_blocks.len() * self.p.block_size;
            let need = s.num_tokens() - cached;
            if !self.p.chunked && need > batch.budget {
                self.pool.free(&hit_blocks);
                self.waiting.push_front(s);
                break;
            }
            let n = need.min(batch.budget);
            let target_blocks = self.blocks_for(cached + n);
            let Some(new_blocks) = self.pool.allocate(target_blocks - hit_blocks.len()) else {
                self.pool.free(&hit_blocks);
                self.waiting.push_front(s);
                break;
            };
            s.blocks = hit_blocks;
            s.registered = s.blocks.len();
            s.blocks.extend(new_blocks);
            s.num_computed = cached;
            self.local.prefix_queries += s.num_tokens() as u64;
            self.local.prefix_hits += cached as u64;
            if !s.reported_schedule {
                s.reported_schedule = true;
                let _ = s.req.events.send(EngineEvent::Scheduled {
                    cached_tokens: cached,
                    at: Instant::now(),
                });
            }
            batch.add(s.req.id, need, n, s.num_tokens());
            self.running.push(s);
        }
        let duration_ms = if batch.items.is_empty() {
            0.0
        } else {
            self.p.decode_base_ms
                + self.p.decode_per_seq_ms * batch.decode_seqs as f64
                + self.p.decode_ctx_us_per_token * batch.ctx_tokens as f64 / 1000.0
                + 1000.0 * batch.prefill_tokens as f64 / self.p.prefill_tokens_per_s
        };
        let total: usize = batch.items.iter().map(|(_, n)| n).sum();
        self.local.prompt_tokens_computed += batch.prefill_tokens as u64;
        self.local.steps += 1;
        record_iteration(&mut self.local.iteration_tokens, total as u64);
        Planned {
            items: batch.items,
            duration_ms,
        }
    }

    fn commit(&mut self, planned: &Planned, at: Instant) {
        let index: HashMap<u64, usize> = planned.items.iter().map(|(id, n)| (*id, *n)).collect();
        let mut finished = Vec::new();
        for (pos, s) in self.running.iter_mut().enumerate() {
            let Some(&n) = index.get(&s.req.id) else {
                continue;
            };
            s.num_computed += n;
            // Register newly full blocks in the prefix cache.
            let full = (s.num_computed / self.p.block_size).min(s.blocks.len());
            if full > s.hashes.len() {
                let known = s.known_tokens();
                s.hashes = self.pool.block_hashes(self.hash_seed, &known);
            }
            while s.registered < full && s.registered < s.hashes.len() {
                self.pool
                    .register_full(s.blocks[s.registered], s.hashes[s.registered]);
                s.registered += 1;
            }
            if s.num_computed >= s.num_tokens() {
                s.generated += 1;
                let _ = s.req.events.send(EngineEvent::Token {
                    index: s.generated - 1,
                    at,
                });
                if s.generated >= s.req.output.len() {
                    finished.push(pos);
                }
            }
        }
        for pos in finished.into_iter().rev() {
            let s = self.running.remove(pos);
            self.pool.free(&s.blocks);
        }
    }

    fn publish(&mut self) {
        self.local.running = self.running.len();
        self.local.waiting = self.waiting.len();
        self.local.kv_usage = self.pool.usage();
        if let Ok(mut st) = self.stats.lock() {
            *st = self.local.clone();
        }
    }
}

/// Buckets of `vllm:iteration_tokens_total` (vLLM's cudagraph-size buckets).
pub const ITERATION_BUCKETS: &[u64] = &[
    1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384,
];

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

/// The fixed-latency loop: token k of each request at received + T + k·I.
fn run_fixed(p: Params, rx: Receiver<Msg>, stats: Arc<Mutex<EngineStats>>) {
    struct Active {
        req: EngineRequest,
        first: Instant,
        next: usize,
    }
    let mut heap: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
    let mut active: HashMap<u64, Active> = HashMap::new();
    let mut inbox = VecDeque::new();
    let mut local = EngineStats::default();
    let itl = |from: Instant| p.real(p.fixed_itl_ms, from);
    loop {
        let mut msgs: Vec<Msg> = inbox.drain(..).collect();
        while let Ok(m) = rx.try_recv() {
            msgs.push(m);
        }
        if heap.is_empty() && msgs.is_empty() {
            match rx.recv() {
                Ok(m) => msgs.push(m),
                Err(_) => return,
            }
        }
        for m in msgs {
            match m {
                Msg::Submit(req) => {
                    let now = Instant::now();
                    let _ = req.events.send(EngineEvent::Scheduled {
                        cached_tokens: 0,
                        at: now,
                    });
                    local.prefix_queries += req.prompt.len() as u64;
                    local.prompt_tokens_computed += req.prompt.len() as u64;
                    let first = req.received + p.real(p.fixed_ttft_ms, req.received);
                    heap.push(Reverse((first, req.id)));
                    active.insert(
                        req.id,
                        Active {
                            req: *req,
                            first,
                            next: 0,
                        },
                    );
                }
                Msg::ResetPrefixCache => {}
                Msg::Shutdown => return,
            }
        }
        local.running = active.len();
        if let Ok(mut st) = stats.lock() {
            *st = local.clone();
        }
        let Some(Reverse((deadline, _))) = heap.peek().copied() else {
            continue;
        };
        if !wait_until(deadline, &rx, &mut inbox) {
            return;
        }
        let now = Instant::now();
        while let Some(Reverse((d, id))) = heap.peek().copied() {
            if d > now {
                break;
            }
            heap.pop();
            let Some(a) = active.get_mut(&id) else {
                continue;
            };
            let ok = a
                .req
                .events
                .send(EngineEvent::Token {
                    index: a.next,
                    at: now,
                })
                .is_ok();
            a.next += 1;
            if !ok || a.next >= a.req.output.len() {
                active.remove(&id);
                continue;
            }
            // Absolute schedule: no drift however late this wake-up was.
            let step = itl(a.first);
            let next = a.first + step * a.next as u32;
            heap.push(Reverse((next, id)));
        }
    }
}
