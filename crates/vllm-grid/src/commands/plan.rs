//! `vllm-grid plan`: the plan as a table, its battery section checked as
//! the search reads it, and optionally each config's server command.

use grid_plan::Plan;

use crate::cli::PlanArgs;
use crate::error::{AppError, EXIT_OK};
use crate::load::{check_battery, load_plan, load_profile_file, relative_to};
use crate::out::outln;

pub fn run(args: &PlanArgs) -> Result<u8, AppError> {
    let (plan_path, plan) = load_plan(&args.configs, false)?;
    // `search` would refuse a bad battery section after starting; refuse it
    // here, naming the JSON path.
    check_battery(&args.configs, &plan.battery)?;
    print_table(args, &plan)?;
    if args.show_commands {
        let path = match &args.profile {
            Some(p) => p.clone(),
            None => relative_to(&plan_path, &plan.profile),
        };
        let profile = load_profile_file(&path, args.service.service.as_deref())?.profile;
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

fn print_table(args: &PlanArgs, plan: &Plan) -> Result<(), AppError> {
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
        "{:>3}  {:<width$}  {:<16}  {:>5}  {:<7}  {:<6}  other",
        "#",
        "name",
        "id",
        "gmu",
        "chunked",
        "prefix"
    )?;
    let on_off = |v: Option<bool>| match v {
        Some(true) => "on",
        Some(false) => "off",
        None => "-",
    };
    for (i, c) in plan.configs.iter().enumerate() {
        let s = &c.settings;
        let mut other = s.clone();
        other.gpu_memory_utilization = None;
        other.enable_chunked_prefill = None;
        other.enable_prefix_caching = None;
        outln!(
            "{:>3}  {:<width$}  {:<16}  {:>5}  {:<7}  {:<6}  {}",
            i + 1,
            c.name,
            c.id,
            s.gpu_memory_utilization
                .map(|g| format!("{g:.2}"))
                .unwrap_or_else(|| "-".to_string()),
            on_off(s.enable_chunked_prefill),
            on_off(s.enable_prefix_caching),
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
