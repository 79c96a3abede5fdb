//! Why a plan file cannot be used: one variant per check that failed, each
//! naming the JSON path (`axes.gpu_memory_utilization[2]`) and the fix.

use crate::bounded::{OutOfRange, SecondsError, SecondsRange};
use crate::raw::FORMAT_VERSION;

/// A plan file that cannot be used. [`PlanError::path`] is the JSON path the
/// error points at.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "the plan file is not valid JSON of the expected shape at `{path}`; correct it there (grid_search_configs.json shows every key)"
    )]
    Parse {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "`format_version`: format_version {found} is not supported; this vllm-grid reads format_version {FORMAT_VERSION}; convert the file or use the matching vllm-grid release"
    )]
    UnsupportedVersion { found: u32 },
    #[error(
        "`profile`: the profile path is empty; give the compose profile to start the server from, e.g. \"profiles/medium.yml\""
    )]
    EmptyProfile,
    #[error("`{path}` is out of range; give a number of {what} from {} to {}", source.min, source.max)]
    Count {
        path: String,
        what: &'static str,
        #[source]
        source: OutOfRange,
    },
    #[error("`{path}` is not a usable time limit; give {range}")]
    Limit {
        path: String,
        range: &'static SecondsRange,
        #[source]
        source: SecondsError,
    },
    #[error(
        "`{path}`: {value} is not a fraction; give a fraction between 0 and 1 (0.01 means 1 %)"
    )]
    NotAFraction { path: String, value: f64 },
    #[error(
        "`ranking.max_stability_degradation`: {value} is not a positive fraction; give a positive fraction (0.20 means configs must degrade less than 20 %)"
    )]
    StabilityGate { value: f64 },
    #[error(
        "`ranking.equivalence_margin` is out of range; give a fraction above 0 and at most 0.5 (0.05 means configs within ±5 % of the best are equivalent)"
    )]
    EquivalenceMargin {
        #[source]
        source: crate::ranking::MarginOutOfRange,
    },
    #[error(
        "`battery`: battery is not an object; give the battery parameters as an object, or {{}} for the defaults"
    )]
    BatteryNotAnObject,
    #[error(
        "`{path}`: gpu_memory_utilization {value} is outside (0, 1]; give the fraction of GPU memory vLLM may use, greater than 0 and at most 1 (e.g. 0.90)"
    )]
    GpuMemoryUtilization { path: String, value: f64 },
    #[error("`{path}`: {key} is 0; give a positive {key}")]
    ZeroSetting { path: String, key: &'static str },
    #[error(
        "`{path}`: kv_cache_dtype {value:?} is not a dtype name; give one of vLLM's names, e.g. \"auto\", \"fp8\", \"fp8_e4m3\", \"fp8_e5m2\""
    )]
    KvCacheDtype { path: String, value: String },
    #[error(
        "`{path}`: {key:?} is not a vLLM flag name; write the long flag name, e.g. \"enforce-eager\" or \"--swap-space\""
    )]
    NotAFlag { path: String, key: String },
    #[error("`{path}`: `{flag}` has a typed setting; use \"{typed}\" instead of extra_args")]
    TypedFlag {
        path: String,
        flag: String,
        typed: &'static str,
    },
    #[error(
        "`{path}`: `--{flag}` decides how the server is reached or sized, and belongs to the profile; set it in the profile's command, not per config"
    )]
    ProfileOwnedFlag { path: String, flag: String },
    #[error("`{path}`: `--{flag}` is the negative form of a switch; write \"{positive}\": false")]
    NegativeFlag {
        path: String,
        flag: String,
        positive: String,
    },
    #[error(
        "`{path}`: {value} is not a flag value; give true/false for a switch, or a non-empty string or a number for a value"
    )]
    FlagValue {
        path: String,
        value: serde_json::Value,
    },
    #[error("`{path}`: `{flag}` is given twice under different spellings; keep one spelling")]
    FlagTwice { path: String, flag: String },
    #[error("`{path}`: the axis has no values; give at least one value, or remove the key")]
    EmptyAxis { path: String },
    #[error("`{path}`: the value {value} appears twice on this axis; list each value once")]
    RepeatedAxisValue { path: String, value: String },
    #[error(
        "`{path}`: the name {name:?} is not usable as a directory name; use 1 to 80 letters, digits, `_`, `-` or `.`, not starting with `.`"
    )]
    BadName { path: String, name: String },
    #[error(
        "`{path}`: the name `{name}` is also used by {first}; give every named config its own name"
    )]
    NameReused {
        path: String,
        name: String,
        first: String,
    },
    #[error(
        "`{}`: the name `{}` is used by two configs ({} and {}); rename the named config; grid points are named from their axis values",
        .0.path, .0.shared, .0.first, .0.second
    )]
    NameClash(Box<Clash>),
    #[error(
        "`{}`: `{}` and `{}` have the same effective settings ({}), so they are the same config; remove one of them or make their settings differ",
        .0.path, .0.first, .0.second, .0.shared
    )]
    SameSettings(Box<Clash>),
    #[error(
        "`{path}`: the rule's `when` sets nothing, so it would exclude every grid point; list the settings whose combination must be skipped, e.g. {{\"gpu_memory_utilization\": 0.95}}"
    )]
    EmptyRule { path: String },
    #[error(
        "the plan has no configurations; give `axes` with at least one value each, or `named_configs`"
    )]
    NoConfigs,
    #[error(
        "`exclude`: all {count} grid points are excluded; loosen the exclusion rules or add named_configs"
    )]
    AllExcluded { count: usize },
}

impl PlanError {
    /// The JSON path the error points at (empty for the whole file).
    pub fn path(&self) -> &str {
        match self {
            PlanError::Parse { path, .. }
            | PlanError::Count { path, .. }
            | PlanError::Limit { path, .. }
            | PlanError::NotAFraction { path, .. }
            | PlanError::GpuMemoryUtilization { path, .. }
            | PlanError::ZeroSetting { path, .. }
            | PlanError::KvCacheDtype { path, .. }
            | PlanError::NotAFlag { path, .. }
            | PlanError::TypedFlag { path, .. }
            | PlanError::ProfileOwnedFlag { path, .. }
            | PlanError::NegativeFlag { path, .. }
            | PlanError::FlagValue { path, .. }
            | PlanError::FlagTwice { path, .. }
            | PlanError::EmptyAxis { path }
            | PlanError::RepeatedAxisValue { path, .. }
            | PlanError::BadName { path, .. }
            | PlanError::NameReused { path, .. }
            | PlanError::EmptyRule { path } => path,
            PlanError::NameClash(clash) | PlanError::SameSettings(clash) => &clash.path,
            PlanError::UnsupportedVersion { .. } => "format_version",
            PlanError::EmptyProfile => "profile",
            PlanError::StabilityGate { .. } => "ranking.max_stability_degradation",
            PlanError::EquivalenceMargin { .. } => "ranking.equivalence_margin",
            PlanError::BatteryNotAnObject => "battery",
            PlanError::NoConfigs => "",
            PlanError::AllExcluded { .. } => "exclude",
        }
    }
}

/// Two configs that cannot both be in the plan. Boxed in [`PlanError`] to
/// keep the error small.
#[derive(Debug)]
pub struct Clash {
    /// Where the second one is written.
    pub path: String,
    /// What they share: the name (the first's and second's settings
    /// differ), or the settings (the first's and second's names differ).
    pub shared: String,
    pub first: String,
    pub second: String,
}
