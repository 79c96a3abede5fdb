//! `journal.jsonl`: append-only events, fsync'd one by one. Only the
//! orchestrating process writes it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};

use grid_plan::ConfigId;
use serde::{Deserialize, Serialize};

use super::record::RunOutcome;
use super::{RunStore, now_unix_ms};
use crate::SearchError;

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub unix_ms: u64,
    pub pid: u32,
    #[serde(flatten)]
    pub event: JournalEvent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum JournalEvent {
    RunStarted {
        resumed: bool,
        configs_total: usize,
        configs_done: usize,
    },
    LeftoversSwept {
        removed: usize,
    },
    /// A config's recorded result is set aside to run it again: not a
    /// verdict (`not_measured`), or `resume --retry-failed`.
    ConfigRerun {
        config_id: ConfigId,
        name: String,
        previous: RunOutcome,
        why: String,
    },
    ConfigStarted {
        config_id: ConfigId,
        name: String,
        repeat: u32,
        attempt: u32,
    },
    ServerReady {
        config_id: ConfigId,
        startup_s: f64,
    },
    LaunchFailed {
        config_id: ConfigId,
        class: String,
        transient: bool,
        attempt: u32,
    },
    BatteryStarted {
        config_id: ConfigId,
        repeat: u32,
    },
    BatteryFinished {
        config_id: ConfigId,
        repeat: u32,
        kv_cache_acceleration: Option<f64>,
    },
    ConfigFinished {
        config_id: ConfigId,
        name: String,
        outcome: RunOutcome,
    },
    /// The config could not be measured for a reason outside it; its
    /// `not_measured` result is written and the run stops.
    ConfigNotMeasured {
        config_id: ConfigId,
        name: String,
        class: String,
    },
    ConfigInterrupted {
        config_id: ConfigId,
        name: String,
    },
    RunFinished {
        champion: Option<String>,
    },
    RunInterrupted {
        reason: String,
    },
    Warning {
        message: String,
    },
}

/// What reading the journal found.
#[derive(Debug, Default)]
pub struct JournalRead {
    pub entries: Vec<JournalEntry>,
    /// Lines that could not be read, with why; a truncated last line is one.
    pub warnings: Vec<String>,
}

impl RunStore {
    /// Append one event and fsync it.
    pub fn append_journal(&self, event: JournalEvent) -> Result<(), SearchError> {
        let entry = JournalEntry {
            unix_ms: now_unix_ms(),
            pid: std::process::id(),
            event,
        };
        let mut line = serde_json::to_string(&entry).map_err(|source| SearchError::Encode {
            what: "journal entry".to_string(),
            source,
        })?;
        line.push('\n');
        let path = self.journal_path();
        let io_err = |source: io::Error| SearchError::WriteFile {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err)?;
        file.write_all(line.as_bytes()).map_err(io_err)?;
        file.sync_data().map_err(io_err)?;
        Ok(())
    }

    /// Read the journal. A last line cut short by a kill is reported as a
    /// warning and, with `repair`, cut off so later appends stay valid JSONL.
    pub fn read_journal(&self, repair: bool) -> Result<JournalRead, SearchError> {
        let path = self.journal_path();
        let mut text = String::new();
        match File::open(&path) {
            Ok(mut file) => {
                file.read_to_string(&mut text)
                    .map_err(|source| SearchError::ReadFile {
                        path: path.clone(),
                        source,
                    })?;
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Ok(JournalRead::default());
            }
            Err(source) => return Err(SearchError::ReadFile { path, source }),
        }
        let mut read = JournalRead::default();
        let complete_len = if text.ends_with('\n') || text.is_empty() {
            text.len()
        } else {
            text.rfind('\n').map(|i| i + 1).unwrap_or(0)
        };
        for (number, line) in text[..complete_len].lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<JournalEntry>(line) {
                Ok(entry) => read.entries.push(entry),
                Err(err) => read.warnings.push(format!(
                    "{}: line {} cannot be read ({err}); skipped",
                    path.display(),
                    number + 1
                )),
            }
        }
        if complete_len < text.len() {
            read.warnings.push(format!(
                "{}: the last line was cut short ({} bytes, probably by a kill during a write); {}",
                path.display(),
                text.len() - complete_len,
                if repair { "removed it" } else { "ignored it" }
            ));
            if repair {
                let write_err = |source: io::Error| SearchError::WriteFile {
                    path: path.clone(),
                    source,
                };
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(write_err)?;
                file.set_len(complete_len as u64)
                    .and_then(|_| file.sync_all())
                    .map_err(write_err)?;
            }
        }
        Ok(read)
    }
}
