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

mod argv;
mod error;
mod sim;

use grid_core::Secret;

pub use error::{CliError, SimValueError};
pub use sim::{OutputLenMode, ReasoningField, SimConfig, StartupFailure, Thinking, ToolFormat};

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
        let walked = argv::walk(&args, &mut cfg)?;
        if let Some(tag) = walked.model_tag {
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
        let sim_flags = sim::with_config_file(walked.sim_config_file, walked.sim_flags)?;
        for (name, value) in &sim_flags {
            sim::apply_sim_flag(&mut cfg.sim, name, value)?;
        }
        cfg.sim_args = sim_flags;
        Ok(cfg)
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
