//! The vLLM-V1-like scheduler loop (see the module doc of [`super`]):
//! running sequences first, preemption when blocks run out, FCFS admission
//! with prefix-cache hits, chunked prefill, and a step duration from the
//! batch.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::clock::wait_until;
use super::{EngineEvent, EngineRequest, EngineStats, Msg, Params, record_iteration};
use crate::kv::BlockPool;

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

pub(super) struct Engine {
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
    /// (sequence id, tokens scheduled)
    items: Vec<(u64, usize)>,
    duration_ms: f64,
}

impl Engine {
    pub(super) fn new(p: Params, stats: Arc<Mutex<EngineStats>>) -> Self {
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

    pub(super) fn run(mut self, rx: Receiver<Msg>) {
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
            let deadline = start + self.p.clock.real(planned.duration_ms, start);
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
        let _ = victim.req.events.send(EngineEvent::Preempted);
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
