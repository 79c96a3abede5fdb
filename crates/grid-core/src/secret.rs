//! The redacting secret type: API keys, tokens and values substituted from
//! the environment.

use std::fmt;

/// A value that must never be printed, logged or written.
///
/// `Debug` and `Display` print `***`, it is not serialisable, and the raw
/// value is reachable only through [`Secret::expose`], so every use of it
/// is greppable (an `Authorization` header, a comparison with a request's
/// bearer token, the environment of a server we start).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
