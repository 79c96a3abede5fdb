//! The planner: reads `grid_search_configs.json`, enumerates the grid and
//! gives every configuration a stable ID. It does no IO: callers hand it text
//! and get plans back.
//!
//! # The file format (`format_version: 1`)
//!
//! ```json
//! {
//!   "format_version": 1,
//!   "profile": "profiles/medium.yml",
//!   "defaults": { "max_model_len": 32768 },
//!   "axes": {
//!     "gpu_memory_utilization": [0.85, 0.90, 0.95],
//!     "enable_chunked_prefill": [true, false],
//!     "enable_prefix_caching": [true, false]
//!   },
//!   "named_configs": [
//!     { "name": "aggressive_cache",
//!       "settings": { "gpu_memory_utilization": 0.95, "enable_chunked_prefill": true,
//!                     "enable_prefix_caching": true, "max_num_seqs": 48 } }
//!   ],
//!   "exclude": [ { "when": { "gpu_memory_utilization": 0.95,
//!                            "enable_chunked_prefill": false },
//!                  "reason": "..." } ],
//!   "battery": { },
//!   "ranking": { "max_request_error_rate": 0.01 },
//!   "repeats": 1,
//!   "limits": { "per_config_timeout_s": 3600 },
//!   "seed": 0
//! }
//! ```
//!
//! * `axes` absent means the study's default axes (3 × 2 × 2 = 12 points);
//!   `"axes": {}` means no grid, only the named configs.
//! * Every config's effective settings are `defaults`, then its axis point
//!   (or its named settings).
//! * A named config whose values on every axis key equal a grid point's
//!   *claims* that point: it replaces it (taking its place in the order, its
//!   name and its extra overrides). A named config that matches no point is
//!   added after the grid. This keeps the study's four names inside its 12.
//! * `exclude` rules drop grid points whose settings match every key in
//!   `when`. Named configs are never excluded: naming one is explicit.
//!
//! # Stable config IDs
//!
//! [`ConfigId`] is `fnv1a64("vllm-grid-config-v1\n" + canonical)` printed as
//! 16 lowercase hex digits, where `canonical` is one `key=value\n` line per
//! *set* setting, sorted by key, with canonical values:
//! `gpu-memory-utilization` as Rust's shortest round-trip float (`0.90` →
//! `0.9`), booleans `true`/`false`, integers in decimal, `kv-cache-dtype`
//! lowercased, and extra args keyed by their normalised flag (`--Foo_Bar` →
//! `foo-bar`) with `switch:true|false` or `value:TEXT`. The ID therefore
//! depends neither on the order keys appear in nor on how they are spelled,
//! only on what the server is told. Names are not part of the ID.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// The only `format_version` this planner reads.
pub const FORMAT_VERSION: u32 = 1;

/// One vLLM server flag that a configuration sets.
///
/// `flag` is the long name without the leading dashes, spelled as `vllm serve`
/// spells it (`gpu-memory-utilization`, `enable-prefix-caching`). A `Switch`
/// renders as `--flag` or `--no-flag` (vLLM's BooleanOptionalAction pairs); a
/// `Value` renders as `--flag value`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FlagSetting {
    Switch { flag: String, enabled: bool },
    Value { flag: String, value: String },
}

impl FlagSetting {
    /// The flag's long name without dashes.
    pub fn flag(&self) -> &str {
        match self {
            FlagSetting::Switch { flag, .. } | FlagSetting::Value { flag, .. } => flag,
        }
    }

    /// The command-line tokens this setting renders to.
    pub fn tokens(&self) -> Vec<String> {
        match self {
            FlagSetting::Switch {
                flag,
                enabled: true,
            } => vec![format!("--{flag}")],
            FlagSetting::Switch {
                flag,
                enabled: false,
            } => vec![format!("--no-{flag}")],
            FlagSetting::Value { flag, value } => vec![format!("--{flag}"), value.clone()],
        }
    }
}

/// The 64-bit FNV-1a hash. Small, dependency-free and stable across
/// platforms and Rust versions, which is all a config fingerprint needs.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// A configuration's stable identity: 16 hex digits (see the crate docs).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConfigId(pub String);

impl fmt::Display for ConfigId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Extra vLLM arguments beyond the typed settings, keyed by normalised flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ExtraArg {
    Switch(bool),
    Value(String),
}

/// The server settings a configuration controls. `None` leaves the profile's
/// own value (or vLLM's default) alone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_memory_utilization: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_chunked_prefill: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_prefix_caching: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_num_seqs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_cache_dtype: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_model_len: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_num_batched_tokens: Option<u64>,
    /// Normalised flag name → value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_args: BTreeMap<String, ExtraArg>,
}

/// The typed settings' JSON keys in canonical order, with vLLM's flag names.
const TYPED_KEYS: [(&str, &str); 7] = [
    ("gpu_memory_utilization", "gpu-memory-utilization"),
    ("enable_chunked_prefill", "enable-chunked-prefill"),
    ("enable_prefix_caching", "enable-prefix-caching"),
    ("max_num_seqs", "max-num-seqs"),
    ("kv_cache_dtype", "kv-cache-dtype"),
    ("max_model_len", "max-model-len"),
    ("max_num_batched_tokens", "max-num-batched-tokens"),
];

/// Flags that belong to the profile (they decide how the server is reached),
/// so a configuration may not change them.
const PROFILE_OWNED_FLAGS: [&str; 6] = [
    "host",
    "port",
    "api-key",
    "served-model-name",
    "model",
    "device-memory-utilization",
];

/// Canonical text of a float: Rust's shortest representation that round-trips.
fn canonical_float(value: f64) -> String {
    format!("{value}")
}

impl ServerSettings {
    /// The flags to set on the server, with vLLM's exact spellings, in a
    /// fixed order: typed settings first, then extra args sorted by flag.
    pub fn flags(&self) -> Vec<FlagSetting> {
        let mut flags = Vec::new();
        for (key, flag) in TYPED_KEYS {
            if let Some(value) = self.typed_value(key) {
                flags.push(match value {
                    SettingValue::Bool(enabled) => FlagSetting::Switch {
                        flag: flag.to_string(),
                        enabled,
                    },
                    SettingValue::Text(value) => FlagSetting::Value {
                        flag: flag.to_string(),
                        value,
                    },
                });
            }
        }
        for (flag, value) in &self.extra_args {
            flags.push(match value {
                ExtraArg::Switch(enabled) => FlagSetting::Switch {
                    flag: flag.clone(),
                    enabled: *enabled,
                },
                ExtraArg::Value(value) => FlagSetting::Value {
                    flag: flag.clone(),
                    value: value.clone(),
                },
            });
        }
        flags
    }

    fn typed_value(&self, key: &str) -> Option<SettingValue> {
        match key {
            "gpu_memory_utilization" => self
                .gpu_memory_utilization
                .map(|v| SettingValue::Text(canonical_float(v))),
            "enable_chunked_prefill" => self.enable_chunked_prefill.map(SettingValue::Bool),
            "enable_prefix_caching" => self.enable_prefix_caching.map(SettingValue::Bool),
            "max_num_seqs" => self.max_num_seqs.map(|v| SettingValue::Text(v.to_string())),
            "kv_cache_dtype" => self
                .kv_cache_dtype
                .as_ref()
                .map(|v| SettingValue::Text(v.to_ascii_lowercase())),
            "max_model_len" => self
                .max_model_len
                .map(|v| SettingValue::Text(v.to_string())),
            "max_num_batched_tokens" => self
                .max_num_batched_tokens
                .map(|v| SettingValue::Text(v.to_string())),
            _ => None,
        }
    }

    /// The canonical text the stable ID is computed from (see the crate docs).
    pub fn canonical(&self) -> String {
        let mut lines = BTreeSet::new();
        for (key, flag) in TYPED_KEYS {
            if let Some(value) = self.typed_value(key) {
                let text = match value {
                    SettingValue::Bool(b) => b.to_string(),
                    SettingValue::Text(t) => t,
                };
                lines.insert(format!("{flag}={text}\n"));
            }
        }
        for (flag, value) in &self.extra_args {
            let text = match value {
                ExtraArg::Switch(b) => format!("switch:{b}"),
                ExtraArg::Value(v) => format!("value:{v}"),
            };
            lines.insert(format!("extra.{flag}={text}\n"));
        }
        lines.into_iter().collect()
    }

    /// The stable ID of these settings.
    pub fn id(&self) -> ConfigId {
        let text = format!("vllm-grid-config-v1\n{}", self.canonical());
        ConfigId(format!("{:016x}", fnv1a64(text.as_bytes())))
    }

    /// `other`'s set values replace ours.
    fn overlay(&mut self, other: &ServerSettings) {
        if other.gpu_memory_utilization.is_some() {
            self.gpu_memory_utilization = other.gpu_memory_utilization;
        }
        if other.enable_chunked_prefill.is_some() {
            self.enable_chunked_prefill = other.enable_chunked_prefill;
        }
        if other.enable_prefix_caching.is_some() {
            self.enable_prefix_caching = other.enable_prefix_caching;
        }
        if other.max_num_seqs.is_some() {
            self.max_num_seqs = other.max_num_seqs;
        }
        if other.kv_cache_dtype.is_some() {
            self.kv_cache_dtype.clone_from(&other.kv_cache_dtype);
        }
        if other.max_model_len.is_some() {
            self.max_model_len = other.max_model_len;
        }
        if other.max_num_batched_tokens.is_some() {
            self.max_num_batched_tokens = other.max_num_batched_tokens;
        }
        for (flag, value) in &other.extra_args {
            self.extra_args.insert(flag.clone(), value.clone());
        }
    }

    /// Whether every setting `pattern` sets has the same value here.
    fn matches(&self, pattern: &ServerSettings) -> bool {
        for (key, _) in TYPED_KEYS {
            if let Some(wanted) = pattern.typed_value(key) {
                if self.typed_value(key) != Some(wanted) {
                    return false;
                }
            }
        }
        pattern
            .extra_args
            .iter()
            .all(|(flag, value)| self.extra_args.get(flag) == Some(value))
    }

    /// Whether no setting is set.
    pub fn is_empty(&self) -> bool {
        self.flags().is_empty()
    }

    /// A short human summary: `gmu=0.9 chunked=on prefix=off seqs=48`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v) = self.gpu_memory_utilization {
            parts.push(format!("gmu={}", canonical_float(v)));
        }
        if let Some(v) = self.enable_chunked_prefill {
            parts.push(format!("chunked={}", on_off(v)));
        }
        if let Some(v) = self.enable_prefix_caching {
            parts.push(format!("prefix={}", on_off(v)));
        }
        if let Some(v) = self.max_num_seqs {
            parts.push(format!("max_num_seqs={v}"));
        }
        if let Some(v) = &self.kv_cache_dtype {
            parts.push(format!("kv_cache_dtype={v}"));
        }
        if let Some(v) = self.max_model_len {
            parts.push(format!("max_model_len={v}"));
        }
        if let Some(v) = self.max_num_batched_tokens {
            parts.push(format!("max_num_batched_tokens={v}"));
        }
        for (flag, value) in &self.extra_args {
            match value {
                ExtraArg::Switch(b) => parts.push(format!("{flag}={}", on_off(*b))),
                ExtraArg::Value(v) => parts.push(format!("{flag}={v}")),
            }
        }
        parts.join(" ")
    }
}

#[derive(Debug, Clone, PartialEq)]
enum SettingValue {
    Bool(bool),
    Text(String),
}

fn on_off(value: bool) -> &'static str {
    if value { "on" } else { "off" }
}

/// Where a configuration came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigOrigin {
    /// A point of the axes' cross product.
    Grid,
    /// A named config that replaced the grid point with the same axis values.
    NamedGridPoint,
    /// A named config outside the grid.
    Named,
}

/// One configuration to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedConfig {
    pub name: String,
    pub id: ConfigId,
    pub origin: ConfigOrigin,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub settings: ServerSettings,
}

impl PlannedConfig {
    /// The flags to set on the server.
    pub fn flags(&self) -> Vec<FlagSetting> {
        self.settings.flags()
    }
}

/// A grid point that an exclusion rule removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExcludedConfig {
    pub name: String,
    pub id: ConfigId,
    pub settings: ServerSettings,
    /// `exclude[N]` and the rule's reason.
    pub rule: String,
    pub reason: String,
}

/// The ranking gates. A config must pass all of them to be ranked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RankingGates {
    /// Every benchmark of the battery completed.
    #[serde(default = "default_true")]
    pub require_all_benchmarks: bool,
    /// Highest allowed request error rate (inclusive), as a fraction.
    #[serde(default = "default_max_error_rate")]
    pub max_request_error_rate: f64,
    /// Stability degradation must stay strictly below this fraction.
    #[serde(default = "default_max_stability_degradation")]
    pub max_stability_degradation: f64,
    /// Whether tool calling is required for the use case.
    #[serde(default)]
    pub require_tool_calling: bool,
    /// Lowest tool-call success rate (inclusive) when tool calling is required.
    #[serde(default = "default_min_tool_call_success")]
    pub min_tool_call_success_rate: f64,
}

fn default_true() -> bool {
    true
}
fn default_max_error_rate() -> f64 {
    0.01
}
fn default_max_stability_degradation() -> f64 {
    0.20
}
fn default_min_tool_call_success() -> f64 {
    0.9
}

impl Default for RankingGates {
    fn default() -> Self {
        RankingGates {
            require_all_benchmarks: true,
            max_request_error_rate: default_max_error_rate(),
            max_stability_degradation: default_max_stability_degradation(),
            require_tool_calling: false,
            min_tool_call_success_rate: default_min_tool_call_success(),
        }
    }
}

/// Time limits and retries of the search loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchLimits {
    /// Deadline for one config (all attempts and repeats included).
    #[serde(default = "default_per_config_timeout")]
    pub per_config_timeout_s: f64,
    /// Deadline for the whole search; configs not started by then are
    /// recorded as skipped.
    #[serde(default = "default_search_timeout")]
    pub search_timeout_s: f64,
    /// How long a server may take to become ready. The default fits a 32B
    /// model's load and compile time.
    #[serde(default = "default_health_timeout")]
    pub health_timeout_s: f64,
    /// How many times a transient failure (daemon hiccup, health timeout) is
    /// retried.
    #[serde(default = "default_transient_retries")]
    pub transient_retries: u32,
    /// First backoff between retries; it doubles each time.
    #[serde(default = "default_retry_backoff")]
    pub retry_backoff_s: f64,
}

fn default_per_config_timeout() -> f64 {
    3600.0
}
fn default_search_timeout() -> f64 {
    14.0 * 3600.0
}
fn default_health_timeout() -> f64 {
    1200.0
}
fn default_transient_retries() -> u32 {
    2
}
fn default_retry_backoff() -> f64 {
    15.0
}

impl Default for SearchLimits {
    fn default() -> Self {
        SearchLimits {
            per_config_timeout_s: default_per_config_timeout(),
            search_timeout_s: default_search_timeout(),
            health_timeout_s: default_health_timeout(),
            transient_retries: default_transient_retries(),
            retry_backoff_s: default_retry_backoff(),
        }
    }
}

/// A validated plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    /// The base profile as written in the file (resolve relative paths
    /// against the config file's directory).
    pub profile: String,
    pub configs: Vec<PlannedConfig>,
    #[serde(default)]
    pub excluded: Vec<ExcludedConfig>,
    /// The battery parameters, opaque here; the search deserialises them.
    pub battery: serde_json::Value,
    pub ranking: RankingGates,
    pub repeats: u32,
    pub limits: SearchLimits,
    /// Base seed; the search derives one seed per config and repeat.
    pub seed: u64,
    /// Things that are legal but probably mistakes (an exclusion rule that
    /// matches nothing). The caller logs them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Plan {
    /// The config with this ID.
    pub fn config(&self, id: &ConfigId) -> Option<&PlannedConfig> {
        self.configs.iter().find(|c| &c.id == id)
    }
}

/// A plan file that cannot be used. `path` is the JSON path (`axes.gpu_memory_utilization[2]`).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("the plan file is not valid JSON of the expected shape at `{path}`: {message}")]
    Parse { path: String, message: String },
    #[error("`{path}`: {problem}; {fix}")]
    Invalid {
        path: String,
        problem: String,
        fix: String,
    },
}

impl PlanError {
    /// The JSON path the error points at.
    pub fn path(&self) -> &str {
        match self {
            PlanError::Parse { path, .. } | PlanError::Invalid { path, .. } => path,
        }
    }
}

fn invalid(
    path: impl Into<String>,
    problem: impl Into<String>,
    fix: impl Into<String>,
) -> PlanError {
    PlanError::Invalid {
        path: path.into(),
        problem: problem.into(),
        fix: fix.into(),
    }
}

// ---------------------------------------------------------------------------
// Raw file shape.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlanFile {
    format_version: u32,
    #[serde(default)]
    #[allow(dead_code)] // Free text for the reader of the file.
    description: Option<String>,
    profile: String,
    #[serde(default)]
    defaults: RawSettings,
    #[serde(default)]
    axes: Option<RawAxes>,
    #[serde(default)]
    named_configs: Vec<RawNamed>,
    #[serde(default)]
    exclude: Vec<RawExclusion>,
    #[serde(default = "empty_object")]
    battery: serde_json::Value,
    #[serde(default)]
    ranking: RankingGates,
    #[serde(default = "default_repeats")]
    repeats: u32,
    #[serde(default)]
    limits: SearchLimits,
    #[serde(default)]
    seed: u64,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}
fn default_repeats() -> u32 {
    1
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    gpu_memory_utilization: Option<f64>,
    enable_chunked_prefill: Option<bool>,
    enable_prefix_caching: Option<bool>,
    max_num_seqs: Option<u64>,
    kv_cache_dtype: Option<String>,
    max_model_len: Option<u64>,
    max_num_batched_tokens: Option<u64>,
    #[serde(default)]
    extra_args: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAxes {
    gpu_memory_utilization: Option<Vec<f64>>,
    enable_chunked_prefill: Option<Vec<bool>>,
    enable_prefix_caching: Option<Vec<bool>>,
    max_num_seqs: Option<Vec<u64>>,
    kv_cache_dtype: Option<Vec<String>>,
    max_model_len: Option<Vec<u64>>,
    max_num_batched_tokens: Option<Vec<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNamed {
    name: String,
    #[serde(default)]
    description: Option<String>,
    settings: RawSettings,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExclusion {
    when: RawSettings,
    #[serde(default)]
    reason: Option<String>,
}

/// The study's default axes: 3 × 2 × 2 = 12 configurations.
fn default_axes() -> RawAxes {
    RawAxes {
        gpu_memory_utilization: Some(vec![0.85, 0.90, 0.95]),
        enable_chunked_prefill: Some(vec![true, false]),
        enable_prefix_caching: Some(vec![true, false]),
        ..RawAxes::default()
    }
}

/// Parse and validate a plan file's text.
pub fn parse_plan(text: &str) -> Result<Plan, PlanError> {
    let deserializer = &mut serde_json::Deserializer::from_str(text);
    let raw: RawPlanFile = serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        PlanError::Parse {
            path: if path == "." { String::new() } else { path },
            message: err.into_inner().to_string(),
        }
    })?;
    build_plan(raw)
}

fn build_plan(raw: RawPlanFile) -> Result<Plan, PlanError> {
    if raw.format_version != FORMAT_VERSION {
        return Err(invalid(
            "format_version",
            format!("format_version {} is not supported", raw.format_version),
            format!(
                "this vllm-grid reads format_version {FORMAT_VERSION}; convert the file or use the matching vllm-grid release"
            ),
        ));
    }
    if raw.profile.trim().is_empty() {
        return Err(invalid(
            "profile",
            "the profile path is empty",
            "give the compose profile to start the server from, e.g. \"profiles/medium.yml\"",
        ));
    }
    if raw.repeats == 0 || raw.repeats > 100 {
        return Err(invalid(
            "repeats",
            format!("repeats is {}", raw.repeats),
            "give a number of repeats from 1 to 100",
        ));
    }
    validate_gates(&raw.ranking)?;
    validate_limits(&raw.limits)?;
    if !raw.battery.is_object() {
        return Err(invalid(
            "battery",
            "battery is not an object",
            "give the battery parameters as an object, or {} for the defaults",
        ));
    }

    let defaults = settings_from_raw(&raw.defaults, "defaults")?;
    let mut warnings = Vec::new();

    // Enumerate the grid.
    let axes = raw.axes.unwrap_or_else(default_axes);
    let axis_values = axis_values(&axes)?;
    let axis_keys: Vec<&str> = axis_values.iter().map(|(k, _)| *k).collect();
    let mut grid: Vec<(String, ServerSettings)> = Vec::new();
    if !axis_values.is_empty() {
        let mut indices = vec![0usize; axis_values.len()];
        'points: loop {
            let mut settings = defaults.clone();
            let mut name_parts = Vec::new();
            for (axis, &index) in axis_values.iter().zip(&indices) {
                let value = &axis.1[index];
                apply_axis_value(&mut settings, axis.0, value);
                name_parts.push(axis_name_part(axis.0, value));
            }
            grid.push((name_parts.join("_"), settings));
            // Odometer over the axes, last axis fastest.
            let mut position = axis_values.len();
            loop {
                if position == 0 {
                    break 'points;
                }
                position -= 1;
                indices[position] += 1;
                if indices[position] < axis_values[position].1.len() {
                    break;
                }
                indices[position] = 0;
            }
        }
    }

    // Named configs.
    let mut named = Vec::new();
    let mut seen_names: BTreeMap<String, String> = BTreeMap::new();
    for (index, raw_named) in raw.named_configs.iter().enumerate() {
        let path = format!("named_configs[{index}]");
        validate_name(&raw_named.name, &format!("{path}.name"))?;
        if let Some(first) = seen_names.get(&raw_named.name) {
            return Err(invalid(
                format!("{path}.name"),
                format!("the name `{}` is also used by {first}", raw_named.name),
                "give every named config its own name",
            ));
        }
        seen_names.insert(raw_named.name.clone(), path.clone());
        let mut settings = defaults.clone();
        settings.overlay(&settings_from_raw(
            &raw_named.settings,
            &format!("{path}.settings"),
        )?);
        named.push((index, raw_named, settings));
    }

    // Exclusion rules (grid points only).
    let mut rules = Vec::new();
    for (index, rule) in raw.exclude.iter().enumerate() {
        let path = format!("exclude[{index}].when");
        let pattern = settings_from_raw(&rule.when, &path)?;
        if pattern.is_empty() {
            return Err(invalid(
                path,
                "the rule's `when` sets nothing, so it would exclude every grid point",
                "list the settings whose combination must be skipped, e.g. {\"gpu_memory_utilization\": 0.95}",
            ));
        }
        rules.push((index, pattern, rule.reason.clone().unwrap_or_default()));
    }

    let mut configs: Vec<PlannedConfig> = Vec::new();
    let mut excluded = Vec::new();
    let mut claimed = vec![false; named.len()];
    let mut rule_used = vec![false; rules.len()];
    for (grid_name, grid_settings) in grid {
        // A named config with the same values on every axis claims the point.
        let claimer = named.iter().enumerate().find(|(n, (_, _, settings))| {
            !claimed[*n]
                && axis_keys
                    .iter()
                    .all(|key| settings.typed_value(key) == grid_settings.typed_value(key))
        });
        if let Some((n, (_, raw_named, settings))) = claimer {
            claimed[n] = true;
            configs.push(PlannedConfig {
                name: raw_named.name.clone(),
                id: settings.id(),
                origin: ConfigOrigin::NamedGridPoint,
                description: raw_named.description.clone(),
                settings: settings.clone(),
            });
            continue;
        }
        if let Some((r, (index, _, reason))) = rules
            .iter()
            .enumerate()
            .find(|(_, (_, pattern, _))| grid_settings.matches(pattern))
        {
            rule_used[r] = true;
            excluded.push(ExcludedConfig {
                id: grid_settings.id(),
                name: grid_name,
                settings: grid_settings,
                rule: format!("exclude[{index}]"),
                reason: reason.clone(),
            });
            continue;
        }
        configs.push(PlannedConfig {
            id: grid_settings.id(),
            name: grid_name,
            origin: ConfigOrigin::Grid,
            description: None,
            settings: grid_settings,
        });
    }
    for (n, (_, raw_named, settings)) in named.iter().enumerate() {
        if !claimed[n] {
            configs.push(PlannedConfig {
                name: raw_named.name.clone(),
                id: settings.id(),
                origin: ConfigOrigin::Named,
                description: raw_named.description.clone(),
                settings: settings.clone(),
            });
        }
    }
    for (r, used) in rule_used.iter().enumerate() {
        if !used {
            warnings.push(format!(
                "exclude[{}] matches no grid point; check its values against the axes",
                rules[r].0
            ));
        }
    }

    // Names and IDs must be unique across the whole plan.
    let mut by_name: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_id: BTreeMap<&ConfigId, usize> = BTreeMap::new();
    for (position, config) in configs.iter().enumerate() {
        if let Some(first) = by_name.insert(&config.name, position) {
            return Err(invalid(
                config_path(&config.name, &raw.named_configs),
                format!(
                    "the name `{}` is used by two configs ({} and {})",
                    config.name,
                    configs[first].settings.summary(),
                    config.settings.summary()
                ),
                "rename the named config; grid points are named from their axis values",
            ));
        }
        if let Some(first) = by_id.insert(&config.id, position) {
            return Err(invalid(
                config_path(&config.name, &raw.named_configs),
                format!(
                    "`{}` and `{}` have the same effective settings ({}), so they are the same config",
                    configs[first].name,
                    config.name,
                    config.settings.summary()
                ),
                "remove one of them or make their settings differ",
            ));
        }
    }

    if configs.is_empty() {
        return Err(if excluded.is_empty() {
            invalid(
                "",
                "the plan has no configurations",
                "give `axes` with at least one value each, or `named_configs`",
            )
        } else {
            invalid(
                "exclude",
                format!("all {} grid points are excluded", excluded.len()),
                "loosen the exclusion rules or add named_configs",
            )
        });
    }

    Ok(Plan {
        format_version: raw.format_version,
        profile: raw.profile,
        configs,
        excluded,
        battery: raw.battery,
        ranking: raw.ranking,
        repeats: raw.repeats,
        limits: raw.limits,
        seed: raw.seed,
        warnings,
    })
}

fn config_path(name: &str, named: &[RawNamed]) -> String {
    match named.iter().position(|n| n.name == name) {
        Some(index) => format!("named_configs[{index}].name"),
        None => "axes".to_string(),
    }
}

fn validate_name(name: &str, path: &str) -> Result<(), PlanError> {
    let ok = !name.is_empty()
        && name.len() <= 80
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            path,
            format!("the name {name:?} is not usable as a directory name"),
            "use 1 to 80 letters, digits, `_`, `-` or `.`, not starting with `.`",
        ))
    }
}

fn validate_gates(gates: &RankingGates) -> Result<(), PlanError> {
    let fraction = |value: f64, key: &str| {
        if (0.0..=1.0).contains(&value) {
            Ok(())
        } else {
            Err(invalid(
                format!("ranking.{key}"),
                format!("{value} is not a fraction"),
                "give a fraction between 0 and 1 (0.01 means 1 %)",
            ))
        }
    };
    fraction(gates.max_request_error_rate, "max_request_error_rate")?;
    fraction(
        gates.min_tool_call_success_rate,
        "min_tool_call_success_rate",
    )?;
    if !(gates.max_stability_degradation > 0.0 && gates.max_stability_degradation.is_finite()) {
        return Err(invalid(
            "ranking.max_stability_degradation",
            format!(
                "{} is not a positive fraction",
                gates.max_stability_degradation
            ),
            "give a positive fraction (0.20 means configs must degrade less than 20 %)",
        ));
    }
    Ok(())
}

fn validate_limits(limits: &SearchLimits) -> Result<(), PlanError> {
    for (key, value) in [
        ("per_config_timeout_s", limits.per_config_timeout_s),
        ("search_timeout_s", limits.search_timeout_s),
        ("health_timeout_s", limits.health_timeout_s),
    ] {
        if !(value > 0.0 && value.is_finite()) {
            return Err(invalid(
                format!("limits.{key}"),
                format!("{value} is not a positive number of seconds"),
                "give a positive number of seconds",
            ));
        }
    }
    if !(limits.retry_backoff_s >= 0.0 && limits.retry_backoff_s.is_finite()) {
        return Err(invalid(
            "limits.retry_backoff_s",
            format!("{} is not a number of seconds", limits.retry_backoff_s),
            "give 0 or a positive number of seconds",
        ));
    }
    if limits.transient_retries > 20 {
        return Err(invalid(
            "limits.transient_retries",
            format!(
                "{} retries per config is too many",
                limits.transient_retries
            ),
            "give at most 20 retries",
        ));
    }
    Ok(())
}

fn check_gmu(value: f64, path: &str) -> Result<(), PlanError> {
    if value > 0.0 && value <= 1.0 {
        Ok(())
    } else {
        Err(invalid(
            path,
            format!("gpu_memory_utilization {value} is outside (0, 1]"),
            "give the fraction of GPU memory vLLM may use, greater than 0 and at most 1 (e.g. 0.90)",
        ))
    }
}

fn check_positive(value: u64, path: &str, what: &str) -> Result<(), PlanError> {
    if value >= 1 {
        Ok(())
    } else {
        Err(invalid(
            path,
            format!("{what} is 0"),
            format!("give a positive {what}"),
        ))
    }
}

fn check_dtype(value: &str, path: &str) -> Result<(), PlanError> {
    if !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(invalid(
            path,
            format!("kv_cache_dtype {value:?} is not a dtype name"),
            "give one of vLLM's names, e.g. \"auto\", \"fp8\", \"fp8_e4m3\", \"fp8_e5m2\"",
        ))
    }
}

fn settings_from_raw(raw: &RawSettings, path: &str) -> Result<ServerSettings, PlanError> {
    if let Some(v) = raw.gpu_memory_utilization {
        check_gmu(v, &format!("{path}.gpu_memory_utilization"))?;
    }
    if let Some(v) = raw.max_num_seqs {
        check_positive(v, &format!("{path}.max_num_seqs"), "max_num_seqs")?;
    }
    if let Some(v) = raw.max_model_len {
        check_positive(v, &format!("{path}.max_model_len"), "max_model_len")?;
    }
    if let Some(v) = raw.max_num_batched_tokens {
        check_positive(
            v,
            &format!("{path}.max_num_batched_tokens"),
            "max_num_batched_tokens",
        )?;
    }
    if let Some(v) = &raw.kv_cache_dtype {
        check_dtype(v, &format!("{path}.kv_cache_dtype"))?;
    }
    let mut extra_args = BTreeMap::new();
    for (key, value) in &raw.extra_args {
        let key_path = format!("{path}.extra_args.{key}");
        let flag = normalise_flag(key);
        if flag.is_empty()
            || !flag
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(invalid(
                key_path,
                format!("{key:?} is not a vLLM flag name"),
                "write the long flag name, e.g. \"enforce-eager\" or \"--swap-space\"",
            ));
        }
        if let Some((typed, _)) = TYPED_KEYS
            .iter()
            .find(|(_, f)| *f == flag || flag == format!("no-{f}"))
        {
            return Err(invalid(
                key_path,
                format!("`{flag}` has a typed setting"),
                format!("use \"{typed}\" instead of extra_args"),
            ));
        }
        if PROFILE_OWNED_FLAGS.contains(&flag.as_str()) {
            return Err(invalid(
                key_path,
                format!(
                    "`--{flag}` decides how the server is reached or sized, and belongs to the profile"
                ),
                "set it in the profile's command, not per config",
            ));
        }
        if let Some(positive) = flag.strip_prefix("no-") {
            return Err(invalid(
                key_path,
                format!("`--{flag}` is the negative form of a switch"),
                format!("write \"{positive}\": false"),
            ));
        }
        let arg = match value {
            serde_json::Value::Bool(b) => ExtraArg::Switch(*b),
            serde_json::Value::String(s) if !s.is_empty() => ExtraArg::Value(s.clone()),
            serde_json::Value::Number(n) => ExtraArg::Value(n.to_string()),
            other => {
                return Err(invalid(
                    key_path,
                    format!("{other} is not a flag value"),
                    "give true/false for a switch, or a non-empty string or a number for a value",
                ));
            }
        };
        if extra_args.insert(flag.clone(), arg).is_some() {
            return Err(invalid(
                key_path,
                format!("`{flag}` is given twice under different spellings"),
                "keep one spelling",
            ));
        }
    }
    Ok(ServerSettings {
        gpu_memory_utilization: raw.gpu_memory_utilization,
        enable_chunked_prefill: raw.enable_chunked_prefill,
        enable_prefix_caching: raw.enable_prefix_caching,
        max_num_seqs: raw.max_num_seqs,
        kv_cache_dtype: raw.kv_cache_dtype.as_ref().map(|s| s.to_ascii_lowercase()),
        max_model_len: raw.max_model_len,
        max_num_batched_tokens: raw.max_num_batched_tokens,
        extra_args,
    })
}

/// `--Foo_Bar` → `foo-bar`.
fn normalise_flag(key: &str) -> String {
    key.trim()
        .trim_start_matches('-')
        .replace('_', "-")
        .to_ascii_lowercase()
}

#[derive(Debug, Clone)]
enum AxisValue {
    Float(f64),
    Bool(bool),
    Int(u64),
    Text(String),
}

fn axis_values(axes: &RawAxes) -> Result<Vec<(&'static str, Vec<AxisValue>)>, PlanError> {
    let mut out: Vec<(&'static str, Vec<AxisValue>)> = Vec::new();
    let mut push = |key: &'static str, values: Option<Vec<AxisValue>>| -> Result<(), PlanError> {
        let Some(values) = values else { return Ok(()) };
        let path = format!("axes.{key}");
        if values.is_empty() {
            return Err(invalid(
                path,
                "the axis has no values",
                "give at least one value, or remove the key",
            ));
        }
        let mut seen = BTreeSet::new();
        for (index, value) in values.iter().enumerate() {
            let item = format!("{path}[{index}]");
            let text = match value {
                AxisValue::Float(v) => {
                    check_gmu(*v, &item)?;
                    canonical_float(*v)
                }
                AxisValue::Int(v) => {
                    check_positive(*v, &item, key)?;
                    v.to_string()
                }
                AxisValue::Text(v) => {
                    check_dtype(v, &item)?;
                    v.to_ascii_lowercase()
                }
                AxisValue::Bool(v) => v.to_string(),
            };
            if !seen.insert(text.clone()) {
                return Err(invalid(
                    item,
                    format!("the value {text} appears twice on this axis"),
                    "list each value once",
                ));
            }
        }
        out.push((key, values));
        Ok(())
    };
    push(
        "gpu_memory_utilization",
        axes.gpu_memory_utilization
            .as_ref()
            .map(|v| v.iter().copied().map(AxisValue::Float).collect()),
    )?;
    push(
        "enable_chunked_prefill",
        axes.enable_chunked_prefill
            .as_ref()
            .map(|v| v.iter().copied().map(AxisValue::Bool).collect()),
    )?;
    push(
        "enable_prefix_caching",
        axes.enable_prefix_caching
            .as_ref()
            .map(|v| v.iter().copied().map(AxisValue::Bool).collect()),
    )?;
    push(
        "max_num_seqs",
        axes.max_num_seqs
            .as_ref()
            .map(|v| v.iter().copied().map(AxisValue::Int).collect()),
    )?;
    push(
        "kv_cache_dtype",
        axes.kv_cache_dtype
            .as_ref()
            .map(|v| v.iter().cloned().map(AxisValue::Text).collect()),
    )?;
    push(
        "max_model_len",
        axes.max_model_len
            .as_ref()
            .map(|v| v.iter().copied().map(AxisValue::Int).collect()),
    )?;
    push(
        "max_num_batched_tokens",
        axes.max_num_batched_tokens
            .as_ref()
            .map(|v| v.iter().copied().map(AxisValue::Int).collect()),
    )?;
    Ok(out)
}

fn apply_axis_value(settings: &mut ServerSettings, key: &str, value: &AxisValue) {
    match (key, value) {
        ("gpu_memory_utilization", AxisValue::Float(v)) => {
            settings.gpu_memory_utilization = Some(*v)
        }
        ("enable_chunked_prefill", AxisValue::Bool(v)) => {
            settings.enable_chunked_prefill = Some(*v)
        }
        ("enable_prefix_caching", AxisValue::Bool(v)) => settings.enable_prefix_caching = Some(*v),
        ("max_num_seqs", AxisValue::Int(v)) => settings.max_num_seqs = Some(*v),
        ("kv_cache_dtype", AxisValue::Text(v)) => {
            settings.kv_cache_dtype = Some(v.to_ascii_lowercase())
        }
        ("max_model_len", AxisValue::Int(v)) => settings.max_model_len = Some(*v),
        ("max_num_batched_tokens", AxisValue::Int(v)) => settings.max_num_batched_tokens = Some(*v),
        // axis_values pairs each key with its own value type.
        _ => {}
    }
}

/// The readable name segment of one axis value: `gmu0.90`, `chunked-on`.
fn axis_name_part(key: &str, value: &AxisValue) -> String {
    match (key, value) {
        ("gpu_memory_utilization", AxisValue::Float(v)) => {
            // Two decimals reads like the study (0.90); keep more when needed
            // so distinct values never share a name.
            let two = format!("{v:.2}");
            if two.parse::<f64>().ok() == Some(*v) {
                format!("gmu{two}")
            } else {
                format!("gmu{}", canonical_float(*v))
            }
        }
        ("enable_chunked_prefill", AxisValue::Bool(v)) => format!("chunked-{}", on_off(*v)),
        ("enable_prefix_caching", AxisValue::Bool(v)) => format!("prefix-{}", on_off(*v)),
        ("max_num_seqs", AxisValue::Int(v)) => format!("seqs{v}"),
        ("kv_cache_dtype", AxisValue::Text(v)) => format!("kv-{}", v.to_ascii_lowercase()),
        ("max_model_len", AxisValue::Int(v)) => format!("len{v}"),
        ("max_num_batched_tokens", AxisValue::Int(v)) => format!("batched{v}"),
        (key, _) => key.to_string(),
    }
}

/// A structured difference between two plans, for resume and reproduce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanDiff {
    /// Human lines, one per difference.
    pub changes: Vec<String>,
}

impl PlanDiff {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// What differs between an earlier plan and a new one: configs added,
/// removed or renamed (matched by ID), battery, gates, repeats, limits, seed.
pub fn diff_plans(old: &Plan, new: &Plan) -> PlanDiff {
    let mut changes = Vec::new();
    for config in &old.configs {
        match new.config(&config.id) {
            None => changes.push(format!(
                "config `{}` ({}) [{}] was removed",
                config.name,
                config.settings.summary(),
                config.id
            )),
            Some(now) if now.name != config.name => changes.push(format!(
                "config {} was renamed from `{}` to `{}`",
                config.id, config.name, now.name
            )),
            Some(_) => {}
        }
    }
    for config in &new.configs {
        if old.config(&config.id).is_none() {
            changes.push(format!(
                "config `{}` ({}) [{}] was added",
                config.name,
                config.settings.summary(),
                config.id
            ));
        }
    }
    if old.battery != new.battery {
        changes.push(format!(
            "battery parameters changed: {} -> {}",
            old.battery, new.battery
        ));
    }
    if old.ranking != new.ranking {
        changes.push(format!(
            "ranking gates changed: {:?} -> {:?}",
            old.ranking, new.ranking
        ));
    }
    if old.repeats != new.repeats {
        changes.push(format!(
            "repeats changed: {} -> {}",
            old.repeats, new.repeats
        ));
    }
    if old.seed != new.seed {
        changes.push(format!("seed changed: {} -> {}", old.seed, new.seed));
    }
    if old.limits != new.limits {
        changes.push(format!(
            "limits changed: {:?} -> {:?}",
            old.limits, new.limits
        ));
    }
    PlanDiff { changes }
}
