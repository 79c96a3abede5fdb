//! Why a battery run returned no report, typed so a caller can tell the
//! environment (disk full, out dir unwritable, no thread) from bad input and
//! from a bug, with every cause kept as a `#[source]`.

use crate::client::ClientError;
use crate::config::ConfigError;
use crate::report::WriteError;

#[derive(Debug, thiserror::Error)]
pub enum BatteryError {
    #[error("the battery was cancelled")]
    Cancelled,
    #[error(transparent)]
    InvalidConfig(#[from] ConfigError),
    #[error("cannot prepare the client for {url}")]
    Client {
        url: String,
        #[source]
        source: ClientError,
    },
    #[error("cannot write the battery results")]
    Output(#[from] WriteError),
    #[error("cannot start the battery's own thread and runtime")]
    Runtime {
        #[source]
        source: std::io::Error,
    },
    #[error("the battery's thread stopped without a result (it panicked)")]
    ThreadLost,
    /// A task that collects records ended without handing them over: the
    /// report would otherwise read as zero requests.
    #[error("the battery's {task} stopped without handing over its records (it panicked)")]
    TaskLost {
        task: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
}

/// What kind of failure a [`BatteryError`] is, for the caller's exit code
/// and for whether a config's result may be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatteryErrorKind {
    /// The run was cancelled.
    Cancelled,
    /// The battery config or the API key is unusable; fix the input.
    BadInput,
    /// The machine, not the server under test: the out dir cannot be
    /// written (disk full, permissions), no thread can be started. Not a
    /// verdict on the config: run it again once fixed.
    Environment,
    /// A bug in the battery (a panicked task).
    Internal,
}

impl BatteryError {
    pub fn kind(&self) -> BatteryErrorKind {
        match self {
            BatteryError::Cancelled => BatteryErrorKind::Cancelled,
            BatteryError::InvalidConfig(_) => BatteryErrorKind::BadInput,
            BatteryError::Client {
                source: ClientError::InvalidApiKey,
                ..
            } => BatteryErrorKind::BadInput,
            // reqwest fails to build only when the TLS backend or the
            // system's resolver configuration cannot be loaded.
            BatteryError::Client {
                source: ClientError::Build { .. },
                ..
            } => BatteryErrorKind::Environment,
            BatteryError::Output(error) if error.is_environment() => BatteryErrorKind::Environment,
            BatteryError::Output(_) => BatteryErrorKind::Internal,
            BatteryError::Runtime { .. } => BatteryErrorKind::Environment,
            BatteryError::ThreadLost | BatteryError::TaskLost { .. } => BatteryErrorKind::Internal,
        }
    }

    /// Whether the failure lies with the machine (disk, permissions,
    /// threads) rather than with the server under test or the battery.
    pub fn is_environment(&self) -> bool {
        self.kind() == BatteryErrorKind::Environment
    }
}
