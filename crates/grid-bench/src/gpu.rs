//! `nvidia-smi` sampling: the CSV parser, the sampler and the GPU report.
//!
//! The sampler runs
//! `nvidia-smi --query-gpu=index,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw --format=csv,noheader,nounits`
//! once per interval. A field a card does not report (`[N/A]`, `N/A`,
//! `[Not Supported]`, ...) is `None`, never zero. Without `nvidia-smi` the
//! profile says "unavailable" and carries no numbers.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use grid_core::Distribution;

/// The fields the sampler asks for, in order.
pub const QUERY_FIELDS: [&str; 6] = [
    "index",
    "utilization.gpu",
    "memory.used",
    "memory.total",
    "temperature.gpu",
    "power.draw",
];

/// One GPU at one instant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuReading {
    pub index: Option<u32>,
    pub name: Option<String>,
    pub utilization_percent: Option<f64>,
    pub memory_used_mib: Option<f64>,
    pub memory_total_mib: Option<f64>,
    pub temperature_c: Option<f64>,
    pub power_draw_w: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GpuParseError {
    #[error("nvidia-smi line {line} has {found} fields, the query asked for {expected}: {text}")]
    FieldCount {
        line: usize,
        expected: usize,
        found: usize,
        text: String,
    },
    #[error("nvidia-smi line {line}, field {field}: {value:?} is not a number")]
    NotANumber {
        line: usize,
        field: String,
        value: String,
    },
    #[error("the nvidia-smi output has no header line")]
    MissingHeader,
}

/// Whether a field value means "this card does not report it".
fn is_unavailable(value: &str) -> bool {
    let bare = value.trim_start_matches('[').trim_end_matches(']');
    matches!(
        bare,
        "N/A" | "Not Supported" | "Unknown Error" | "Insufficient Permissions" | "GPU is lost"
    ) || value.is_empty()
}

/// Removes a unit suffix (`"35 %"`, `"2856 MiB"`, `"106.56 W"`) so the same
/// parser reads output with and without `nounits`.
fn strip_unit(value: &str) -> &str {
    for unit in [" MiB", " %", " W", " C", " MHz"] {
        if let Some(number) = value.strip_suffix(unit) {
            return number.trim();
        }
    }
    value
}

/// Parses `--format=csv,noheader[,nounits]` output whose columns are
/// `fields` (the `--query-gpu` list). Unknown fields are read and ignored,
/// so real output of a wider query parses too.
pub fn parse_query_output(text: &str, fields: &[&str]) -> Result<Vec<GpuReading>, GpuParseError> {
    let mut readings = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let values: Vec<&str> = line.split(',').map(str::trim).collect();
        if values.len() != fields.len() {
            return Err(GpuParseError::FieldCount {
                line: index + 1,
                expected: fields.len(),
                found: values.len(),
                text: line.to_string(),
            });
        }
        let mut reading = GpuReading::default();
        for (field, value) in fields.iter().zip(values) {
            let field = field.trim();
            if is_unavailable(value) {
                continue;
            }
            let number = || {
                strip_unit(value)
                    .parse::<f64>()
                    .map_err(|_| GpuParseError::NotANumber {
                        line: index + 1,
                        field: field.to_string(),
                        value: value.to_string(),
                    })
            };
            match field {
                "index" => reading.index = Some(number()? as u32),
                "name" | "gpu_name" => reading.name = Some(value.to_string()),
                "utilization.gpu" => reading.utilization_percent = Some(number()?),
                "memory.used" => reading.memory_used_mib = Some(number()?),
                "memory.total" => reading.memory_total_mib = Some(number()?),
                "temperature.gpu" => reading.temperature_c = Some(number()?),
                "power.draw" => reading.power_draw_w = Some(number()?),
                _ => {}
            }
        }
        readings.push(reading);
    }
    Ok(readings)
}

/// Parses `--format=csv` output that starts with its header line
/// (`index, utilization.gpu [%], memory.used [MiB]`), units or not.
pub fn parse_with_header(text: &str) -> Result<Vec<GpuReading>, GpuParseError> {
    let mut lines = text.lines().skip_while(|line| line.trim().is_empty());
    let header = lines.next().ok_or(GpuParseError::MissingHeader)?;
    let fields: Vec<String> = header
        .split(',')
        .map(|field| {
            let field = field.trim();
            field
                .split_once(" [")
                .map_or(field, |(name, _)| name)
                .to_string()
        })
        .collect();
    let field_refs: Vec<&str> = fields.iter().map(String::as_str).collect();
    let body: Vec<&str> = lines.collect();
    parse_query_output(&body.join("\n"), &field_refs).map_err(|error| match error {
        // Line numbers count from the first data line; shift past the header.
        GpuParseError::FieldCount {
            line,
            expected,
            found,
            text,
        } => GpuParseError::FieldCount {
            line: line + 1,
            expected,
            found,
            text,
        },
        GpuParseError::NotANumber { line, field, value } => GpuParseError::NotANumber {
            line: line + 1,
            field,
            value,
        },
        other => other,
    })
}

/// Per-GPU statistics over the sampling window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuStats {
    pub index: u32,
    pub samples: usize,
    pub utilization_percent: Option<Distribution>,
    pub memory_used_mib: Option<Distribution>,
    pub memory_total_mib: Option<f64>,
    pub temperature_c: Option<Distribution>,
    pub power_draw_w: Option<Distribution>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GpuAlertThresholds {
    /// Alert when used/total memory exceeds this fraction.
    pub memory_fraction: f64,
    pub temperature_c: f64,
    /// Alert when the mean utilisation is below this.
    pub min_mean_utilization_percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuAlert {
    pub gpu: u32,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum GpuProfile {
    /// `nvidia-smi` could not be run or read: no numbers at all.
    Unavailable { reason: String },
    Sampled {
        interval_s: f64,
        sample_rounds: usize,
        failed_rounds: usize,
        gpus: Vec<GpuStats>,
        alerts: Vec<GpuAlert>,
        /// Highest memory used on any GPU, MiB.
        vram_peak_mib: Option<f64>,
    },
}

impl GpuProfile {
    pub fn vram_peak_mib(&self) -> Option<f64> {
        match self {
            GpuProfile::Sampled { vram_peak_mib, .. } => *vram_peak_mib,
            GpuProfile::Unavailable { .. } => None,
        }
    }

    /// Builds the profile from sampling rounds (one `Vec` per round).
    pub fn from_rounds(
        rounds: &[Vec<GpuReading>],
        failed_rounds: usize,
        interval: Duration,
        thresholds: GpuAlertThresholds,
    ) -> Self {
        let mut by_gpu: BTreeMap<u32, Vec<&GpuReading>> = BTreeMap::new();
        for round in rounds {
            for (position, reading) in round.iter().enumerate() {
                let index = reading.index.unwrap_or(position as u32);
                by_gpu.entry(index).or_default().push(reading);
            }
        }
        let mut gpus = Vec::new();
        let mut alerts = Vec::new();
        for (index, readings) in by_gpu {
            let collect = |pick: fn(&GpuReading) -> Option<f64>| -> Vec<f64> {
                readings.iter().filter_map(|r| pick(r)).collect()
            };
            let utilization = Distribution::of(&collect(|r| r.utilization_percent));
            let memory_used = Distribution::of(&collect(|r| r.memory_used_mib));
            let memory_total = collect(|r| r.memory_total_mib).into_iter().reduce(f64::max);
            let temperature = Distribution::of(&collect(|r| r.temperature_c));
            let power = Distribution::of(&collect(|r| r.power_draw_w));
            let memory_alert = memory_used.zip(memory_total).filter(|(used, total)| {
                *total > 0.0 && used.max / total > thresholds.memory_fraction
            });
            if let Some((used, total)) = memory_alert {
                alerts.push(GpuAlert {
                    gpu: index,
                    message: format!(
                        "memory peaked at {:.0} of {:.0} MiB ({:.1} %), above {:.0} %",
                        used.max,
                        total,
                        100.0 * used.max / total,
                        100.0 * thresholds.memory_fraction
                    ),
                });
            }
            if let Some(temperature) = temperature.filter(|t| t.max > thresholds.temperature_c) {
                alerts.push(GpuAlert {
                    gpu: index,
                    message: format!(
                        "temperature reached {:.0} °C, above {:.0} °C",
                        temperature.max, thresholds.temperature_c
                    ),
                });
            }
            if let Some(utilization) =
                utilization.filter(|u| u.mean < thresholds.min_mean_utilization_percent)
            {
                alerts.push(GpuAlert {
                    gpu: index,
                    message: format!(
                        "average utilisation {:.0} %, below {:.0} %",
                        utilization.mean, thresholds.min_mean_utilization_percent
                    ),
                });
            }
            gpus.push(GpuStats {
                index,
                samples: readings.len(),
                utilization_percent: utilization,
                memory_used_mib: memory_used,
                memory_total_mib: memory_total,
                temperature_c: temperature,
                power_draw_w: power,
            });
        }
        let vram_peak_mib = gpus
            .iter()
            .filter_map(|gpu| gpu.memory_used_mib.map(|d| d.max))
            .reduce(f64::max);
        GpuProfile::Sampled {
            interval_s: interval.as_secs_f64(),
            sample_rounds: rounds.len(),
            failed_rounds,
            gpus,
            alerts,
            vram_peak_mib,
        }
    }
}

/// Why one `nvidia-smi` round gave no reading.
#[derive(Debug, thiserror::Error)]
pub enum GpuSampleError {
    #[error("cannot run {command}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{command} exited with {status}: {output}")]
    Exit {
        command: String,
        status: std::process::ExitStatus,
        /// The first 300 characters of its stderr, then stdout.
        output: String,
    },
    #[error("cannot read the output of {command}")]
    Parse {
        command: String,
        #[source]
        source: GpuParseError,
    },
    #[error("{command} listed no GPU")]
    NoGpu { command: String },
}

/// Runs `command` with the query once.
pub async fn sample_once(command: &str) -> Result<Vec<GpuReading>, GpuSampleError> {
    let query = format!("--query-gpu={}", QUERY_FIELDS.join(","));
    let output = tokio::process::Command::new(command)
        .arg(&query)
        .arg("--format=csv,noheader,nounits")
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| GpuSampleError::Spawn {
            command: command.to_string(),
            source,
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        return Err(GpuSampleError::Exit {
            command: command.to_string(),
            status: output.status,
            output: stderr
                .trim()
                .chars()
                .chain(stdout.trim().chars())
                .take(300)
                .collect::<String>(),
        });
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let readings =
        parse_query_output(&text, &QUERY_FIELDS).map_err(|source| GpuSampleError::Parse {
            command: command.to_string(),
            source,
        })?;
    if readings.is_empty() {
        return Err(GpuSampleError::NoGpu {
            command: command.to_string(),
        });
    }
    Ok(readings)
}

/// Samples every `interval` until `stop` fires. The first failure decides
/// "unavailable" when no round ever succeeded.
pub async fn sample_until(
    command: String,
    interval: Duration,
    thresholds: GpuAlertThresholds,
    stop: CancellationToken,
) -> GpuProfile {
    let mut rounds = Vec::new();
    let mut failed_rounds = 0;
    let mut first_error = None;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        match sample_once(&command).await {
            Ok(readings) => rounds.push(readings),
            Err(error) => {
                failed_rounds += 1;
                // The report keeps the reason as text, with its causes.
                first_error.get_or_insert_with(|| crate::client::error_chain(&error));
                // A missing binary will not appear mid-run: stop trying.
                if rounds.is_empty() && failed_rounds >= 3 {
                    break;
                }
            }
        }
    }
    if rounds.is_empty() {
        return GpuProfile::Unavailable {
            reason: first_error.unwrap_or_else(|| "no sample was taken".into()),
        };
    }
    GpuProfile::from_rounds(&rounds, failed_rounds, interval, thresholds)
}
