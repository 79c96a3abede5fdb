//! Integration tests of the planner.

mod default_plan;
mod ids;
mod validation;

/// A minimal valid plan with the given extra top-level members.
pub fn plan_text(extra: &str) -> String {
    let sep = if extra.trim().is_empty() { "" } else { "," };
    format!(r#"{{"format_version": 1, "profile": "profiles/sim.yml"{sep} {extra}}}"#)
}
