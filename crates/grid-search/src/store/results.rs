//! `results/<id>.json`: one result per config, written atomically by the
//! orchestrating process only.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::PathBuf;

use grid_plan::ConfigId;

use super::RunStore;
use super::files::{JsonReadError, parse_json_file, to_json_text, write_atomic_with_hook};
use super::record::ConfigResult;
use crate::SearchError;

impl RunStore {
    /// Every result file, keyed by config ID. Temporary files left by a kill
    /// during a write are removed. A damaged file is bad input whose fix is
    /// to delete it and resume (the config then runs again).
    pub fn read_results(&self) -> Result<BTreeMap<ConfigId, ConfigResult>, SearchError> {
        let mut results = BTreeMap::new();
        let dir = self.results_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(results),
            Err(source) => return Err(SearchError::ReadFile { path: dir, source }),
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if name.starts_with('.') && name.ends_with(".tmp") {
                tracing::warn!(file = %path.display(), "removing a result left half-written by an interrupted run");
                let _ = fs::remove_file(&path);
                continue;
            }
            if !name.ends_with(".json") {
                continue;
            }
            let result: ConfigResult = match parse_json_file(&path) {
                Ok(result) => result,
                Err(JsonReadError::Io(source)) => {
                    return Err(SearchError::ReadFile { path, source });
                }
                Err(JsonReadError::Parse(source)) => {
                    return Err(SearchError::DamagedResult {
                        run_id: self.run_id.clone(),
                        path,
                        source,
                    });
                }
            };
            let expected = format!("{}.json", result.config.id);
            if name != expected {
                return Err(SearchError::MisplacedResult {
                    run_id: self.run_id.clone(),
                    path,
                    holds: result.config.id,
                });
            }
            results.insert(result.config.id.clone(), result);
        }
        Ok(results)
    }

    /// Write one config's result atomically. `VLLM_GRID_FAILPOINT=result-write`
    /// pauses between the temporary file and the rename (tests kill us there;
    /// debug builds only).
    pub fn write_result(&self, result: &ConfigResult) -> Result<(), SearchError> {
        let text = to_json_text(result, &format!("result of {}", result.config.name))?;
        write_atomic_with_hook(
            &self.result_path(&result.config.id),
            text.as_bytes(),
            || crate::failpoint::hit("result-write"),
        )
    }
}
