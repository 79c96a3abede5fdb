//! The `vllm serve` command line, parsed the way vLLM's argparse parser does.
//!
//! Every flag of vLLM 0.32.0's `vllm serve --help=all` is known (the table in
//! `vllm_flags.txt` is generated from it by `tools/gen_flags.py`). The flags
//! the simulator models are honoured; every other known flag is accepted and
//! logged with a warning, as a user's real profile carries many. An unknown
//! flag fails the way argparse fails: `vllm serve: error: unrecognized
//! arguments: ...` and exit status 2. Simulator knobs are `--sim-*` flags (or
//! a `--sim-config FILE` JSON object whose keys are the flag names without the
//! `--sim-` prefix); they never reuse vLLM's names.

use std::collections::HashMap;
use std::sync::OnceLock;

use grid_core::Secret;

/// The generated table of vLLM's flags: `flag kind canonical choices`.
const VLLM_FLAGS: &str = include_str!("vllm_flags.txt");

/// How a vLLM flag consumes values, as argparse declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlagKind {
    /// `store_true` or a `BooleanOptionalAction` pair.
    Bool,
    /// Exactly one value.
    Value,
    /// `nargs='?'`.
    Optional,
    /// `nargs='+'`.
    Multi,
}

#[derive(Debug, Clone)]
struct FlagSpec {
    kind: FlagKind,
    canonical: String,
    choices: Option<Vec<String>>,
}

fn flag_table() -> &'static HashMap<String, FlagSpec> {
    static TABLE: OnceLock<HashMap<String, FlagSpec>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = HashMap::new();
        for line in VLLM_FLAGS.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let mut parts = line.split(' ');
            let (Some(name), Some(kind), Some(canonical), Some(choices)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let kind = match kind {
                "bool" => FlagKind::Bool,
                "optional" => FlagKind::Optional,
                "multi" => FlagKind::Multi,
                _ => FlagKind::Value,
            };
            let choices = (choices != "-").then(|| choices.split(',').map(str::to_owned).collect());
            table.insert(
                name.to_owned(),
                FlagSpec {
                    kind,
                    canonical: canonical.to_owned(),
                    choices,
                },
            );
        }
        table
    })
}

/// A command-line failure, worded as argparse words it.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum CliError {
    #[error("unrecognized arguments: {}", .0.join(" "))]
    Unrecognized(Vec<String>),
    #[error("argument {flag}: expected one argument")]
    MissingValue { flag: String },
    #[error("argument {flag}: expected at least one argument")]
    MissingValues { flag: String },
    #[error("argument {flag}: ignored explicit argument '{value}'")]
    UnexpectedValue { flag: String, value: String },
    #[error("argument {flag}: invalid choice: '{value}' (choose from {})", quote_list(.choices))]
    InvalidChoice {
        flag: String,
        value: String,
        choices: Vec<String>,
    },
    #[error("argument {flag}: invalid {expected} value: '{value}'")]
    InvalidValue {
        flag: String,
        value: String,
        expected: &'static str,
    },
    #[error("argument {flag}: {reason}")]
    InvalidSimValue { flag: String, reason: String },
    #[error(
        "the first argument must be the subcommand `serve` (got {got:?}); run `vllm-sim serve MODEL [FLAGS]`"
    )]
    NoServeSubcommand { got: Option<String> },
    #[error(
        "cannot read sim config {path}: {reason}; pass a JSON object of --sim-* flag names without the prefix"
    )]
    SimConfigFile { path: String, reason: String },
}

fn quote_list(items: &[String]) -> String {
    items
        .iter()
        .map(|c| format!("'{c}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value as it appears in vLLM's `non-default args: {...}` log line (a
/// Python dict repr).
#[derive(Debug, Clone, PartialEq)]
pub enum ArgValue {
    Bool(bool),
    Text(String),
    List(Vec<String>),
}

impl ArgValue {
    fn python_repr(&self) -> String {
        fn scalar(s: &str) -> String {
            if s.parse::<i64>().is_ok() || (s.parse::<f64>().is_ok() && s.contains('.')) {
                s.to_owned()
            } else {
                format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
            }
        }
        match self {
            ArgValue::Bool(true) => "True".into(),
            ArgValue::Bool(false) => "False".into(),
            ArgValue::Text(s) => scalar(s),
            ArgValue::List(items) => format!(
                "[{}]",
                items
                    .iter()
                    .map(|s| scalar(s))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

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
const SIM_BOOL_FLAGS: &[&str] = &["listen-during-load"];

fn apply_sim_flag(sim: &mut SimConfig, name: &str, value: &str) -> Result<(), CliError> {
    let flag = format!("--sim-{name}");
    let bad = |reason: String| CliError::InvalidSimValue {
        flag: flag.clone(),
        reason,
    };
    let float = |v: &str| -> Result<f64, CliError> {
        v.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .ok_or_else(|| CliError::InvalidSimValue {
                flag: flag.clone(),
                reason: format!("expected a non-negative number, got '{v}'"),
            })
    };
    let int = |v: &str| -> Result<u64, CliError> {
        v.parse::<u64>().map_err(|_| CliError::InvalidSimValue {
            flag: flag.clone(),
            reason: format!("expected a non-negative integer, got '{v}'"),
        })
    };
    let rate = |v: &str| -> Result<f64, CliError> {
        let r = float(v)?;
        if r > 1.0 {
            return Err(CliError::InvalidSimValue {
                flag: flag.clone(),
                reason: format!("expected a probability between 0 and 1, got '{v}'"),
            });
        }
        Ok(r)
    };
    let positive = |v: &str| -> Result<usize, CliError> {
        let n = int(v)?;
        if n == 0 {
            return Err(CliError::InvalidSimValue {
                flag: flag.clone(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(n as usize)
    };
    match name {
        "time-scale" => sim.time_scale = float(value)?,
        "seed" => sim.seed = int(value)?,
        "gpu-count" => sim.gpu_count = positive(value)?,
        "gpu-memory-gib" => sim.gpu_memory_gib = float(value)?,
        "gpu-memory-used-gib" => sim.gpu_memory_used_gib = float(value)?,
        "weights-gib" => sim.weights_gib = float(value)?,
        "num-layers" => sim.num_layers = positive(value)?,
        "num-kv-heads" => sim.num_kv_heads = positive(value)?,
        "head-dim" => sim.head_dim = positive(value)?,
        "model-max-len" => sim.model_max_len = positive(value)?,
        "non-torch-gib" => sim.non_torch_gib = float(value)?,
        "activation-base-gib" => sim.activation_base_gib = float(value)?,
        "activation-kib-per-token" => sim.activation_kib_per_token = float(value)?,
        "default-tensor-parallel-size" => sim.default_tensor_parallel_size = positive(value)?,
        "prefill-tokens-per-s" => {
            let v = float(value)?;
            if v == 0.0 {
                return Err(bad("must be above 0".into()));
            }
            sim.prefill_tokens_per_s = v;
        }
        "decode-base-ms" => sim.decode_base_ms = float(value)?,
        "decode-per-seq-ms" => sim.decode_per_seq_ms = float(value)?,
        "decode-ctx-us-per-token" => sim.decode_ctx_us_per_token = float(value)?,
        "model-load-s" => sim.model_load_s = float(value)?,
        "listen-during-load" => {
            sim.listen_during_load = parse_bool(value)
                .ok_or_else(|| bad(format!("expected true or false, got '{value}'")))?
        }
        "fixed-ttft-ms" => sim.fixed_ttft_ms = Some(float(value)?),
        "fixed-itl-ms" => sim.fixed_itl_ms = Some(float(value)?),
        "output-len-mode" => {
            sim.output_len_mode = match value {
                "natural" => OutputLenMode::Natural,
                "max" => OutputLenMode::Max,
                _ => return Err(bad(format!("expected natural or max, got '{value}'"))),
            }
        }
        "output-len-min" => sim.output_len_min = positive(value)?,
        "output-len-max" => sim.output_len_max = positive(value)?,
        "thinking" => {
            // auto|on|off: whether the model thinks; closed|unclosed: whether
            // it ever writes `</think>` (a badly behaved thinker).
            match value {
                "auto" => sim.thinking = Thinking::Auto,
                "on" => sim.thinking = Thinking::On,
                "off" => sim.thinking = Thinking::Off,
                "closed" => sim.thinking_unclosed = false,
                "unclosed" => sim.thinking_unclosed = true,
                _ => {
                    return Err(bad(format!(
                        "expected auto, on, off, closed or unclosed, got '{value}'"
                    )));
                }
            }
        }
        "reasoning-tokens" => sim.reasoning_tokens = int(value)? as usize,
        "reasoning-field" => {
            sim.reasoning_field = match value {
                "both" => ReasoningField::Both,
                "reasoning" => ReasoningField::Reasoning,
                "reasoning_content" => ReasoningField::ReasoningContent,
                _ => {
                    return Err(bad(format!(
                        "expected both, reasoning or reasoning_content, got '{value}'"
                    )));
                }
            }
        }
        "tool-format" => {
            sim.tool_format = match value {
                "hermes" => ToolFormat::Hermes,
                "qwen3_xml" | "qwen3-xml" | "xml" => ToolFormat::Qwen3Xml,
                _ => return Err(bad(format!("expected hermes or qwen3_xml, got '{value}'"))),
            }
        }
        "startup-failure" => {
            sim.startup_failure = match value {
                "none" => StartupFailure::None,
                "free-memory" => StartupFailure::FreeMemory,
                "kv-cache" => StartupFailure::KvCache,
                "cuda-oom" => StartupFailure::CudaOom,
                "crash" => StartupFailure::Crash,
                "hang" => StartupFailure::Hang,
                _ => {
                    return Err(bad(format!(
                        "expected none, free-memory, kv-cache, cuda-oom, crash or hang, got '{value}'"
                    )));
                }
            }
        }
        "crash-after-requests" => sim.crash_after_requests = Some(int(value)?),
        "hang-after-requests" => sim.hang_after_requests = Some(int(value)?),
        "http-500-rate" => sim.http_500_rate = rate(value)?,
        "drop-mid-stream-rate" => sim.drop_mid_stream_rate = rate(value)?,
        "malformed-sse-rate" => sim.malformed_sse_rate = rate(value)?,
        "degradation-per-hour" => sim.degradation_per_hour = float(value)?,
        "max-records" => sim.max_records = positive(value)?,
        _ => return Err(CliError::Unrecognized(vec![flag])),
    }
    Ok(())
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Everything `vllm-sim serve` was told: vLLM's flags the simulator models,
/// the rest for the log, and the simulator's own knobs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub model: String,
    pub served_model_names: Vec<String>,
    pub host: Option<String>,
    pub port: u16,
    pub api_keys: Vec<Secret>,
    pub gpu_memory_utilization: f64,
    pub enable_chunked_prefill: bool,
    pub enable_prefix_caching: bool,
    pub max_num_seqs: Option<usize>,
    pub max_model_len: Option<usize>,
    pub max_num_batched_tokens: Option<usize>,
    pub kv_cache_dtype: String,
    pub kv_cache_memory_bytes: Option<u64>,
    pub tensor_parallel_size: Option<usize>,
    pub pipeline_parallel_size: usize,
    pub quantization: Option<String>,
    pub enable_auto_tool_choice: bool,
    pub tool_call_parser: Option<String>,
    pub reasoning_parser: Option<String>,
    pub enable_prompt_tokens_details: bool,
    pub enable_force_include_usage: bool,
    pub block_size: usize,
    /// vLLM's `--seed` (default 0); mixed into output sampling.
    pub seed: u64,
    /// vLLM flags as given, in order, for the `non-default args` log line.
    pub non_default_args: Vec<(String, ArgValue)>,
    /// vLLM flags accepted but not modelled (each gets a warning line).
    pub ignored_flags: Vec<String>,
    /// `--sim-*` flags as given, for the log.
    pub sim_args: Vec<(String, String)>,
    pub sim: SimConfig,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            model: "Qwen/Qwen3-0.6B".into(),
            served_model_names: Vec::new(),
            host: None,
            port: 8000,
            api_keys: Vec::new(),
            gpu_memory_utilization: 0.92,
            enable_chunked_prefill: true,
            enable_prefix_caching: true,
            max_num_seqs: None,
            max_model_len: None,
            max_num_batched_tokens: None,
            kv_cache_dtype: "auto".into(),
            kv_cache_memory_bytes: None,
            tensor_parallel_size: None,
            pipeline_parallel_size: 1,
            quantization: None,
            enable_auto_tool_choice: false,
            tool_call_parser: None,
            reasoning_parser: None,
            enable_prompt_tokens_details: false,
            enable_force_include_usage: false,
            block_size: 16,
            seed: 0,
            non_default_args: Vec::new(),
            ignored_flags: Vec::new(),
            sim_args: Vec::new(),
            sim: SimConfig::default(),
        }
    }
}

/// Flags whose effect the simulator models (canonical names).
const MODELLED_FLAGS: &[&str] = &[
    "--model",
    "--served-model-name",
    "--host",
    "--port",
    "--api-key",
    "--gpu-memory-utilization",
    "--enable-chunked-prefill",
    "--enable-prefix-caching",
    "--max-num-seqs",
    "--max-model-len",
    "--max-num-batched-tokens",
    "--kv-cache-dtype",
    "--kv-cache-memory-bytes",
    "--tensor-parallel-size",
    "--pipeline-parallel-size",
    "--quantization",
    "--enable-auto-tool-choice",
    "--tool-call-parser",
    "--reasoning-parser",
    "--enable-prompt-tokens-details",
    "--enable-force-include-usage",
    "--block-size",
    "--seed",
];

/// Parses vLLM's human-readable integers: `4096`, `1k` (1000), `1K` (1024),
/// `25.6k`.
fn parse_human_int(v: &str) -> Option<usize> {
    let v = v.trim();
    let (num, mult) = match v.chars().last()? {
        'k' => (&v[..v.len() - 1], 1e3),
        'm' => (&v[..v.len() - 1], 1e6),
        'g' => (&v[..v.len() - 1], 1e9),
        'K' => (&v[..v.len() - 1], 1024.0),
        'M' => (&v[..v.len() - 1], 1024.0 * 1024.0),
        'G' => (&v[..v.len() - 1], 1024.0 * 1024.0 * 1024.0),
        _ => (v, 1.0),
    };
    if mult == 1.0 {
        return num.parse::<usize>().ok();
    }
    let f: f64 = num.parse().ok()?;
    (f >= 0.0 && f.is_finite()).then(|| (f * mult).round() as usize)
}

impl ServeConfig {
    /// Parses a `vllm serve` argument list without the `serve` word:
    /// `["tiny", "--enable-prefix-caching", "--max-model-len", "4096"]`.
    /// Reads `VLLM_API_KEY` when no `--api-key` is given, as vLLM does.
    pub fn from_args<S: AsRef<str>>(args: &[S]) -> Result<ServeConfig, CliError> {
        Self::from_args_with_env(args, std::env::var("VLLM_API_KEY").ok())
    }

    /// As [`ServeConfig::from_args`], with the `VLLM_API_KEY` value given
    /// explicitly (tests use this to stay independent of the environment).
    pub fn from_args_with_env<S: AsRef<str>>(
        args: &[S],
        env_api_key: Option<String>,
    ) -> Result<ServeConfig, CliError> {
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        let mut cfg = ServeConfig::default();
        let table = flag_table();
        let mut unrecognized = Vec::new();
        let mut model_tag: Option<String> = None;
        let mut sim_flags: Vec<(String, String)> = Vec::new();
        let mut sim_config_file: Option<String> = None;
        let mut i = 0;
        let is_flag = |s: &str| s.starts_with('-') && s.len() > 1 && s.parse::<f64>().is_err();
        while i < args.len() {
            let arg = args[i];
            i += 1;
            if arg == "--" {
                for rest in &args[i..] {
                    if model_tag.is_none() {
                        model_tag = Some((*rest).to_owned());
                    } else {
                        unrecognized.push((*rest).to_owned());
                    }
                }
                break;
            }
            if !is_flag(arg) {
                if model_tag.is_none() {
                    model_tag = Some(arg.to_owned());
                } else {
                    unrecognized.push(arg.to_owned());
                }
                continue;
            }
            let (raw_name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (arg, None),
            };
            if let Some(sim_name) = raw_name.strip_prefix("--sim-") {
                let sim_name = sim_name.replace('_', "-");
                let value = if SIM_BOOL_FLAGS.contains(&sim_name.as_str()) {
                    inline.unwrap_or_else(|| "true".into())
                } else if let Some(v) = inline {
                    v
                } else if i < args.len() && !is_flag(args[i]) {
                    i += 1;
                    args[i - 1].to_owned()
                } else {
                    return Err(CliError::MissingValue {
                        flag: raw_name.to_owned(),
                    });
                };
                if sim_name == "config" {
                    sim_config_file = Some(value);
                } else {
                    sim_flags.push((sim_name, value));
                }
                continue;
            }
            // vLLM's parser accepts underscores in flag names.
            let name = match raw_name.strip_prefix("--") {
                Some(rest) => format!("--{}", rest.replace('_', "-")),
                None => raw_name.to_owned(),
            };
            let Some(spec) = table.get(&name) else {
                unrecognized.push(arg.to_owned());
                continue;
            };
            let values: Vec<String> = match spec.kind {
                FlagKind::Bool => {
                    if let Some(v) = inline {
                        return Err(CliError::UnexpectedValue {
                            flag: name,
                            value: v,
                        });
                    }
                    Vec::new()
                }
                FlagKind::Value => {
                    if let Some(v) = inline {
                        vec![v]
                    } else if i < args.len() && !is_flag(args[i]) {
                        i += 1;
                        vec![args[i - 1].to_owned()]
                    } else {
                        return Err(CliError::MissingValue { flag: name });
                    }
                }
                FlagKind::Optional => {
                    if let Some(v) = inline {
                        vec![v]
                    } else if i < args.len() && !is_flag(args[i]) {
                        i += 1;
                        vec![args[i - 1].to_owned()]
                    } else {
                        Vec::new()
                    }
                }
                FlagKind::Multi => {
                    let mut vs = Vec::new();
                    if let Some(v) = inline {
                        vs.push(v);
                    } else {
                        while i < args.len() && !is_flag(args[i]) {
                            vs.push(args[i].to_owned());
                            i += 1;
                        }
                    }
                    if vs.is_empty() {
                        return Err(CliError::MissingValues { flag: name });
                    }
                    vs
                }
            };
            if let Some(choices) = &spec.choices {
                for v in &values {
                    if !choices.iter().any(|c| c == v) {
                        return Err(CliError::InvalidChoice {
                            flag: name.clone(),
                            value: v.clone(),
                            choices: choices.clone(),
                        });
                    }
                }
            }
            let negated = name.starts_with("--no-");
            cfg.apply_vllm_flag(&spec.canonical, negated, &values)?;
            let key = spec.canonical.trim_start_matches('-').replace('-', "_");
            let value = match spec.kind {
                FlagKind::Bool => ArgValue::Bool(!negated),
                FlagKind::Multi => ArgValue::List(values.clone()),
                _ => ArgValue::Text(values.first().cloned().unwrap_or_default()),
            };
            cfg.non_default_args.retain(|(k, _)| *k != key);
            cfg.non_default_args.push((key, value));
            if !MODELLED_FLAGS.contains(&spec.canonical.as_str())
                && !cfg.ignored_flags.contains(&spec.canonical)
            {
                cfg.ignored_flags.push(spec.canonical.clone());
            }
        }
        if !unrecognized.is_empty() {
            return Err(CliError::Unrecognized(unrecognized));
        }
        if let Some(tag) = model_tag {
            cfg.non_default_args
                .insert(0, ("model_tag".into(), ArgValue::Text(tag.clone())));
            cfg.model = tag;
        }
        if cfg.served_model_names.is_empty() {
            cfg.served_model_names = vec![cfg.model.clone()];
        }
        if cfg.api_keys.is_empty() {
            if let Some(key) = env_api_key.filter(|k| !k.is_empty()) {
                cfg.api_keys.push(Secret::new(key));
            }
        }
        if let Some(path) = sim_config_file {
            let text = std::fs::read_to_string(&path).map_err(|e| CliError::SimConfigFile {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let value: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| CliError::SimConfigFile {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            let serde_json::Value::Object(map) = value else {
                return Err(CliError::SimConfigFile {
                    path,
                    reason: "the top level is not a JSON object".into(),
                });
            };
            // File values first, so command-line --sim-* flags override them.
            let mut from_file = Vec::new();
            for (k, v) in map {
                let text = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                from_file.push((k.replace('_', "-"), text));
            }
            from_file.extend(sim_flags);
            sim_flags = from_file;
        }
        for (name, value) in &sim_flags {
            apply_sim_flag(&mut cfg.sim, name, value)?;
        }
        cfg.sim_args = sim_flags;
        Ok(cfg)
    }

    fn apply_vllm_flag(
        &mut self,
        canonical: &str,
        negated: bool,
        values: &[String],
    ) -> Result<(), CliError> {
        let first = values.first().map(String::as_str).unwrap_or("");
        let invalid = |expected: &'static str| CliError::InvalidValue {
            flag: canonical.to_owned(),
            value: first.to_owned(),
            expected,
        };
        match canonical {
            "--model" => self.model = first.to_owned(),
            "--served-model-name" => self.served_model_names = values.to_vec(),
            "--host" => self.host = Some(first.to_owned()),
            "--port" => self.port = first.parse().map_err(|_| invalid("int"))?,
            "--api-key" => self.api_keys = values.iter().map(Secret::new).collect(),
            "--gpu-memory-utilization" => {
                self.gpu_memory_utilization = first.parse().map_err(|_| invalid("float"))?
            }
            "--enable-chunked-prefill" => self.enable_chunked_prefill = !negated,
            "--enable-prefix-caching" => self.enable_prefix_caching = !negated,
            "--max-num-seqs" => {
                self.max_num_seqs = Some(first.parse().map_err(|_| invalid("int"))?)
            }
            "--max-model-len" => {
                self.max_model_len = Some(
                    parse_human_int(first).ok_or_else(|| invalid("parse_human_readable_int"))?,
                )
            }
            "--max-num-batched-tokens" => {
                self.max_num_batched_tokens = Some(
                    parse_human_int(first).ok_or_else(|| invalid("parse_human_readable_int"))?,
                )
            }
            "--kv-cache-dtype" => self.kv_cache_dtype = first.to_owned(),
            "--kv-cache-memory-bytes" => {
                self.kv_cache_memory_bytes = Some(
                    parse_human_int(first).ok_or_else(|| invalid("parse_human_readable_int"))?
                        as u64,
                )
            }
            "--tensor-parallel-size" => {
                self.tensor_parallel_size = Some(first.parse().map_err(|_| invalid("int"))?)
            }
            "--pipeline-parallel-size" => {
                self.pipeline_parallel_size = first.parse().map_err(|_| invalid("int"))?
            }
            "--quantization" => self.quantization = Some(first.to_owned()),
            "--enable-auto-tool-choice" => self.enable_auto_tool_choice = !negated,
            "--tool-call-parser" => self.tool_call_parser = Some(first.to_owned()),
            "--reasoning-parser" => {
                self.reasoning_parser = (!first.is_empty()).then(|| first.to_owned())
            }
            "--enable-prompt-tokens-details" => self.enable_prompt_tokens_details = !negated,
            "--enable-force-include-usage" => self.enable_force_include_usage = !negated,
            "--block-size" => self.block_size = first.parse().map_err(|_| invalid("int"))?,
            "--seed" => self.seed = first.parse().map_err(|_| invalid("int"))?,
            _ => {}
        }
        Ok(())
    }

    /// The name responses carry (the first `--served-model-name`).
    pub fn served_model_name(&self) -> &str {
        self.served_model_names
            .first()
            .map(String::as_str)
            .unwrap_or(&self.model)
    }

    /// The bind host: `--host`, else `VLLM_SIM_DEFAULT_HOST`, else 127.0.0.1.
    pub fn bind_host(&self) -> String {
        self.host
            .clone()
            .or_else(|| {
                std::env::var("VLLM_SIM_DEFAULT_HOST")
                    .ok()
                    .filter(|h| !h.is_empty())
            })
            .unwrap_or_else(|| "127.0.0.1".into())
    }

    /// vLLM's `non-default args: {...}` dict, API key included as vLLM logs it.
    pub fn non_default_args_repr(&self) -> String {
        let items: Vec<String> = self
            .non_default_args
            .iter()
            .map(|(k, v)| format!("'{k}': {}", v.python_repr()))
            .collect();
        format!("{{{}}}", items.join(", "))
    }

    /// Effective tensor-parallel size (see `--sim-default-tensor-parallel-size`).
    pub fn effective_tensor_parallel_size(&self) -> usize {
        self.tensor_parallel_size
            .unwrap_or(self.sim.default_tensor_parallel_size)
            .max(1)
    }

    /// Whether the model emits a `<think>` section first.
    pub fn model_thinks(&self) -> bool {
        match self.sim.thinking {
            Thinking::Auto => self.reasoning_parser.is_some(),
            Thinking::On => true,
            Thinking::Off => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_table_knows_the_modelled_flags() {
        for f in MODELLED_FLAGS {
            assert!(
                flag_table().contains_key(*f),
                "{f} missing from vllm_flags.txt"
            );
        }
    }

    #[test]
    fn human_ints() {
        assert_eq!(parse_human_int("1k"), Some(1000));
        assert_eq!(parse_human_int("1K"), Some(1024));
        assert_eq!(parse_human_int("25.6k"), Some(25600));
        assert_eq!(parse_human_int("4096"), Some(4096));
        assert_eq!(parse_human_int("x"), None);
    }
}
