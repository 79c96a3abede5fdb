//! The ranking gates: what a config must pass to be ranked at all.

use serde::{Deserialize, Serialize};

use crate::error::PlanError;

/// The ranking gates. A config must pass all of them to be ranked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RankingGates {
    /// Every benchmark of the battery completed.
    #[serde(default = "default_true")]
    pub require_all_benchmarks: bool,
    /// Highest allowed request error rate (inclusive), as a fraction.
    #[serde(default = "default_max_error_rate")]
    pub max_request_error_rate: f64,
    /// Stability degradation must stay strictly below this fraction.
    #[serde(default = "default_max_stability_degradation")]
    pub max_stability_degradation: f64,
    /// Whether tool calling is required for the use case.
    #[serde(default)]
    pub require_tool_calling: bool,
    /// Lowest tool-call success rate (inclusive) when tool calling is required.
    #[serde(default = "default_min_tool_call_success")]
    pub min_tool_call_success_rate: f64,
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
        }
    }
}

impl RankingGates {
    /// Every gate within its range.
    pub(crate) fn check(&self) -> Result<(), PlanError> {
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
