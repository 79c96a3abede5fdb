//! The server settings a configuration controls, and the flags they render
//! to. How settings are read from the file is `validate.rs`; how they are
//! identified is `id.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One vLLM server flag that a configuration sets.
///
/// `flag` is the long name without the leading dashes, spelled as `vllm serve`
/// spells it (`gpu-memory-utilization`, `enable-prefix-caching`). A `Switch`
/// renders as `--flag` or `--no-flag` (vLLM's BooleanOptionalAction pairs); a
/// `Value` renders as `--flag value`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
pub(crate) const TYPED_KEYS: [(&str, &str); 7] = [
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
pub(crate) const PROFILE_OWNED_FLAGS: [&str; 6] = [
    "host",
    "port",
    "api-key",
    "served-model-name",
    "model",
    "device-memory-utilization",
];

/// Canonical text of a float: Rust's shortest representation that round-trips.
pub(crate) fn canonical_float(value: f64) -> String {
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

    pub(crate) fn typed_value(&self, key: &str) -> Option<SettingValue> {
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

    /// `other`'s set values replace ours.
    pub(crate) fn overlay(&mut self, other: &ServerSettings) {
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
    pub(crate) fn matches(&self, pattern: &ServerSettings) -> bool {
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
pub(crate) enum SettingValue {
    Bool(bool),
    Text(String),
}

pub(crate) fn on_off(value: bool) -> &'static str {
    if value { "on" } else { "off" }
}
