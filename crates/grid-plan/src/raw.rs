//! The plan file's shape as serde reads it, before any check. Every struct
//! denies unknown keys, so a typo is an error naming it.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::limits::RawLimits;
use crate::ranking::RawRanking;

/// The only `format_version` this planner reads.
pub const FORMAT_VERSION: u32 = 1;

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPlanFile {
    pub(crate) format_version: u32,
    #[serde(default)]
    #[allow(dead_code)] // Free text for the reader of the file.
    pub(crate) description: Option<String>,
    pub(crate) profile: String,
    #[serde(default)]
    pub(crate) defaults: RawSettings,
    #[serde(default)]
    pub(crate) axes: Option<RawAxes>,
    #[serde(default)]
    pub(crate) named_configs: Vec<RawNamed>,
    #[serde(default)]
    pub(crate) exclude: Vec<RawExclusion>,
    #[serde(default = "empty_object")]
    pub(crate) battery: serde_json::Value,
    #[serde(default)]
    pub(crate) ranking: RawRanking,
    /// Read wide so that a huge count is refused with its bound, not as
    /// "expected u32".
    #[serde(default = "default_repeats")]
    pub(crate) repeats: u64,
    #[serde(default)]
    pub(crate) limits: RawLimits,
    #[serde(default)]
    pub(crate) seed: u64,
    /// GPU slots, as `--gpu-slots` takes them: `"auto"`, `"0,1 2,3"` or
    /// `["0,1", "2,3"]`.
    #[serde(default)]
    pub(crate) slots: Option<RawSlots>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum RawSlots {
    Words(String),
    List(Vec<String>),
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}
fn default_repeats() -> u64 {
    1
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSettings {
    pub(crate) gpu_memory_utilization: Option<f64>,
    pub(crate) enable_chunked_prefill: Option<bool>,
    pub(crate) enable_prefix_caching: Option<bool>,
    pub(crate) max_num_seqs: Option<u64>,
    pub(crate) kv_cache_dtype: Option<String>,
    pub(crate) max_model_len: Option<u64>,
    pub(crate) max_num_batched_tokens: Option<u64>,
    #[serde(default)]
    pub(crate) extra_args: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAxes {
    pub(crate) gpu_memory_utilization: Option<Vec<f64>>,
    pub(crate) enable_chunked_prefill: Option<Vec<bool>>,
    pub(crate) enable_prefix_caching: Option<Vec<bool>>,
    pub(crate) max_num_seqs: Option<Vec<u64>>,
    pub(crate) kv_cache_dtype: Option<Vec<String>>,
    pub(crate) max_model_len: Option<Vec<u64>>,
    pub(crate) max_num_batched_tokens: Option<Vec<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNamed {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) description: Option<String>,
    pub(crate) settings: RawSettings,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExclusion {
    pub(crate) when: RawSettings,
    #[serde(default)]
    pub(crate) reason: Option<String>,
}

/// The study's default axes: 3 × 2 × 2 = 12 configurations.
pub(crate) fn default_axes() -> RawAxes {
    RawAxes {
        gpu_memory_utilization: Some(vec![0.85, 0.90, 0.95]),
        enable_chunked_prefill: Some(vec![true, false]),
        enable_prefix_caching: Some(vec![true, false]),
        ..RawAxes::default()
    }
}
