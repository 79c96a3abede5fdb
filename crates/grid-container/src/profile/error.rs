//! Why a profile cannot be loaded, or resolved at launch: one variant per
//! failed step, the cause as its source.

use std::path::PathBuf;

use super::parsers::{DurationError, PortError, ServerPortError, SizeError, WordsError};
use crate::interpolate::{self, UnresolvedVariable};
use crate::secret::{Redact, Redactor};

/// ` (line N)` when the line is known.
fn at_line(line: &Option<usize>) -> String {
    line.map(|n| format!(" (line {n})")).unwrap_or_default()
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read profile {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("profile {source_name} is not valid YAML")]
    Yaml {
        source_name: String,
        #[source]
        source: serde_yaml::Error,
    },
    #[error(
        "profile {source_name} has no `services:` mapping; a profile is a docker-compose file with one service"
    )]
    NoServices { source_name: String },
    #[error(
        "profile {source_name} defines services {available:?}; choose one with `--service NAME`"
    )]
    AmbiguousService {
        source_name: String,
        available: Vec<String>,
    },
    #[error(
        "profile {source_name} has no service `{service}`; it defines {available:?}, choose one of them with `--service NAME`"
    )]
    ServiceNotFound {
        source_name: String,
        service: String,
        available: Vec<String>,
    },
    /// A key whose value has the wrong shape (a list where a mapping belongs,
    /// a missing `target`, ...); `problem` says which shape it needs.
    #[error("profile {source_name}: `{key}` {problem}")]
    InvalidValue {
        source_name: String,
        key: String,
        problem: String,
    },
    #[error("profile {source_name}: `{key}` cannot be split into words")]
    Words {
        source_name: String,
        key: String,
        #[source]
        source: WordsError,
    },
    #[error("profile {source_name}: `{key}` is not a size")]
    Size {
        source_name: String,
        key: String,
        #[source]
        source: SizeError,
    },
    #[error("profile {source_name}: `{key}` is not a usable duration")]
    Duration {
        source_name: String,
        key: String,
        #[source]
        source: DurationError,
    },
    #[error("profile {source_name}: `{key}` has an entry that cannot be published")]
    Port {
        source_name: String,
        key: String,
        #[source]
        source: PortError,
    },
    #[error("profile {source_name}{}: `{key}` sets the server's port to a value it cannot listen on", at_line(.line))]
    ServerPort {
        source_name: String,
        key: String,
        line: Option<usize>,
        #[source]
        source: ServerPortError,
    },
    #[error(
        "profile {source_name}{}: `{key}` passes {count} values to `--api-key`; vLLM reads one key from VLLM_API_KEY, \
         and keys never go on the command line: keep one, in the service's `environment` as `VLLM_API_KEY: ${{YOUR_KEY_VARIABLE}}`",
        at_line(.line)
    )]
    SeveralApiKeys {
        source_name: String,
        key: String,
        line: Option<usize>,
        count: usize,
    },
    #[error("profile {source_name}: `{key}`")]
    Interpolation {
        source_name: String,
        key: String,
        #[source]
        source: interpolate::SyntaxError,
    },
}

/// Why a profile cannot be resolved at launch. Built from expanded values,
/// so every text in it has been through the profile's [`Redactor`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum ResolveError {
    #[error("{}", describe_unresolved(.source_name, .variables))]
    MissingVariables {
        source_name: String,
        variables: Vec<UnresolvedVariable>,
    },
    #[error("profile {source_name}: `ports` has an entry that cannot be published once expanded")]
    Port {
        source_name: String,
        #[source]
        source: PortError,
    },
    #[error("profile {source_name}: `volumes` has an entry that cannot be mounted once expanded")]
    Volume {
        source_name: String,
        #[source]
        source: BindError,
    },
    #[error(
        "profile {source_name}: the rendered command sets the server's port to a value it cannot listen on"
    )]
    ServerPort {
        source_name: String,
        #[source]
        source: ServerPortError,
    },
    #[error(
        "profile {source_name}: the rendered command passes {count} values to `--api-key`; keep one key, in the service's \
         `environment` as `VLLM_API_KEY: ${{YOUR_KEY_VARIABLE}}`"
    )]
    SeveralApiKeys { source_name: String, count: usize },
}

/// A volume entry that is not a mount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    #[error("`{text}` is not SOURCE:TARGET[:MODE]")]
    Shape { text: String },
    #[error("`{text}` starts with `~` but HOME is not set; write the absolute path")]
    NoHome { text: String },
}

impl Redact for BindError {
    fn redact_with(self, redactor: &Redactor) -> Self {
        match self {
            BindError::Shape { text } => BindError::Shape {
                text: redactor.redact(&text),
            },
            BindError::NoHome { text } => BindError::NoHome {
                text: redactor.redact(&text),
            },
        }
    }
}

fn describe_unresolved(source_name: &str, variables: &[UnresolvedVariable]) -> String {
    let list: Vec<String> = variables
        .iter()
        .map(|v| format!("{} ({})", v.name, v.reason))
        .collect();
    let first = variables.first().map(|v| v.name.as_str()).unwrap_or("NAME");
    format!(
        "profile {source_name} references environment variable{} {} that {} no value; nothing was started. \
         Export {} before running, e.g. `export {first}=...`",
        if variables.len() == 1 { "" } else { "s" },
        list.join(", "),
        if variables.len() == 1 { "has" } else { "have" },
        if variables.len() == 1 { "it" } else { "them" },
    )
}
