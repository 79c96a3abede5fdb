//! Compose profiles: one service of a docker-compose file, parsed with
//! serde_yaml and kept unexpanded until launch.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_yaml::Value;

use crate::interpolate::{self, Expander, UnresolvedVariable};
use crate::render::{flag_value, served_model_from_command};
use grid_core::Secret;

use crate::secret::Redactor;

/// The port `vllm serve` listens on when the command does not say.
pub const DEFAULT_SERVER_PORT: u16 = 8000;

/// Options for picking a service out of a compose file.
#[derive(Debug, Clone, Default)]
pub struct ProfileOptions {
    /// The service to use when the file defines several.
    pub service: Option<String>,
}

/// A profile and the warnings found while reading it (unsupported keys,
/// ignored settings). Warnings name the key; nothing is dropped silently.
#[derive(Debug, Clone)]
pub struct LoadedProfile {
    pub profile: Profile,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read profile {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("profile {source_name} is not valid YAML")]
    Yaml {
        source_name: String,
        #[source]
        source: serde_yaml::Error,
    },
    #[error(
        "profile {source_name} has no `services:` mapping; a profile is a docker-compose file with one service"
    )]
    NoServices { source_name: String },
    #[error(
        "profile {source_name} defines services {available:?}; choose one with the service option"
    )]
    AmbiguousService {
        source_name: String,
        available: Vec<String>,
    },
    #[error("profile {source_name} has no service `{service}`; it defines {available:?}")]
    ServiceNotFound {
        source_name: String,
        service: String,
        available: Vec<String>,
    },
    #[error("profile {source_name}: `{key}` {problem}")]
    InvalidValue {
        source_name: String,
        key: String,
        problem: String,
    },
    #[error("profile {source_name}: `{key}`")]
    Interpolation {
        source_name: String,
        key: String,
        #[source]
        source: interpolate::SyntaxError,
    },
}

/// One `ports:` entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PortMapping {
    /// The host address to publish on; `None` means every address.
    pub host_ip: Option<String>,
    /// `None` lets the engine choose a free port.
    pub host_port: Option<u16>,
    pub container_port: u16,
    pub protocol: String,
}

/// One `ulimits:` entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// `healthcheck:`, durations already parsed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Healthcheck {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]` or `["NONE"]`; unexpanded.
    pub test: Vec<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub retries: Option<i64>,
    pub start_period: Option<Duration>,
}

/// A GPU reservation, mapped to a device request the way `docker run --gpus`
/// does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GpuRequest {
    pub driver: String,
    /// `Some(-1)` for `all`.
    pub count: Option<i64>,
    pub device_ids: Vec<String>,
    pub capabilities: Vec<String>,
    pub options: BTreeMap<String, String>,
}

/// One `environment:` entry. A `None` value passes the variable through from
/// the process environment when it is set (compose's `- NAME`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EnvEntry {
    pub name: String,
    pub value: Option<String>,
}

/// Hints for the process backend, from the `x-vllm-grid` extension.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProcessHints {
    /// The program and its leading arguments when run without Docker (the
    /// image's entrypoint is not available outside the image).
    pub entrypoint: Option<Vec<String>>,
}

/// One compose service. Every string keeps its `${VAR}` references; they are
/// expanded only by [`Profile::resolve`] at launch.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Profile {
    /// Where the profile came from (a path, or a caller's label).
    pub source: String,
    /// Directory relative bind mounts are resolved against.
    pub base_dir: PathBuf,
    pub service_name: String,
    pub image: String,
    pub container_name: Option<String>,
    pub command: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub environment: Vec<EnvEntry>,
    /// `ports:` entries in short syntax (long syntax is converted).
    pub ports: Vec<String>,
    /// `volumes:` entries in short syntax `source:target[:mode]`.
    pub volumes: Vec<String>,
    pub ipc: Option<String>,
    /// Bytes.
    pub shm_size: Option<i64>,
    pub runtime: Option<String>,
    pub network_mode: Option<String>,
    pub ulimits: Vec<Ulimit>,
    pub labels: BTreeMap<String, String>,
    pub healthcheck: Option<Healthcheck>,
    pub gpus: Vec<GpuRequest>,
    /// Named volumes declared at the top level.
    pub named_volumes: BTreeSet<String>,
    /// `x-*` keys of the service and of the file, kept as written.
    #[serde(skip)]
    pub extensions: BTreeMap<String, Value>,
    pub process: ProcessHints,
}

/// A profile with every reference expanded, ready to start. Holds secrets:
/// never log or serialise it.
#[derive(Clone)]
pub struct ResolvedProfile {
    pub image: String,
    pub container_name: Option<String>,
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
    pub served_model: Option<String>,
    /// The port the server listens on inside its container.
    pub server_port: u16,
    pub network_mode: Option<String>,
}

/// Why a profile cannot be resolved at launch.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ResolveError {
    #[error("{}", describe_unresolved(.source_name, .variables))]
    MissingVariables {
        source_name: String,
        variables: Vec<UnresolvedVariable>,
    },
    #[error("profile {source_name}: `{key}` {problem}")]
    InvalidValue {
        source_name: String,
        key: String,
        problem: String,
    },
}

fn describe_unresolved(source_name: &str, variables: &[UnresolvedVariable]) -> String {
    let list: Vec<String> = variables
        .iter()
        .map(|v| format!("{} ({})", v.name, v.reason))
        .collect();
    let first = variables.first().map(|v| v.name.as_str()).unwrap_or("NAME");
    format!(
        "profile {source_name} references environment variable{} {} that {} no value; nothing was started. \
         Export {} before running, e.g. `export {first}=...`",
        if variables.len() == 1 { "" } else { "s" },
        list.join(", "),
        if variables.len() == 1 { "has" } else { "have" },
        if variables.len() == 1 { "it" } else { "them" },
    )
}

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

/// Reads a compose file and picks its only service.
pub fn load_profile(path: &Path) -> Result<LoadedProfile, ProfileError> {
    load_profile_with(path, &ProfileOptions::default())
}

/// Reads a compose file and picks the service `options` names (or the only one).
pub fn load_profile_with(
    path: &Path,
    options: &ProfileOptions,
) -> Result<LoadedProfile, ProfileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut loaded = parse_profile_with(&text, &path.display().to_string(), options)?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    loaded.profile.base_dir = if base_dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base_dir
    };
    Ok(loaded)
}

/// Parses compose text; `source` names it in messages. Relative bind mounts
/// resolve against the current directory (use [`load_profile`] for files).
pub fn parse_profile(text: &str, source: &str) -> Result<LoadedProfile, ProfileError> {
    parse_profile_with(text, source, &ProfileOptions::default())
}

pub fn parse_profile_with(
    text: &str,
    source: &str,
    options: &ProfileOptions,
) -> Result<LoadedProfile, ProfileError> {
    let document: Value =
        serde_yaml::from_str(text).map_err(|source_error| ProfileError::Yaml {
            source_name: source.to_string(),
            source: source_error,
        })?;
    let mut parser = Parser {
        source: source.to_string(),
        warnings: Vec::new(),
    };
    let profile = parser.document(&document, options)?;
    Ok(LoadedProfile {
        profile,
        warnings: parser.warnings,
    })
}

struct Parser {
    source: String,
    warnings: Vec<String>,
}

impl Parser {
    fn invalid(&self, key: &str, problem: impl Into<String>) -> ProfileError {
        ProfileError::InvalidValue {
            source_name: self.source.clone(),
            key: key.to_string(),
            problem: problem.into(),
        }
    }

    fn warn(&mut self, message: String) {
        self.warnings.push(message);
    }

    fn check_syntax(&self, key: &str, text: &str) -> Result<(), ProfileError> {
        interpolate::validate(text).map_err(|source| ProfileError::Interpolation {
            source_name: self.source.clone(),
            key: key.to_string(),
            source,
        })
    }

    fn document(
        &mut self,
        document: &Value,
        options: &ProfileOptions,
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
        let (name, service) = match &options.service {
            Some(wanted) => match services.iter().find(|(k, _)| key_string(k) == *wanted) {
                Some((k, v)) => (key_string(k), v),
                None => {
                    return Err(ProfileError::ServiceNotFound {
                        source_name: self.source.clone(),
                        service: wanted.clone(),
                        available,
                    });
                }
            },
            None => match services.iter().next() {
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
                    profile.shm_size = Some(parse_bytes(&text).ok_or_else(|| {
                        self.invalid(&path, format!("`{text}` is not a size; write e.g. 16g, 512m or a byte count"))
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
        Ok(profile)
    }

    fn scalar(&self, key: &str, value: &Value) -> Result<String, ProfileError> {
        let text = scalar_string(value)
            .ok_or_else(|| self.invalid(key, "must be a string or a number"))?;
        self.check_syntax(key, &text)?;
        Ok(text)
    }

    /// `command`/`entrypoint`: a list, or a string split like a shell would.
    fn words(&self, key: &str, value: &Value) -> Result<Vec<String>, ProfileError> {
        let words = match value {
            Value::Sequence(items) => items
                .iter()
                .map(|item| {
                    scalar_string(item).ok_or_else(|| self.invalid(key, "items must be strings"))
                })
                .collect::<Result<Vec<_>, _>>()?,
            Value::String(text) => {
                split_words(text).map_err(|problem| self.invalid(key, problem))?
            }
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

    fn ports(&mut self, key: &str, value: &Value) -> Result<Vec<String>, ProfileError> {
        let Some(items) = value.as_sequence() else {
            return Err(self.invalid(key, "must be a list"));
        };
        let mut ports = Vec::new();
        for item in items {
            let text = match item {
                Value::Mapping(map) => {
                    let get = |name: &str| map.get(name).and_then(scalar_string);
                    for (long_key, _) in map {
                        let long_key = key_string(long_key);
                        if ![
                            "target",
                            "published",
                            "host_ip",
                            "protocol",
                            "mode",
                            "name",
                            "app_protocol",
                        ]
                        .contains(&long_key.as_str())
                        {
                            self.warn(format!(
                                "`{key}[].{long_key}` is not supported and is ignored"
                            ));
                        }
                    }
                    let target = get("target")
                        .ok_or_else(|| self.invalid(key, "long syntax needs `target`"))?;
                    let mut text = String::new();
                    if let Some(ip) = get("host_ip") {
                        text.push_str(&ip);
                        text.push(':');
                    }
                    if let Some(published) = get("published") {
                        text.push_str(&published);
                        text.push(':');
                    } else if !text.is_empty() {
                        text.push(':');
                    }
                    text.push_str(&target);
                    if let Some(protocol) = get("protocol") {
                        text.push('/');
                        text.push_str(&protocol);
                    }
                    text
                }
                other => scalar_string(other)
                    .ok_or_else(|| self.invalid(key, "items must be strings"))?,
            };
            self.check_syntax(key, &text)?;
            if !text.contains('$') {
                parse_port(&text).map_err(|problem| self.invalid(key, problem))?;
            }
            ports.push(text);
        }
        Ok(ports)
    }

    fn volumes(&mut self, key: &str, value: &Value) -> Result<Vec<String>, ProfileError> {
        let Some(items) = value.as_sequence() else {
            return Err(self.invalid(key, "must be a list"));
        };
        let mut volumes = Vec::new();
        for item in items {
            let text = match item {
                Value::Mapping(map) => {
                    let get = |name: &str| map.get(name).and_then(scalar_string);
                    let kind = get("type").unwrap_or_else(|| "volume".to_string());
                    if kind != "bind" && kind != "volume" {
                        self.warn(format!(
                            "`{key}[]` of type `{kind}` is not supported and is ignored"
                        ));
                        continue;
                    }
                    for (long_key, _) in map {
                        let long_key = key_string(long_key);
                        if !["type", "source", "target", "read_only"].contains(&long_key.as_str()) {
                            self.warn(format!(
                                "`{key}[].{long_key}` is not supported and is ignored"
                            ));
                        }
                    }
                    let target = get("target")
                        .ok_or_else(|| self.invalid(key, "long syntax needs `target`"))?;
                    let read_only = map
                        .get("read_only")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    let mut text = match get("source") {
                        Some(source) => format!("{source}:{target}"),
                        None => target,
                    };
                    if read_only {
                        text.push_str(":ro");
                    }
                    text
                }
                other => scalar_string(other)
                    .ok_or_else(|| self.invalid(key, "items must be strings"))?,
            };
            self.check_syntax(key, &text)?;
            volumes.push(text);
        }
        Ok(volumes)
    }

    fn ulimits(&self, key: &str, value: &Value) -> Result<Vec<Ulimit>, ProfileError> {
        let Some(map) = value.as_mapping() else {
            return Err(self.invalid(
                key,
                "must be a mapping such as `nofile: {soft: 65536, hard: 65536}`",
            ));
        };
        let mut ulimits = Vec::new();
        for (name, limit) in map {
            let name = key_string(name);
            let path = format!("{key}.{name}");
            let (soft, hard) = match limit {
                Value::Number(n) => {
                    let n = n
                        .as_i64()
                        .ok_or_else(|| self.invalid(&path, "must be an integer"))?;
                    (n, n)
                }
                Value::Mapping(m) => {
                    let soft = m.get("soft").and_then(Value::as_i64);
                    let hard = m.get("hard").and_then(Value::as_i64);
                    match (soft, hard) {
                        (Some(s), Some(h)) => (s, h),
                        _ => return Err(self.invalid(&path, "needs integer `soft` and `hard`")),
                    }
                }
                _ => return Err(self.invalid(&path, "must be an integer or {soft, hard}")),
            };
            ulimits.push(Ulimit { name, soft, hard });
        }
        Ok(ulimits)
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

    fn healthcheck(
        &mut self,
        key: &str,
        value: &Value,
    ) -> Result<Option<Healthcheck>, ProfileError> {
        let Some(map) = value.as_mapping() else {
            return Err(self.invalid(key, "must be a mapping"));
        };
        let mut check = Healthcheck {
            test: Vec::new(),
            interval: None,
            timeout: None,
            retries: None,
            start_period: None,
        };
        for (name, value) in map {
            let name = key_string(name);
            let path = format!("{key}.{name}");
            let duration = |parser: &Self, value: &Value| -> Result<Duration, ProfileError> {
                let text = scalar_string(value).unwrap_or_default();
                parse_duration(&text).ok_or_else(|| {
                    parser.invalid(
                        &path,
                        format!("`{text}` is not a duration; write e.g. 30s or 1m30s"),
                    )
                })
            };
            match name.as_str() {
                "test" => {
                    check.test = match value {
                        Value::String(text) if text == "NONE" => vec!["NONE".to_string()],
                        Value::String(text) => vec!["CMD-SHELL".to_string(), text.clone()],
                        _ => self.words(&path, value)?,
                    }
                }
                "interval" => check.interval = Some(duration(self, value)?),
                "timeout" => check.timeout = Some(duration(self, value)?),
                "start_period" => check.start_period = Some(duration(self, value)?),
                "retries" => {
                    check.retries = Some(
                        value
                            .as_i64()
                            .ok_or_else(|| self.invalid(&path, "must be an integer"))?,
                    )
                }
                "disable" => {
                    if value.as_bool() == Some(true) {
                        check.test = vec!["NONE".to_string()];
                    }
                }
                _ => self.warn(format!("`{path}` is not supported and is ignored")),
            }
        }
        Ok(Some(check))
    }

    fn deploy(&mut self, key: &str, value: &Value) -> Result<Vec<GpuRequest>, ProfileError> {
        let mut requests = Vec::new();
        let Some(deploy) = value.as_mapping() else {
            return Err(self.invalid(key, "must be a mapping"));
        };
        for (name, value) in deploy {
            let name = key_string(name);
            if name != "resources" {
                self.warn(format!("`{key}.{name}` is not supported and is ignored (only deploy.resources.reservations.devices is)"));
                continue;
            }
            let Some(resources) = value.as_mapping() else {
                continue;
            };
            for (resource_key, resource) in resources {
                let resource_key = key_string(resource_key);
                if resource_key != "reservations" {
                    self.warn(format!(
                        "`{key}.resources.{resource_key}` is not supported and is ignored"
                    ));
                    continue;
                }
                let Some(reservations) = resource.as_mapping() else {
                    continue;
                };
                for (reservation_key, reservation) in reservations {
                    let reservation_key = key_string(reservation_key);
                    let path = format!("{key}.resources.reservations.{reservation_key}");
                    if reservation_key != "devices" {
                        self.warn(format!("`{path}` is not supported and is ignored"));
                        continue;
                    }
                    let Some(devices) = reservation.as_sequence() else {
                        return Err(self.invalid(&path, "must be a list"));
                    };
                    for device in devices {
                        requests.push(self.device(&path, device)?);
                    }
                }
            }
        }
        Ok(requests)
    }

    fn device(&mut self, key: &str, value: &Value) -> Result<GpuRequest, ProfileError> {
        let Some(map) = value.as_mapping() else {
            return Err(self.invalid(key, "items must be mappings"));
        };
        let mut request = GpuRequest {
            driver: "nvidia".to_string(),
            count: None,
            device_ids: Vec::new(),
            capabilities: Vec::new(),
            options: BTreeMap::new(),
        };
        for (name, value) in map {
            let name = key_string(name);
            let path = format!("{key}[].{name}");
            match name.as_str() {
                "driver" => request.driver = scalar_string(value).unwrap_or_default(),
                "count" => {
                    request.count = Some(
                        parse_gpu_count(value)
                            .ok_or_else(|| self.invalid(&path, "must be a number or `all`"))?,
                    )
                }
                "device_ids" => {
                    request.device_ids = value
                        .as_sequence()
                        .ok_or_else(|| self.invalid(&path, "must be a list"))?
                        .iter()
                        .filter_map(scalar_string)
                        .collect()
                }
                "capabilities" => {
                    request.capabilities = value
                        .as_sequence()
                        .ok_or_else(|| self.invalid(&path, "must be a list"))?
                        .iter()
                        .filter_map(scalar_string)
                        .collect()
                }
                "options" => {
                    if let Some(options) = value.as_mapping() {
                        for (k, v) in options {
                            request
                                .options
                                .insert(key_string(k), scalar_string(v).unwrap_or_default());
                        }
                    }
                }
                _ => self.warn(format!("`{path}` is not supported and is ignored")),
            }
        }
        if request.count.is_some() && !request.device_ids.is_empty() {
            return Err(self.invalid(key, "sets both `count` and `device_ids`; keep one"));
        }
        if request.count.is_none() && request.device_ids.is_empty() {
            // `docker run --gpus` without a count means all of them.
            request.count = Some(-1);
        }
        if request.capabilities.is_empty() {
            request.capabilities.push("gpu".to_string());
        }
        Ok(request)
    }

    fn gpus_shorthand(&self, key: &str, value: &Value) -> Result<GpuRequest, ProfileError> {
        let count =
            parse_gpu_count(value).ok_or_else(|| self.invalid(key, "must be `all` or a number"))?;
        Ok(GpuRequest {
            driver: "nvidia".to_string(),
            count: Some(count),
            device_ids: Vec::new(),
            capabilities: vec!["gpu".to_string()],
            options: BTreeMap::new(),
        })
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
                _ => self.warn(format!(
                    "`x-vllm-grid.{key}` is not supported and is ignored"
                )),
            }
        }
        Ok(hints)
    }
}

fn key_string(value: &Value) -> String {
    scalar_string(value).unwrap_or_else(|| format!("{value:?}"))
}

fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn parse_gpu_count(value: &Value) -> Option<i64> {
    match value {
        Value::String(s) if s == "all" => Some(-1),
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// Splits a command string the way a POSIX shell splits words (quotes and
/// backslashes), without expanding anything.
pub fn split_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => current.push(c),
                        None => return Err("has an unterminated single quote".to_string()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => current.push(c),
                            Some(c) => {
                                current.push('\\');
                                current.push(c);
                            }
                            None => return Err("has an unterminated double quote".to_string()),
                        },
                        Some(c) => current.push(c),
                        None => return Err("has an unterminated double quote".to_string()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    current.push(c);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                current.push(c);
            }
        }
    }
    if in_word {
        words.push(current);
    }
    Ok(words)
}

/// Docker-style sizes: `16g`, `512mb`, `1024`. Units are powers of 1024.
pub fn parse_bytes(text: &str) -> Option<i64> {
    let text = text.trim().to_ascii_lowercase();
    let digits_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let number: f64 = number.parse().ok()?;
    let multiplier: f64 = match unit.trim() {
        "" | "b" => 1.0,
        "k" | "kb" => 1024.0,
        "m" | "mb" => 1024.0 * 1024.0,
        "g" | "gb" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = number * multiplier;
    (bytes.is_finite() && bytes >= 0.0).then_some(bytes as i64)
}

/// Compose durations: `1m30s`, `500ms`, `10s`, `2h`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return (seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        if number_end == 0 {
            return None;
        }
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let seconds = match unit {
            "ns" => number / 1e9,
            "us" | "µs" => number / 1e6,
            "ms" => number / 1e3,
            "s" => number,
            "m" => number * 60.0,
            "h" => number * 3600.0,
            _ => return None,
        };
        total += Duration::from_secs_f64(seconds);
    }
    Some(total)
}

/// Parses one short-syntax port entry: `8000`, `5002:8000`,
/// `127.0.0.1:5002:8000`, `127.0.0.1::8000`, with an optional `/tcp`.
pub fn parse_port(text: &str) -> Result<PortMapping, String> {
    let (spec, protocol) = match text.rsplit_once('/') {
        Some((spec, protocol)) => (spec, protocol.to_string()),
        None => (text, "tcp".to_string()),
    };
    if spec.contains('-') {
        return Err(format!(
            "`{text}`: port ranges are not supported; publish one port"
        ));
    }
    // An IPv6 host address is written in brackets: `[::1]:5002:8000`.
    let (host_ip, rest) = if let Some(stripped) = spec.strip_prefix('[') {
        let (ip, rest) = stripped
            .split_once("]:")
            .ok_or_else(|| format!("`{text}`: unterminated `[`"))?;
        (Some(ip.to_string()), rest.to_string())
    } else {
        let parts: Vec<&str> = spec.split(':').collect();
        match parts.len() {
            1 | 2 => (None, spec.to_string()),
            3 => (
                Some(parts[0].to_string()),
                format!("{}:{}", parts[1], parts[2]),
            ),
            _ => return Err(format!("`{text}` is not HOST_IP:HOST_PORT:CONTAINER_PORT")),
        }
    };
    let port = |value: &str| -> Result<u16, String> {
        value
            .parse::<u16>()
            .map_err(|_| format!("`{text}`: `{value}` is not a port number"))
    };
    let (host_port, container_port) = match rest.split_once(':') {
        Some(("", container)) => (None, port(container)?),
        Some((host, container)) => (Some(port(host)?), port(container)?),
        None => (None, port(&rest)?),
    };
    let host_ip = host_ip.filter(|ip| !ip.is_empty());
    Ok(PortMapping {
        host_ip,
        host_port,
        container_port,
        protocol,
    })
}

impl Profile {
    /// Every environment variable the profile references, with or without a
    /// default (`${VAR}`, `${VAR:-x}`, and pass-through `environment` names).
    pub fn referenced_variables(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for text in self.interpolated_texts() {
            interpolate::referenced_variables(text, &mut names);
        }
        for entry in &self.environment {
            if entry.value.is_none() {
                names.insert(entry.name.clone());
            }
        }
        names
    }

    fn interpolated_texts(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.image)
            .chain(self.container_name.iter())
            .chain(self.command.iter())
            .chain(self.entrypoint.iter().flatten())
            .chain(self.process.entrypoint.iter().flatten())
            .chain(self.environment.iter().filter_map(|e| e.value.as_ref()))
            .chain(self.ports.iter())
            .chain(self.volumes.iter())
            .chain(self.labels.values())
            .chain(self.healthcheck.iter().flat_map(|h| h.test.iter()))
    }

    /// The port the server listens on inside the container: `--port` in the
    /// command, else vLLM's default 8000.
    pub fn server_port(&self) -> u16 {
        flag_value(&self.command, "port")
            .and_then(|p| p.parse().ok())
            .unwrap_or(DEFAULT_SERVER_PORT)
    }

    /// The host port the server is published on, when the profile writes it
    /// literally (`127.0.0.1:5002:8000` gives 5002). With host networking this
    /// is the server port itself.
    pub fn endpoint_port(&self) -> Option<u16> {
        if self.network_mode.as_deref() == Some("host") {
            return Some(self.server_port());
        }
        let server_port = self.server_port();
        self.ports
            .iter()
            .filter_map(|text| parse_port(text).ok())
            .find(|mapping| mapping.container_port == server_port)
            .and_then(|mapping| mapping.host_port)
    }

    /// The model name clients use, as written in the command (unexpanded).
    pub fn served_model_name(&self) -> Option<String> {
        served_model_from_command(&self.command)
    }

    /// The profile with `command` replaced (by a rendered command).
    pub fn with_command(&self, command: Vec<String>) -> Profile {
        Profile {
            command,
            ..self.clone()
        }
    }

    /// Expands every reference from `lookup` (normally the process
    /// environment). Fails, naming each variable, when one has no value.
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
        let invalid = |key: &str, problem: String| ResolveError::InvalidValue {
            source_name: self.source.clone(),
            key: key.to_string(),
            problem,
        };
        let mut ports = Vec::new();
        for text in &port_texts {
            ports.push(parse_port(text).map_err(|p| invalid("ports", p))?);
        }
        let home = lookup("HOME");
        let mut binds = Vec::new();
        for text in &volume_texts {
            binds.push(
                self.bind_string(text, home.as_deref())
                    .map_err(|p| invalid("volumes", p))?,
            );
        }
        let mut redactor = expander.redactor;
        let api_key = flag_value(&command, "api-key")
            .or_else(|| {
                environment
                    .iter()
                    .find(|(name, _)| name == "VLLM_API_KEY")
                    .map(|(_, v)| v.clone())
            })
            .filter(|key| !key.is_empty());
        if let Some(key) = &api_key {
            redactor.add_always(key);
        }
        let server_port = flag_value(&command, "port")
            .and_then(|p| p.parse().ok())
            .unwrap_or(DEFAULT_SERVER_PORT);
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
            server_port,
            network_mode: self.network_mode.clone(),
        })
    }

    /// A short-syntax volume as a Docker bind string: `~` is the home
    /// directory, relative paths are relative to the profile's directory,
    /// anything else is a named volume.
    fn bind_string(&self, text: &str, home: Option<&str>) -> Result<String, String> {
        let mut parts: Vec<&str> = text.split(':').collect();
        if parts.len() == 1 {
            // An anonymous volume: only a container path.
            return Ok(text.to_string());
        }
        if parts.len() > 3 {
            return Err(format!("`{text}` is not SOURCE:TARGET[:MODE]"));
        }
        let source = parts[0];
        let expanded_source = if let Some(rest) = source.strip_prefix('~') {
            let home =
                home.ok_or_else(|| format!("`{text}` starts with `~` but HOME is not set"))?;
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
