//! Reading server settings and names from their raw form: each value is
//! checked where it is read, and the error names its JSON path.

use std::collections::BTreeMap;

use crate::error::PlanError;
use crate::raw::RawSettings;
use crate::settings::{ExtraArg, PROFILE_OWNED_FLAGS, ServerSettings, TYPED_KEYS};

pub(crate) fn check_gmu(value: f64, path: &str) -> Result<(), PlanError> {
    if value > 0.0 && value <= 1.0 {
        Ok(())
    } else {
        Err(PlanError::GpuMemoryUtilization {
            path: path.to_string(),
            value,
        })
    }
}

pub(crate) fn check_positive(value: u64, path: &str, key: &'static str) -> Result<(), PlanError> {
    if value >= 1 {
        Ok(())
    } else {
        Err(PlanError::ZeroSetting {
            path: path.to_string(),
            key,
        })
    }
}

pub(crate) fn check_dtype(value: &str, path: &str) -> Result<(), PlanError> {
    if !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(PlanError::KvCacheDtype {
            path: path.to_string(),
            value: value.to_string(),
        })
    }
}

/// The settings of `defaults`, a named config or an exclusion rule.
pub(crate) fn settings_from_raw(
    raw: &RawSettings,
    path: &str,
) -> Result<ServerSettings, PlanError> {
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
        let (flag, arg) = extra_arg(key, value, &key_path)?;
        if extra_args.insert(flag.clone(), arg).is_some() {
            return Err(PlanError::FlagTwice {
                path: key_path,
                flag,
            });
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

/// One `extra_args` entry: its normalised flag and its value.
fn extra_arg(
    key: &str,
    value: &serde_json::Value,
    path: &str,
) -> Result<(String, ExtraArg), PlanError> {
    let flag = normalise_flag(key);
    if flag.is_empty()
        || !flag
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(PlanError::NotAFlag {
            path: path.to_string(),
            key: key.to_string(),
        });
    }
    if let Some((typed, _)) = TYPED_KEYS
        .iter()
        .find(|(_, f)| *f == flag || flag == format!("no-{f}"))
    {
        return Err(PlanError::TypedFlag {
            path: path.to_string(),
            flag,
            typed,
        });
    }
    if PROFILE_OWNED_FLAGS.contains(&flag.as_str()) {
        return Err(PlanError::ProfileOwnedFlag {
            path: path.to_string(),
            flag,
        });
    }
    if let Some(positive) = flag.strip_prefix("no-") {
        return Err(PlanError::NegativeFlag {
            path: path.to_string(),
            positive: positive.to_string(),
            flag,
        });
    }
    let arg = match value {
        serde_json::Value::Bool(b) => ExtraArg::Switch(*b),
        serde_json::Value::String(s) if !s.is_empty() => ExtraArg::Value(s.clone()),
        serde_json::Value::Number(n) => ExtraArg::Value(n.to_string()),
        other => {
            return Err(PlanError::FlagValue {
                path: path.to_string(),
                value: other.clone(),
            });
        }
    };
    Ok((flag, arg))
}

/// `--Foo_Bar` → `foo-bar`.
fn normalise_flag(key: &str) -> String {
    key.trim()
        .trim_start_matches('-')
        .replace('_', "-")
        .to_ascii_lowercase()
}

/// A config's name becomes a directory name under the run.
pub(crate) fn validate_name(name: &str, path: &str) -> Result<(), PlanError> {
    let ok = !name.is_empty()
        && name.len() <= 80
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(PlanError::BadName {
            path: path.to_string(),
            name: name.to_string(),
        })
    }
}
