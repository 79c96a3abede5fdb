//! The memory prediction's two passes around the loop over configs.
//!
//! Before it ([`skip_predicted`]): each config without a kept result is
//! predicted ([`crate::predict`]). A `predicted_failure` is recorded as
//! `predicted_infeasible` (its class and vLLM's text in `failure`, 0 server
//! starts) and the loop skips it; with `--verify-predictions`
//! ([`SearchOptions::verify_predictions`]) nothing is skipped, and kept
//! `predicted_infeasible` results are set aside to run. `unknown` runs.
//!
//! After it ([`record_predictions`]): each result this run made gets its
//! prediction, and whether the server's start agreed (`held`).

use std::collections::BTreeMap;

use grid_plan::{ConfigId, PlannedConfig};
use grid_predict::{Prediction, Verdict};

use crate::SearchError;
use crate::predict::{gather, predict_config};
use crate::progress::SearchEvent;
use crate::store::{
    ConfigResult, ConfigTiming, DEADLINE_CLASSES, JournalEvent, PredictionRecord, RunOutcome,
    STORE_FORMAT_VERSION, now_unix_ms,
};

use super::context::RunContext;
use super::failure::plain_failure;

#[cfg(doc)]
use super::SearchOptions;

/// The predictions of this invocation, by config.
pub(crate) type Predictions = BTreeMap<ConfigId, Prediction>;

/// Predicts the configs still to run and records the predicted failures
/// (unless verifying); returns every prediction made.
pub(crate) async fn skip_predicted(
    ctx: &RunContext<'_>,
    kept: &mut BTreeMap<ConfigId, ConfigResult>,
) -> Result<Predictions, SearchError> {
    let setup = ctx.setup;
    let verify = ctx.options.verify_predictions;
    // The launches' lookup: the run's own values, then the environment.
    let variables = &ctx.options.variables;
    let environment = |name: &str| {
        variables
            .get(name)
            .map(|v| v.expose().to_string())
            .or_else(|| std::env::var(name).ok())
    };
    if verify {
        for config in &setup.plan.configs {
            if kept
                .get(&config.id)
                .is_some_and(|r| r.outcome == RunOutcome::PredictedInfeasible)
            {
                ctx.journal(JournalEvent::ConfigRerun {
                    config_id: config.id.clone(),
                    name: config.name.clone(),
                    previous: RunOutcome::PredictedInfeasible,
                    why: "--verify-predictions".to_string(),
                })?;
                kept.remove(&config.id);
            }
        }
    }
    let pending: Vec<&PlannedConfig> = setup
        .plan
        .configs
        .iter()
        .filter(|c| !kept.contains_key(&c.id))
        .collect();
    let mut predictions = Predictions::new();
    if pending.is_empty() {
        return Ok(predictions);
    }
    let inputs = gather(
        &setup.profile,
        &environment,
        &setup.battery.gpu_profile.command,
    )
    .await;
    for source in &inputs.sources {
        tracing::info!("memory prediction {source}");
    }
    for reason in &inputs.missing {
        tracing::info!("memory prediction unknown: {reason}");
    }
    for config in pending {
        let prediction = predict_config(&inputs, &setup.profile, config, &environment);
        if let (Verdict::PredictedFailure { class, message }, false) = (&prediction.verdict, verify)
        {
            let result = infeasible(ctx, config, &prediction, class.as_str(), message);
            ctx.store.write_result(&result)?;
            ctx.journal(JournalEvent::ConfigFinished {
                config_id: config.id.clone(),
                name: config.name.clone(),
                outcome: RunOutcome::PredictedInfeasible,
            })?;
            tracing::info!(config = %config.name, class = class.as_str(), "predicted infeasible, not started: {message}");
            ctx.event(&SearchEvent::ConfigFinished {
                config: config.name.clone(),
                summary: format!(
                    "predicted infeasible ({}), not started; --verify-predictions starts it",
                    class.name()
                ),
            });
            kept.insert(config.id.clone(), result);
        }
        predictions.insert(config.id.clone(), prediction);
    }
    Ok(predictions)
}

/// The result of a config the prediction says vLLM refuses.
fn infeasible(
    ctx: &RunContext<'_>,
    config: &PlannedConfig,
    prediction: &Prediction,
    class: &str,
    message: &str,
) -> ConfigResult {
    let now = now_unix_ms();
    ConfigResult {
        format_version: STORE_FORMAT_VERSION,
        config: config.clone(),
        outcome: RunOutcome::PredictedInfeasible,
        command: grid_container::render_command(&ctx.setup.profile.command, &config.flags()),
        failed_attempts: Vec::new(),
        repeats: Vec::new(),
        failure: Some(plain_failure(
            class,
            format!("predicted by the memory model, not started: {message}"),
            true,
        )),
        timing: ConfigTiming::default(),
        started_unix_ms: now,
        finished_unix_ms: now,
        prediction: Some(PredictionRecord {
            prediction: prediction.clone(),
            held: None,
        }),
    }
}

/// What the server's start says about a prediction: `None` when it was
/// not started (or the start was cut short), else the diagnosed class of a
/// failed start (`Some(None)`: it started).
fn actual_start(result: &ConfigResult) -> Option<Option<&str>> {
    match result.outcome {
        RunOutcome::Completed => Some(None),
        RunOutcome::LaunchFailed => result
            .failure
            .as_ref()
            .filter(|f| f.config_fault)
            .map(|f| Some(f.class.as_str())),
        // A deadline before any repeat may have cut the start short;
        // otherwise it was ready, then died or ran out of time.
        RunOutcome::Failed => {
            let deadline = result
                .failure
                .as_ref()
                .is_some_and(|f| DEADLINE_CLASSES.contains(&f.class.as_str()));
            (!deadline || !result.repeats.is_empty()).then_some(None)
        }
        _ => None,
    }
}

/// Writes each prediction into the result of its config, with `held`.
pub(crate) fn record_predictions(
    ctx: &RunContext<'_>,
    predictions: &Predictions,
) -> Result<(), SearchError> {
    if predictions.is_empty() {
        return Ok(());
    }
    let results = ctx.store.read_results()?;
    for (id, prediction) in predictions {
        let Some(result) = results.get(id) else {
            continue;
        };
        if result.prediction.is_some() {
            continue;
        }
        let held = actual_start(result).and_then(|actual| prediction.held(actual));
        let mut result = result.clone();
        result.prediction = Some(PredictionRecord {
            prediction: prediction.clone(),
            held,
        });
        ctx.store.write_result(&result)?;
        if held == Some(false) {
            tracing::warn!(
                config = %result.config.name,
                predicted = prediction.verdict_name(),
                "the memory prediction did not hold"
            );
        }
    }
    Ok(())
}
