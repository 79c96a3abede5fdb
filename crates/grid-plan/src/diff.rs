//! What differs between two plans, for resume and reproduce.

use serde::{Deserialize, Serialize};

use crate::limits::SearchLimits;
use crate::plan::Plan;

/// A structured difference between two plans, for resume and reproduce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanDiff {
    /// Human lines, one per difference.
    pub changes: Vec<String>,
}

impl PlanDiff {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// What differs between an earlier plan and a new one: configs added,
/// removed or renamed (matched by ID), battery, gates, repeats, limits, seed.
pub fn diff_plans(old: &Plan, new: &Plan) -> PlanDiff {
    let mut changes = Vec::new();
    for config in &old.configs {
        match new.config(&config.id) {
            None => changes.push(format!(
                "config `{}` ({}) [{}] was removed",
                config.name,
                config.settings.summary(),
                config.id
            )),
            Some(now) if now.name != config.name => changes.push(format!(
                "config {} was renamed from `{}` to `{}`",
                config.id, config.name, now.name
            )),
            Some(_) => {}
        }
    }
    for config in &new.configs {
        if old.config(&config.id).is_none() {
            changes.push(format!(
                "config `{}` ({}) [{}] was added",
                config.name,
                config.settings.summary(),
                config.id
            ));
        }
    }
    if old.battery != new.battery {
        changes.push(format!(
            "battery parameters changed: {} -> {}",
            old.battery, new.battery
        ));
    }
    if old.ranking != new.ranking {
        changes.push(format!(
            "ranking gates changed: {:?} -> {:?}",
            old.ranking, new.ranking
        ));
    }
    if old.repeats != new.repeats {
        changes.push(format!(
            "repeats changed: {} -> {}",
            old.repeats, new.repeats
        ));
    }
    if old.seed != new.seed {
        changes.push(format!("seed changed: {} -> {}", old.seed, new.seed));
    }
    if old.limits != new.limits {
        changes.extend(limit_changes(&old.limits, &new.limits));
    }
    PlanDiff { changes }
}

/// One line per limit that differs, in the file's keys and units.
fn limit_changes(old: &SearchLimits, new: &SearchLimits) -> Vec<String> {
    let seconds = |limits: &SearchLimits| {
        [
            limits.per_config_timeout.as_secs_f64(),
            limits.search_timeout.as_secs_f64(),
            limits.health_timeout.as_secs_f64(),
            f64::from(limits.transient_retries.get()),
            limits.retry_backoff.as_secs_f64(),
        ]
    };
    let keys = [
        "per_config_timeout_s",
        "search_timeout_s",
        "health_timeout_s",
        "transient_retries",
        "retry_backoff_s",
    ];
    keys.into_iter()
        .zip(seconds(old).into_iter().zip(seconds(new)))
        .filter(|(_, (old, new))| old != new)
        .map(|(key, (old, new))| format!("limits.{key} changed: {old} -> {new}"))
        .collect()
}
