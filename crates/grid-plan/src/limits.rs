//! Time limits and retries of the search loop. The file gives numbers of
//! seconds (`limits.*_s`); the plan holds bounded [`Duration`]s, so the
//! search cannot panic on a NaN, an infinity or 1e20 s, and the retry
//! backoff cannot overflow.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::bounded::{Retries, SecondsRange};
use crate::error::PlanError;

const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;

/// The whole search. The study's search is one night (14 h); a week covers a
/// large grid on a slow box. Anything longer is almost surely a unit mistake
/// (milliseconds given as seconds) and would hide a hung run for good.
pub const SEARCH_TIMEOUT_RANGE: SecondsRange = SecondsRange {
    zero_allowed: false,
    max: Duration::from_secs(7 * DAY),
    max_in_words: "7 days",
};

/// One config, all its repeats and attempts included. It can take no longer
/// than the search, so it has the search's bound.
pub const PER_CONFIG_TIMEOUT_RANGE: SecondsRange = SEARCH_TIMEOUT_RANGE;

/// One server's way to ready. A 32B model loads and compiles in 10–20
/// minutes, the largest models in a few hours; a day also covers a first
/// download of the weights over a slow link. A server not ready after a day
/// is stuck, not slow.
pub const HEALTH_TIMEOUT_RANGE: SecondsRange = SecondsRange {
    zero_allowed: false,
    max: Duration::from_secs(DAY),
    max_in_words: "1 day",
};

/// The first wait before a retry, and the cap on every doubled wait. A
/// transient fault (a daemon restart, a health-check hiccup) clears within
/// minutes; one that lasts longer than an hour is better left to `resume`
/// than waited out. 0 retries at once.
pub const RETRY_BACKOFF_RANGE: SecondsRange = SecondsRange {
    zero_allowed: true,
    max: Duration::from_secs(HOUR),
    max_in_words: "1 hour",
};

/// Time limits and retries of the search loop, each within its range.
///
/// Serialised as the plan file writes it ([`RawLimits`]: seconds as numbers,
/// the same keys), so `manifest.json` files of earlier releases still read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawLimits", into = "RawLimits")]
pub struct SearchLimits {
    /// Deadline for one config (all attempts and repeats included).
    pub per_config_timeout: Duration,
    /// Deadline for the whole search; configs not started by then are
    /// recorded as skipped.
    pub search_timeout: Duration,
    /// How long a server may take to become ready. The default fits a 32B
    /// model's load and compile time.
    pub health_timeout: Duration,
    /// How many times a transient failure (daemon hiccup, health timeout) is
    /// retried.
    pub transient_retries: Retries,
    /// First backoff between retries; it doubles each time (see
    /// [`SearchLimits::retry_backoff_after`]).
    pub retry_backoff: Duration,
}

impl Default for SearchLimits {
    fn default() -> Self {
        SearchLimits {
            per_config_timeout: Duration::from_secs(HOUR),
            search_timeout: Duration::from_secs(14 * HOUR),
            health_timeout: Duration::from_secs(1200),
            transient_retries: Retries::saturating(2),
            retry_backoff: Duration::from_secs(15),
        }
    }
}

impl SearchLimits {
    /// The wait before the retry that follows failed attempt
    /// `failed_attempt` (1 for the first attempt): the first backoff doubled
    /// once per earlier failure, saturating, and never more than
    /// [`RETRY_BACKOFF_RANGE`]'s bound.
    pub fn retry_backoff_after(&self, failed_attempt: u32) -> Duration {
        let doublings = failed_attempt.saturating_sub(1);
        let factor = 2u32.checked_pow(doublings).unwrap_or(u32::MAX);
        self.retry_backoff
            .saturating_mul(factor)
            .min(RETRY_BACKOFF_RANGE.max)
    }
}

/// `limits` as the plan file writes it: numbers of seconds. Absent keys take
/// [`SearchLimits::default`]'s values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawLimits {
    pub per_config_timeout_s: f64,
    pub search_timeout_s: f64,
    pub health_timeout_s: f64,
    pub transient_retries: u64,
    pub retry_backoff_s: f64,
}

impl Default for RawLimits {
    fn default() -> Self {
        SearchLimits::default().into()
    }
}

impl From<SearchLimits> for RawLimits {
    fn from(limits: SearchLimits) -> Self {
        RawLimits {
            per_config_timeout_s: limits.per_config_timeout.as_secs_f64(),
            search_timeout_s: limits.search_timeout.as_secs_f64(),
            health_timeout_s: limits.health_timeout.as_secs_f64(),
            transient_retries: u64::from(limits.transient_retries.get()),
            retry_backoff_s: limits.retry_backoff.as_secs_f64(),
        }
    }
}

impl TryFrom<RawLimits> for SearchLimits {
    type Error = PlanError;

    /// Each value into its range; the error names the key, the bound and
    /// the fix.
    fn try_from(raw: RawLimits) -> Result<Self, PlanError> {
        let seconds = |key: &str, range: &'static SecondsRange, value: f64| {
            range.parse(value).map_err(|source| PlanError::Limit {
                path: format!("limits.{key}"),
                range,
                source,
            })
        };
        Ok(SearchLimits {
            per_config_timeout: seconds(
                "per_config_timeout_s",
                &PER_CONFIG_TIMEOUT_RANGE,
                raw.per_config_timeout_s,
            )?,
            search_timeout: seconds(
                "search_timeout_s",
                &SEARCH_TIMEOUT_RANGE,
                raw.search_timeout_s,
            )?,
            health_timeout: seconds(
                "health_timeout_s",
                &HEALTH_TIMEOUT_RANGE,
                raw.health_timeout_s,
            )?,
            transient_retries: Retries::new(raw.transient_retries).map_err(|source| {
                PlanError::Count {
                    path: "limits.transient_retries".to_string(),
                    what: "retries per config",
                    source,
                }
            })?,
            retry_backoff: seconds("retry_backoff_s", &RETRY_BACKOFF_RANGE, raw.retry_backoff_s)?,
        })
    }
}
