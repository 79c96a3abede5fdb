//! One repeat on a server that is ready: the battery, then the teardown.

use std::time::Instant;

use grid_bench::BatteryError;
use grid_container::RunningServer;
use grid_plan::PlannedConfig;

use crate::SearchError;
use crate::progress::Phase;
use crate::store::{ConfigTiming, FailureRecord, JournalEvent, RepeatResult};

use super::context::RunContext;
use super::deadline::Deadline;
use super::failure::died_during_battery;

/// How a repeat ended.
pub(crate) enum RepeatEnd {
    Measured(RepeatResult),
    /// The server died while the battery ran: a verdict on the config;
    /// `measured` when the battery still finished.
    Died {
        measured: Option<RepeatResult>,
        failure: FailureRecord,
    },
    /// The deadline or the user's cancel fired.
    CutShort,
    /// The battery could not run for a reason outside the config.
    NotMeasured(Box<BatteryError>),
}

/// The repeat's battery on `server`, then its teardown (always).
pub(crate) async fn run_repeat(
    ctx: &RunContext<'_>,
    config: &PlannedConfig,
    repeat: u32,
    seed: u64,
    server: RunningServer,
    deadline: &Deadline,
    timing: &mut ConfigTiming,
) -> Result<RepeatEnd, SearchError> {
    let token = deadline.token();
    let startup_s = server.ready_after().as_secs_f64();
    ctx.journal(JournalEvent::ServerReady {
        config_id: config.id.clone(),
        startup_s,
    })?;

    // The battery, writing into a fresh directory per repeat.
    let out_dir = ctx
        .store
        .config_dir(config)
        .join(format!("repeat-{repeat}"));
    if out_dir.exists() {
        let _ = std::fs::remove_dir_all(&out_dir);
    }
    ctx.journal(JournalEvent::BatteryStarted {
        config_id: config.id.clone(),
        repeat,
    })?;
    ctx.phase(config, Phase::RunningBattery);
    let endpoint_info = server.endpoint();
    let endpoint = grid_bench::Endpoint {
        base_url: endpoint_info.base_url.clone(),
        model: endpoint_info.served_model.clone(),
        api_key: endpoint_info.api_key.clone(),
    };
    let battery_started = Instant::now();
    let battery = crate::battery::run_battery_reporting(
        ctx.progress,
        &config.name,
        endpoint,
        ctx.setup.battery.clone(),
        grid_bench::RunOptions {
            only: None,
            out_dir: Some(out_dir.clone()),
            progress: None,
            cancel: token.clone(),
            seed,
        },
    )
    .await;
    let battery_s = battery_started.elapsed().as_secs_f64();
    timing.battery_s += battery_s;
    let died = server.exited().await;
    let tail = server.log_tail();

    ctx.phase(config, Phase::TearingDown);
    let teardown_started = Instant::now();
    if let Err(err) = server.teardown().await {
        tracing::error!(config = %config.name, error = &err as &dyn std::error::Error, "teardown failed");
        ctx.journal(JournalEvent::Warning {
            message: format!("teardown of {} failed: {err}", config.name),
        })?;
    }
    let teardown_s = teardown_started.elapsed().as_secs_f64();
    timing.teardown_s += teardown_s;
    if token.is_cancelled() {
        return Ok(RepeatEnd::CutShort);
    }

    let measured = match battery {
        Ok(report) => {
            let measurement = crate::battery::measurement(&report);
            ctx.journal(JournalEvent::BatteryFinished {
                config_id: config.id.clone(),
                repeat,
                kv_cache_acceleration: measurement.kv_cache_acceleration.map(|a| a.median),
            })?;
            Ok(RepeatResult {
                repeat,
                seed,
                measurement,
                output_dir: out_dir
                    .strip_prefix(&ctx.store.dir)
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| out_dir.display().to_string()),
                server_start_s: startup_s,
                battery_s,
                teardown_s,
                // Set by the config's run, which knows the slot's neighbours.
                slot: None,
                neighbours: Vec::new(),
            })
        }
        Err(err) => Err(err),
    };
    // A server that went away explains a battery that failed with it.
    if let Some(exit) = died {
        let failure = died_during_battery(&exit, &tail);
        tracing::info!(config = %config.name, "{}", failure.message);
        return Ok(RepeatEnd::Died {
            measured: measured.ok(),
            failure,
        });
    }
    Ok(match measured {
        Ok(result) => RepeatEnd::Measured(result),
        Err(err) => {
            // Returned, printed and logged whole by the binary.
            tracing::debug!(
                config = %config.name,
                error = &err as &dyn std::error::Error,
                "the battery could not run"
            );
            RepeatEnd::NotMeasured(Box::new(err))
        }
    })
}
