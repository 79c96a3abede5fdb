//! `vllm-grid resume RUN`: continue a run after a crash, Ctrl-C or kill -9,
//! with the plan and profile it started with.

use std::path::{Path, PathBuf};

use grid_plan::Plan;
use grid_search::store::{RunStore, read_json};
use grid_search::{Manifest, SearchMode, SearchOptions};

use super::Dirs;
use crate::cli::{BackendKind, ResumeArgs};
use crate::drive::{SearchInputs, search_and_report};
use crate::dry_run;
use crate::error::AppError;
use crate::load::{LoadedProfile, Variables, load_plan, load_profile_file};
use crate::{executor, slots};

pub async fn run(dirs: &Dirs, args: ResumeArgs) -> Result<u8, AppError> {
    let service = args.service.service.as_deref();
    let store = RunStore::at(&dirs.logs, &args.run_id)?;
    let manifest = store.read_manifest()?;
    let (plan_path, plan, battery) = plan_of(&manifest)?;
    let profile = profile_of(&store, &manifest, service)?;
    let (profile, variables) = if manifest.simulated {
        let mut profile = profile;
        let (simulated, variables) = dry_run::simulated(profile.profile)?;
        profile.profile = simulated;
        (profile, variables)
    } else {
        (profile, Variables::new())
    };
    let slots = slots::resolve(
        &args.slots.gpu_slots,
        &plan,
        &profile.profile,
        manifest.simulated,
    )?;
    let executor = executor::resolve(&args.executor, &slots)?;
    let options = SearchOptions {
        executor,
        slots,
        mode: SearchMode::Resume {
            allow_changes: args.allow_changes,
        },
        replace_foreign: args.replace_foreign,
        retry_failed: args.retry_failed,
        verify_predictions: args.verify_predictions,
        ..SearchOptions::default()
    };
    let inputs = SearchInputs {
        run_id: args.run_id,
        plan_path,
        battery,
        plan,
        profile,
        simulated: manifest.simulated,
        variables,
    };
    let kind = BackendKind::from_manifest(&manifest.backend);
    search_and_report(&dirs.logs, kind, inputs, options).await
}

/// The plan file as it is now (the search compares it with the manifest's),
/// or the manifest's copy when the file is gone or was built in, or when
/// it is an archive's manifest (a reproduction: its plan is the archived
/// one). With the battery parameters to run.
fn plan_of(manifest: &Manifest) -> Result<(PathBuf, Plan, serde_json::Value), AppError> {
    let path = Path::new(&manifest.plan_file);
    let recorded = || {
        (
            PathBuf::from(&manifest.plan_file),
            manifest.plan.clone(),
            manifest.battery.clone(),
        )
    };
    if manifest.plan_file == dry_run::EMBEDDED_PLAN_LABEL {
        return Ok(recorded());
    }
    if !path.exists() {
        tracing::warn!(file = %manifest.plan_file, "the plan file is gone; resuming with the plan recorded in the manifest");
        return Ok(recorded());
    }
    if read_json::<Manifest>(path).is_ok() {
        return Ok(recorded());
    }
    let (path, plan) = load_plan(path, false)?;
    let plan = if manifest.simulated {
        dry_run::dry_run_plan(plan)
    } else {
        plan
    };
    let battery = plan.battery.clone();
    Ok((path, plan, battery))
}

/// The profile file as it is now, or the run directory's copy when it is gone.
fn profile_of(
    store: &RunStore,
    manifest: &Manifest,
    service: Option<&str>,
) -> Result<LoadedProfile, AppError> {
    if manifest.profile_file == dry_run::EMBEDDED_SIM_LABEL {
        return dry_run::embedded_sim_profile(service);
    }
    if Path::new(&manifest.profile_file).exists() {
        return load_profile_file(Path::new(&manifest.profile_file), service);
    }
    tracing::warn!(file = %manifest.profile_file, "the profile is gone; resuming with the copy in the run directory");
    let copy = load_profile_file(&store.profile_copy_path(), service)?;
    Ok(LoadedProfile {
        label: manifest.profile_file.clone(),
        ..copy
    })
}
