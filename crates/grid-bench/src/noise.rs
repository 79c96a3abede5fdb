//! The noise guard: the client's mean TTFT of a benchmark against the
//! server's own, from the deltas of `vllm:time_to_first_token_seconds_sum`
//! and `_count` around it.
//!
//! The server measures from the request's arrival to its first token; the
//! client adds the HTTP/SSE path and whatever the host's scheduler does to
//! the client and the server's front end. On an idle host that path costs
//! real vLLM 17–45 ms (1.5–9 %); a loaded host adds more. A benchmark whose
//! client mean exceeds the server's by more than the guard's share *and*
//! its floor ([`NoiseGuardConfig`]) is marked `disturbed`: its latencies
//! say more about the host than about the server.

use serde::{Deserialize, Serialize};

use crate::config::{BenchmarkName, NoiseGuardConfig};

/// Both means and the verdict, kept in the benchmark's JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoiseCheck {
    pub client_mean_ttft_ms: f64,
    pub server_mean_ttft_ms: f64,
    /// Requests the client's mean is over.
    pub client_requests: u64,
    pub disturbed: bool,
}

/// Whether a benchmark's TTFTs are comparable with the server's: plain
/// chat streams whose first token the client sees when the server emits
/// it. The tool-calling benchmark is left out (a tool parser holds the
/// call's first tokens back, so the client's first token comes later by
/// design), as is reasoning (its parser may hold back a thinking tag).
pub fn guarded(name: BenchmarkName) -> bool {
    matches!(
        name,
        BenchmarkName::KvCache
            | BenchmarkName::KvCachePressure
            | BenchmarkName::LongConversation
            | BenchmarkName::Stability
            | BenchmarkName::Concurrency
    )
}

/// Compares the means; `None` when either is unknown.
pub fn check(
    guard: &NoiseGuardConfig,
    client_mean_ttft_ms: Option<f64>,
    client_requests: u64,
    server_mean_ttft_ms: Option<f64>,
) -> Option<NoiseCheck> {
    let (client, server) = (client_mean_ttft_ms?, server_mean_ttft_ms?);
    if !(client.is_finite() && server.is_finite()) || client_requests == 0 {
        return None;
    }
    let excess = client - server;
    // Both bounds must be passed: the share clears real vLLM's own HTTP
    // path, the floor a fixed loopback cost on millisecond TTFTs.
    let disturbed = excess > guard.max_excess_ms && excess > guard.max_excess_share * server;
    Some(NoiseCheck {
        client_mean_ttft_ms: client,
        server_mean_ttft_ms: server,
        client_requests,
        disturbed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_benchmark_is_disturbed_only_past_both_bounds() {
        let guard = NoiseGuardConfig::default();
        grid_core::testing::check(
            &[
                // Real vLLM on an idle host (the measured overheads).
                ("real vLLM, 45 ms over 1.2 s", (1245.0, 1200.0), Some(false)),
                ("real vLLM, 9 %", (305.0, 280.0), Some(false)),
                ("past both", (330.0, 280.0), Some(true)),
                ("share passed, under the floor", (6.5, 5.0), Some(false)),
                ("floor passed, under the share", (230.0, 220.0), Some(false)),
                ("client faster", (9.0, 10.0), Some(false)),
                ("host noise on a simulator", (14.0, 10.0), Some(true)),
            ],
            |(client, server)| {
                check(&guard, Some(*client), 10, Some(*server)).map(|check| check.disturbed)
            },
        );
    }

    #[test]
    fn without_either_mean_there_is_no_verdict() {
        let guard = NoiseGuardConfig::default();
        assert_eq!(check(&guard, None, 3, Some(1.0)), None);
        assert_eq!(check(&guard, Some(1.0), 3, None), None);
        assert_eq!(check(&guard, Some(1.0), 0, Some(1.0)), None);
        assert_eq!(check(&guard, Some(f64::NAN), 3, Some(1.0)), None);
    }
}
