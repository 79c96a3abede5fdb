//! vLLM's argparse, emulated: the flag table generated from `vllm serve
//! --help=all`, how each kind of flag takes its values, and the effect of
//! the flags the simulator models on [`ServeConfig`].

use std::collections::HashMap;
use std::sync::OnceLock;

use grid_core::Secret;

use super::error::CliError;
use super::sim::SIM_BOOL_FLAGS;
use super::{ArgValue, ServeConfig};

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

/// What the walk over the arguments leaves once vLLM's flags are applied.
#[derive(Debug, Default)]
pub(super) struct Walked {
    /// The positional model (`vllm serve MODEL`).
    pub(super) model_tag: Option<String>,
    /// `--sim-NAME VALUE` pairs, NAME with dashes, in order.
    pub(super) sim_flags: Vec<(String, String)>,
    /// `--sim-config FILE`.
    pub(super) sim_config_file: Option<String>,
}

/// argparse's test for an option string: a leading dash, unless the
/// argument is a negative number.
fn is_flag(s: &str) -> bool {
    s.starts_with('-') && s.len() > 1 && s.parse::<f64>().is_err()
}

/// The arguments with a cursor.
struct Cursor<'a> {
    args: &'a [&'a str],
    i: usize,
}

impl Cursor<'_> {
    /// The next argument when it is a value (not a flag), consumed.
    fn value(&mut self) -> Option<String> {
        let v = self.args.get(self.i).filter(|a| !is_flag(a))?;
        self.i += 1;
        Some((*v).to_owned())
    }
}

/// Walks `args` as vLLM's parser does, applying vLLM's flags to `cfg`;
/// the first error in argument order wins, unknown arguments are reported
/// together at the end.
pub(super) fn walk(args: &[&str], cfg: &mut ServeConfig) -> Result<Walked, CliError> {
    let mut walked = Walked::default();
    let mut unrecognized = Vec::new();
    // The first positional is the model; argparse refuses the others.
    let positional = |arg: &str, walked: &mut Walked, unrecognized: &mut Vec<String>| {
        if walked.model_tag.is_none() {
            walked.model_tag = Some(arg.to_owned());
        } else {
            unrecognized.push(arg.to_owned());
        }
    };
    let mut cur = Cursor { args, i: 0 };
    while let Some(&arg) = args.get(cur.i) {
        cur.i += 1;
        if arg == "--" {
            for rest in &args[cur.i..] {
                positional(rest, &mut walked, &mut unrecognized);
            }
            break;
        }
        if !is_flag(arg) {
            positional(arg, &mut walked, &mut unrecognized);
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
            } else {
                inline
                    .or_else(|| cur.value())
                    .ok_or_else(|| CliError::MissingValue {
                        flag: raw_name.to_owned(),
                    })?
            };
            if sim_name == "config" {
                walked.sim_config_file = Some(value);
            } else {
                walked.sim_flags.push((sim_name, value));
            }
            continue;
        }
        // vLLM's parser accepts underscores in flag names.
        let name = match raw_name.strip_prefix("--") {
            Some(rest) => format!("--{}", rest.replace('_', "-")),
            None => raw_name.to_owned(),
        };
        let Some(spec) = flag_table().get(&name) else {
            unrecognized.push(arg.to_owned());
            continue;
        };
        let values = take_values(spec.kind, &name, inline, &mut cur)?;
        check_choices(spec, &name, &values)?;
        cfg.record_flag(spec, &name, values)?;
    }
    if !unrecognized.is_empty() {
        return Err(CliError::Unrecognized(unrecognized));
    }
    Ok(walked)
}

/// The values a flag of `kind` takes: its `=value`, or the arguments after it.
fn take_values(
    kind: FlagKind,
    name: &str,
    inline: Option<String>,
    cur: &mut Cursor<'_>,
) -> Result<Vec<String>, CliError> {
    Ok(match kind {
        FlagKind::Bool => {
            if let Some(value) = inline {
                return Err(CliError::UnexpectedValue {
                    flag: name.to_owned(),
                    value,
                });
            }
            Vec::new()
        }
        FlagKind::Value => {
            vec![
                inline
                    .or_else(|| cur.value())
                    .ok_or_else(|| CliError::MissingValue {
                        flag: name.to_owned(),
                    })?,
            ]
        }
        FlagKind::Optional => inline.or_else(|| cur.value()).into_iter().collect(),
        FlagKind::Multi => {
            let values: Vec<String> = match inline {
                Some(v) => vec![v],
                None => std::iter::from_fn(|| cur.value()).collect(),
            };
            if values.is_empty() {
                return Err(CliError::MissingValues {
                    flag: name.to_owned(),
                });
            }
            values
        }
    })
}

fn check_choices(spec: &FlagSpec, name: &str, values: &[String]) -> Result<(), CliError> {
    let Some(choices) = &spec.choices else {
        return Ok(());
    };
    match values.iter().find(|v| !choices.contains(v)) {
        Some(v) => Err(CliError::InvalidChoice {
            flag: name.to_owned(),
            value: v.clone(),
            choices: choices.clone(),
        }),
        None => Ok(()),
    }
}

impl ServeConfig {
    /// Applies one known flag and notes it for the `non-default args` log
    /// line (and, when the simulator ignores it, for a warning).
    fn record_flag(
        &mut self,
        spec: &FlagSpec,
        name: &str,
        values: Vec<String>,
    ) -> Result<(), CliError> {
        let negated = name.starts_with("--no-");
        self.apply_vllm_flag(&spec.canonical, negated, &values)?;
        let key = spec.canonical.trim_start_matches('-').replace('-', "_");
        let value = match spec.kind {
            FlagKind::Bool => ArgValue::Bool(!negated),
            FlagKind::Multi => ArgValue::List(values),
            _ => ArgValue::Text(values.into_iter().next().unwrap_or_default()),
        };
        self.non_default_args.retain(|(k, _)| *k != key);
        self.non_default_args.push((key, value));
        if !MODELLED_FLAGS.contains(&spec.canonical.as_str())
            && !self.ignored_flags.contains(&spec.canonical)
        {
            self.ignored_flags.push(spec.canonical.clone());
        }
        Ok(())
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
