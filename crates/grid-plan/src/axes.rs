//! The grid: each axis's values, checked, and the cross product of them,
//! each point named from its values (`gmu0.90_chunked-on_prefix-off`).

use std::collections::BTreeSet;

use crate::error::PlanError;
use crate::raw::RawAxes;
use crate::settings::{ServerSettings, canonical_float, on_off};
use crate::validate::{check_dtype, check_gmu, check_positive};

/// The grid's points in order (last axis fastest), named, with `defaults`
/// under each; and the axes' keys, which decide when a named config claims a
/// point.
pub(crate) struct Grid {
    pub(crate) keys: Vec<&'static str>,
    pub(crate) points: Vec<(String, ServerSettings)>,
}

impl Grid {
    pub(crate) fn enumerate(axes: &RawAxes, defaults: &ServerSettings) -> Result<Grid, PlanError> {
        let axis_values = axis_values(axes)?;
        let keys = axis_values.iter().map(|(k, _)| *k).collect();
        let mut points = Vec::new();
        if axis_values.is_empty() {
            return Ok(Grid { keys, points });
        }
        let mut indices = vec![0usize; axis_values.len()];
        'points: loop {
            let mut settings = defaults.clone();
            let mut name_parts = Vec::new();
            for (axis, &index) in axis_values.iter().zip(&indices) {
                let value = &axis.1[index];
                apply_axis_value(&mut settings, axis.0, value);
                name_parts.push(axis_name_part(axis.0, value));
            }
            points.push((name_parts.join("_"), settings));
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
        Ok(Grid { keys, points })
    }
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
            return Err(PlanError::EmptyAxis { path });
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
                return Err(PlanError::RepeatedAxisValue {
                    path: item,
                    value: text,
                });
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
