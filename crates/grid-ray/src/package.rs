//! Working-dir packages: a directory zipped, named by its content the way
//! Ray names it (`gcs://_ray_pkg_<16 hex>.zip`, `get_uri_for_directory` in
//! Ray's `_private/runtime_env/packaging.py`), so the same files get the same
//! URI and are uploaded once. Ray unpacks a gcs:// zip as it is (no top-level
//! directory removed) and restores Unix modes, so a binary packed with its
//! executable bit runs from the job's working directory.
//!
//! Not interpreted: `.gitignore` and `.rayignore` (Ray would skip what they
//! list); vllm-grid packs directories it made. Symbolic links are refused
//! rather than followed.

use std::io::{Cursor, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1};
use zip::write::SimpleFileOptions;

/// Ray's limit on one package (`GCS_STORAGE_MAX_SIZE`: the gRPC message
/// limit, 512 MiB).
pub const MAX_PACKAGE_BYTES: usize = 512 * 1024 * 1024;

/// A `gcs://_ray_pkg_<hash>.zip` URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PackageUri(String);

impl PackageUri {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name after `gcs://`, as the packages endpoint takes it.
    pub fn name(&self) -> &str {
        self.0.trim_start_matches("gcs://")
    }
}

impl std::fmt::Display for PackageUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A directory packed for upload.
#[derive(Debug, Clone)]
pub struct Package {
    pub uri: PackageUri,
    pub zip: Vec<u8>,
    /// Files packed (directories not counted).
    pub files: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("cannot read {path} for the Ray working-dir package")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is a symbolic link; the Ray working-dir package takes plain files only")]
    Symlink { path: PathBuf },
    #[error("{path} has a name that is not UTF-8; Ray's package names need UTF-8 paths")]
    NonUtf8 { path: PathBuf },
    #[error("cannot zip {path} into the Ray working-dir package")]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error(
        "the Ray working-dir package of {dir} is {bytes} bytes, over Ray's limit of {MAX_PACKAGE_BYTES}: pack less into it"
    )]
    TooLarge { dir: PathBuf, bytes: usize },
}

/// Ray's hash: the XOR of a SHA-1 per path (relative path, `.` for the
/// root, then a file's bytes), folded into the 8-byte start value
/// `b"00000000"`, which truncates every digest to 8 bytes.
#[derive(Debug)]
struct RayHash([u8; 8]);

impl RayHash {
    fn new() -> Self {
        Self(*b"00000000")
    }

    fn add(&mut self, relative: &str, content: Option<&[u8]>) {
        let mut sha = Sha1::new();
        sha.update(relative.as_bytes());
        if let Some(bytes) = content {
            sha.update(bytes);
        }
        let digest = sha.finalize();
        for (byte, d) in self.0.iter_mut().zip(digest.iter()) {
            *byte ^= d;
        }
    }

    fn uri(&self) -> PackageUri {
        let hex: String = self.0.iter().map(|b| format!("{b:02x}")).collect();
        PackageUri(format!("gcs://_ray_pkg_{hex}.zip"))
    }
}

impl Package {
    /// Packs `dir` (synchronous: call it from `spawn_blocking` in async code).
    pub fn from_directory(dir: &Path) -> Result<Self, PackageError> {
        let mut hash = RayHash::new();
        hash.add(".", None);
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let mut files = 0;
        let mut pending = vec![dir.to_path_buf()];
        while let Some(current) = pending.pop() {
            let mut entries = read_dir_sorted(&current)?;
            if current != dir && entries.is_empty() {
                // Ray packs an empty directory as an entry of its own.
                let name = relative_name(dir, &current)?;
                writer
                    .add_directory(format!("{name}/"), SimpleFileOptions::default())
                    .map_err(|source| PackageError::Zip {
                        path: current.clone(),
                        source,
                    })?;
            }
            // Reverse so the stack pops them in name order.
            entries.reverse();
            for path in entries {
                let meta =
                    std::fs::symlink_metadata(&path).map_err(|source| PackageError::Read {
                        path: path.clone(),
                        source,
                    })?;
                let name = relative_name(dir, &path)?;
                if meta.file_type().is_symlink() {
                    return Err(PackageError::Symlink { path });
                }
                if meta.is_dir() {
                    hash.add(&name, None);
                    pending.push(path);
                    continue;
                }
                let bytes = std::fs::read(&path).map_err(|source| PackageError::Read {
                    path: path.clone(),
                    source,
                })?;
                hash.add(&name, Some(&bytes));
                let options = SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated)
                    // The fastest level: a package holds a binary of
                    // hundreds of MB, packed at every search's start; level
                    // 1 packs it in about half the time of the default for
                    // a few % more bytes.
                    .compression_level(Some(1))
                    .unix_permissions(meta.permissions().mode() & 0o7777)
                    .large_file(bytes.len() >= u32::MAX as usize);
                let zip_error = |source| PackageError::Zip {
                    path: path.clone(),
                    source,
                };
                writer
                    .start_file(name.as_str(), options)
                    .map_err(zip_error)?;
                writer
                    .write_all(&bytes)
                    .map_err(|source| PackageError::Read {
                        path: path.clone(),
                        source,
                    })?;
                files += 1;
            }
        }
        let zip = writer
            .finish()
            .map_err(|source| PackageError::Zip {
                path: dir.to_path_buf(),
                source,
            })?
            .into_inner();
        if zip.len() >= MAX_PACKAGE_BYTES {
            return Err(PackageError::TooLarge {
                dir: dir.to_path_buf(),
                bytes: zip.len(),
            });
        }
        Ok(Self {
            uri: hash.uri(),
            zip,
            files,
        })
    }
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, PackageError> {
    let read_error = |source| PackageError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        entries.push(entry.map_err(read_error)?.path());
    }
    entries.sort();
    Ok(entries)
}

/// The path below `root` as Python's `str(Path)` writes it (`a/b`).
fn relative_name(root: &Path, path: &Path) -> Result<String, PackageError> {
    let relative = path.strip_prefix(root).unwrap_or(path);
    relative
        .to_str()
        .map(str::to_string)
        .ok_or_else(|| PackageError::NonUtf8 {
            path: path.to_path_buf(),
        })
}
