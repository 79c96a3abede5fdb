//! `vllm-grid reproduce ARCHIVE`: re-run an archived plan with its profile,
//! battery and seeds into a new run, and compare config by config.

use grid_search::archive::{compare, open_archive};
use grid_search::store::{RunStore, new_run_id};
use grid_search::{SearchMode, SearchOptions};

use super::Dirs;
use crate::cli::{BackendKind, ReproduceArgs};
use crate::drive::{SearchInputs, drive, prepare};
use crate::dry_run;
use crate::error::{AppError, EXIT_INTERRUPTED, EXIT_NOT_CONFIRMED, EXIT_OK};
use crate::load::{Variables, load_profile_file};
use crate::out::{errln, out, outln};

pub async fn run(dirs: &Dirs, args: ReproduceArgs) -> Result<u8, AppError> {
    let service = args.service.service.as_deref();
    let archive = open_archive(&args.dir)?;
    let manifest = &archive.manifest;
    // The archived profile's own copy counts as the same profile (its hash
    // is what is compared); --profile is reported as a change.
    let profile_path = match &args.profile {
        Some(path) => path.clone(),
        None => args.dir.join("profile.yml"),
    };
    let mut profile = load_profile_file(&profile_path, service)?;
    let variables = if manifest.simulated {
        let (simulated, variables) = dry_run::simulated(profile.profile)?;
        profile.profile = simulated;
        variables
    } else {
        Variables::new()
    };
    let kind = args
        .backend
        .unwrap_or(BackendKind::from_manifest(&manifest.backend));
    let run_id = args
        .run_id
        .unwrap_or_else(|| format!("reproduce-{}", new_run_id()));
    let manifest_path = args.dir.join("manifest.json");
    let inputs = SearchInputs {
        run_id: run_id.clone(),
        plan_path: manifest_path,
        plan: manifest.plan.clone(),
        // The archived run's effective parameters, defaults included.
        battery: manifest.battery.clone(),
        profile,
        simulated: manifest.simulated,
        variables,
    };
    let (backend, setup, variables) = prepare(&dirs.logs, kind, inputs).await?;
    let options = SearchOptions {
        mode: SearchMode::Reproduce,
        variables,
        ..SearchOptions::default()
    };
    let Some(outcome) = drive(&backend, &setup, &options).await? else {
        errln!("vllm-grid: reproduction interrupted; resume it with `vllm-grid resume {run_id}`");
        return Ok(EXIT_INTERRUPTED);
    };
    let store = RunStore::at(&dirs.logs, &run_id)?;
    let new_manifest = store.read_manifest()?;
    let reproduction = compare(&archive, &new_manifest, &outcome.report.ranking);
    reproduction.write(&store)?;
    out!("{}", reproduction.render())?;
    outln!(
        "\nreproduction: {}",
        store.dir.join("reproduction.md").display()
    )?;
    Ok(if reproduction.champion_holds {
        EXIT_OK
    } else {
        EXIT_NOT_CONFIRMED
    })
}
