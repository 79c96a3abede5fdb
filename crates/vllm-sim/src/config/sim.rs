//! The simulator's own knobs: `--sim-*` flags, or a `--sim-config FILE`
//! JSON object whose keys are the flag names without the prefix (the
//! command line overrides the file). Each value is parsed into its type
//! here, with an argparse-style error naming the flag.

use super::error::{CliError, SimValueError};

/// Startup failure the simulator is told to produce (`--sim-startup-failure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupFailure {
    None,
    /// vLLM's free-memory check fails.
    FreeMemory,
    /// The KV cache cannot hold one max-model-len sequence.
    KvCache,
    /// `torch.OutOfMemoryError` during the profiling run.
    CudaOom,
    /// The engine process dies during startup with a generic error.
    Crash,
    /// Loading never finishes: no port is ever opened.
    Hang,
}

/// Whether the simulated model emits `<think>...</think>` first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thinking {
    /// Thinks when a `--reasoning-parser` is set (so nothing leaks by default).
    Auto,
    On,
    Off,
}

/// Which reasoning field names the deltas carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasoningField {
    /// `reasoning` and the older `reasoning_content`.
    Both,
    Reasoning,
    ReasoningContent,
}

/// The text format the simulated model writes tool calls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolFormat {
    /// `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`
    Hermes,
    /// `<tool_call><function=NAME><parameter=P>V</parameter></function></tool_call>`
    Qwen3Xml,
}

/// How long answers are when the request does not force a length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputLenMode {
    /// A seeded draw in `[output_len_min, output_len_max]`, capped by max_tokens.
    Natural,
    /// Always `max_tokens` (as if every request set `ignore_eos`).
    Max,
}

/// Simulator knobs (`--sim-*`). Durations are simulated time, multiplied by
/// `time_scale` when they happen.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub time_scale: f64,
    pub seed: u64,
    pub gpu_count: usize,
    pub gpu_memory_gib: f64,
    pub gpu_memory_used_gib: f64,
    pub weights_gib: f64,
    pub num_layers: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub model_max_len: usize,
    pub non_torch_gib: f64,
    pub activation_base_gib: f64,
    pub activation_kib_per_token: f64,
    pub default_tensor_parallel_size: usize,
    pub prefill_tokens_per_s: f64,
    pub decode_base_ms: f64,
    pub decode_per_seq_ms: f64,
    pub decode_ctx_us_per_token: f64,
    pub model_load_s: f64,
    pub listen_during_load: bool,
    pub fixed_ttft_ms: Option<f64>,
    pub fixed_itl_ms: Option<f64>,
    pub output_len_mode: OutputLenMode,
    pub output_len_min: usize,
    pub output_len_max: usize,
    pub thinking: Thinking,
    /// `--sim-thinking unclosed`: the model never closes its thinking.
    pub thinking_unclosed: bool,
    pub reasoning_tokens: usize,
    pub reasoning_field: ReasoningField,
    pub tool_format: ToolFormat,
    pub startup_failure: StartupFailure,
    pub crash_after_requests: Option<u64>,
    pub hang_after_requests: Option<u64>,
    pub http_500_rate: f64,
    pub drop_mid_stream_rate: f64,
    pub malformed_sse_rate: f64,
    pub degradation_per_hour: f64,
    /// Real milliseconds (not scaled) the first token's chunk waits between
    /// the engine and the connection: host noise the server's own TTFT
    /// (`vllm:time_to_first_token_seconds`) does not see, for testing a
    /// client's noise guard.
    pub first_chunk_delay_ms: f64,
    pub max_records: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            time_scale: 1.0,
            seed: 0,
            gpu_count: 2,
            gpu_memory_gib: 24.0,
            gpu_memory_used_gib: 0.0,
            weights_gib: 18.0,
            num_layers: 64,
            num_kv_heads: 8,
            head_dim: 128,
            model_max_len: 40960,
            non_torch_gib: 0.5,
            activation_base_gib: 0.5,
            activation_kib_per_token: 64.0,
            default_tensor_parallel_size: 2,
            prefill_tokens_per_s: 6000.0,
            decode_base_ms: 25.0,
            decode_per_seq_ms: 0.12,
            decode_ctx_us_per_token: 0.125,
            model_load_s: 3.0,
            listen_during_load: false,
            fixed_ttft_ms: None,
            fixed_itl_ms: None,
            output_len_mode: OutputLenMode::Natural,
            output_len_min: 16,
            output_len_max: 256,
            thinking: Thinking::Auto,
            thinking_unclosed: false,
            reasoning_tokens: 24,
            // vLLM 0.32 sends `reasoning` only.
            reasoning_field: ReasoningField::Reasoning,
            tool_format: ToolFormat::Hermes,
            startup_failure: StartupFailure::None,
            crash_after_requests: None,
            hang_after_requests: None,
            http_500_rate: 0.0,
            drop_mid_stream_rate: 0.0,
            malformed_sse_rate: 0.0,
            degradation_per_hour: 0.0,
            first_chunk_delay_ms: 0.0,
            max_records: 100_000,
        }
    }
}

impl SimConfig {
    /// True when the constant-latency ground-truth mode is on.
    pub fn fixed_latency(&self) -> bool {
        self.fixed_ttft_ms.is_some() || self.fixed_itl_ms.is_some()
    }
}

/// Boolean `--sim-*` flags (no value).
pub(super) const SIM_BOOL_FLAGS: &[&str] = &["listen-during-load"];

/// One `--sim-NAME` value being parsed.
struct SimValue<'a> {
    name: &'a str,
    text: &'a str,
}

impl SimValue<'_> {
    fn bad(&self, reason: SimValueError) -> CliError {
        CliError::InvalidSimValue {
            flag: format!("--sim-{}", self.name),
            reason,
        }
    }

    /// A finite number, at least 0.
    fn float(&self) -> Result<f64, CliError> {
        self.text
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .ok_or_else(|| self.bad(SimValueError::NotANumber(self.text.to_owned())))
    }

    fn int(&self) -> Result<u64, CliError> {
        self.text
            .parse::<u64>()
            .map_err(|_| self.bad(SimValueError::NotAnInteger(self.text.to_owned())))
    }

    /// A probability in [0, 1].
    fn rate(&self) -> Result<f64, CliError> {
        let r = self.float()?;
        if r > 1.0 {
            return Err(self.bad(SimValueError::NotAProbability(self.text.to_owned())));
        }
        Ok(r)
    }

    /// An integer of at least 1.
    fn positive(&self) -> Result<usize, CliError> {
        match self.int()? {
            0 => Err(self.bad(SimValueError::BelowOne)),
            n => usize::try_from(n)
                .map_err(|_| self.bad(SimValueError::NotAnInteger(self.text.to_owned()))),
        }
    }

    /// One of `choices` (names with their values); `expected` words them
    /// for the error.
    fn choice<T: Copy>(
        &self,
        choices: &[(&str, T)],
        expected: &'static str,
    ) -> Result<T, CliError> {
        choices
            .iter()
            .find(|(name, _)| *name == self.text)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                self.bad(SimValueError::NotAChoice {
                    value: self.text.to_owned(),
                    choices: expected,
                })
            })
    }

    /// `true`/`false` and argparse's other spellings.
    fn boolean(&self) -> Result<bool, CliError> {
        match self.text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(self.bad(SimValueError::NotAChoice {
                value: self.text.to_owned(),
                choices: "true or false",
            })),
        }
    }
}

/// Applies `--sim-NAME VALUE` (NAME with dashes).
pub(super) fn apply_sim_flag(sim: &mut SimConfig, name: &str, value: &str) -> Result<(), CliError> {
    let v = SimValue { name, text: value };
    match name {
        "time-scale" => sim.time_scale = v.float()?,
        "seed" => sim.seed = v.int()?,
        "gpu-count" => sim.gpu_count = v.positive()?,
        "gpu-memory-gib" => sim.gpu_memory_gib = v.float()?,
        "gpu-memory-used-gib" => sim.gpu_memory_used_gib = v.float()?,
        "weights-gib" => sim.weights_gib = v.float()?,
        "num-layers" => sim.num_layers = v.positive()?,
        "num-kv-heads" => sim.num_kv_heads = v.positive()?,
        "head-dim" => sim.head_dim = v.positive()?,
        "model-max-len" => sim.model_max_len = v.positive()?,
        "non-torch-gib" => sim.non_torch_gib = v.float()?,
        "activation-base-gib" => sim.activation_base_gib = v.float()?,
        "activation-kib-per-token" => sim.activation_kib_per_token = v.float()?,
        "default-tensor-parallel-size" => sim.default_tensor_parallel_size = v.positive()?,
        "prefill-tokens-per-s" => {
            let rate = v.float()?;
            if rate == 0.0 {
                return Err(v.bad(SimValueError::NotAboveZero));
            }
            sim.prefill_tokens_per_s = rate;
        }
        "decode-base-ms" => sim.decode_base_ms = v.float()?,
        "decode-per-seq-ms" => sim.decode_per_seq_ms = v.float()?,
        "decode-ctx-us-per-token" => sim.decode_ctx_us_per_token = v.float()?,
        "model-load-s" => sim.model_load_s = v.float()?,
        "listen-during-load" => sim.listen_during_load = v.boolean()?,
        "fixed-ttft-ms" => sim.fixed_ttft_ms = Some(v.float()?),
        "fixed-itl-ms" => sim.fixed_itl_ms = Some(v.float()?),
        "first-chunk-delay-ms" => sim.first_chunk_delay_ms = v.float()?,
        "output-len-mode" => {
            sim.output_len_mode = v.choice(
                &[
                    ("natural", OutputLenMode::Natural),
                    ("max", OutputLenMode::Max),
                ],
                "natural or max",
            )?
        }
        "output-len-min" => sim.output_len_min = v.positive()?,
        "output-len-max" => sim.output_len_max = v.positive()?,
        "thinking" => {
            // auto|on|off: whether the model thinks; closed|unclosed: whether
            // it ever writes `</think>` (a badly behaved thinker).
            let (thinking, unclosed) = v.choice(
                &[
                    ("auto", (Some(Thinking::Auto), None)),
                    ("on", (Some(Thinking::On), None)),
                    ("off", (Some(Thinking::Off), None)),
                    ("closed", (None, Some(false))),
                    ("unclosed", (None, Some(true))),
                ],
                "auto, on, off, closed or unclosed",
            )?;
            if let Some(t) = thinking {
                sim.thinking = t;
            }
            if let Some(u) = unclosed {
                sim.thinking_unclosed = u;
            }
        }
        "reasoning-tokens" => {
            sim.reasoning_tokens = usize::try_from(v.int()?)
                .map_err(|_| v.bad(SimValueError::NotAnInteger(value.to_owned())))?
        }
        "reasoning-field" => {
            sim.reasoning_field = v.choice(
                &[
                    ("both", ReasoningField::Both),
                    ("reasoning", ReasoningField::Reasoning),
                    ("reasoning_content", ReasoningField::ReasoningContent),
                ],
                "both, reasoning or reasoning_content",
            )?
        }
        "tool-format" => {
            sim.tool_format = v.choice(
                &[
                    ("hermes", ToolFormat::Hermes),
                    ("qwen3_xml", ToolFormat::Qwen3Xml),
                    ("qwen3-xml", ToolFormat::Qwen3Xml),
                    ("xml", ToolFormat::Qwen3Xml),
                ],
                "hermes or qwen3_xml",
            )?
        }
        "startup-failure" => {
            sim.startup_failure = v.choice(
                &[
                    ("none", StartupFailure::None),
                    ("free-memory", StartupFailure::FreeMemory),
                    ("kv-cache", StartupFailure::KvCache),
                    ("cuda-oom", StartupFailure::CudaOom),
                    ("crash", StartupFailure::Crash),
                    ("hang", StartupFailure::Hang),
                ],
                "none, free-memory, kv-cache, cuda-oom, crash or hang",
            )?
        }
        "crash-after-requests" => sim.crash_after_requests = Some(v.int()?),
        "hang-after-requests" => sim.hang_after_requests = Some(v.int()?),
        "http-500-rate" => sim.http_500_rate = v.rate()?,
        "drop-mid-stream-rate" => sim.drop_mid_stream_rate = v.rate()?,
        "malformed-sse-rate" => sim.malformed_sse_rate = v.rate()?,
        "degradation-per-hour" => sim.degradation_per_hour = v.float()?,
        "max-records" => sim.max_records = v.positive()?,
        _ => return Err(CliError::Unrecognized(vec![format!("--sim-{name}")])),
    }
    Ok(())
}

/// The `--sim-*` values to apply, in order: those of the `--sim-config`
/// file first, so that the command line's override them.
pub(super) fn with_config_file(
    path: Option<String>,
    flags: Vec<(String, String)>,
) -> Result<Vec<(String, String)>, CliError> {
    let Some(path) = path else {
        return Ok(flags);
    };
    let text = std::fs::read_to_string(&path).map_err(|source| CliError::SimConfigRead {
        path: path.clone(),
        source,
    })?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| CliError::SimConfigParse {
            path: path.clone(),
            source,
        })?;
    let serde_json::Value::Object(map) = value else {
        return Err(CliError::SimConfigNotObject { path });
    };
    let mut all: Vec<(String, String)> = map
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            (k.replace('_', "-"), text)
        })
        .collect();
    all.extend(flags);
    Ok(all)
}
