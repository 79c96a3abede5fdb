//! Failure classes and the diagnosis of a server that did not come up.

use std::fmt;

/// Why a configuration's server did not come up (or went away).
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
    /// The host port is taken.
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

/// What a log tail says, matched against the texts vLLM prints.
struct Pattern {
    class: FailureClass,
    needles: &'static [&'static str],
    advice: &'static str,
}

const PATTERNS: &[Pattern] = &[
    // Checked first: this message mentions memory too, but the fix differs.
    Pattern {
        class: FailureClass::FreeMemoryBelowUtilization,
        needles: &["is less than desired GPU memory utilization"],
        advice: "free GPU memory held by other processes (an old server?) or lower --gpu-memory-utilization",
    },
    Pattern {
        class: FailureClass::KvCacheTooSmall,
        needles: &[
            "is larger than the maximum number of tokens that can be stored in KV cache",
            "KV cache is needed, which is larger than the available KV cache memory",
            "No available memory for the cache blocks",
        ],
        advice: "raise --gpu-memory-utilization, lower --max-model-len, or use a smaller --kv-cache-dtype",
    },
    Pattern {
        class: FailureClass::GpuOutOfMemory,
        needles: &[
            "CUDA out of memory",
            "OutOfMemoryError",
            "HIP out of memory",
            "CUDA error: out of memory",
        ],
        advice: "lower --gpu-memory-utilization or --max-num-seqs, or free GPU memory",
    },
    Pattern {
        class: FailureClass::InvalidArgument,
        needles: &[
            "unrecognized arguments",
            "error: argument ",
            "invalid choice",
            "the following arguments are required",
            "validation error for",
            "expected one argument",
        ],
        advice: "fix the flag in the profile or the grid (compare with `vllm serve --help=all`)",
    },
    Pattern {
        class: FailureClass::PortInUse,
        needles: &[
            "Address already in use",
            "address already in use",
            "[Errno 98]",
        ],
        advice: "stop whatever holds the port or publish another one",
    },
];

/// Diagnoses a server that exited (or never answered) from its exit status
/// and the last lines of its log.
pub fn diagnose(exit: Option<&ExitInfo>, log_tail: &[String]) -> LaunchFailure {
    let text = log_tail.join("\n");
    for pattern in PATTERNS {
        if let Some(index) = log_tail
            .iter()
            .rposition(|line| pattern.needles.iter().any(|needle| line.contains(needle)))
        {
            // pydantic puts the reason on the line after "N validation error
            // for X" ("  Value error, max_num_batched_tokens (2048) is
            // smaller than ..."): quote it, since that is what the user fixes.
            let mut evidence = log_tail[index].trim().to_string();
            if let Some(next) = log_tail.get(index + 1)
                && next.trim_start().starts_with("Value error")
            {
                evidence = format!("{evidence} / {}", next.trim());
            }
            // The class is printed beside the message already (Display of
            // LaunchFailure), so the message carries the evidence and the fix.
            let message = format!("server log: {evidence} (fix: {})", pattern.advice);
            return LaunchFailure::new(pattern.class.clone(), message).with_tail(log_tail.to_vec());
        }
    }
    // argparse exits with 2 after printing usage; some builds word the error
    // differently, but the usage line and the code are stable.
    if exit.and_then(|e| e.code) == Some(2) && text.contains("usage:") {
        return LaunchFailure::new(
            FailureClass::InvalidArgument,
            "invalid argument: the server printed its usage and exited with code 2",
        )
        .with_tail(log_tail.to_vec());
    }
    match exit {
        Some(ExitInfo { oom_killed: true, code }) => LaunchFailure::new(
            FailureClass::HostOutOfMemory,
            format!(
                "the kernel's OOM killer stopped the server (exit code {}); give the container more host memory",
                code.map(|c| c.to_string()).unwrap_or_else(|| "unknown".into())
            ),
        )
        .with_tail(log_tail.to_vec()),
        Some(ExitInfo { code: Some(code), .. }) => LaunchFailure::new(
            FailureClass::ExitedWithCode(*code),
            format!("the server exited with code {code} before it was ready; see the log tail"),
        )
        .with_tail(log_tail.to_vec()),
        Some(ExitInfo { code: None, .. }) => LaunchFailure::new(
            FailureClass::ExitedWithCode(-1),
            "the server ended before it was ready and its exit code is unknown; see the log tail",
        )
        .with_tail(log_tail.to_vec()),
        None => LaunchFailure::new(FailureClass::HealthTimeout, "the server did not become ready")
            .with_tail(log_tail.to_vec()),
    }
}
