//! The diagnosis of a server that did not come up (or died): its exit status
//! and its whole log, matched against the texts vLLM prints.
//!
//! vLLM prints the root cause far above the end of a failed start: the
//! engine core's (or a worker's) `ValueError: ...`, then the multiprocess
//! executor's traceback and the API server's `RuntimeError: Engine core
//! initialization failed. See root cause above.` So the whole log is read,
//! and the *first* line of a known shape wins (on an error line before any
//! other), not the last traceback.

use crate::failure::{ExitInfo, FailureClass, LaunchFailure};
use crate::logs::TAIL_LINES;

/// What a log line says, matched against the texts vLLM prints.
struct Pattern {
    class: FailureClass,
    needles: &'static [&'static str],
    advice: &'static str,
}

/// In priority order: a line matching several patterns gets the first.
const PATTERNS: &[Pattern] = &[
    // Checked first: this message mentions memory too, but the fix differs.
    Pattern {
        class: FailureClass::FreeMemoryBelowUtilization,
        needles: &[
            "is less than desired GPU memory utilization",
            // The CPU build: "Available memory on node 0 (20.94/23.54 GiB) on
            // startup is less than desired CPU memory utilization (0.99, ...)".
            "is less than desired CPU memory utilization",
            // The CPU build with an explicit or derived KV size
            // (`vllm/v1/worker/cpu_worker.py`, `determine_available_memory`):
            // "Available memory on node 0 (…) on kv cache allocation is less
            // than requested memory for kv (… GiB)".
            "on kv cache allocation is less than requested memory for kv",
        ],
        advice: "free memory held by other processes (an old server?) or lower --gpu-memory-utilization",
    },
    Pattern {
        class: FailureClass::KvCacheTooSmall,
        needles: &[
            "is larger than the maximum number of tokens that can be stored in KV cache",
            "KV cache is needed, which is larger than the available KV cache memory",
            "No available memory for the cache blocks",
        ],
        advice: "raise --gpu-memory-utilization (or --kv-cache-memory-bytes), lower --max-model-len, or use a smaller --kv-cache-dtype",
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
    // Before invalid arguments: a model directory without a config is
    // reported by pydantic's ModelConfig validation.
    Pattern {
        class: FailureClass::MissingModel,
        needles: &[
            "Cannot find an appropriate cached snapshot folder",
            "Repo id must be in the form",
            "Invalid repository ID or local directory specified",
            "is not a local folder and is not a valid model identifier",
            "RepositoryNotFoundError",
        ],
        advice: "check --model: download the model into the cache the server uses (or mount it), or fix the path",
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

/// Exceptions that wrap the root cause instead of being it.
const WRAPPERS: &[&str] = &[
    "See root cause above",
    "See stack trace for root cause",
    "Engine core initialization failed",
];

/// Where the server was when it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Before it answered ready.
    Startup,
    /// After it was ready (during the work).
    Serving,
}

/// A log line without `\r`s and without vLLM's per-process prefix
/// (`(EngineCore pid=1) ERROR 12-01 10:32:50 [core.py:1510] `), and whether
/// the line is error-shaped (an ERROR record, an exception, argparse's
/// `error:`).
fn clean(line: &str) -> (String, bool) {
    let line = line.replace('\r', "");
    let mut text = line.trim();
    if text.starts_with('(')
        && let Some((_, rest)) = text.split_once(") ")
    {
        text = rest;
    }
    let mut error_level = false;
    for level in ["ERROR ", "CRITICAL ", "WARNING ", "INFO ", "DEBUG "] {
        if let Some(rest) = text.strip_prefix(level) {
            error_level = level == "ERROR " || level == "CRITICAL ";
            // `12-01 10:32:50 [core.py:1510] message`
            text = rest.split_once("] ").map(|(_, m)| m).unwrap_or(rest);
            break;
        }
    }
    let text = text.trim();
    let error_shape = error_level || is_exception(text) || text.contains("error: ");
    (text.to_string(), error_shape)
}

/// `ValueError: ...`, `pydantic_core._pydantic_core.ValidationError: ...`,
/// `Exception: ...`.
fn is_exception(text: &str) -> bool {
    let Some((name, _)) = text.split_once(": ") else {
        return false;
    };
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && (name.ends_with("Error") || name.ends_with("Exception") || name.ends_with("Exit"))
}

/// The first line of a known shape, preferring error-shaped lines: its
/// pattern and its evidence (pydantic's reason, on the next line, included).
fn root_cause(lines: &[String]) -> Option<(&'static Pattern, String)> {
    let cleaned: Vec<(String, bool)> = lines.iter().map(|l| clean(l)).collect();
    let logical = |index: usize| -> String {
        // pydantic puts the reason on the line after "N validation error
        // for X" ("  Value error, max_num_batched_tokens (2048) is smaller
        // than ..."): it is what the user fixes, so it belongs to the line.
        let mut text = cleaned[index].0.clone();
        if let Some((next, _)) = cleaned.get(index + 1)
            && next.starts_with("Value error")
        {
            text = format!("{text} / {next}");
        }
        text
    };
    let mut first_any: Option<(&'static Pattern, String)> = None;
    for (index, (_, error_shape)) in cleaned.iter().enumerate() {
        let text = logical(index);
        let Some(pattern) = PATTERNS
            .iter()
            .find(|p| p.needles.iter().any(|needle| text.contains(needle)))
        else {
            continue;
        };
        if *error_shape {
            return Some((pattern, text));
        }
        if first_any.is_none() {
            first_any = Some((pattern, text));
        }
    }
    first_any
}

/// The first exception that is not a wrapper of another, to quote when no
/// known shape matched.
fn first_exception(lines: &[String]) -> Option<String> {
    lines
        .iter()
        .map(|line| clean(line).0)
        .find(|text| is_exception(text) && !WRAPPERS.iter().any(|w| text.contains(w)))
}

/// The last [`TAIL_LINES`] lines.
fn tail_of(lines: &[String]) -> Vec<String> {
    lines[lines.len().saturating_sub(TAIL_LINES)..].to_vec()
}

/// Diagnoses a server that exited (or never answered) before it was ready,
/// from its exit status and its log: pass the whole startup log (the
/// failure's `log_tail` keeps its last [`TAIL_LINES`] lines).
pub fn diagnose(exit: Option<&ExitInfo>, log: &[String]) -> LaunchFailure {
    diagnose_at(Stage::Startup, exit, log)
}

/// As [`diagnose`], for a server that ended at `stage`.
pub fn diagnose_at(stage: Stage, exit: Option<&ExitInfo>, log: &[String]) -> LaunchFailure {
    let tail = tail_of(log);
    if let Some((pattern, evidence)) = root_cause(log) {
        // The class is printed beside the message already (Display of
        // LaunchFailure), so the message carries the evidence and the fix.
        let message = format!("server log: {evidence} (fix: {})", pattern.advice);
        return LaunchFailure::new(pattern.class.clone(), message).with_tail(tail);
    }
    // argparse exits with 2 after printing usage; some builds word the error
    // differently, but the usage line and the code are stable.
    if exit.and_then(|e| e.code) == Some(2) && log.iter().any(|l| l.contains("usage:")) {
        return LaunchFailure::new(
            FailureClass::InvalidArgument,
            "invalid argument: the server printed its usage and exited with code 2",
        )
        .with_tail(tail);
    }
    let when = match stage {
        Stage::Startup => "before it was ready",
        Stage::Serving => "while serving (after it was ready)",
    };
    let cause = first_exception(log)
        .map(|e| format!("; the first error in its log: {e}"))
        .unwrap_or_else(|| "; see the log tail".to_string());
    match exit {
        Some(ExitInfo {
            oom_killed: true,
            code,
        }) => LaunchFailure::new(
            FailureClass::HostOutOfMemory,
            format!(
                "the kernel's OOM killer stopped the server {when} (exit code {}); give the container more host memory",
                code.map(|c| c.to_string())
                    .unwrap_or_else(|| "unknown".into())
            ),
        )
        .with_tail(tail),
        Some(ExitInfo {
            code: Some(code), ..
        }) => LaunchFailure::new(
            FailureClass::ExitedWithCode(*code),
            format!("the server exited with code {code} {when}{cause}"),
        )
        .with_tail(tail),
        Some(ExitInfo { code: None, .. }) => LaunchFailure::new(
            FailureClass::ExitedWithCode(-1),
            format!("the server ended {when} and its exit code is unknown{cause}"),
        )
        .with_tail(tail),
        None => LaunchFailure::new(FailureClass::HealthTimeout, "the server did not become ready")
            .with_tail(tail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_stripped_and_errors_recognised() {
        let (text, error) = clean(
            "(EngineCore pid=30046) ERROR 12-01 10:32:50 [core.py:1510] ValueError: To serve\r",
        );
        assert_eq!(text, "ValueError: To serve");
        assert!(error);
        let (text, error) = clean("(APIServer pid=1) WARNING 12-01 10:32:50 [x.py:1] careful");
        assert_eq!(text, "careful");
        assert!(!error);
        assert!(is_exception(
            "pydantic_core._pydantic_core.ValidationError: 1 validation"
        ));
        assert!(!is_exception("Value error, max_num_batched_tokens (2048)"));
    }

    #[test]
    fn an_error_line_beats_an_earlier_warning_of_the_same_shape() {
        let log: Vec<String> = [
            "WARNING 12-01 10:00:00 [x.py:1] CUDA out of memory is unlikely here",
            "(EngineCore pid=1) ERROR 12-01 10:00:01 [core.py:1] ValueError: ... KV cache is needed, which is larger than the available KV cache memory (0.0 GiB)",
            "RuntimeError: Engine core initialization failed. See root cause above.",
        ]
        .map(String::from)
        .to_vec();
        let failure = diagnose(None, &log);
        assert_eq!(failure.class, FailureClass::KvCacheTooSmall, "{failure}");
    }
}
