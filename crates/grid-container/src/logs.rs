//! `container.log`: the server's output, redacted line by line as it is
//! written, with the last lines kept in memory for diagnosis.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::secret::Redactor;

/// Lines kept for a failure's log tail.
pub const TAIL_LINES: usize = 60;

#[derive(Debug, thiserror::Error)]
#[error("cannot write the server log {path}")]
pub struct LogFileError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

struct Inner {
    file: Option<File>,
    tail: VecDeque<String>,
    /// Bytes of an unfinished line, per stream (stdout 0, stderr 1).
    partial: [Vec<u8>; 2],
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
        std::fs::create_dir_all(dir).map_err(|source| LogFileError {
            path: dir.to_path_buf(),
            source,
        })?;
        let file = File::create(&path).map_err(|source| LogFileError {
            path: path.clone(),
            source,
        })?;
        Ok(Self {
            path,
            redactor: Arc::new(redactor),
            inner: Arc::new(Mutex::new(Inner {
                file: Some(file),
                tail: VecDeque::with_capacity(TAIL_LINES),
                partial: [Vec::new(), Vec::new()],
            })),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a note of our own (`# vllm-grid: ...`), redacted too; notes are
    /// not part of the server's tail.
    pub fn note(&self, text: &str) {
        let line = format!("# vllm-grid: {}\n", self.redactor.redact(text));
        let mut inner = self.lock();
        Self::write_raw(&mut inner, line.as_bytes());
    }

    /// Appends a chunk of server output; complete lines are redacted and
    /// written at once, an unfinished line waits for its end.
    pub fn write_chunk(&self, stream: usize, bytes: &[u8]) {
        let stream = stream.min(1);
        let mut inner = self.lock();
        inner.partial[stream].extend_from_slice(bytes);
        while let Some(position) = inner.partial[stream].iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = inner.partial[stream].drain(..=position).collect();
            self.write_line(&mut inner, &line[..line.len() - 1]);
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
        Self::write_raw(inner, &bytes);
        if inner.tail.len() == TAIL_LINES {
            inner.tail.pop_front();
        }
        inner.tail.push_back(redacted);
    }

    fn write_raw(inner: &mut Inner, bytes: &[u8]) {
        let result = match inner.file.as_mut() {
            Some(file) => file.write_all(bytes),
            None => return,
        };
        if let Err(error) = result {
            // Keep the server running; the error is reported with the
            // failure or the teardown, and logging stops.
            tracing::error!(%error, "cannot write the server log; its output is no longer recorded");
            inner.file = None;
        }
    }

    /// The last lines the server wrote, redacted.
    pub fn tail(&self) -> Vec<String> {
        self.lock().tail.iter().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the buffer usable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
