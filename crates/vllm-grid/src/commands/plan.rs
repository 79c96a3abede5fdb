//! `vllm-grid plan`: the plan as a table, its battery section checked as
//! the search reads it, and optionally each config's server command.

use grid_plan::Plan;

use super::plan_predict::{self, PlanPredictions};
use crate::cli::PlanArgs;
use crate::error::{AppError, EXIT_OK};
use crate::load::{check_battery, load_plan, load_profile_file, relative_to};
use crate::out::outln;

pub async fn run(args: &PlanArgs) -> Result<u8, AppError> {
    let (plan_path, plan) = load_plan(&args.configs, args.dry_run)?;
    let plan = if args.dry_run {
        crate::dry_run::dry_run_plan(plan)
    } else {
        plan
    };
    // `search` would refuse a bad battery section after starting; refuse it
    // here, naming the JSON path.
    check_battery(&args.configs, &plan.battery)?;
    let predictions = plan_predict::predict(args, &plan_path, &plan).await;
    if args.json {
        plan_predict::print_json(&plan, &predictions)?;
        return Ok(EXIT_OK);
    }
    print_table(args, &plan, &predictions)?;
    plan_predict::print_notes(&plan, &predictions)?;
    if args.show_commands {
        let (path, profile) = if args.dry_run {
            let loaded = crate::dry_run::dry_run_profile(
                args.profile.as_deref(),
                &plan_path,
                args.service.service.as_deref(),
            )?;
            (std::path::PathBuf::from(&loaded.label), loaded.profile)
        } else {
            let path = match &args.profile {
                Some(p) => p.clone(),
                None => relative_to(&plan_path, &plan.profile),
            };
            let profile = load_profile_file(&path, args.service.service.as_deref())?.profile;
            (path, profile)
        };
        outln!(
            "\nserver commands (profile {}, service {}, image {}):",
            path.display(),
            profile.service_name,
            profile.image
        )?;
        // The process backend runs its own program (an image's entrypoint
        // does not exist outside the image): say so, or the lines below
        // would name a program the process backend never starts.
        if let Some(program) = &profile.process.entrypoint {
            outln!(
                "  (the process backend runs `{}` with the same arguments)",
                program.join(" ")
            )?;
        }
        let entry = profile
            .entrypoint
            .clone()
            .unwrap_or_else(|| vec!["vllm".to_string(), "serve".to_string()]);
        for c in &plan.configs {
            let command = grid_container::render_command(&profile.command, &c.flags());
            let line: Vec<String> = entry
                .iter()
                .chain(command.iter())
                .map(|t| shell_quote(t))
                .collect();
            outln!("{}:\n  {}", c.name, line.join(" "))?;
        }
    }
    Ok(EXIT_OK)
}

fn print_table(
    args: &PlanArgs,
    plan: &Plan,
    predictions: &PlanPredictions,
) -> Result<(), AppError> {
    outln!(
        "plan {}: {} config(s), {} repeat(s) each, profile {}",
        args.configs.display(),
        plan.configs.len(),
        plan.repeats,
        plan.profile
    )?;
    let width = plan
        .configs
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    outln!(
        "{:>3}  {:<width$}  {:<16}  {:>5}  {:<7}  {:<6}  {:<36}  {:>9}  other",
        "#",
        "name",
        "id",
        "gmu",
        "chunked",
        "prefix",
        "memory prediction",
        "KV tokens"
    )?;
    let on_off = |v: Option<bool>| match v {
        Some(true) => "on",
        Some(false) => "off",
        None => "-",
    };
    for ((i, c), prediction) in plan.configs.iter().enumerate().zip(&predictions.configs) {
        let s = &c.settings;
        let mut other = s.clone();
        other.gpu_memory_utilization = None;
        other.enable_chunked_prefill = None;
        other.enable_prefix_caching = None;
        outln!(
            "{:>3}  {:<width$}  {:<16}  {:>5}  {:<7}  {:<6}  {:<36}  {:>9}  {}",
            i + 1,
            c.name,
            c.id,
            s.gpu_memory_utilization
                .map(|g| format!("{g:.2}"))
                .unwrap_or_else(|| "-".to_string()),
            on_off(s.enable_chunked_prefill),
            on_off(s.enable_prefix_caching),
            plan_predict::cell(prediction),
            plan_predict::tokens(prediction),
            other.summary()
        )?;
    }
    for e in &plan.excluded {
        outln!(
            "excluded: {} [{}] by {}: {}",
            e.name,
            e.id,
            e.rule,
            e.reason
        )?;
    }
    for w in &plan.warnings {
        outln!("warning: {w}")?;
    }
    Ok(())
}

fn shell_quote(token: &str) -> String {
    if !token.is_empty()
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@${}+".contains(c))
    {
        token.to_string()
    } else {
        format!("'{}'", token.replace('\'', "'\\''"))
    }
}
