//! Compose profiles: one service of a docker-compose file, parsed with
//! serde_yaml and kept unexpanded until launch.
//!
//! `types` (what a profile is), `walk` (the YAML walker), `parsers` (sizes,
//! durations, ports, shell words), `resolve` (expansion at launch), `model`
//! (where the server's model files are, seen from this host), `error`.

mod error;
mod model;
mod parsers;
mod resolve;
mod types;
mod walk;

use std::path::{Path, PathBuf};

use serde_yaml::Value;

pub use error::{BindError, ProfileError, ResolveError};
pub use model::{ModelSource, expand_leniently};
pub use parsers::{
    DurationError, MAX_DURATION, PortError, ServerPortError, SizeError, WordsError, parse_bytes,
    parse_duration, parse_port, parse_server_port, split_words,
};
pub use resolve::{API_KEY_VARIABLE, ResolvedProfile};
pub use types::{
    DEFAULT_SERVER_PORT, DeclaredHardware, DeclaredModel, EnvEntry, GpuRequest, Healthcheck,
    PortMapping, PredictHints, ProcessHints, Profile, Ulimit,
};

/// Which service of a compose file is the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ServiceChoice {
    /// The file's only service; a file with several is refused, naming them
    /// and `--service NAME`.
    #[default]
    Only,
    /// The service with this name (`--service NAME`).
    Named(String),
}

impl From<Option<String>> for ServiceChoice {
    fn from(service: Option<String>) -> Self {
        match service {
            Some(name) => ServiceChoice::Named(name),
            None => ServiceChoice::Only,
        }
    }
}

/// Options for picking a service out of a compose file (the older spelling
/// of [`ServiceChoice`]).
#[derive(Debug, Clone, Default)]
pub struct ProfileOptions {
    /// The service to use when the file defines several.
    pub service: Option<String>,
}

/// A profile and the warnings found while reading it (unsupported keys,
/// ignored settings, an API key on the command line). Warnings name the key;
/// nothing is dropped silently.
#[derive(Debug, Clone)]
pub struct LoadedProfile {
    pub profile: Profile,
    pub warnings: Vec<String>,
}

impl Profile {
    /// Parses compose text; `source` names it in messages. Relative bind
    /// mounts resolve against the current directory (use [`Profile::load`]
    /// for files).
    pub fn parse(
        text: &str,
        source: &str,
        choice: &ServiceChoice,
    ) -> Result<LoadedProfile, ProfileError> {
        let document: Value =
            serde_yaml::from_str(text).map_err(|source_error| ProfileError::Yaml {
                source_name: source.to_string(),
                source: source_error,
            })?;
        let mut parser = walk::Parser {
            source: source.to_string(),
            text,
            warnings: Vec::new(),
        };
        let profile = parser.document(&document, choice)?;
        Ok(LoadedProfile {
            profile,
            warnings: parser.warnings,
        })
    }

    /// Reads a compose file and picks the chosen service.
    pub fn load(path: &Path, choice: &ServiceChoice) -> Result<LoadedProfile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut loaded = Profile::parse(&text, &path.display().to_string(), choice)?;
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        loaded.profile.base_dir = if base_dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base_dir
        };
        Ok(loaded)
    }
}

/// Reads a compose file and picks its only service.
pub fn load_profile(path: &Path) -> Result<LoadedProfile, ProfileError> {
    Profile::load(path, &ServiceChoice::Only)
}

/// Reads a compose file and picks the service `options` names (or the only one).
pub fn load_profile_with(
    path: &Path,
    options: &ProfileOptions,
) -> Result<LoadedProfile, ProfileError> {
    Profile::load(path, &options.service.clone().into())
}

/// Parses compose text with its only service; see [`Profile::parse`].
pub fn parse_profile(text: &str, source: &str) -> Result<LoadedProfile, ProfileError> {
    Profile::parse(text, source, &ServiceChoice::Only)
}

/// Parses compose text with the service `options` names (or the only one).
pub fn parse_profile_with(
    text: &str,
    source: &str,
    options: &ProfileOptions,
) -> Result<LoadedProfile, ProfileError> {
    Profile::parse(text, source, &options.service.clone().into())
}
