//! Resolving a profile at launch: every `${VAR}` expanded, ports and volumes
//! parsed, the API key taken off the command line and into the environment.

use std::collections::BTreeMap;

use grid_core::Secret;

use super::error::{BindError, ResolveError};
use super::parsers::{parse_port, parse_server_port};
use super::types::{DEFAULT_SERVER_PORT, Healthcheck, PortMapping, Profile};
use crate::interpolate::Expander;
use crate::render::{flag_value, served_model_from_command, take_flag};
use crate::secret::{Redact, Redactor};

/// The variable vLLM reads its API key from when `--api-key` is absent
/// (`vllm/entrypoints/openai/api_server.py`: `args.api_key or
/// [envs.VLLM_API_KEY]`); the simulator reads it the same way.
pub const API_KEY_VARIABLE: &str = "VLLM_API_KEY";

/// A profile with every reference expanded, ready to start. Holds secrets:
/// never log or serialise it.
#[derive(Clone)]
pub struct ResolvedProfile {
    pub image: String,
    pub container_name: Option<String>,
    /// The expanded command, without `--api-key` (see `api_key_moved`).
    pub command: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub process_entrypoint: Option<Vec<String>>,
    pub environment: Vec<(String, String)>,
    pub ports: Vec<PortMapping>,
    /// Docker `Binds` strings, host paths absolute.
    pub binds: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub healthcheck: Option<Healthcheck>,
    /// Every value substituted from the environment, plus the API key.
    pub redactor: Redactor,
    pub api_key: Option<Secret>,
    /// The command passed the key with `--api-key`; it was moved into
    /// `VLLM_API_KEY` in `environment`, so no process list shows it.
    pub api_key_moved: bool,
    pub served_model: Option<String>,
    /// The port the server listens on inside its container.
    pub server_port: u16,
    pub network_mode: Option<String>,
}

impl Profile {
    /// Expands every reference from `lookup` (normally the process
    /// environment). Fails, naming each variable, when one has no value.
    /// Errors quote expanded values only through the profile's redactor.
    pub fn resolve(
        &self,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ResolvedProfile, ResolveError> {
        let mut expander = Expander::new(lookup);
        let image = expander.expand(&self.image);
        let container_name = self.container_name.as_ref().map(|n| expander.expand(n));
        let command: Vec<String> = self.command.iter().map(|t| expander.expand(t)).collect();
        let entrypoint = self
            .entrypoint
            .as_ref()
            .map(|e| e.iter().map(|t| expander.expand(t)).collect());
        let process_entrypoint = self
            .process
            .entrypoint
            .as_ref()
            .map(|e| e.iter().map(|t| expander.expand(t)).collect());
        let mut environment = Vec::new();
        for entry in &self.environment {
            match &entry.value {
                Some(value) => environment.push((entry.name.clone(), expander.expand(value))),
                None => {
                    // Compose passes an unset `- NAME` through as absent.
                    if let Some(value) = lookup(&entry.name) {
                        expander.redactor.add(&value);
                        environment.push((entry.name.clone(), value));
                    }
                }
            }
        }
        let port_texts: Vec<String> = self.ports.iter().map(|p| expander.expand(p)).collect();
        let volume_texts: Vec<String> = self.volumes.iter().map(|v| expander.expand(v)).collect();
        let labels: BTreeMap<String, String> = self
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), expander.expand(v)))
            .collect();
        let healthcheck = self.healthcheck.as_ref().map(|h| Healthcheck {
            test: h.test.iter().map(|t| expander.expand(t)).collect(),
            ..h.clone()
        });
        if !expander.unresolved.is_empty() {
            return Err(ResolveError::MissingVariables {
                source_name: self.source.clone(),
                variables: expander.unresolved,
            });
        }
        let mut redactor = expander.redactor;

        // The key never goes on a command line another user can read
        // (`ps`, /proc/<pid>/cmdline, `docker inspect`'s Cmd): a key given
        // with `--api-key` moves into VLLM_API_KEY, which vLLM reads when
        // the flag is absent. The flag took precedence over the variable, so
        // the moved value replaces one the environment set.
        let (command, cli_keys) = take_flag(&command, "api-key");
        let cli_keys: Vec<String> = cli_keys.into_iter().filter(|k| !k.is_empty()).collect();
        if cli_keys.len() > 1 {
            return Err(ResolveError::SeveralApiKeys {
                source_name: self.source.clone(),
                count: cli_keys.len(),
            });
        }
        let api_key_moved = !cli_keys.is_empty();
        if let Some(key) = cli_keys.into_iter().next() {
            environment.retain(|(name, _)| name != API_KEY_VARIABLE);
            environment.push((API_KEY_VARIABLE.to_string(), key));
        }
        let api_key = environment
            .iter()
            .find(|(name, _)| name == API_KEY_VARIABLE)
            .map(|(_, value)| value.clone())
            .filter(|key| !key.is_empty());
        if let Some(key) = &api_key {
            redactor.add_always(key);
        }

        let mut ports = Vec::new();
        for text in &port_texts {
            ports.push(parse_port(text).map_err(|source| ResolveError::Port {
                source_name: self.source.clone(),
                source: source.redact_with(&redactor),
            })?);
        }
        let home = lookup("HOME");
        let mut binds = Vec::new();
        for text in &volume_texts {
            binds.push(self.bind_string(text, home.as_deref()).map_err(|source| {
                ResolveError::Volume {
                    source_name: self.source.clone(),
                    source: source.redact_with(&redactor),
                }
            })?);
        }
        let server_port = match flag_value(&command, "port") {
            Some(value) => {
                parse_server_port(&value).map_err(|source| ResolveError::ServerPort {
                    source_name: self.source.clone(),
                    source: source.redact_with(&redactor),
                })?
            }
            None => DEFAULT_SERVER_PORT,
        };
        Ok(ResolvedProfile {
            served_model: served_model_from_command(&command),
            image,
            container_name,
            command,
            entrypoint,
            process_entrypoint,
            environment,
            ports,
            binds,
            labels,
            healthcheck,
            redactor,
            api_key: api_key.map(Secret::new),
            api_key_moved,
            server_port,
            network_mode: self.network_mode.clone(),
        })
    }

    /// A short-syntax volume as a Docker bind string: `~` is the home
    /// directory, relative paths are relative to the profile's directory,
    /// anything else is a named volume.
    fn bind_string(&self, text: &str, home: Option<&str>) -> Result<String, BindError> {
        let mut parts: Vec<&str> = text.split(':').collect();
        if parts.len() == 1 {
            // An anonymous volume: only a container path.
            return Ok(text.to_string());
        }
        if parts.len() > 3 {
            return Err(BindError::Shape {
                text: text.to_string(),
            });
        }
        let source = parts[0];
        let expanded_source = if let Some(rest) = source.strip_prefix('~') {
            let home = home.ok_or_else(|| BindError::NoHome {
                text: text.to_string(),
            })?;
            format!("{home}{rest}")
        } else if source.starts_with('.') {
            let joined = self.base_dir.join(source);
            let absolute = if joined.is_absolute() {
                joined
            } else {
                std::env::current_dir()
                    .map(|d| d.join(&joined))
                    .unwrap_or(joined)
            };
            absolute.display().to_string()
        } else {
            source.to_string()
        };
        parts[0] = &expanded_source;
        Ok(parts.join(":"))
    }
}

impl ResolvedProfile {
    /// The published mapping of the server's port, if any.
    pub fn server_mapping(&self) -> Option<&PortMapping> {
        self.ports
            .iter()
            .find(|m| m.container_port == self.server_port)
    }

    /// Whether the server shares the host's network (ports are not published).
    pub fn network_mode_is_host(&self) -> bool {
        self.network_mode.as_deref() == Some("host")
    }
}
