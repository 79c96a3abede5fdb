//! The noise guard: the client's mean TTFT of a benchmark against the
//! server's own, from the deltas of `vllm:time_to_first_token_seconds_sum`
//! and `_count` around it.
//!
//! The server measures from the request's arrival to its first token; the
//! client adds the HTTP/SSE path and whatever the host's scheduler does to
//! the client and the server's front end. On an idle host that path costs
//! real vLLM 17–45 ms (1.5–9 % of the pressured workload's TTFTs); a loaded
//! host adds more. A benchmark whose client mean exceeds the server's by
//! more than the guard's share *and* its floor ([`NoiseGuardConfig`]) is
//! marked `disturbed`: its latencies say more about the host than about the
//! server.

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
    // Both bounds must be passed: the path has a fixed cost (the floor) and
    // one that grows with the prompt (the share).
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
        let real = NoiseGuardConfig::default();
        let simulator = NoiseGuardConfig {
            max_excess_ms: 2.0,
            ..NoiseGuardConfig::default()
        };
        grid_core::testing::check(
            &[
                // Real vLLM's own path on an idle host (measured: 17–45 ms,
                // 1.5–9 % on the pressured workload).
                (
                    "real, 45 ms over 1.2 s",
                    (&real, 1245.0, 1200.0),
                    Some(false),
                ),
                ("real, 9 % of 280 ms", (&real, 305.0, 280.0), Some(false)),
                (
                    "real, 19 ms over 121 ms",
                    (&real, 140.0, 121.0),
                    Some(false),
                ),
                (
                    "real, a host that doubles the path",
                    (&real, 1400.0, 1200.0),
                    Some(true),
                ),
                (
                    "real, share passed, under the floor",
                    (&real, 90.0, 50.0),
                    Some(false),
                ),
                (
                    "real, floor passed, under the share",
                    (&real, 2060.0, 2000.0),
                    Some(false),
                ),
                ("client faster", (&real, 9.0, 10.0), Some(false)),
                (
                    "simulator, host noise",
                    (&simulator, 14.0, 10.0),
                    Some(true),
                ),
                (
                    "simulator, loopback cost",
                    (&simulator, 6.5, 5.0),
                    Some(false),
                ),
                (
                    "simulator, under the share",
                    (&simulator, 230.0, 220.0),
                    Some(false),
                ),
            ],
            |(guard, client, server)| {
                check(guard, Some(*client), 10, Some(*server)).map(|check| check.disturbed)
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
