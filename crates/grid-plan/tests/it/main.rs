//! Integration tests of the planner.

mod default_plan;
mod ids;
mod limits;
mod validation;

/// A minimal valid plan with the given extra top-level members.
pub fn plan_text(extra: &str) -> String {
    let sep = if extra.trim().is_empty() { "" } else { "," };
    format!(r#"{{"format_version": 1, "profile": "profiles/sim.yml"{sep} {extra}}}"#)
}

/// An error and its causes, as the binary prints them: the message names the
/// path and the fix, the causes say what was read.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
