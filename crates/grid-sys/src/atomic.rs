//! Atomic file writes: a reader (or a process started after a kill -9)
//! sees either the old content or the new one, never half of it.

use std::fs::Permissions;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory (named `.<file name>.<random>.tmp`, so a sweep can tell it
/// from real files), fsync, rename over `path`, fsync of the directory.
/// Creates the parent directory when missing. On error the temporary file
/// is removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with_hook(path, bytes, || {})
}

/// As [`write_atomic`], calling `before_rename` between the fsync of the
/// temporary file and the rename: the kill tests' failpoint stops there to
/// prove that a kill at that instant loses nothing.
pub fn write_atomic_with_hook(
    path: &Path,
    bytes: &[u8],
    before_rename: impl FnOnce(),
) -> io::Result<()> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} names no file", path.display()),
            )
        })?;
    std::fs::create_dir_all(directory)?;
    let prefix = format!(".{file_name}.");
    let mut temporary = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        // The mode `File::create` would give (0o666 less the umask), not
        // tempfile's private 0o600: reports are meant to be read.
        .permissions(Permissions::from_mode(0o666))
        .tempfile_in(directory)?;
    temporary.as_file_mut().write_all(bytes)?;
    temporary.as_file().sync_all()?;
    before_rename();
    // On failure the returned temporary file is dropped, which removes it.
    temporary.persist(path).map_err(|error| error.error)?;
    // Persist the rename itself; not every filesystem allows a directory
    // fsync, and the data is already safe when it fails.
    if let Ok(directory) = std::fs::File::open(directory) {
        let _ = directory.sync_all();
    }
    Ok(())
}
