//! What the planner hands out: a validated plan and its configurations.

use serde::{Deserialize, Serialize};

use crate::bounded::Repeats;
use crate::id::ConfigId;
use crate::limits::SearchLimits;
use crate::ranking::RankingGates;
use crate::settings::{FlagSetting, ServerSettings};

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

/// A validated plan. It is also what `manifest.json` records, so its serde
/// shape is the plan file's: same keys, seconds as numbers.
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
    pub repeats: Repeats,
    pub limits: SearchLimits,
    /// Base seed; the search derives one seed per config and repeat.
    pub seed: u64,
    /// GPU slots to run configs on side by side, as `--gpu-slots` words
    /// (`["auto"]`, `["0,1", "2,3"]`); the binary parses them (and its
    /// `--gpu-slots` takes precedence). Empty: one slot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slots: Vec<String>,
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
