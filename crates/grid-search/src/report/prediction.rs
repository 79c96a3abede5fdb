//! The memory prediction in the report: how many configs it skipped, and,
//! where servers were started, whether each prediction held.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use grid_plan::{ConfigId, Plan};
use serde::{Deserialize, Serialize};

use crate::store::{ConfigResult, RunOutcome};

/// One config's prediction in `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportPrediction {
    pub name: String,
    pub id: ConfigId,
    /// `fits`, `predicted_failure` or `unknown`.
    pub verdict: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_capacity_tokens: Option<u64>,
    /// Not started: predicted infeasible.
    pub skipped: bool,
    /// Whether the server's start agreed; null when not started.
    pub held: Option<bool>,
}

/// `report.json`'s `predictions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionSummary {
    pub fits: usize,
    pub predicted_failure: usize,
    pub unknown: usize,
    /// Predicted failures recorded without a server start.
    pub skipped: usize,
    /// Predictions whose server was started, and how many of them held.
    pub verified: usize,
    pub held: usize,
    pub configs: Vec<ReportPrediction>,
}

/// The summary of the results' predictions, in plan order; `None` when no
/// result has one.
pub fn prediction_summary(
    plan: &Plan,
    results: &BTreeMap<ConfigId, ConfigResult>,
) -> Option<PredictionSummary> {
    let mut summary = PredictionSummary {
        fits: 0,
        predicted_failure: 0,
        unknown: 0,
        skipped: 0,
        verified: 0,
        held: 0,
        configs: Vec::new(),
    };
    for result in plan.configs.iter().filter_map(|c| results.get(&c.id)) {
        let Some(record) = &result.prediction else {
            continue;
        };
        let p = &record.prediction;
        match p.verdict_name() {
            "fits" => summary.fits += 1,
            "predicted_failure" => summary.predicted_failure += 1,
            _ => summary.unknown += 1,
        }
        let skipped = result.outcome == RunOutcome::PredictedInfeasible;
        summary.skipped += usize::from(skipped);
        if let Some(held) = record.held {
            summary.verified += 1;
            summary.held += usize::from(held);
        }
        summary.configs.push(ReportPrediction {
            name: result.config.name.clone(),
            id: result.config.id.clone(),
            verdict: p.verdict_name().to_string(),
            class: p.failure_class().map(|c| c.as_str().to_string()),
            kv_capacity_tokens: p.kv_capacity_tokens,
            skipped,
            held: record.held,
        });
    }
    (!summary.configs.is_empty()).then_some(summary)
}

/// The report's "Memory prediction" section.
pub fn markdown_section(md: &mut String, summary: Option<&PredictionSummary>) {
    let Some(s) = summary else {
        return;
    };
    let _ = writeln!(md, "## Memory prediction\n");
    let _ = writeln!(
        md,
        "- {} fit, {} predicted to fail at startup, {} unknown (inputs missing or not covered; those ran).",
        s.fits, s.predicted_failure, s.unknown
    );
    if s.skipped > 0 {
        let _ = writeln!(
            md,
            "- {} predicted infeasible and not started (0 server starts); `--verify-predictions` starts them.",
            s.skipped
        );
    }
    if s.verified > 0 {
        let _ = writeln!(
            md,
            "- Verified against the servers' starts: {}/{} predictions held.",
            s.held, s.verified
        );
    }
    let _ = writeln!(
        md,
        "\n| config | prediction | predicted KV tokens | held |\n|---|---|---:|---|"
    );
    for c in &s.configs {
        let verdict = match (&c.class, c.skipped) {
            (Some(class), true) => format!("{class} (not started)"),
            (Some(class), false) => class.clone(),
            (None, _) => c.verdict.clone(),
        };
        // What a KV cache too small would hold, in parentheses.
        let tokens = match (c.kv_capacity_tokens, &c.class) {
            (Some(t), None) => t.to_string(),
            (Some(t), Some(_)) => format!("({t})"),
            (None, _) => "-".to_string(),
        };
        let held = match c.held {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        let _ = writeln!(md, "| {} | {verdict} | {tokens} | {held} |", c.name);
    }
    let _ = writeln!(md);
}
