//! Stable config IDs: what a configuration is called on disk, in resume and
//! in reproduce. The formula is in the crate docs; a change to it breaks
//! every earlier run, so the tests pin it.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::settings::{ExtraArg, ServerSettings, SettingValue, TYPED_KEYS};

/// The 64-bit FNV-1a hash, grid-core's (one implementation for config IDs,
/// derived seeds and the simulator's token ids); re-exported because the
/// ID formula is stated in terms of it.
pub use grid_core::fnv1a64;

/// A configuration's stable identity: 16 hex digits (see the crate docs).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConfigId(pub String);

impl fmt::Display for ConfigId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ServerSettings {
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
}
