//! `container.log`: the server's output, redacted line by line as it is
//! written, with a bounded copy kept in memory for diagnosis.
//!
//! The copy holds the first [`HEAD_BYTES`] of output (a startup: vLLM prints
//! its root cause far above the end of a failed start, often 60–120 lines
//! up, and a whole start is ~20 KiB) and a rolling window of the last
//! [`WINDOW_BYTES`] (a server that dies after hours of serving). So memory
//! stays bounded whatever the server prints, and a failed start is always
//! diagnosed from its whole log.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::secret::Redactor;

/// Lines kept for a failure's log tail.
pub const TAIL_LINES: usize = 60;
/// Output kept from the start of the log.
pub const HEAD_BYTES: usize = 2 * 1024 * 1024;
/// Output kept from the end of the log.
pub const WINDOW_BYTES: usize = 2 * 1024 * 1024;
/// A line longer than this is split: a server printing megabytes without a
/// newline must not grow the buffer without bound.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum LogFileError {
    #[error("cannot create the log directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the server log {path}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl LogFileError {
    pub fn io(&self) -> &std::io::Error {
        match self {
            LogFileError::CreateDir { source, .. } | LogFileError::Create { source, .. } => source,
        }
    }
}

/// Whether an IO error means the disk (or the user's quota) is full.
pub fn is_disk_full(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// The first error writing `container.log`; logging stopped there.
#[derive(Debug, Clone)]
pub struct WriteFailure {
    pub path: PathBuf,
    pub message: String,
    pub disk_full: bool,
}

/// The server's lines kept in memory (redacted), numbered from 0.
#[derive(Default)]
struct Lines {
    head: Vec<String>,
    head_bytes: usize,
    /// Lines after the head, the oldest dropped beyond `WINDOW_BYTES`.
    window: VecDeque<String>,
    window_bytes: usize,
    /// Index of `window[0]`.
    window_start: usize,
    total: usize,
}

impl Lines {
    fn push(&mut self, line: String) {
        self.total += 1;
        if self.window.is_empty() && self.head_bytes + line.len() <= HEAD_BYTES {
            self.head_bytes += line.len();
            self.head.push(line);
            self.window_start = self.total;
            return;
        }
        self.window_bytes += line.len();
        self.window.push_back(line);
        while self.window_bytes > WINDOW_BYTES && self.window.len() > 1 {
            if let Some(old) = self.window.pop_front() {
                self.window_bytes -= old.len();
                self.window_start += 1;
            }
        }
    }

    /// The kept lines from index `from` on (dropped lines are skipped).
    fn since(&self, from: usize) -> Vec<String> {
        let head = self.head.iter().skip(from);
        let window = self
            .window
            .iter()
            .skip(from.saturating_sub(self.window_start));
        head.chain(window).cloned().collect()
    }

    fn tail(&self) -> Vec<String> {
        let all = self.head.len() + self.window.len();
        let skip = all.saturating_sub(TAIL_LINES);
        self.head
            .iter()
            .chain(self.window.iter())
            .skip(skip)
            .cloned()
            .collect()
    }
}

struct Inner {
    file: Option<File>,
    lines: Lines,
    /// Bytes of an unfinished line, per stream (stdout 0, stderr 1).
    partial: [Vec<u8>; 2],
    write_failure: Option<WriteFailure>,
}

/// A shared, redacting writer for one server's log.
#[derive(Clone)]
pub struct LogSink {
    path: PathBuf,
    redactor: Arc<Redactor>,
    inner: Arc<Mutex<Inner>>,
}

impl LogSink {
    /// Creates (truncates) `dir/container.log`, creating `dir`.
    pub fn create(dir: &Path, redactor: Redactor) -> Result<Self, LogFileError> {
        let path = dir.join("container.log");
        std::fs::create_dir_all(dir).map_err(|source| LogFileError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let file = File::create(&path).map_err(|source| LogFileError::Create {
            path: path.clone(),
            source,
        })?;
        Ok(Self {
            path,
            redactor: Arc::new(redactor),
            inner: Arc::new(Mutex::new(Inner {
                file: Some(file),
                lines: Lines::default(),
                partial: [Vec::new(), Vec::new()],
                write_failure: None,
            })),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Writes a note of our own (`# vllm-grid: ...`), redacted too; notes are
    /// not part of the server's lines.
    pub fn note(&self, text: &str) {
        let line = format!("# vllm-grid: {}\n", self.redactor.redact(text));
        let mut inner = self.lock();
        self.write_raw(&mut inner, line.as_bytes());
    }

    /// Appends a chunk of server output; complete lines are redacted and
    /// written at once, an unfinished line waits for its end (or is split at
    /// [`MAX_LINE_BYTES`]).
    pub fn write_chunk(&self, stream: usize, bytes: &[u8]) {
        let stream = stream.min(1);
        let mut inner = self.lock();
        inner.partial[stream].extend_from_slice(bytes);
        while let Some(position) = inner.partial[stream].iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = inner.partial[stream].drain(..=position).collect();
            self.write_line(&mut inner, &line[..line.len() - 1]);
        }
        while inner.partial[stream].len() > MAX_LINE_BYTES {
            let piece: Vec<u8> = inner.partial[stream].drain(..MAX_LINE_BYTES).collect();
            self.write_line(&mut inner, &piece);
        }
    }

    /// Writes any unfinished lines (at the end of the stream).
    pub fn flush_partial(&self) {
        let mut inner = self.lock();
        for stream in 0..2 {
            if !inner.partial[stream].is_empty() {
                let line = std::mem::take(&mut inner.partial[stream]);
                self.write_line(&mut inner, &line);
            }
        }
        if let Some(file) = inner.file.as_mut() {
            let _ = file.sync_data();
        }
    }

    fn write_line(&self, inner: &mut Inner, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        let redacted = self.redactor.redact(text);
        let mut bytes = redacted.clone().into_bytes();
        bytes.push(b'\n');
        self.write_raw(inner, &bytes);
        inner.lines.push(redacted);
    }

    fn write_raw(&self, inner: &mut Inner, bytes: &[u8]) {
        let result = match inner.file.as_mut() {
            Some(file) => file.write_all(bytes),
            None => return,
        };
        if let Err(error) = result {
            // Keep the server running and its lines in memory; the failure
            // is reported with the launch or the teardown.
            tracing::error!(%error, path = %self.path.display(), "cannot write the server log; its output is no longer recorded");
            inner.write_failure = Some(WriteFailure {
                path: self.path.clone(),
                message: error.to_string(),
                disk_full: is_disk_full(&error),
            });
            inner.file = None;
        }
    }

    /// The last lines the server wrote, redacted.
    pub fn tail(&self) -> Vec<String> {
        self.lock().lines.tail()
    }

    /// Every kept line (see the module doc), redacted.
    pub fn lines(&self) -> Vec<String> {
        self.lock().lines.since(0)
    }

    /// Kept lines from `mark` (a [`LogSink::mark`]) on.
    pub fn lines_since(&self, mark: usize) -> Vec<String> {
        self.lock().lines.since(mark)
    }

    /// How many lines the server has written so far.
    pub fn mark(&self) -> usize {
        self.lock().lines.total
    }

    /// The first error writing the file, if any.
    pub fn write_failure(&self) -> Option<WriteFailure> {
        self.lock().write_failure.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the buffer usable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_keeps_the_head_and_a_bounded_window() {
        let mut lines = Lines::default();
        let line = "x".repeat(1024);
        // 8 MiB of output: 2 MiB head + 2 MiB window are kept.
        for _ in 0..8 * 1024 {
            lines.push(line.clone());
        }
        assert_eq!(lines.total, 8 * 1024);
        assert_eq!(lines.head.len(), 2 * 1024);
        assert!(lines.window_bytes <= WINDOW_BYTES);
        assert_eq!(lines.window.len(), 2 * 1024);
        assert_eq!(lines.tail().len(), TAIL_LINES);
        assert_eq!(lines.since(lines.total - 3).len(), 3);
        assert_eq!(lines.since(0).len(), 4 * 1024);
    }
}
