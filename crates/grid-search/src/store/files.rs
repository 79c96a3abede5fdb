//! JSON files written atomically and read with the path of a bad field.

use std::fs;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::SearchError;

/// Why a JSON file could not be read: the file itself, or its content
/// (with the JSON path of the bad field).
#[derive(Debug)]
pub(crate) enum JsonReadError {
    Io(io::Error),
    Parse(crate::JsonError),
}

/// Reads and parses one JSON file; the caller names the file in its error.
pub(crate) fn parse_json_file<T: for<'de> Deserialize<'de>>(
    path: &Path,
) -> Result<T, JsonReadError> {
    let text = fs::read_to_string(path).map_err(JsonReadError::Io)?;
    let deserializer = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(deserializer).map_err(JsonReadError::Parse)
}

/// Reads a JSON file: a file that cannot be read is [`SearchError::ReadFile`],
/// one that does not parse is [`SearchError::DamagedJson`] (bad input).
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, SearchError> {
    parse_json_file(path).map_err(|err| match err {
        JsonReadError::Io(source) => SearchError::ReadFile {
            path: path.to_path_buf(),
            source,
        },
        JsonReadError::Parse(source) => SearchError::DamagedJson {
            path: path.to_path_buf(),
            source,
        },
    })
}

/// Write `bytes` to `path` atomically ([`grid_sys::write_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SearchError> {
    write_atomic_with_hook(path, bytes, || {})
}

/// As [`write_atomic`], calling `before_rename` between the fsync of the
/// temporary file and the rename (the failpoint of the kill tests).
pub fn write_atomic_with_hook(
    path: &Path,
    bytes: &[u8],
    before_rename: impl FnOnce(),
) -> Result<(), SearchError> {
    grid_sys::write_atomic_with_hook(path, bytes, before_rename).map_err(|source| {
        SearchError::WriteFile {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Pretty JSON with a final newline.
pub(crate) fn to_json_text<T: Serialize>(value: &T, what: &str) -> Result<String, SearchError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|source| SearchError::Encode {
        what: what.to_string(),
        source,
    })?;
    text.push('\n');
    Ok(text)
}

pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<(), SearchError> {
    let text = to_json_text(value, &path.display().to_string())?;
    write_atomic(path, text.as_bytes())
}
