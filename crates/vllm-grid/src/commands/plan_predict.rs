//! `vllm-grid plan`'s memory prediction: each config's verdict (fits, a
//! predicted startup failure with vLLM's reason, unknown) and predicted KV
//! tokens, from the inputs the search would read (grid_search::predict).
//! Best effort: a profile that cannot be read makes every prediction
//! unknown, with the reason; it does not stop the plan.

use std::path::Path;

use grid_plan::Plan;
use grid_predict::{Prediction, Verdict};
use grid_search::predict::{PredictionInputs, gather, predict_config};

use crate::cli::PlanArgs;
use crate::dry_run;
use crate::error::AppError;
use crate::load::{load_profile_file, relative_to};
use crate::out::outln;

/// The plan's predictions, one per config in plan order.
pub struct PlanPredictions {
    /// The profile they were made with, as shown.
    pub profile: String,
    pub inputs: PredictionInputs,
    pub configs: Vec<Prediction>,
}

fn environment(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

pub async fn predict(args: &PlanArgs, plan_path: &Path, plan: &Plan) -> PlanPredictions {
    let service = args.service.service.as_deref();
    let loaded = if args.dry_run {
        dry_run::dry_run_profile(args.profile.as_deref(), plan_path, service)
    } else {
        let path = match &args.profile {
            Some(p) => p.clone(),
            None => relative_to(plan_path, &plan.profile),
        };
        load_profile_file(&path, service)
    };
    let profile = match loaded {
        Ok(loaded) => loaded,
        Err(error) => {
            let mut reason = format!("the profile cannot be read: {error}");
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                reason.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            return PlanPredictions {
                profile: plan.profile.clone(),
                inputs: PredictionInputs {
                    missing: vec![reason.clone()],
                    ..PredictionInputs::default()
                },
                configs: plan
                    .configs
                    .iter()
                    .map(|_| Prediction::unknown(vec![reason.clone()]))
                    .collect(),
            };
        }
    };
    let battery = grid_search::battery::battery_config(&plan.battery).ok();
    let nvidia_smi = battery
        .as_ref()
        .map_or(grid_search::predict::NVIDIA_SMI, |b| {
            b.gpu_profile.command.as_str()
        });
    let inputs = gather(&profile.profile, &environment, nvidia_smi).await;
    let configs = plan
        .configs
        .iter()
        .map(|c| predict_config(&inputs, &profile.profile, c, &environment))
        .collect();
    PlanPredictions {
        profile: profile.label,
        inputs,
        configs,
    }
}

/// The table's cell: `fits`, `FAILS: <class>`, `unknown`.
pub fn cell(prediction: &Prediction) -> String {
    match &prediction.verdict {
        Verdict::Fits => "fits".to_string(),
        Verdict::PredictedFailure { class, .. } => format!("FAILS: {}", class.name()),
        Verdict::Unknown { .. } => "unknown".to_string(),
    }
}

/// Predicted KV tokens, with thousands separators as vLLM logs them; in
/// parentheses when the cache is too small (what it would hold).
pub fn tokens(prediction: &Prediction) -> String {
    let Some(tokens) = prediction.kv_capacity_tokens else {
        return "-".to_string();
    };
    let digits = tokens.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if prediction.failure_class().is_some() {
        format!("({out})")
    } else {
        out
    }
}

/// What the table does not hold: the inputs, the counts, and vLLM's
/// reason for each predicted failure (once per distinct reason).
pub fn print_notes(plan: &Plan, predictions: &PlanPredictions) -> Result<(), AppError> {
    let fails = predictions
        .configs
        .iter()
        .filter(|p| p.failure_class().is_some())
        .count();
    let unknown = predictions
        .configs
        .iter()
        .filter(|p| matches!(p.verdict, Verdict::Unknown { .. }))
        .count();
    outln!(
        "\nmemory prediction (profile {}): {} fit, {fails} predicted to fail at startup, {unknown} unknown",
        predictions.profile,
        predictions.configs.len() - fails - unknown,
    )?;
    for source in &predictions.inputs.sources {
        outln!("  {source}")?;
    }
    if fails > 0 {
        outln!(
            "  a search records the predicted failures as predicted infeasible without starting them; --verify-predictions starts them"
        )?;
    }
    let mut reasons: Vec<String> = Vec::new();
    for (config, prediction) in plan.configs.iter().zip(&predictions.configs) {
        match &prediction.verdict {
            Verdict::PredictedFailure { message, .. } => {
                outln!("  {}: {message}", config.name)?;
            }
            Verdict::Unknown { reasons: why } => {
                for reason in why {
                    if !reasons.contains(reason) {
                        reasons.push(reason.clone());
                    }
                }
            }
            Verdict::Fits => {}
        }
    }
    for reason in reasons {
        outln!("  unknown: {reason}")?;
    }
    Ok(())
}

/// `--json`: the predictions and their inputs, nothing else.
pub fn print_json(plan: &Plan, predictions: &PlanPredictions) -> Result<(), AppError> {
    let configs: Vec<serde_json::Value> = plan
        .configs
        .iter()
        .zip(&predictions.configs)
        .map(|(c, p)| {
            serde_json::json!({
                "name": c.name,
                "id": c.id,
                "settings": c.settings,
                "prediction": p,
            })
        })
        .collect();
    let document = serde_json::json!({
        "profile": predictions.profile,
        "inputs": {
            "sources": predictions.inputs.sources,
            "missing": predictions.inputs.missing,
        },
        "configs": configs,
    });
    let text = serde_json::to_string_pretty(&document).unwrap_or_default();
    outln!("{text}")
}
