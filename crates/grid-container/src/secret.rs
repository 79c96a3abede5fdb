//! The redactor that keeps secret values (see [`grid_core::Secret`]) out of
//! every file we write.

use std::fmt;

/// Replaces every known secret value in a text with `***`.
///
/// Values shorter than [`Redactor::MIN_LEN`] are ignored unless added with
/// [`Redactor::add_always`]: redacting `1` or `true` everywhere would make logs
/// unreadable, while the API key is redacted whatever its length.
#[derive(Clone, Default)]
pub struct Redactor {
    values: Vec<String>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} values)", self.values.len())
    }
}

impl Redactor {
    /// Shortest environment-substituted value that is treated as a secret.
    pub const MIN_LEN: usize = 6;

    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a value substituted from the environment, if it is long enough to
    /// be a secret rather than a number or a switch.
    pub fn add(&mut self, value: &str) {
        if value.chars().count() >= Self::MIN_LEN {
            self.add_always(value);
        }
    }

    /// Adds a value that is a secret whatever its length (the API key).
    pub fn add_always(&mut self, value: &str) {
        if value.is_empty() {
            return;
        }
        // Python's repr (vLLM logs `non-default args: {'api_key': [...]}`)
        // escapes backslashes and quotes, so the escaped spelling is a second
        // form of the same secret.
        let python_repr = value.replace('\\', "\\\\").replace('\'', "\\'");
        let json_escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
        for form in [value.to_string(), python_repr, json_escaped] {
            if !self.values.contains(&form) {
                self.values.push(form);
            }
        }
        // Longest first, so a secret that contains another is replaced whole.
        self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The text with every secret replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for value in &self.values {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), "***");
            }
        }
        out
    }
}

/// A value whose texts can be passed through a [`Redactor`]. Every text that
/// leaves this crate after expansion (a [`crate::LaunchFailure`], a
/// [`crate::ResolveError`] and the errors inside them) goes through this one
/// path, so a `${VAR}`-expanded secret never reaches a results file or
/// `run.log`.
pub trait Redact {
    fn redact_with(self, redactor: &Redactor) -> Self;
}

/// An error's text after redaction, keeping its chain: what replaces a
/// source whose message quoted a secret.
#[derive(Debug)]
pub struct RedactedError {
    message: String,
    source: Option<Box<RedactedError>>,
}

impl RedactedError {
    /// The error's chain, redacted; `None` when nothing in it changed (the
    /// original, typed error can be kept).
    pub fn of(
        error: &(dyn std::error::Error + 'static),
        redactor: &Redactor,
    ) -> Option<RedactedError> {
        let mut messages = Vec::new();
        let mut changed = false;
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(cause) = current {
            let text = cause.to_string();
            let redacted = redactor.redact(&text);
            changed |= redacted != text;
            messages.push(redacted);
            current = cause.source();
        }
        if !changed {
            return None;
        }
        let mut chain: Option<Box<RedactedError>> = None;
        for message in messages.into_iter().rev() {
            chain = Some(Box::new(RedactedError {
                message,
                source: chain,
            }));
        }
        chain.map(|boxed| *boxed)
    }
}

impl fmt::Display for RedactedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RedactedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl Redact for crate::ResolveError {
    fn redact_with(self, redactor: &Redactor) -> Self {
        use crate::ResolveError as E;
        match self {
            E::Port {
                source_name,
                source,
            } => E::Port {
                source_name,
                source: source.redact_with(redactor),
            },
            E::Volume {
                source_name,
                source,
            } => E::Volume {
                source_name,
                source: source.redact_with(redactor),
            },
            E::ServerPort {
                source_name,
                source,
            } => E::ServerPort {
                source_name,
                source: source.redact_with(redactor),
            },
            // Names and counts only.
            other @ (E::MissingVariables { .. } | E::SeveralApiKeys { .. }) => other,
        }
    }
}
