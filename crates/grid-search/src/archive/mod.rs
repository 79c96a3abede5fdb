//! `archive` copies a finished run to `archives/<date>_<run-id>/` and
//! updates `archives/index.json` and `archives/INDEX.md`; `reproduce`
//! ([`reproduce`](self::reproduce)) compares a new run of an archived plan
//! with the archive, config by config.
//!
//! Nothing secret is archived: run files never hold secrets (the container
//! logs are redacted as they are written, commands keep `${VAR}`), and every
//! text file is passed through a redactor of the current environment's
//! values for the profile's variables on the way, as a second line of
//! defence.

mod reproduce;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use grid_container::Redactor;
use grid_plan::ConfigId;
use serde::{Deserialize, Serialize};

pub use reproduce::{Archive, Comparison, Reproduction, compare, open_archive};

use crate::SearchError;
use crate::report::write_report;
use crate::store::{
    RunLock, RunStore, now_unix_ms, read_json, utc_date, write_atomic, write_json_atomic,
};

/// One archived run in `archives/index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub dir: String,
    pub run_id: String,
    pub date: String,
    pub archived_unix_ms: u64,
    pub simulated: bool,
    pub backend: String,
    pub configs: usize,
    pub champion: Option<String>,
    pub champion_id: Option<ConfigId>,
    pub champion_acceleration: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArchiveIndex {
    pub format_version: u32,
    pub archives: Vec<IndexEntry>,
}

/// Files of a run directory that are not archived.
fn skip(name: &str) -> bool {
    name == "lock" || name.ends_with(".tmp") || name.starts_with(".")
}

fn copy_redacted(from: &Path, to: &Path, redactor: &Redactor) -> Result<usize, SearchError> {
    let mut count = 0;
    fs::create_dir_all(to).map_err(|source| SearchError::WriteFile {
        path: to.to_path_buf(),
        source,
    })?;
    let entries = fs::read_dir(from).map_err(|source| SearchError::ReadFile {
        path: from.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if skip(&name) {
            continue;
        }
        let path = entry.path();
        let target = to.join(&name);
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            count += copy_redacted(&path, &target, redactor)?;
        } else if kind.is_file() {
            let bytes = fs::read(&path).map_err(|source| SearchError::ReadFile {
                path: path.clone(),
                source,
            })?;
            let bytes = match String::from_utf8(bytes) {
                Ok(text) => redactor.redact(&text).into_bytes(),
                Err(err) => err.into_bytes(),
            };
            write_atomic(&target, &bytes)?;
            count += 1;
        }
    }
    Ok(count)
}

/// Archive a run. Returns the archive directory.
pub fn archive_run(
    store: &RunStore,
    archives_root: &Path,
    redactor: &Redactor,
) -> Result<PathBuf, SearchError> {
    let manifest = store.read_manifest()?;
    // Held while copying, so no search writes into the run meanwhile.
    let _lock = RunLock::acquire(store)?;
    // The report is re-rendered so the archive always carries one.
    let report = write_report(store)?;
    let date = utc_date(manifest.created_unix_ms);
    let dir_name = format!("{date}_{}", store.run_id);
    let target = archives_root.join(&dir_name);
    let staging = archives_root.join(format!(".{dir_name}.partial"));
    if staging.exists() {
        let _ = fs::remove_dir_all(&staging);
    }
    copy_redacted(&store.dir, &staging, redactor)?;
    if target.exists() {
        fs::remove_dir_all(&target).map_err(|source| SearchError::WriteFile {
            path: target.clone(),
            source,
        })?;
    }
    fs::rename(&staging, &target).map_err(|source| SearchError::WriteFile {
        path: target.clone(),
        source,
    })?;

    let index_path = archives_root.join("index.json");
    let mut index: ArchiveIndex = if index_path.exists() {
        read_json(&index_path)?
    } else {
        ArchiveIndex {
            format_version: 1,
            archives: Vec::new(),
        }
    };
    index.archives.retain(|e| e.dir != dir_name);
    let champion = report.report.champion.as_ref();
    index.archives.push(IndexEntry {
        dir: dir_name,
        run_id: store.run_id.clone(),
        date,
        archived_unix_ms: now_unix_ms(),
        simulated: manifest.simulated,
        backend: manifest.backend.clone(),
        configs: manifest.plan.configs.len(),
        champion: champion.map(|c| c.name.clone()),
        champion_id: champion.map(|c| c.id.clone()),
        champion_acceleration: champion.map(|c| c.criterion_acceleration.median),
    });
    index.archives.sort_by(|a, b| a.dir.cmp(&b.dir));
    write_json_atomic(&index_path, &index)?;
    let mut md = String::from(
        "# Archived vllm-grid runs\n\n| archive | run | simulated | backend | configs | champion | acceleration |\n|---|---|---|---|---|---|---|\n",
    );
    for e in &index.archives {
        let _ = writeln!(
            md,
            "| [{}]({}/report.md) | {} | {} | {} | {} | {} | {} |",
            e.dir,
            e.dir,
            e.run_id,
            if e.simulated { "yes" } else { "no" },
            e.backend,
            e.configs,
            e.champion.as_deref().unwrap_or("none"),
            e.champion_acceleration
                .map(|a| format!("×{a:.2}"))
                .unwrap_or_else(|| "–".to_string())
        );
    }
    write_atomic(&archives_root.join("INDEX.md"), md.as_bytes())?;
    Ok(target)
}
