//! The dry run's setup: the shipped plan and simulator profile built into
//! the binary, a battery and limits sized for a time-scaled simulator, and
//! the changes that let any number of dry runs share one machine: the
//! server gets a free port whatever the profile publishes, its API key
//! travels in the environment (`VLLM_API_KEY`), never on the command line,
//! and a secret the environment lacks gets a random value for this run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use grid_container::{EnvEntry, Profile, parse_port};
use grid_core::Secret;
use grid_plan::{Plan, Retries};

use crate::error::AppError;
use crate::load::{self, LoadedProfile, Variables};

/// The shipped plan and simulator profile, for a dry run from any directory.
pub const EMBEDDED_PLAN: &str = include_str!("../../../grid_search_configs.json");
pub const EMBEDDED_SIM_PROFILE: &str = include_str!("../../../profiles/sim.yml");
pub const EMBEDDED_PLAN_LABEL: &str = "embedded:grid_search_configs.json";
pub const EMBEDDED_SIM_LABEL: &str = "embedded:profiles/sim.yml";

/// The variable vLLM (and the simulator) reads its API key from when no
/// `--api-key` is given.
const API_KEY_VARIABLE: &str = "VLLM_API_KEY";

/// The dry run's battery: every benchmark, sized so that the default
/// 12-config grid finishes in about two minutes on a 2-core machine against
/// the simulator at `--sim-time-scale 0.02`. Keys the plan's own `battery`
/// section sets are laid over these.
///
/// `kv_cache_pressure` is not shrunk here: its size is the plan's (the
/// shipped plan's 16 conversations × 12 turns, about 185k tokens of history
/// in the end, between the simulated box's KV capacities at
/// gpu-memory-utilization 0.85 and 0.90), so the dry run measures the same
/// workload as the real search and the memory axis decides it.
///
/// Why the time scale stays 0.02 (profiles/sim.yml): the client's mean TTFT
/// exceeds the server's own by a share that barely falls with the scale on
/// a loaded 2-core host (the pressured workload: 27 % at 0.02, 17 % at 0.1,
/// 14.5 % at 0.5, load average 7–10), because the gap is the client and
/// the simulator's front end competing for the same two cores, which a
/// slower simulated model only stretches. A scale that made it 2 % would
/// make the dry run hours long; instead the noise guard marks those
/// benchmarks `disturbed` with both figures, and the champion criterion
/// rests on the pressured figure, whose gaps between configs (×18 against
/// ×7 against ×1) are far beyond that noise.
pub fn dry_run_battery() -> serde_json::Value {
    // The study's counts where they are cheap on a time-scaled simulator
    // (kv_cache 5 x 5, 15-turn conversations x 3, 20 stability requests with
    // the study's output lengths, concurrency levels 1/5/10/32); the
    // wall-clock bounds (concurrency seconds per level, stability interval)
    // are shortened, since they do not scale with --sim-time-scale.
    serde_json::json!({
        "request_timeout_s": 20.0,
        "min_successful_samples": 3,
        "bootstrap_resamples": 500,
        // The simulator's front end costs microseconds, not real vLLM's
        // 17–45 ms: any excess past 2 ms (and 10 %) is the host.
        "noise_guard": { "max_excess_ms": 2.0 },
        "kv_cache": { "iterations": 5, "turns": 5, "prefix_words": 1500, "turn_words": 12,
                      "max_tokens": 16, "equal_length_variant": true },
        "long_conversation": { "iterations": 3, "turns": 15, "user_words": 30, "max_tokens": 24 },
        "reasoning": { "max_tokens": 256, "repetitions": 1 },
        "tool_calling": { "max_tokens": 256, "repetitions": 1 },
        "stability": { "requests": 20, "interval_s": 0.1, "short_output_tokens": [50, 100],
                       "long_output_tokens": [800, 900], "compare_window": 5, "prompt_words": 20 },
        "concurrency": { "levels": [1, 5, 10, 32], "duration_s": 2.0, "max_requests_per_level": 64,
                         "turns_per_conversation": 2, "prompt_words": 40, "max_tokens": 32 },
        "gpu_profile": { "standalone_duration_s": 0.5 }
    })
}

fn merge_json(base: &mut serde_json::Value, overlay: &serde_json::Value) {
    match (base, overlay) {
        (serde_json::Value::Object(base), serde_json::Value::Object(overlay)) => {
            for (key, value) in overlay {
                merge_json(
                    base.entry(key.clone()).or_insert(serde_json::Value::Null),
                    value,
                );
            }
        }
        (base, overlay) => *base = overlay.clone(),
    }
}

/// The plan as a dry run runs it: the dry-run battery under the plan's own
/// battery keys, and limits that suit a simulator that starts in a second.
pub fn dry_run_plan(mut plan: Plan) -> Plan {
    let mut battery = dry_run_battery();
    merge_json(&mut battery, &plan.battery);
    plan.battery = battery;
    plan.limits.health_timeout = plan.limits.health_timeout.min(Duration::from_secs(60));
    plan.limits.per_config_timeout = plan.limits.per_config_timeout.min(Duration::from_secs(180));
    plan.limits.search_timeout = plan.limits.search_timeout.min(Duration::from_secs(1800));
    plan.limits.transient_retries = plan.limits.transient_retries.min(Retries::saturating(1));
    plan.limits.retry_backoff = plan.limits.retry_backoff.min(Duration::from_millis(200));
    plan
}

/// `--dry-run --gpu-slots auto`: the simulated host has no `nvidia-smi`,
/// so it is given two slots of `per_slot` simulated GPUs (`0,1 2,3` at TP
/// 2), enough to run configs side by side. Each slot's simulator is its
/// own process with its own simulated GPUs (its `--sim-gpu-*` memory
/// model, `CUDA_VISIBLE_DEVICES` set to the slot's IDs) and its own free
/// port (the profile publishes the server on a port the backend picks).
pub fn simulated_slots(per_slot: usize) -> Vec<grid_container::GpuSlot> {
    let per_slot = per_slot.max(1);
    (0..2u32)
        .map(|index| grid_container::GpuSlot {
            index,
            devices: (0..per_slot)
                .map(|gpu| (index as usize * per_slot + gpu).to_string())
                .collect(),
        })
        .collect()
}

/// The simulator profile built into the binary.
pub fn embedded_sim_profile(service: Option<&str>) -> Result<LoadedProfile, AppError> {
    load::parse_profile_text(EMBEDDED_SIM_PROFILE, EMBEDDED_SIM_LABEL, service)
}

/// The dry run's profile: --profile, else profiles/sim.yml here or next to
/// the plan, else the copy built into the binary.
pub fn dry_run_profile(
    given: Option<&Path>,
    plan_path: &Path,
    service: Option<&str>,
) -> Result<LoadedProfile, AppError> {
    if let Some(path) = given {
        return load::load_profile_file(path, service);
    }
    let candidates = [
        PathBuf::from("profiles/sim.yml"),
        load::relative_to(plan_path, "profiles/sim.yml"),
    ];
    for candidate in candidates {
        if candidate.exists() {
            return load::load_profile_file(&candidate, service);
        }
    }
    embedded_sim_profile(service)
}

/// The profile as a simulated run launches it, and the values generated
/// for the secrets the environment lacks. Applied the same way by the dry
/// run, by `resume` of a simulated run and by `reproduce` of one, so the
/// recorded profile text (and its hash) is the user's, unchanged.
pub fn simulated(profile: Profile) -> Result<(Profile, Variables), AppError> {
    let mut profile = profile;
    publish_on_a_free_port(&mut profile);
    move_api_key_to_environment(&mut profile);
    let variables = generated_secrets(&profile)?;
    Ok((profile, variables))
}

/// Rewrites the server's published port to `HOST::PORT`: the backend picks
/// a free host port at each launch (the process backend binds port 0, the
/// Docker engine chooses), so two dry runs never collide and a leaked
/// simulator cannot turn later configs into `port_in_use`. A mapping on
/// every address becomes loopback: a simulated run serves only this host.
fn publish_on_a_free_port(profile: &mut Profile) {
    if profile.network_mode.as_deref() == Some("host") {
        // The server binds its own --port on the host's network; nothing
        // is published to rewrite.
        return;
    }
    let server_port = profile.server_port();
    for text in &mut profile.ports {
        // A port written with ${VAR} does not parse before expansion; it
        // is left as the user wrote it.
        let Ok(mapping) = parse_port(text) else {
            continue;
        };
        if mapping.container_port != server_port || mapping.host_port.is_none() {
            continue;
        }
        let host = match mapping.host_ip.as_deref() {
            None | Some("0.0.0.0") => "127.0.0.1".to_string(),
            Some("::") => "[::1]".to_string(),
            Some(ip) if ip.contains(':') => format!("[{ip}]"),
            Some(ip) => ip.to_string(),
        };
        let protocol = if mapping.protocol == "tcp" {
            String::new()
        } else {
            format!("/{}", mapping.protocol)
        };
        *text = format!("{host}::{}{protocol}", mapping.container_port);
    }
}

/// Moves `--api-key VALUE` (or `--api-key=VALUE`) from the server's command
/// into `VLLM_API_KEY`, where vLLM and the simulator read it: the process
/// list shows every command line to every local user. The value keeps its
/// `${VAR}` reference; it is expanded at launch. A command with several
/// keys is left as written, for the profile's own check to refuse.
fn move_api_key_to_environment(profile: &mut Profile) {
    let mut keys = Vec::new();
    let mut command = Vec::with_capacity(profile.command.len());
    let mut tokens = profile.command.iter();
    while let Some(token) = tokens.next() {
        if token == "--api-key" {
            keys.extend(tokens.next().cloned());
        } else if let Some(value) = token.strip_prefix("--api-key=") {
            keys.push(value.to_string());
        } else {
            command.push(token.clone());
        }
    }
    let [key] = keys.as_slice() else {
        return;
    };
    let key = key.clone();
    profile.command = command;
    // vLLM prefers the flag over the variable, so the flag's value is the
    // one the server would have used.
    match profile
        .environment
        .iter_mut()
        .find(|entry| entry.name == API_KEY_VARIABLE)
    {
        Some(entry) => entry.value = Some(key),
        None => profile.environment.push(EnvEntry {
            name: API_KEY_VARIABLE.to_string(),
            value: Some(key),
        }),
    }
}

/// A random value for every variable the profile references that the
/// environment does not hold, so `${VAR}` expands exactly as in a real run
/// (the API key reaches the simulator that way). The values live in this
/// process only and reach the launch through the search's options.
fn generated_secrets(profile: &Profile) -> Result<Variables, AppError> {
    let mut variables = Variables::new();
    for name in profile.referenced_variables() {
        if std::env::var_os(&name).is_some() {
            continue;
        }
        let token = random_token().map_err(|source| AppError::GenerateSecret {
            variable: name.clone(),
            source,
        })?;
        tracing::info!(variable = %name, "simulated run: generated a random value for this run");
        variables.insert(name, Secret::new(token));
    }
    Ok(variables)
}

/// `sim-` and 32 hex digits from the operating system's random source.
fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sim-{hex}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(command: &[&str], ports: &[&str], environment: &[(&str, &str)]) -> Profile {
        let mut text = String::from("services:\n  s:\n    image: vllm-sim:latest\n    command:\n");
        for token in command {
            text.push_str(&format!("      - \"{token}\"\n"));
        }
        if !ports.is_empty() {
            text.push_str("    ports:\n");
            for port in ports {
                text.push_str(&format!("      - \"{port}\"\n"));
            }
        }
        if !environment.is_empty() {
            text.push_str("    environment:\n");
            for (name, value) in environment {
                text.push_str(&format!("      {name}: \"{value}\"\n"));
            }
        }
        grid_container::parse_profile(&text, "test")
            .expect("the test's profile parses")
            .profile
    }

    #[test]
    fn the_server_port_is_published_on_a_free_port() {
        grid_core::testing::check(
            &[
                (
                    "fixed loopback",
                    ("127.0.0.1:5003:8000", None),
                    String::from("127.0.0.1::8000"),
                ),
                (
                    "every address",
                    ("5003:8000", None),
                    String::from("127.0.0.1::8000"),
                ),
                (
                    "already free",
                    ("127.0.0.1::8000", None),
                    String::from("127.0.0.1::8000"),
                ),
                (
                    "ipv6",
                    ("[::1]:5003:8000", None),
                    String::from("[::1]::8000"),
                ),
                (
                    "another port stays",
                    ("127.0.0.1:9000:9000", None),
                    String::from("127.0.0.1:9000:9000"),
                ),
                (
                    "--port moves the server",
                    ("127.0.0.1:5003:9001", Some("9001")),
                    String::from("127.0.0.1::9001"),
                ),
                (
                    "a reference stays",
                    ("${HOST_PORT}:8000", None),
                    String::from("${HOST_PORT}:8000"),
                ),
            ],
            |(port, flag): &(&str, Option<&str>)| {
                let mut command = vec!["--model", "m"];
                if let Some(port) = flag {
                    command.extend(["--port", port]);
                }
                let mut p = profile(&command, &[port], &[]);
                publish_on_a_free_port(&mut p);
                p.ports[0].clone()
            },
        );
    }

    #[test]
    fn the_api_key_moves_from_the_command_to_the_environment() {
        type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>);
        grid_core::testing::check(
            &[
                (
                    "separate value",
                    (vec!["--model", "m", "--api-key", "${K}"], vec![]),
                    String::from("--model m | VLLM_API_KEY=${K}"),
                ),
                (
                    "equals form",
                    (vec!["--api-key=${K}", "--model", "m"], vec![]),
                    String::from("--model m | VLLM_API_KEY=${K}"),
                ),
                (
                    "the flag wins over the variable",
                    (vec!["--api-key", "${K}"], vec![("VLLM_API_KEY", "${OLD}")]),
                    String::from(" | VLLM_API_KEY=${K}"),
                ),
                (
                    "no key",
                    (vec!["--model", "m"], vec![("OTHER", "x")]),
                    String::from("--model m | OTHER=x"),
                ),
            ],
            |(command, environment): &Case<'_>| {
                let mut p = profile(command, &[], environment);
                move_api_key_to_environment(&mut p);
                let environment: Vec<String> = p
                    .environment
                    .iter()
                    .map(|e| format!("{}={}", e.name, e.value.clone().unwrap_or_default()))
                    .collect();
                format!("{} | {}", p.command.join(" "), environment.join(" "))
            },
        );
    }

    #[test]
    fn generated_secrets_are_random_and_shaped_like_the_old_ones() {
        let a = random_token().expect("the OS has a random source");
        let b = random_token().expect("the OS has a random source");
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 32);
        assert!(a.starts_with("sim-") && a[4..].chars().all(|c| c.is_ascii_hexdigit()));
    }
}
