//! The plan's `ranking` section: the gates a config must pass to be ranked
//! at all, which figure names the champion, and the margin within which two
//! configs count as equivalent on it.
//!
//! Read as [`RawRanking`] (the file's shape) and checked into
//! [`RankingGates`], whose margin is an [`EquivalenceMargin`]: whoever holds
//! a plan holds a margin in range. Manifests of earlier releases lack the
//! two new keys and read with their defaults.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::PlanError;

/// Which KV-cache acceleration names the champion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChampionCriterion {
    /// The `kv_cache` benchmark: one conversation at a time, cold prompt
    /// against the same conversation cached. The default, and what runs
    /// before the pressured workload existed were ranked by.
    #[default]
    KvCache,
    /// The pressured workload (many concurrent conversations with long
    /// histories): the deployment serves concurrent agents, and there the
    /// share of GPU memory decides how much history stays cached.
    KvCachePressure,
}

impl ChampionCriterion {
    /// The key as the plan and `report.json` write it.
    pub fn as_str(self) -> &'static str {
        match self {
            ChampionCriterion::KvCache => "kv_cache",
            ChampionCriterion::KvCachePressure => "kv_cache_pressure",
        }
    }

    /// The figure in words, for reports: "KV-cache acceleration".
    pub fn figure(self) -> &'static str {
        match self {
            ChampionCriterion::KvCache => "KV-cache acceleration",
            ChampionCriterion::KvCachePressure => "KV-cache acceleration under pressure",
        }
    }
}

impl fmt::Display for ChampionCriterion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The relative margin within which two configs' accelerations are
/// equivalent: a fraction in `(0, 0.5]` (0.05 is ±5 %). Zero would make no
/// two measured configs ever equivalent (every interval has a width), and
/// beyond half a config twice as fast as another could count as its equal.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct EquivalenceMargin(f64);

impl EquivalenceMargin {
    pub const MAX: f64 = 0.5;
    pub const DEFAULT: EquivalenceMargin = EquivalenceMargin(0.05);

    /// `value` if it lies in `(0, 0.5]`.
    pub fn new(value: f64) -> Result<Self, MarginOutOfRange> {
        if value > 0.0 && value <= Self::MAX {
            Ok(EquivalenceMargin(value))
        } else {
            Err(MarginOutOfRange { value })
        }
    }

    /// The fraction (0.05 for ±5 %).
    pub fn get(self) -> f64 {
        self.0
    }
}

impl Default for EquivalenceMargin {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl From<EquivalenceMargin> for f64 {
    fn from(margin: EquivalenceMargin) -> f64 {
        margin.0
    }
}

/// A margin outside `(0, 0.5]`.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("{value} is outside (0, 0.5]")]
pub struct MarginOutOfRange {
    pub value: f64,
}

/// The `ranking` section as the file writes it. Absent keys take
/// [`RankingGates::default`]'s values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRanking {
    #[serde(default = "default_true")]
    pub require_all_benchmarks: bool,
    #[serde(default = "default_max_error_rate")]
    pub max_request_error_rate: f64,
    #[serde(default = "default_max_stability_degradation")]
    pub max_stability_degradation: f64,
    #[serde(default)]
    pub require_tool_calling: bool,
    #[serde(default = "default_min_tool_call_success")]
    pub min_tool_call_success_rate: f64,
    /// Read wide (any number), so an out-of-range margin is refused with its
    /// path and the fix rather than as a shape error.
    #[serde(default = "default_margin")]
    pub equivalence_margin: f64,
    #[serde(default)]
    pub champion_criterion: ChampionCriterion,
}

impl Default for RawRanking {
    fn default() -> Self {
        RankingGates::default().into()
    }
}

fn default_margin() -> f64 {
    EquivalenceMargin::DEFAULT.get()
}

/// The ranking settings: the gates (a config must pass all of them to be
/// ranked), the champion criterion and the equivalence margin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawRanking", into = "RawRanking")]
pub struct RankingGates {
    /// Every benchmark of the battery completed.
    pub require_all_benchmarks: bool,
    /// Highest allowed request error rate (inclusive), as a fraction.
    pub max_request_error_rate: f64,
    /// Stability degradation must stay strictly below this fraction.
    pub max_stability_degradation: f64,
    /// Whether tool calling is required for the use case.
    pub require_tool_calling: bool,
    /// Lowest tool-call success rate (inclusive) when tool calling is required.
    pub min_tool_call_success_rate: f64,
    /// Two configs whose acceleration ratio has its 95 % interval inside
    /// `1 ± margin` are equivalent; the tie-break chain chooses between them.
    pub equivalence_margin: EquivalenceMargin,
    /// Which workload's acceleration names the champion.
    pub champion_criterion: ChampionCriterion,
}

fn default_true() -> bool {
    true
}
fn default_max_error_rate() -> f64 {
    0.01
}
fn default_max_stability_degradation() -> f64 {
    0.20
}
fn default_min_tool_call_success() -> f64 {
    0.9
}

impl Default for RankingGates {
    fn default() -> Self {
        RankingGates {
            require_all_benchmarks: true,
            max_request_error_rate: default_max_error_rate(),
            max_stability_degradation: default_max_stability_degradation(),
            require_tool_calling: false,
            min_tool_call_success_rate: default_min_tool_call_success(),
            equivalence_margin: EquivalenceMargin::DEFAULT,
            champion_criterion: ChampionCriterion::KvCache,
        }
    }
}

impl From<RankingGates> for RawRanking {
    fn from(gates: RankingGates) -> Self {
        RawRanking {
            require_all_benchmarks: gates.require_all_benchmarks,
            max_request_error_rate: gates.max_request_error_rate,
            max_stability_degradation: gates.max_stability_degradation,
            require_tool_calling: gates.require_tool_calling,
            min_tool_call_success_rate: gates.min_tool_call_success_rate,
            equivalence_margin: gates.equivalence_margin.get(),
            champion_criterion: gates.champion_criterion,
        }
    }
}

impl TryFrom<RawRanking> for RankingGates {
    type Error = PlanError;

    /// Every gate within its range, the margin typed; the error names the
    /// key and the fix.
    fn try_from(raw: RawRanking) -> Result<Self, PlanError> {
        raw.check()?;
        let equivalence_margin = EquivalenceMargin::new(raw.equivalence_margin)
            .map_err(|source| PlanError::EquivalenceMargin { source })?;
        Ok(RankingGates {
            require_all_benchmarks: raw.require_all_benchmarks,
            max_request_error_rate: raw.max_request_error_rate,
            max_stability_degradation: raw.max_stability_degradation,
            require_tool_calling: raw.require_tool_calling,
            min_tool_call_success_rate: raw.min_tool_call_success_rate,
            equivalence_margin,
            champion_criterion: raw.champion_criterion,
        })
    }
}

impl RawRanking {
    /// Every gate within its range.
    fn check(&self) -> Result<(), PlanError> {
        let fraction = |value: f64, key: &str| {
            if (0.0..=1.0).contains(&value) {
                Ok(())
            } else {
                Err(PlanError::NotAFraction {
                    path: format!("ranking.{key}"),
                    value,
                })
            }
        };
        fraction(self.max_request_error_rate, "max_request_error_rate")?;
        fraction(
            self.min_tool_call_success_rate,
            "min_tool_call_success_rate",
        )?;
        if !(self.max_stability_degradation > 0.0 && self.max_stability_degradation.is_finite()) {
            return Err(PlanError::StabilityGate {
                value: self.max_stability_degradation,
            });
        }
        Ok(())
    }
}
