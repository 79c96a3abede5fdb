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
