//! The battery's files: `battery.json`, one `<benchmark>.json` each and
//! `records.jsonl`, every one written atomically.

use std::path::{Path, PathBuf};

use super::BatteryReport;
use crate::client::RequestRecord;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot create the output directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serialise {what} to JSON")]
    Serialize {
        what: String,
        #[source]
        source: serde_json::Error,
    },
}

impl WriteError {
    /// Whether the machine is at fault (disk full, permissions, a path
    /// that is not a directory), not the report: every IO failure is; a
    /// serialisation failure is a bug.
    pub fn is_environment(&self) -> bool {
        matches!(
            self,
            WriteError::CreateDir { .. } | WriteError::Write { .. }
        )
    }
}

/// Writes `bytes` to `path` atomically ([`grid_sys::write_atomic`]: a
/// reader sees the old file or the new one, never half of it).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    grid_sys::write_atomic(path, bytes).map_err(|source| WriteError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes the report files into `out_dir`: `battery.json` (the whole
/// report), one `<benchmark>.json` summary per benchmark, and
/// `records.jsonl` with every request record.
pub fn write_outputs(
    out_dir: &Path,
    report: &BatteryReport,
    records: &[RequestRecord],
) -> Result<(), WriteError> {
    std::fs::create_dir_all(out_dir).map_err(|source| WriteError::CreateDir {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let to_json = |what: &str, value: &dyn erased::Serializable| {
        value
            .to_pretty_json()
            .map_err(|source| WriteError::Serialize {
                what: what.to_string(),
                source,
            })
    };
    for outcome in &report.benchmarks {
        let bytes = to_json(outcome.name.as_str(), outcome)?;
        write_atomic(
            &out_dir.join(format!("{}.json", outcome.name.as_str())),
            &bytes,
        )?;
    }
    let mut lines = Vec::new();
    for record in records {
        serde_json::to_writer(&mut lines, record).map_err(|source| WriteError::Serialize {
            what: "a request record".into(),
            source,
        })?;
        lines.push(b'\n');
    }
    write_atomic(&out_dir.join("records.jsonl"), &lines)?;
    let bytes = to_json("the battery report", report)?;
    write_atomic(&out_dir.join("battery.json"), &bytes)
}

mod erased {
    /// Object-safe pretty JSON, so one closure serialises any report part.
    pub trait Serializable {
        fn to_pretty_json(&self) -> Result<Vec<u8>, serde_json::Error>;
    }
    impl<T: serde::Serialize> Serializable for T {
        fn to_pretty_json(&self) -> Result<Vec<u8>, serde_json::Error> {
            serde_json::to_vec_pretty(self)
        }
    }
}
