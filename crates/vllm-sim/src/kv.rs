//! The KV block pool and the prefix cache, modelled on vLLM V1's
//! `BlockPool` / `KVCacheManager`.
//!
//! * The pool has `num_gpu_blocks` blocks of `block_size` (16) tokens.
//! * A block is *full* when all its token slots are computed. A full block's
//!   hash chains the previous block's hash with the block's token ids:
//!   `h_i = mix(h_{i-1}, tokens[16i .. 16i+16])`, `h_{-1} = seed`. Equal
//!   hashes mean equal prefixes, as in vLLM.
//! * With prefix caching on, a full block is registered in the cache map
//!   (`hash → block`). When its request finishes, the block goes to the tail
//!   of the free queue *keeping its hash*, so a later request with the same
//!   prefix takes it back (a hit) as long as it has not been evicted.
//! * Allocation pops the head of the free queue (least recently freed first,
//!   an LRU); popping a block that still has a hash evicts it from the cache.
//!   A request frees its blocks in reverse order, so the tail of a prompt is
//!   evicted before its head, as in vLLM.
//! * A hit is the longest run of leading full prompt blocks whose hashes are
//!   in the cache, capped so at least one prompt token is computed:
//!   `cached_tokens = 16 × min(hit_blocks, (prompt_len − 1) / 16)`.
//! * KV usage (`vllm:kv_cache_usage_perc`) is `1 − free_blocks / total`,
//!   where cached blocks with no user count as free.

use std::collections::HashMap;

use crate::text::mix;

const NIL: usize = usize::MAX;

#[derive(Debug, Clone)]
struct Block {
    ref_cnt: u32,
    hash: Option<u64>,
    prev: usize,
    next: usize,
    in_free_list: bool,
}

/// The block pool with its LRU free queue and the prefix-cache map.
#[derive(Debug)]
pub struct BlockPool {
    blocks: Vec<Block>,
    head: usize,
    tail: usize,
    num_free: usize,
    cached: HashMap<u64, usize>,
    caching: bool,
    pub block_size: usize,
}

impl BlockPool {
    pub fn new(num_blocks: usize, block_size: usize, caching: bool) -> Self {
        let mut pool = Self {
            blocks: (0..num_blocks)
                .map(|_| Block {
                    ref_cnt: 0,
                    hash: None,
                    prev: NIL,
                    next: NIL,
                    in_free_list: false,
                })
                .collect(),
            head: NIL,
            tail: NIL,
            num_free: 0,
            cached: HashMap::new(),
            caching,
            block_size,
        };
        for b in 0..num_blocks {
            pool.push_tail(b);
        }
        pool
    }

    pub fn total(&self) -> usize {
        self.blocks.len()
    }

    pub fn num_free(&self) -> usize {
        self.num_free
    }

    pub fn usage(&self) -> f64 {
        if self.blocks.is_empty() {
            return 0.0;
        }
        1.0 - self.num_free as f64 / self.blocks.len() as f64
    }

    fn push_tail(&mut self, b: usize) {
        let old_tail = self.tail;
        {
            let blk = &mut self.blocks[b];
            blk.prev = old_tail;
            blk.next = NIL;
            blk.in_free_list = true;
        }
        if old_tail == NIL {
            self.head = b;
        } else {
            self.blocks[old_tail].next = b;
        }
        self.tail = b;
        self.num_free += 1;
    }

    fn unlink(&mut self, b: usize) {
        let (prev, next) = (self.blocks[b].prev, self.blocks[b].next);
        if prev == NIL {
            self.head = next;
        } else {
            self.blocks[prev].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.blocks[next].prev = prev;
        }
        let blk = &mut self.blocks[b];
        blk.prev = NIL;
        blk.next = NIL;
        blk.in_free_list = false;
        self.num_free -= 1;
    }

    /// Hashes of the full blocks of `tokens`, chained from `seed`.
    pub fn block_hashes(&self, seed: u64, tokens: &[u32]) -> Vec<u64> {
        let mut out = Vec::with_capacity(tokens.len() / self.block_size);
        let mut parent = seed;
        for chunk in tokens.chunks_exact(self.block_size) {
            let mut vals = Vec::with_capacity(self.block_size + 1);
            vals.push(parent);
            vals.extend(chunk.iter().map(|t| u64::from(*t)));
            parent = mix(&vals);
            out.push(parent);
        }
        out
    }

    /// Finds and takes the cached blocks for a prompt's leading full blocks
    /// (at most `max_blocks`). Returns the blocks, now referenced.
    pub fn take_cached_prefix(&mut self, hashes: &[u64], max_blocks: usize) -> Vec<usize> {
        let mut taken = Vec::new();
        if !self.caching {
            return taken;
        }
        for h in hashes.iter().take(max_blocks) {
            let Some(&b) = self.cached.get(h) else { break };
            if self.blocks[b].in_free_list {
                self.unlink(b);
            }
            self.blocks[b].ref_cnt += 1;
            taken.push(b);
        }
        taken
    }

    /// Allocates `n` fresh blocks, evicting cached ones from the LRU head.
    /// None (and nothing taken) when fewer than `n` are free.
    pub fn allocate(&mut self, n: usize) -> Option<Vec<usize>> {
        if n > self.num_free {
            return None;
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let b = self.head;
            self.unlink(b);
            if let Some(h) = self.blocks[b].hash.take() {
                if self.cached.get(&h) == Some(&b) {
                    self.cached.remove(&h);
                }
            }
            self.blocks[b].ref_cnt = 1;
            out.push(b);
        }
        Some(out)
    }

    /// Registers a full block under its chained hash (prefix caching on).
    pub fn register_full(&mut self, block: usize, hash: u64) {
        if !self.caching || self.blocks[block].hash.is_some() {
            return;
        }
        if self.cached.contains_key(&hash) {
            return; // an identical block is already cached
        }
        self.blocks[block].hash = Some(hash);
        self.cached.insert(hash, block);
    }

    /// Releases a request's blocks (in reverse order, so tails evict first).
    pub fn free(&mut self, blocks: &[usize]) {
        for &b in blocks.iter().rev() {
            let blk = &mut self.blocks[b];
            blk.ref_cnt = blk.ref_cnt.saturating_sub(1);
            if blk.ref_cnt == 0 {
                if !self.caching {
                    blk.hash = None;
                }
                self.push_tail(b);
            }
        }
    }

    /// Drops every cached hash (`POST /reset_prefix_cache`).
    pub fn reset_prefix_cache(&mut self) {
        for (_, b) in self.cached.drain() {
            self.blocks[b].hash = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_blocks_are_hit_until_evicted() {
        let mut pool = BlockPool::new(4, 16, true);
        let tokens: Vec<u32> = (0..32).collect();
        let hashes = pool.block_hashes(1, &tokens);
        let blocks = pool.allocate(2).expect("free blocks");
        pool.register_full(blocks[0], hashes[0]);
        pool.register_full(blocks[1], hashes[1]);
        pool.free(&blocks);
        assert_eq!(pool.take_cached_prefix(&hashes, 2).len(), 2);
        pool.free(&blocks);
        // Allocating all four blocks evicts both cached ones.
        let all = pool.allocate(4).expect("four free");
        pool.free(&all);
        assert_eq!(pool.take_cached_prefix(&hashes, 2).len(), 0);
    }
}
