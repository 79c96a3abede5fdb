//! `vllm-grid worker --spec FILE --out FILE`: one unit of work (one config
//! × one repeat) from its spec, on this node: start the server on the
//! spec's backend and GPU slot, run the battery beside it, tear it down,
//! and write the unit result atomically. An executor's job runs this (a
//! Ray job's entrypoint, a Kubernetes Job's command, an `sbatch` script).
//!
//! The spec holds no secret: the profile's `${VAR}` references are read
//! from this environment (a dry run's spec gets random values, as a dry
//! run does). SIGINT or SIGTERM (a job stopped) cuts the unit short: the
//! result says so and the exit is 130.
//!
//! The result also goes to stdout as one last line, `VLLM_GRID_RESULT
//! <json>`, for an executor that reads the job's log rather than a file on
//! the node (Ray). A spec without a slot, run where `CUDA_VISIBLE_DEVICES`
//! is set (Ray sets it to the GPUs it gave the job), runs on those GPUs.

use std::time::Duration;

use grid_container::GpuSlot;
use grid_search::search::executor::{RESULT_LINE_PREFIX, UnitEndRecord, UnitSpec, run_unit_spec};
use grid_search::{QuietProgress, SearchOptions, SearchSetup};

use super::Dirs;
use crate::cli::{BackendKind, WorkerArgs};
use crate::drive::STOP_GRACE;
use crate::dry_run;
use crate::error::{AppError, EXIT_INTERRUPTED, EXIT_OK};
use crate::load::{self, Variables};
use crate::out::outln;
use crate::signals::Signals;

pub async fn run(dirs: &Dirs, args: WorkerArgs) -> Result<u8, AppError> {
    let mut spec = UnitSpec::read(&args.spec).map_err(|source| AppError::UnitSpec { source })?;
    if spec.slot.is_none() {
        spec.slot = given_gpus(std::env::var("CUDA_VISIBLE_DEVICES").ok().as_deref());
    }
    let loaded =
        load::parse_profile_text(&spec.profile_text, &spec.profile_file, Some(&spec.service))?;
    let (profile, variables) = if spec.simulated {
        dry_run::simulated(loaded.profile)?
    } else {
        (loaded.profile, Variables::new())
    };
    let battery = load::check_battery(&args.spec, &spec.battery)?;
    let kind = BackendKind::from_manifest(&spec.backend);
    let backend = load::make_backend(kind, &dirs.logs).await?;
    // Servers a killed worker left on this node go first.
    backend
        .sweep_leftovers(&grid_container::SweepOptions::default())
        .await
        .map_err(|source| AppError::Sweep { source })?;
    let setup = SearchSetup {
        logs_root: dirs.logs.clone(),
        run_id: spec.run_id.clone(),
        plan_file: args.spec.display().to_string(),
        plan: spec.plan.clone(),
        profile_file: spec.profile_file.clone(),
        profile_text: spec.profile_text.clone(),
        profile,
        image: None,
        simulated: spec.simulated,
        battery,
    };
    let options = SearchOptions {
        replace_foreign: spec.replace_foreign,
        grace_period: Duration::from_millis(spec.grace_period_ms),
        variables,
        ..SearchOptions::default()
    };
    let signals = Signals::install(STOP_GRACE).map_err(|source| AppError::Signals { source })?;
    let unit = run_unit_spec(
        &backend,
        &setup,
        &spec,
        &options,
        &signals.soft,
        &QuietProgress,
    );
    let result = tokio::select! {
        result = unit => result?,
        // A second signal: the unit's guards removed its server as the
        // future was dropped; no result, the orchestrator runs it again.
        _ = signals.hard.cancelled() => return Ok(EXIT_INTERRUPTED),
    };
    result
        .write(&args.out)
        .map_err(|source| AppError::UnitSpec { source })?;
    let line =
        serde_json::to_string(&result).map_err(|source| AppError::EncodeResult { source })?;
    outln!("{RESULT_LINE_PREFIX}{line}")?;
    tracing::info!(
        config = %spec.config_id,
        repeat = spec.repeat,
        out = %args.out.display(),
        "unit result written"
    );
    Ok(match result.end {
        UnitEndRecord::CutShort if signals.received().is_some() => EXIT_INTERRUPTED,
        _ => EXIT_OK,
    })
}

/// The GPUs the node's scheduler gave this process (`CUDA_VISIBLE_DEVICES`)
/// as a slot; its index is the first device's number, so two jobs on one
/// node get distinct container names and ports.
fn given_gpus(visible: Option<&str>) -> Option<GpuSlot> {
    let devices: Vec<String> = visible?
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .collect();
    let index = devices.first()?.parse().unwrap_or(0);
    Some(GpuSlot { index, devices })
}

#[cfg(test)]
mod tests {
    use grid_core::testing::check;

    use super::given_gpus;

    #[test]
    fn the_gpus_the_scheduler_gave_become_the_slot() {
        let slot = |index: u32, devices: &[&str]| {
            Some((
                index,
                devices.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            ))
        };
        check(
            &[
                ("unset", None, None),
                ("empty", Some(""), None),
                ("two", Some("2,3"), slot(2, &["2", "3"])),
                ("uuid", Some("GPU-a"), slot(0, &["GPU-a"])),
            ],
            |visible| given_gpus(*visible).map(|slot| (slot.index, slot.devices)),
        );
    }
}
