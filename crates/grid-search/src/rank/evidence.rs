//! Whether a config's cache effect is confirmed: only a confirmed effect
//! can make a champion.
//!
//! The rule is the battery's own (`grid_bench::CacheEffect`), applied to the
//! figure combined over repeats: the acceleration's 95 % lower bound is above
//! the battery's effect threshold, and the server's own numbers show cache
//! hits in every repeat. Which server number speaks is decided in the
//! battery (`KvCacheReport::cross_check`): the usage `cached_tokens` when the
//! server reports them (exact, and only our requests'), else the
//! prefix-cache counters (`vllm:prefix_cache_hits` / `_queries`, which count
//! every client of the server); either source confirms, the first one
//! present decides. Requiring both would make every real vLLM without
//! `--enable-prompt-tokens-details` (no `cached_tokens`) unverifiable.

use grid_core::Estimate;
use serde::{Deserialize, Serialize};

/// The verdict on a config's cache effect, over all its repeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum CacheEvidence {
    /// Faster warm turns, and the server reports the cache hits.
    Confirmed,
    /// The latency and the server disagree; the explanation says how.
    Disagreement { explanation: String },
    /// Faster warm turns, but the server reports neither `cached_tokens`
    /// nor prefix-cache counters (in some repeat), so the cause is unverified.
    Unverified,
    /// No acceleration beyond the threshold and no hits: no effect.
    NotObserved,
}

impl CacheEvidence {
    pub fn confirmed(&self) -> bool {
        matches!(self, CacheEvidence::Confirmed)
    }

    /// The verdict and its reason, as a ranking note says it.
    pub fn why_not_champion(&self) -> Option<String> {
        match self {
            CacheEvidence::Confirmed => None,
            CacheEvidence::Disagreement { explanation } => {
                Some(format!("cache effect not confirmed (disagreement: {explanation})"))
            }
            CacheEvidence::Unverified => Some(
                "cache effect unverified: warm turns are faster, but the server reported neither cached_tokens nor prefix-cache counters".to_string(),
            ),
            CacheEvidence::NotObserved => {
                Some("no cache effect observed (acceleration not above the battery's threshold)".to_string())
            }
        }
    }
}

/// The verdict from the combined acceleration, each repeat's server
/// confirmation (`None`: that repeat's server reported nothing) and the
/// battery's effect threshold.
pub(super) fn evidence(
    acceleration: &Estimate,
    server: &[Option<bool>],
    threshold: f64,
) -> CacheEvidence {
    let accelerated = acceleration.ci95_low > threshold;
    let server_says = if server.contains(&Some(false)) {
        Some(false)
    } else if server.is_empty() || server.contains(&None) {
        None
    } else {
        Some(true)
    };
    match (accelerated, server_says) {
        (true, Some(true)) => CacheEvidence::Confirmed,
        (true, Some(false)) => CacheEvidence::Disagreement {
            explanation: format!(
                "warm turns are x{:.2} faster but the server reports no cache hits in some repeat; the speed-up has another cause",
                acceleration.median
            ),
        },
        (true, None) => CacheEvidence::Unverified,
        (false, Some(true)) => CacheEvidence::Disagreement {
            explanation: format!(
                "the server reports cache hits but warm turns are only x{:.2} faster (95 % lower bound x{:.2}, threshold x{threshold:.2})",
                acceleration.median, acceleration.ci95_low
            ),
        },
        (false, _) => CacheEvidence::NotObserved,
    }
}
