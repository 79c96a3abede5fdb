//! The YAML walker: turns a compose document into a [`Profile`], key by key,
//! warning about every key it does not use and refusing values it cannot.
//! Ports and volumes are in `mounts.rs`; ulimits, healthchecks and GPU
//! reservations in `runtime.rs`.

mod mounts;
mod predict;
mod runtime;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_yaml::Value;

use super::ServiceChoice;
use super::error::ProfileError;
use super::parsers::{parse_bytes, parse_server_port, split_words};
use super::types::{EnvEntry, PredictHints, ProcessHints, Profile};
use crate::interpolate;
use crate::render::{flag_value, flag_values};

const SERVICE_KEYS: &[&str] = &[
    "image",
    "container_name",
    "command",
    "entrypoint",
    "environment",
    "ports",
    "volumes",
    "ipc",
    "shm_size",
    "runtime",
    "network_mode",
    "ulimits",
    "labels",
    "healthcheck",
    "deploy",
    "gpus",
];

/// Walks one document; `text` is the document's source, for line numbers.
pub(super) struct Parser<'a> {
    pub(super) source: String,
    pub(super) text: &'a str,
    pub(super) warnings: Vec<String>,
}

impl Parser<'_> {
    pub(super) fn invalid(&self, key: &str, problem: impl Into<String>) -> ProfileError {
        ProfileError::InvalidValue {
            source_name: self.source.clone(),
            key: key.to_string(),
            problem: problem.into(),
        }
    }

    pub(super) fn warn(&mut self, message: String) {
        self.warnings.push(message);
    }

    /// The 1-based line of the first line that is not a comment and
    /// contains `needle`, to point the user at it.
    fn line_of(&self, needle: &str) -> Option<usize> {
        self.text
            .lines()
            .position(|line| {
                let code = line.split_once('#').map(|(code, _)| code).unwrap_or(line);
                code.contains(needle)
            })
            .map(|index| index + 1)
    }

    pub(super) fn check_syntax(&self, key: &str, text: &str) -> Result<(), ProfileError> {
        interpolate::validate(text).map_err(|source| ProfileError::Interpolation {
            source_name: self.source.clone(),
            key: key.to_string(),
            source,
        })
    }

    pub(super) fn document(
        &mut self,
        document: &Value,
        choice: &ServiceChoice,
    ) -> Result<Profile, ProfileError> {
        let Some(top) = document.as_mapping() else {
            return Err(ProfileError::NoServices {
                source_name: self.source.clone(),
            });
        };
        let mut services: Option<&serde_yaml::Mapping> = None;
        let mut named_volumes = BTreeSet::new();
        let mut extensions = BTreeMap::new();
        for (key, value) in top {
            let key = key_string(key);
            match key.as_str() {
                "services" => {
                    services = value.as_mapping();
                    if services.is_none() {
                        return Err(self.invalid("services", "must be a mapping of service names to services"));
                    }
                }
                "volumes" => {
                    if let Some(volumes) = value.as_mapping() {
                        for (name, definition) in volumes {
                            let name = key_string(name);
                            if let Some(definition) = definition.as_mapping() {
                                for (volume_key, _) in definition {
                                    let volume_key = key_string(volume_key);
                                    self.warn(format!(
                                        "`volumes.{name}.{volume_key}` is not supported and is ignored; the volume is used with the engine's defaults"
                                    ));
                                }
                            }
                            named_volumes.insert(name);
                        }
                    }
                }
                "version" | "name" => self.warn(format!(
                    "top-level `{key}` is ignored (obsolete in compose, and vllm-grid names containers itself)"
                )),
                other if other.starts_with("x-") => {
                    extensions.insert(other.to_string(), value.clone());
                }
                other => self.warn(format!("top-level `{other}` is not supported and is ignored")),
            }
        }
        let Some(services) = services else {
            return Err(ProfileError::NoServices {
                source_name: self.source.clone(),
            });
        };
        let available: Vec<String> = services.keys().map(key_string).collect();
        let (name, service) = match choice {
            ServiceChoice::Named(wanted) => {
                match services.iter().find(|(k, _)| key_string(k) == *wanted) {
                    Some((k, v)) => (key_string(k), v),
                    None => {
                        return Err(ProfileError::ServiceNotFound {
                            source_name: self.source.clone(),
                            service: wanted.clone(),
                            available,
                        });
                    }
                }
            }
            ServiceChoice::Only => match services.iter().next() {
                Some((k, v)) if services.len() == 1 => (key_string(k), v),
                Some(_) => {
                    return Err(ProfileError::AmbiguousService {
                        source_name: self.source.clone(),
                        available,
                    });
                }
                None => {
                    return Err(ProfileError::NoServices {
                        source_name: self.source.clone(),
                    });
                }
            },
        };
        let mut profile = self.service(&name, service)?;
        profile.named_volumes = named_volumes;
        for (key, value) in extensions {
            profile.extensions.entry(key).or_insert(value);
        }
        profile.process = self.process_hints(&profile.extensions)?;
        profile.predict = self.predict_hints(&profile.extensions)?;
        Ok(profile)
    }

    fn service(&mut self, name: &str, service: &Value) -> Result<Profile, ProfileError> {
        let prefix = format!("services.{name}");
        let Some(service) = service.as_mapping() else {
            return Err(self.invalid(&prefix, "must be a mapping"));
        };
        let mut profile = Profile {
            source: self.source.clone(),
            base_dir: PathBuf::from("."),
            service_name: name.to_string(),
            image: String::new(),
            container_name: None,
            command: Vec::new(),
            entrypoint: None,
            environment: Vec::new(),
            ports: Vec::new(),
            volumes: Vec::new(),
            ipc: None,
            shm_size: None,
            runtime: None,
            network_mode: None,
            ulimits: Vec::new(),
            labels: BTreeMap::new(),
            healthcheck: None,
            gpus: Vec::new(),
            named_volumes: BTreeSet::new(),
            extensions: BTreeMap::new(),
            process: ProcessHints::default(),
            predict: PredictHints::default(),
        };
        for (key, value) in service {
            let key = key_string(key);
            let path = format!("{prefix}.{key}");
            match key.as_str() {
                "image" => profile.image = self.scalar(&path, value)?,
                "container_name" => profile.container_name = Some(self.scalar(&path, value)?),
                "command" => profile.command = self.words(&path, value)?,
                "entrypoint" => profile.entrypoint = Some(self.words(&path, value)?),
                "environment" => profile.environment = self.environment(&path, value)?,
                "ports" => profile.ports = self.ports(&path, value)?,
                "volumes" => profile.volumes = self.volumes(&path, value)?,
                "ipc" => profile.ipc = Some(self.scalar(&path, value)?),
                "shm_size" => {
                    let text = self.scalar(&path, value)?;
                    profile.shm_size =
                        Some(parse_bytes(&text).map_err(|source| ProfileError::Size {
                            source_name: self.source.clone(),
                            key: path.clone(),
                            source,
                        })?);
                }
                "runtime" => profile.runtime = Some(self.scalar(&path, value)?),
                "network_mode" => profile.network_mode = Some(self.scalar(&path, value)?),
                "ulimits" => profile.ulimits = self.ulimits(&path, value)?,
                "labels" => profile.labels = self.labels(&path, value)?,
                "healthcheck" => profile.healthcheck = self.healthcheck(&path, value)?,
                "deploy" => profile.gpus.extend(self.deploy(&path, value)?),
                "gpus" => profile.gpus.push(self.gpus_shorthand(&path, value)?),
                "restart" => self.warn(format!(
                    "`{path}` is ignored: vllm-grid starts and stops the server itself, and a restart policy would bring back a server it tore down"
                )),
                other if other.starts_with("x-") => {
                    profile.extensions.insert(other.to_string(), value.clone());
                }
                _ => self.warn(format!(
                    "`{path}` is not supported and is ignored (supported keys: {})",
                    SERVICE_KEYS.join(", ")
                )),
            }
        }
        if profile.image.is_empty() {
            return Err(self.invalid(
                &format!("{prefix}.image"),
                "is required: name the image the server runs in",
            ));
        }
        self.check_command(&format!("{prefix}.command"), &profile.command)?;
        Ok(profile)
    }

    /// What the loader can check in the command before anything is
    /// expanded: a literal `--port` is one the server can listen on, and an
    /// API key on the command line is one key, which the launch moves into
    /// the environment (with a warning here, naming the line).
    fn check_command(&mut self, key: &str, command: &[String]) -> Result<(), ProfileError> {
        if let Some(port) = flag_value(command, "port").filter(|p| !p.contains('$')) {
            parse_server_port(&port).map_err(|source| ProfileError::ServerPort {
                source_name: self.source.clone(),
                key: key.to_string(),
                line: self.line_of("--port"),
                source,
            })?;
        }
        let keys = flag_values(command, "api-key");
        let line = self
            .line_of("--api-key")
            .or_else(|| self.line_of("--api_key"));
        match keys.len() {
            0 => {}
            1 => {
                let at = line.map(|n| format!(" (line {n})")).unwrap_or_default();
                self.warn(format!(
                    "`{key}`{at} passes the API key with `--api-key`, where every local user could read it in the \
                     process list; vllm-grid moves it into the server's environment (VLLM_API_KEY) at launch. \
                     Write it there yourself to silence this: `environment: {{VLLM_API_KEY: ${{YOUR_KEY_VARIABLE}}}}`"
                ));
            }
            count => {
                return Err(ProfileError::SeveralApiKeys {
                    source_name: self.source.clone(),
                    key: key.to_string(),
                    line,
                    count,
                });
            }
        }
        Ok(())
    }

    pub(super) fn scalar(&self, key: &str, value: &Value) -> Result<String, ProfileError> {
        let text = scalar_string(value)
            .ok_or_else(|| self.invalid(key, "must be a string or a number"))?;
        self.check_syntax(key, &text)?;
        Ok(text)
    }

    /// `command`/`entrypoint`: a list, or a string split like a shell would.
    pub(super) fn words(&self, key: &str, value: &Value) -> Result<Vec<String>, ProfileError> {
        let words = match value {
            Value::Sequence(items) => items
                .iter()
                .map(|item| {
                    scalar_string(item).ok_or_else(|| self.invalid(key, "items must be strings"))
                })
                .collect::<Result<Vec<_>, _>>()?,
            Value::String(text) => split_words(text).map_err(|source| ProfileError::Words {
                source_name: self.source.clone(),
                key: key.to_string(),
                source,
            })?,
            Value::Null => Vec::new(),
            _ => return Err(self.invalid(key, "must be a list of strings or a string")),
        };
        for word in &words {
            self.check_syntax(key, word)?;
        }
        Ok(words)
    }

    fn environment(&self, key: &str, value: &Value) -> Result<Vec<EnvEntry>, ProfileError> {
        let mut entries = Vec::new();
        match value {
            Value::Sequence(items) => {
                for item in items {
                    let text = scalar_string(item)
                        .ok_or_else(|| self.invalid(key, "items must be NAME=value strings"))?;
                    let entry = match text.split_once('=') {
                        Some((name, value)) => EnvEntry {
                            name: name.to_string(),
                            value: Some(value.to_string()),
                        },
                        None => EnvEntry {
                            name: text.clone(),
                            value: None,
                        },
                    };
                    entries.push(entry);
                }
            }
            Value::Mapping(map) => {
                for (name, value) in map {
                    let name = key_string(name);
                    let value = match value {
                        Value::Null => None,
                        other => Some(scalar_string(other).ok_or_else(|| {
                            self.invalid(
                                &format!("{key}.{name}"),
                                "must be a string, a number or a boolean",
                            )
                        })?),
                    };
                    entries.push(EnvEntry { name, value });
                }
            }
            Value::Null => {}
            _ => return Err(self.invalid(key, "must be a list of NAME=value strings or a mapping")),
        }
        for entry in &entries {
            if entry.name.is_empty() || entry.name.contains(char::is_whitespace) {
                return Err(self.invalid(
                    key,
                    format!("has an invalid variable name `{}`", entry.name),
                ));
            }
            if let Some(value) = &entry.value {
                self.check_syntax(&format!("{key}.{}", entry.name), value)?;
            }
        }
        Ok(entries)
    }

    fn labels(&self, key: &str, value: &Value) -> Result<BTreeMap<String, String>, ProfileError> {
        let mut labels = BTreeMap::new();
        match value {
            Value::Mapping(map) => {
                for (name, value) in map {
                    let name = key_string(name);
                    let value = scalar_string(value).unwrap_or_default();
                    self.check_syntax(key, &value)?;
                    labels.insert(name, value);
                }
            }
            Value::Sequence(items) => {
                for item in items {
                    let text = scalar_string(item)
                        .ok_or_else(|| self.invalid(key, "items must be name=value"))?;
                    let (name, value) = text.split_once('=').unwrap_or((text.as_str(), ""));
                    self.check_syntax(key, value)?;
                    labels.insert(name.to_string(), value.to_string());
                }
            }
            _ => return Err(self.invalid(key, "must be a mapping or a list of name=value")),
        }
        Ok(labels)
    }

    fn process_hints(
        &mut self,
        extensions: &BTreeMap<String, Value>,
    ) -> Result<ProcessHints, ProfileError> {
        let mut hints = ProcessHints::default();
        let Some(grid) = extensions.get("x-vllm-grid") else {
            return Ok(hints);
        };
        let Some(grid) = grid.as_mapping() else {
            return Err(self.invalid("x-vllm-grid", "must be a mapping"));
        };
        for (key, value) in grid {
            let key = key_string(key);
            match key.as_str() {
                "process" => {
                    let Some(process) = value.as_mapping() else {
                        return Err(self.invalid("x-vllm-grid.process", "must be a mapping"));
                    };
                    for (process_key, process_value) in process {
                        let process_key = key_string(process_key);
                        let path = format!("x-vllm-grid.process.{process_key}");
                        match process_key.as_str() {
                            "entrypoint" => {
                                hints.entrypoint = Some(self.words(&path, process_value)?)
                            }
                            _ => self.warn(format!("`{path}` is not supported and is ignored")),
                        }
                    }
                }
                // Read by `predict_hints`.
                "predict" => {}
                _ => self.warn(format!(
                    "`x-vllm-grid.{key}` is not supported and is ignored"
                )),
            }
        }
        Ok(hints)
    }
}

pub(super) fn key_string(value: &Value) -> String {
    scalar_string(value).unwrap_or_else(|| format!("{value:?}"))
}

pub(super) fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
