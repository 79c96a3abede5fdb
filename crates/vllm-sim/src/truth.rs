//! Ground truth for measuring clients: `GET /sim/requests`.
//!
//! Every request on `/v1/chat/completions` and `/v1/completions` gets a
//! record, kept while it runs and after it ends (the newest
//! `--sim-max-records`, default 100 000). Instants are microseconds since the
//! server's own monotonic start (`std::time::Instant`), so they are immune to
//! wall-clock steps; `server_start_unix_ms` anchors them to the epoch.
//!
//! ```json
//! {
//!   "clock": "monotonic microseconds since server start",
//!   "server_start_unix_ms": 1795342000000,
//!   "now_us": 5123456,
//!   "requests": [{
//!     "id": "chatcmpl-…", "endpoint": "chat", "stream": true,
//!     "status": "finished",            // in_flight | finished | aborted | error | hung | dropped
//!     "fault": null,                   // http_500 | drop_mid_stream | malformed_sse | hang | crash
//!     "received_us": 1000,             // handler entered, body read
//!     "scheduled_us": 1010,            // first admitted to the running batch
//!     "first_chunk_us": 26000,         // the role chunk (streams) was handed to the connection
//!     "first_token_us": 26000,         // the first token's chunk was handed to the connection
//!     "token_write_us": [26000, 51000],// every chunk carrying a token
//!     "end_us": 51100,                 // [DONE] (or the JSON body) handed over
//!     "true_ttft_us": 25000,           // first_token_us − received_us
//!     "gaps_us": [25000],              // consecutive token_write_us differences
//!     "prompt_tokens": 14, "cached_tokens": 0, "completion_tokens": 2,
//!     "preemptions": 0
//!   }]
//! }
//! ```
//!
//! "Handed to the connection" is the instant the response body stream yields
//! the bytes to hyper, which writes them to the socket right away; a client's
//! receive instant can only be later. Tokens the parsers swallow (`<think>`,
//! `<tool_call>` tags) have no chunk and no write instant. For non-streaming
//! requests `token_write_us` holds the engine's token instants and `end_us`
//! the body write.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

#[derive(Debug, Clone, Serialize, Default)]
pub struct RequestRecord {
    pub id: String,
    pub endpoint: &'static str,
    pub stream: bool,
    pub status: &'static str,
    pub fault: Option<&'static str>,
    pub received_us: u64,
    pub scheduled_us: Option<u64>,
    pub first_chunk_us: Option<u64>,
    pub first_token_us: Option<u64>,
    pub token_write_us: Vec<u64>,
    pub end_us: Option<u64>,
    pub true_ttft_us: Option<u64>,
    pub gaps_us: Vec<u64>,
    pub prompt_tokens: usize,
    pub cached_tokens: usize,
    pub completion_tokens: usize,
    pub preemptions: u32,
}

/// A shared handle to one request's record.
pub type RecordHandle = Arc<Mutex<RequestRecord>>;

#[derive(Debug)]
pub struct GroundTruth {
    start: Instant,
    start_unix_ms: u64,
    max: usize,
    records: Mutex<VecDeque<RecordHandle>>,
}

impl GroundTruth {
    pub fn new(start: Instant, start_unix_ms: u64, max: usize) -> Self {
        Self {
            start,
            start_unix_ms,
            max: max.max(1),
            records: Mutex::new(VecDeque::new()),
        }
    }

    /// Microseconds since the server's monotonic start.
    pub fn us(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.start).as_micros() as u64
    }

    pub fn open(&self, record: RequestRecord) -> RecordHandle {
        let handle = Arc::new(Mutex::new(record));
        if let Ok(mut recs) = self.records.lock() {
            if recs.len() >= self.max {
                recs.pop_front();
            }
            recs.push_back(Arc::clone(&handle));
        }
        handle
    }

    /// The JSON document served at `/sim/requests`.
    pub fn snapshot(&self) -> serde_json::Value {
        let recs: Vec<RequestRecord> = self
            .records
            .lock()
            .map(|r| {
                r.iter()
                    .filter_map(|h| h.lock().ok().map(|g| finalize(g.clone())))
                    .collect()
            })
            .unwrap_or_default();
        serde_json::json!({
            "clock": "monotonic microseconds since server start",
            "server_start_unix_ms": self.start_unix_ms,
            "now_us": self.us(Instant::now()),
            "requests": recs,
        })
    }

    pub fn clear(&self) {
        if let Ok(mut r) = self.records.lock() {
            r.clear();
        }
    }
}

fn finalize(mut r: RequestRecord) -> RequestRecord {
    r.first_token_us = r.token_write_us.first().copied();
    r.true_ttft_us = r.first_token_us.map(|f| f.saturating_sub(r.received_us));
    r.gaps_us = r
        .token_write_us
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .collect();
    r
}
