//! Integration tests of grid-sys.

mod atomic;
mod lock;
mod process;

/// A fresh scratch directory, removed when dropped.
pub fn scratch_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a scratch directory")
}
