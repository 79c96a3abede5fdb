//! The `vllm serve` flags the memory model reads, parsed from a rendered
//! command line (the profile's command with a config's flags applied, every
//! `${VAR}` already expanded).
//!
//! argparse semantics: `--flag value` and `--flag=value`, `_` and `-` alike
//! in long names (vLLM's `FlexibleArgumentParser`), the last occurrence wins,
//! `--enable-x` / `--no-enable-x` pairs. Sizes and token counts accept vLLM's
//! `human_readable_int` suffixes (`vllm/utils/argparse_utils.py`): `k m g t`
//! are decimal (`1k` = 1000, decimals allowed), `K M G T` binary (`1G` =
//! 2^30, whole numbers only).

/// The flags of one server command the prediction depends on. `None` is
/// "not given": vLLM's default applies (see [`crate::predict`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServeArgs {
    pub tensor_parallel_size: Option<u64>,
    pub pipeline_parallel_size: Option<u64>,
    pub data_parallel_size: Option<u64>,
    pub kv_cache_dtype: Option<String>,
    pub dtype: Option<String>,
    /// `-1` / `auto` is kept as [`MaxModelLen::Auto`].
    pub max_model_len: Option<MaxModelLen>,
    pub max_num_batched_tokens: Option<u64>,
    pub max_num_seqs: Option<u64>,
    pub enable_chunked_prefill: Option<bool>,
    pub gpu_memory_utilization: Option<f64>,
    pub kv_cache_memory_bytes: Option<u64>,
    pub block_size: Option<u64>,
    pub quantization: Option<String>,
    pub enforce_eager: bool,
    pub performance_mode: Option<String>,
    /// Flags whose memory the model does not include (a draft model, LoRA
    /// adapters, offloading, a block count override): their presence makes
    /// the prediction `unknown`.
    pub unmodelled: Vec<String>,
}

/// `--max-model-len`: a length, or vLLM's "fit it to memory".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxModelLen {
    Tokens(u64),
    Auto,
}

/// A flag value vLLM's argparse would refuse (the server would exit 2):
/// the prediction is `unknown` then, and the launch says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`--{flag} {value}` is not {expected}; vLLM's argument parser refuses it before any memory is planned"
)]
pub struct ArgsError {
    pub flag: String,
    pub value: String,
    pub expected: &'static str,
}

/// Flags that take no value (switches), without their `no-` form.
const SWITCHES: &[&str] = &[
    "enable-chunked-prefill",
    "enforce-eager",
    "enable-prefix-caching",
    "enable-auto-tool-choice",
    "enable-prompt-tokens-details",
    "enable-force-include-usage",
    "trust-remote-code",
    "disable-log-requests",
    "disable-log-stats",
    "enable-lora",
    "async-scheduling",
];

/// Flags that change the memory picture in ways the model leaves out.
const UNMODELLED: &[&str] = &[
    "speculative-config",
    "cpu-offload-gb",
    "enable-lora",
    "num-gpu-blocks-override",
    "kv-transfer-config",
    "kv-offloading-size",
    "swap-space",
];

/// Short aliases vLLM accepts.
fn long_name(name: &str) -> &str {
    match name {
        "tp" => "tensor-parallel-size",
        "pp" => "pipeline-parallel-size",
        "dp" => "data-parallel-size",
        "q" => "quantization",
        other => other,
    }
}

/// vLLM's `human_readable_int`.
pub fn human_readable_int(text: &str) -> Option<u64> {
    let text = text.trim();
    if let Ok(n) = text.parse::<u64>() {
        return Some(n);
    }
    let (number, suffix) = text.split_at(text.len().checked_sub(1)?);
    let valid_number = !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit() || c == '.')
        && number.matches('.').count() <= 1
        && !number.starts_with('.')
        && !number.ends_with('.');
    if !valid_number {
        return None;
    }
    let decimal = match suffix {
        "k" => Some(1e3),
        "m" => Some(1e6),
        "g" => Some(1e9),
        "t" => Some(1e12),
        _ => None,
    };
    if let Some(multiplier) = decimal {
        let value = number.parse::<f64>().ok()? * multiplier;
        return (value.is_finite() && value < u64::MAX as f64).then_some(value as u64);
    }
    let binary: u32 = match suffix {
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return None,
    };
    // Decimals are refused with binary suffixes, as vLLM does.
    number.parse::<u64>().ok()?.checked_mul(1u64 << binary)
}

impl ServeArgs {
    /// Reads the flags from `command` (the arguments of `vllm serve`).
    pub fn parse(command: &[String]) -> Result<ServeArgs, ArgsError> {
        let mut args = ServeArgs::default();
        let mut i = 0;
        while i < command.len() {
            let token = &command[i];
            i += 1;
            let Some(stripped) = token
                .strip_prefix("--")
                .or_else(|| token.strip_prefix('-').filter(|s| !s.is_empty()))
            else {
                continue; // the positional model, or a value we skipped
            };
            let (raw_name, inline) = match stripped.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (stripped, None),
            };
            let name = raw_name.replace('_', "-");
            let name = long_name(&name).to_string();
            let (switch, enabled) = match name.strip_prefix("no-") {
                Some(base) if SWITCHES.contains(&base) => (Some(base.to_string()), false),
                _ if SWITCHES.contains(&name.as_str()) => (Some(name.clone()), true),
                _ => (None, true),
            };
            if let Some(flag) = switch {
                if UNMODELLED.contains(&flag.as_str()) && enabled {
                    args.unmodelled.push(format!("--{flag}"));
                }
                match flag.as_str() {
                    "enable-chunked-prefill" => args.enable_chunked_prefill = Some(enabled),
                    "enforce-eager" => args.enforce_eager = enabled,
                    _ => {}
                }
                continue;
            }
            let value = match inline {
                Some(value) => value,
                None => match command.get(i) {
                    Some(next) if !next.starts_with("--") => {
                        i += 1;
                        next.clone()
                    }
                    _ => String::new(),
                },
            };
            if UNMODELLED.contains(&name.as_str()) {
                args.unmodelled.push(format!("--{name}"));
            }
            args.set(&name, value)?;
        }
        Ok(args)
    }

    fn set(&mut self, name: &str, value: String) -> Result<(), ArgsError> {
        let bad = |expected: &'static str| ArgsError {
            flag: name.to_string(),
            value: value.clone(),
            expected,
        };
        let count = || {
            value
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad("a positive integer"))
        };
        let human =
            || human_readable_int(&value).ok_or_else(|| bad("an integer such as 4096, 32k or 1G"));
        match name {
            "tensor-parallel-size" => self.tensor_parallel_size = Some(count()?),
            "pipeline-parallel-size" => self.pipeline_parallel_size = Some(count()?),
            "data-parallel-size" => self.data_parallel_size = Some(count()?),
            "kv-cache-dtype" => self.kv_cache_dtype = Some(value.trim().to_ascii_lowercase()),
            "dtype" => self.dtype = Some(value.trim().to_ascii_lowercase()),
            "max-model-len" => {
                let trimmed = value.trim();
                self.max_model_len =
                    Some(if trimmed == "-1" || trimmed.eq_ignore_ascii_case("auto") {
                        MaxModelLen::Auto
                    } else {
                        MaxModelLen::Tokens(human()?)
                    });
            }
            "max-num-batched-tokens" => self.max_num_batched_tokens = Some(human()?),
            "max-num-seqs" => self.max_num_seqs = Some(count()?),
            "gpu-memory-utilization" => {
                let share = value
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|u| u.is_finite() && *u > 0.0 && *u <= 1.0)
                    .ok_or_else(|| bad("a share in (0, 1]"))?;
                self.gpu_memory_utilization = Some(share);
            }
            "kv-cache-memory-bytes" => self.kv_cache_memory_bytes = Some(human()?),
            "block-size" => self.block_size = Some(count()?),
            "quantization" => self.quantization = Some(value.trim().to_ascii_lowercase()),
            "performance-mode" => self.performance_mode = Some(value.trim().to_ascii_lowercase()),
            _ => {}
        }
        Ok(())
    }
}
