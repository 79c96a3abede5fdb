//! `vllm-grid bench`: the battery against a server that is already up.
//!
//! The endpoint is probed first (`grid_bench::probe`: `/v1/models`, then
//! one short streaming request), so a wrong URL, a closed port, an HTML
//! page or a server that does not stream fails in seconds with the reason
//! (exit 5) instead of running the whole battery into failures. After the
//! battery the table shows each failed benchmark's most frequent failure
//! reasons (grid-bench's `render_table`), and the exit code says whether
//! every benchmark completed (exit 3 when one did not: the measurement ran,
//! but its result is not valid, as a search that finds no valid config).

use grid_bench::{BatteryReport, ProbeConfig, probe};
use std::sync::Arc;

use crate::cli::BenchArgs;
use crate::drive::STOP_GRACE;
use crate::error::{AppError, EXIT_INTERRUPTED, EXIT_NO_VALID_RESULT, EXIT_OK};
use crate::out::{errln, out, outln};
use crate::signals::Signals;
use crate::ui;

pub async fn run(args: BenchArgs) -> Result<u8, AppError> {
    let api_key = match &args.api_key_env {
        Some(name) => Some(grid_core::Secret::new(
            std::env::var(name).map_err(|_| AppError::MissingApiKeyEnv { name: name.clone() })?,
        )),
        None => None,
    };
    let config = match &args.battery {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| AppError::ReadBattery {
                path: path.clone(),
                source,
            })?;
            let value: serde_json::Value =
                serde_json::from_str(&text).map_err(|source| AppError::BatteryJson {
                    path: path.clone(),
                    source,
                })?;
            crate::load::check_battery(path, &value)?
        }
        None => grid_bench::BatteryConfig::default(),
    };
    let signals = Signals::install(STOP_GRACE).map_err(|source| AppError::Signals { source })?;
    let endpoint = grid_bench::Endpoint {
        base_url: args.base_url.clone(),
        model: args.model.clone(),
        api_key,
    };
    // Bounded (seconds), so a server that is not there, not vLLM or not
    // streaming costs seconds, not the battery's whole length.
    let probe_config = ProbeConfig::default();
    let probed = tokio::select! {
        result = probe(&endpoint, &probe_config) => result,
        _ = signals.soft.cancelled() => return Ok(EXIT_INTERRUPTED),
    };
    let report = probed.map_err(|source| AppError::Probe {
        url: endpoint.root().to_string(),
        source,
    })?;
    tracing::info!(elapsed = ?report.elapsed, "the endpoint answers; starting the battery");
    let options = grid_bench::RunOptions {
        only: (!args.only.is_empty()).then(|| args.only.clone()),
        out_dir: args.out.clone(),
        progress: ui::fancy()
            .then(|| Arc::new(ui::BatteryBars::new()) as Arc<dyn grid_bench::BatteryProgress>),
        cancel: signals.soft.clone(),
        seed: args.seed,
    };
    let report = tokio::select! {
        result = grid_bench::run_battery_isolated(endpoint, config, options) => result,
        _ = signals.hard.cancelled() => return Ok(EXIT_INTERRUPTED),
    };
    let report = match report {
        Ok(report) => report,
        Err(grid_bench::BatteryError::Cancelled) => return Ok(EXIT_INTERRUPTED),
        Err(source) => return Err(AppError::Battery { source }),
    };
    out!("{}", grid_bench::render_table(&report))?;
    if let Some(out) = &args.out {
        outln!("results: {}", out.display())?;
    }
    let incomplete = incomplete_benchmarks(&report);
    if incomplete.is_empty() {
        return Ok(EXIT_OK);
    }
    errln!(
        "vllm-grid: {} benchmark(s) did not complete: {}",
        incomplete.len(),
        incomplete.join(", ")
    );
    Ok(EXIT_NO_VALID_RESULT)
}

/// Benchmarks that failed, timed out or had too few successful requests. A
/// benchmark that is unavailable here (gpu_profile without nvidia-smi) is
/// not a failure, as in the ranking's gate.
fn incomplete_benchmarks(report: &BatteryReport) -> Vec<String> {
    report
        .benchmarks
        .iter()
        .filter(|b| b.status.is_failure())
        .map(|b| b.name.as_str().to_string())
        .collect()
}
