//! Command-line failures, worded as vLLM's argparse words them (the
//! `--sim-*` ones in the same style).

/// A command-line failure.
#[derive(Debug, thiserror::Error)]
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
    InvalidSimValue { flag: String, reason: SimValueError },
    #[error("cannot read sim config {path}; pass a readable file")]
    SimConfigRead {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "sim config {path} is not JSON; pass a JSON object of --sim-* flag names without the prefix"
    )]
    SimConfigParse {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "sim config {path} is not a JSON object; pass an object of --sim-* flag names without the prefix"
    )]
    SimConfigNotObject { path: String },
}

/// Why a `--sim-*` value was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimValueError {
    #[error("expected a non-negative number, got '{0}'")]
    NotANumber(String),
    #[error("expected a non-negative integer, got '{0}'")]
    NotAnInteger(String),
    #[error("expected a probability between 0 and 1, got '{0}'")]
    NotAProbability(String),
    #[error("must be at least 1")]
    BelowOne,
    #[error("must be above 0")]
    NotAboveZero,
    #[error("expected {choices}, got '{value}'")]
    NotAChoice {
        value: String,
        choices: &'static str,
    },
}

fn quote_list(items: &[String]) -> String {
    items
        .iter()
        .map(|c| format!("'{c}'"))
        .collect::<Vec<_>>()
        .join(", ")
}
