//! `vllm-grid search`: every config of the plan, unattended; `--dry-run`
//! on the simulator built into this binary.

use grid_search::store::new_run_id;
use grid_search::{SearchMode, SearchOptions};

use super::Dirs;
use crate::cli::{BackendKind, SearchArgs};
use crate::drive::{SearchInputs, search_and_report};
use crate::dry_run;
use crate::error::AppError;
use crate::load::{Variables, load_plan, load_profile_file, relative_to};
use crate::{executor, slots};

pub async fn run(dirs: &Dirs, args: SearchArgs) -> Result<u8, AppError> {
    let service = args.service.service.as_deref();
    let kind = args.backend.unwrap_or(if args.dry_run {
        BackendKind::Process
    } else {
        BackendKind::Docker
    });
    let run_id = args.run_id.unwrap_or_else(new_run_id);
    let (plan_path, plan) = load_plan(&args.configs, args.dry_run)?;
    let (plan, profile, variables) = if args.dry_run {
        let mut loaded = dry_run::dry_run_profile(args.profile.as_deref(), &plan_path, service)?;
        let (profile, variables) = dry_run::simulated(loaded.profile)?;
        loaded.profile = profile;
        (dry_run::dry_run_plan(plan), loaded, variables)
    } else {
        let path = match &args.profile {
            Some(p) => p.clone(),
            None => relative_to(&plan_path, &plan.profile),
        };
        (plan, load_profile_file(&path, service)?, Variables::new())
    };
    let slots = slots::resolve(&args.slots.gpu_slots, &plan, &profile.profile, args.dry_run)?;
    let executor = executor::resolve(&args.executor, &slots)?;
    let options = SearchOptions {
        executor,
        mode: SearchMode::New,
        replace_foreign: args.replace_foreign,
        verify_predictions: args.verify_predictions,
        slots,
        ..SearchOptions::default()
    };
    let inputs = SearchInputs {
        run_id,
        plan_path,
        battery: plan.battery.clone(),
        plan,
        profile,
        simulated: args.dry_run,
        variables,
    };
    search_and_report(&dirs.logs, kind, inputs, options).await
}
