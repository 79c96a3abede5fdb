//! Failure classes, whom they blame, and the failure record of a server that
//! did not come up.

use std::fmt;

use crate::secret::{Redact, RedactedError, Redactor};

/// Why a configuration's server did not come up (or went away). The serde
/// names are stored in results files: never rename one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// CUDA (or HIP) out of memory while loading, profiling or capturing graphs.
    GpuOutOfMemory,
    /// Free GPU memory at startup is below `--gpu-memory-utilization`'s share
    /// (other processes hold memory).
    FreeMemoryBelowUtilization,
    /// The KV cache cannot hold one sequence of `--max-model-len` tokens.
    KvCacheTooSmall,
    /// vLLM refused its command line (argparse, or config validation).
    InvalidArgument,
    /// The image is not on the engine (vllm-grid never pulls).
    MissingImage,
    /// The program of the process backend does not exist.
    MissingProgram,
    /// The model `--model` names is not where the server looks (not in the
    /// cache with downloads off, a path without a model).
    MissingModel,
    /// The host port is taken (by something else, or a leftover of ours).
    PortInUse,
    /// A variable the profile references has no value.
    MissingSecret,
    /// A container with the profile's name exists and is not ours to replace.
    ForeignContainer,
    /// The kernel's OOM killer stopped the server (host memory, not GPU).
    HostOutOfMemory,
    /// The server exited with this code for a reason not recognised above.
    ExitedWithCode(i64),
    /// The server did not become ready within the timeout.
    HealthTimeout,
    /// The Docker engine cannot be reached.
    DaemonUnavailable,
    /// The work was cancelled (Ctrl-C, SIGTERM) before the server was ready.
    Cancelled,
    /// The profile cannot be used as written (a bad port after expansion).
    InvalidProfile,
    /// The engine or the operating system refused an operation.
    BackendError,
    /// No space left (or quota exceeded) writing the server's log or pid
    /// file.
    DiskFull,
}

/// Whom a failure blames: only [`Blame::Config`] is a verdict on the
/// configuration. Everything else leaves the configuration unmeasured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Blame {
    /// The configuration cannot run as set on this machine (it asks for more
    /// memory than there is, or for a flag value vLLM refuses): record it as
    /// this configuration's result.
    Config,
    /// The machine or the engine failed around the configuration (a port
    /// taken, the disk full, the daemon gone, an image or program missing, a
    /// leftover in the way): not a verdict; run the configuration again once
    /// the cause is fixed.
    Environment,
    /// The profile or the variables it needs are unusable as written: no
    /// configuration can start until the user fixes them (bad input).
    Setup,
    /// The work was stopped on request.
    Cancelled,
}

impl FailureClass {
    /// Whether running the same configuration again could succeed without
    /// changing it.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            FailureClass::FreeMemoryBelowUtilization
                | FailureClass::PortInUse
                | FailureClass::HealthTimeout
                | FailureClass::DaemonUnavailable
                | FailureClass::BackendError
        )
    }

    /// Whom the failure blames; the search records only [`Blame::Config`]
    /// failures as a configuration's result.
    pub fn blame(&self) -> Blame {
        match self {
            FailureClass::GpuOutOfMemory
            // The memory other processes hold is part of the machine the
            // configuration is measured on (the study's 0.95 fails so).
            | FailureClass::FreeMemoryBelowUtilization
            | FailureClass::KvCacheTooSmall
            | FailureClass::InvalidArgument
            | FailureClass::HostOutOfMemory
            | FailureClass::ExitedWithCode(_)
            | FailureClass::HealthTimeout => Blame::Config,
            FailureClass::MissingImage
            | FailureClass::MissingProgram
            | FailureClass::MissingModel
            | FailureClass::PortInUse
            | FailureClass::ForeignContainer
            | FailureClass::DaemonUnavailable
            | FailureClass::BackendError
            | FailureClass::DiskFull => Blame::Environment,
            FailureClass::MissingSecret | FailureClass::InvalidProfile => Blame::Setup,
            FailureClass::Cancelled => Blame::Cancelled,
        }
    }

    /// A short name for tables and logs.
    pub fn name(&self) -> String {
        match self {
            FailureClass::ExitedWithCode(code) => format!("exited with code {code}"),
            other => serde_json::to_value(other)
                .ok()
                .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
                .unwrap_or_else(|| format!("{other:?}")),
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A configuration whose server did not come up: the class, a message that
/// says what to do, and the (redacted) last lines of the server's log.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct LaunchFailure {
    pub class: FailureClass,
    pub message: String,
    pub log_tail: Vec<String>,
    pub transient: bool,
    #[serde(skip)]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl LaunchFailure {
    pub fn new(class: FailureClass, message: impl Into<String>) -> Self {
        let transient = class.is_transient();
        Self {
            class,
            message: message.into(),
            log_tail: Vec::new(),
            transient,
            source: None,
        }
    }

    pub fn with_tail(mut self, log_tail: Vec<String>) -> Self {
        self.log_tail = log_tail;
        self
    }

    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Whom the failure blames (see [`FailureClass::blame`]).
    pub fn blame(&self) -> Blame {
        self.class.blame()
    }
}

impl Redact for LaunchFailure {
    /// The message, the log tail and the source chain, redacted. A source
    /// whose text changed is replaced by its redacted text (its chain kept).
    fn redact_with(mut self, redactor: &Redactor) -> Self {
        if redactor.is_empty() {
            return self;
        }
        self.message = redactor.redact(&self.message);
        for line in &mut self.log_tail {
            *line = redactor.redact(line);
        }
        if let Some(source) = self.source.take() {
            let redacted =
                RedactedError::of(&*source as &(dyn std::error::Error + 'static), redactor);
            self.source = match redacted {
                Some(redacted) => Some(Box::new(redacted)),
                // Nothing to hide: keep the typed error.
                None => Some(source),
            };
        }
        self
    }
}

impl fmt::Display for LaunchFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class, self.message)
    }
}

impl std::error::Error for LaunchFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// How the server ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExitInfo {
    /// The exit code; a process killed by signal N reports 128 + N, as Docker
    /// does.
    pub code: Option<i64>,
    /// The kernel's OOM killer ended it.
    pub oom_killed: bool,
}

/// The error and its causes on one line, for a failure record.
pub(crate) fn chain_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
