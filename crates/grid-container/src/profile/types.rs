//! What a profile is: one compose service, every string kept unexpanded.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde_yaml::Value;

use super::parsers::{parse_port, parse_server_port};
use crate::interpolate;
use crate::render::{flag_value, served_model_from_command};

/// The port `vllm serve` listens on when the command does not say.
pub const DEFAULT_SERVER_PORT: u16 = 8000;

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

/// `x-vllm-grid.predict`: what the memory-model prediction cannot read on
/// this host, declared (see the README's "Prediction inputs").
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PredictHints {
    /// Used instead of asking `nvidia-smi` (a simulator, a remote engine).
    pub hardware: Option<DeclaredHardware>,
    /// Used instead of reading the model's files.
    pub model: Option<DeclaredModel>,
    /// Calibrated terms; `None` fields keep grid-predict's estimates.
    pub overheads: grid_predict::Overheads,
}

/// Declared hardware.
#[derive(Debug, Clone, PartialEq)]
pub enum DeclaredHardware {
    /// GPUs in the order the server's workers use them.
    Gpus(Vec<grid_predict::Gpu>),
    /// vLLM's CPU build; memory not declared is read from the host's node 0.
    Cpu {
        total_bytes: Option<u64>,
        available_bytes: Option<u64>,
    },
}

/// A declared model: `config.json`'s keys and the weights' size.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclaredModel {
    pub config: serde_json::Value,
    pub weights_bytes: u64,
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
    /// `x-vllm-grid.predict`.
    #[serde(skip)]
    pub predict: PredictHints,
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
    /// command, else vLLM's default 8000. A literal bad `--port` is refused
    /// when the profile is loaded; a `${VAR}` reference is checked at launch
    /// (until then this is the default).
    pub fn server_port(&self) -> u16 {
        flag_value(&self.command, "port")
            .and_then(|p| parse_server_port(&p).ok())
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
}
