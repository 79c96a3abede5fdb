//! The planner: reads `grid_search_configs.json`, enumerates the grid and
//! gives every configuration a stable ID. It does no IO: callers hand it text
//! and get plans back.

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
