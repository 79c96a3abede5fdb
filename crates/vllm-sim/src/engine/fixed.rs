//! The fixed-latency loop (`--sim-fixed-ttft-ms`, `--sim-fixed-itl-ms`):
//! no scheduler, no memory effects; token `k` of every request is written
//! at `received + T + k × I` (× time scale), however many requests run.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::clock::wait_until;
use super::{EngineEvent, EngineRequest, EngineStats, Msg, Params};

/// The fixed-latency loop: token k of each request at received + T + k·I.
pub(super) fn run_fixed(p: Params, rx: Receiver<Msg>, stats: Arc<Mutex<EngineStats>>) {
    struct Active {
        req: EngineRequest,
        first: Instant,
        next: usize,
    }
    let mut heap: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
    let mut active: HashMap<u64, Active> = HashMap::new();
    let mut inbox = VecDeque::new();
    let mut local = EngineStats::default();
    let itl = |from: Instant| p.clock.real(p.fixed_itl_ms, from);
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
                    let first = req.received + p.clock.real(p.fixed_ttft_ms, req.received);
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
