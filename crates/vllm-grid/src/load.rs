//! Loading what the commands share: the plan, the profile (one service of
//! a compose file), the backend, the checks made before anything starts,
//! and the fingerprint of what the server runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use grid_container::{
    Backend, DockerBackend, DockerBackendConfig, ProcessBackend, ProcessBackendConfig, Profile,
    ProfileError, ProfileOptions, Redactor,
};
use grid_core::Secret;
use grid_plan::Plan;

use crate::cli::BackendKind;
use crate::dry_run;
use crate::error::AppError;

/// A profile as loaded: the label recorded in the manifest, its text
/// (hashed and copied into the run; `${VAR}` unexpanded) and the parsed
/// service.
pub struct LoadedProfile {
    pub label: String,
    pub text: String,
    pub profile: Profile,
}

/// Values for `${VAR}` that the process environment does not hold (the dry
/// run's generated secrets). They go to the launch through the search's
/// options, never into this process's environment.
pub type Variables = BTreeMap<String, Secret>;

/// Reads and validates a plan file. In a dry run, a missing default plan
/// falls back to the one built into the binary.
pub fn load_plan(path: &Path, dry_run: bool) -> Result<(PathBuf, Plan), AppError> {
    let (label, text) = match std::fs::read_to_string(path) {
        Ok(text) => (
            std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
            text,
        ),
        Err(err)
            if dry_run
                && err.kind() == std::io::ErrorKind::NotFound
                && path == Path::new("grid_search_configs.json") =>
        {
            tracing::info!("no grid_search_configs.json here; the dry run uses the shipped plan");
            (
                PathBuf::from(dry_run::EMBEDDED_PLAN_LABEL),
                dry_run::EMBEDDED_PLAN.to_string(),
            )
        }
        Err(source) => {
            return Err(AppError::ReadPlan {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let plan = grid_plan::parse_plan(&text).map_err(|source| AppError::Plan {
        path: path.to_path_buf(),
        source,
    })?;
    for warning in &plan.warnings {
        tracing::warn!("{}: {warning}", path.display());
    }
    Ok((label, plan))
}

/// Reads a battery section (a plan's, or a manifest's effective one) as
/// the search will, so that `plan` refuses what `search` would refuse.
/// `path` names the file it came from.
pub fn check_battery(
    path: &Path,
    battery: &serde_json::Value,
) -> Result<grid_bench::BatteryConfig, AppError> {
    grid_search::battery::battery_config(battery).map_err(|source| AppError::PlanBattery {
        path: path.to_path_buf(),
        source: Box::new(source),
    })
}

/// A path from the plan, relative to the plan file's directory.
pub fn relative_to(plan_path: &Path, target: &str) -> PathBuf {
    let target = Path::new(target);
    if target.is_absolute() {
        return target.to_path_buf();
    }
    match plan_path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && plan_path.exists() => dir.join(target),
        _ => target.to_path_buf(),
    }
}

fn profile_error(path: &Path, source: ProfileError) -> AppError {
    match source {
        ProfileError::AmbiguousService { .. } => AppError::ChooseService {
            path: path.to_path_buf(),
            source,
        },
        source => AppError::Profile {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// Reads a profile file and picks `service` (or its only service).
pub fn load_profile_file(path: &Path, service: Option<&str>) -> Result<LoadedProfile, AppError> {
    let text = std::fs::read_to_string(path).map_err(|source| AppError::Profile {
        path: path.to_path_buf(),
        source: ProfileError::Read {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let options = ProfileOptions {
        service: service.map(str::to_string),
    };
    let loaded = grid_container::load_profile_with(path, &options)
        .map_err(|source| profile_error(path, source))?;
    for warning in &loaded.warnings {
        tracing::warn!("{}: {warning}", path.display());
    }
    let label = std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string();
    Ok(LoadedProfile {
        label,
        text,
        profile: loaded.profile,
    })
}

/// Parses profile text that is not a file of its own (the copy built into
/// the binary); relative paths in it are relative to the working directory.
pub fn parse_profile_text(
    text: &str,
    label: &str,
    service: Option<&str>,
) -> Result<LoadedProfile, AppError> {
    let options = ProfileOptions {
        service: service.map(str::to_string),
    };
    let loaded = grid_container::parse_profile_with(text, label, &options)
        .map_err(|source| profile_error(Path::new(label), source))?;
    let mut profile = loaded.profile;
    profile.base_dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    Ok(LoadedProfile {
        label: label.to_string(),
        text: text.to_string(),
        profile,
    })
}

/// A lookup for `${VAR}`: `variables` first, then the environment.
pub fn lookup(variables: &Variables) -> impl Fn(&str) -> Option<String> + '_ {
    move |name| match variables.get(name) {
        Some(value) => Some(value.expose().to_string()),
        None => std::env::var(name).ok(),
    }
}

/// A missing secret is bad input, found before anything starts.
pub fn preflight_secrets(profile: &Profile, variables: &Variables) -> Result<(), AppError> {
    match profile.resolve(&lookup(variables)) {
        Ok(_) => Ok(()),
        Err(grid_container::ResolveError::MissingVariables { variables, .. }) => {
            Err(AppError::MissingSecret {
                path: profile.source.clone(),
                variables: variables
                    .iter()
                    .map(|v| format!("{} ({})", v.name, v.reason))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
        Err(source) => Err(AppError::ResolveProfile {
            path: profile.source.clone(),
            source,
        }),
    }
}

/// Values of the profile's variables in this environment, to scrub from
/// archived files.
pub fn environment_redactor(profile_text: &str) -> Redactor {
    let mut redactor = Redactor::new();
    if let Ok(loaded) = grid_container::parse_profile(profile_text, "archived profile") {
        for name in loaded.profile.referenced_variables() {
            if let Ok(value) = std::env::var(&name) {
                let upper = name.to_ascii_uppercase();
                if ["KEY", "TOKEN", "SECRET", "PASSWORD"]
                    .iter()
                    .any(|w| upper.contains(w))
                {
                    redactor.add_always(&value);
                } else {
                    redactor.add(&value);
                }
            }
        }
    }
    redactor
}

pub async fn make_backend(kind: BackendKind, logs: &Path) -> Result<Backend, AppError> {
    match kind {
        BackendKind::Process => {
            let mut config = ProcessBackendConfig::new(logs.join(".pids"));
            // `vllm-sim` in a profile runs the simulator built into this binary.
            if let Ok(exe) = std::env::current_exe() {
                config.program_overrides.insert(
                    "vllm-sim".to_string(),
                    vec![exe.display().to_string(), "sim".to_string()],
                );
            }
            Ok(Backend::Process(ProcessBackend::new(config)))
        }
        BackendKind::Docker => {
            let backend = DockerBackend::connect(DockerBackendConfig::default())
                .await
                .map_err(|source| AppError::Docker { source })?;
            Ok(Backend::Docker(backend))
        }
    }
}

/// What the server runs: the image ID on docker; the program's path, size
/// and modification time on the process backend.
pub async fn image_fingerprint(
    backend: &Backend,
    profile: &Profile,
    variables: &Variables,
) -> Option<String> {
    match backend {
        Backend::Docker(docker) => {
            let image = docker.client().inspect_image(&profile.image).await.ok()?;
            Some(format!(
                "{} {}",
                profile.image,
                image.id.unwrap_or_else(|| "unknown-id".to_string())
            ))
        }
        Backend::Process(process) => {
            // The program path may hold ${VAR} references (cpu-tiny.yml's
            // venv): fingerprint the file the launch will really run. A
            // profile that cannot resolve has no fingerprint; the launch's
            // preflight reports the missing variable itself.
            let resolved_profile = profile.resolve(&lookup(variables)).ok()?;
            let entry = resolved_profile
                .process_entrypoint
                .or(resolved_profile.entrypoint)
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| process.config().default_entrypoint.clone());
            let program = entry.first()?.clone();
            let resolved = match process.config().program_overrides.get(&program) {
                Some(replacement) if !replacement.is_empty() => PathBuf::from(&replacement[0]),
                _ => which(&program).unwrap_or_else(|| PathBuf::from(&program)),
            };
            // A program we cannot stat has no fingerprint (as an image the
            // engine cannot inspect), rather than a made-up size and mtime of 0.
            let meta = std::fs::metadata(&resolved).ok()?;
            let modified = meta
                .modified()
                .ok()?
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_secs();
            Some(format!(
                "process:{program}={} size={} mtime={modified}",
                resolved.display(),
                meta.len()
            ))
        }
    }
}

fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}
