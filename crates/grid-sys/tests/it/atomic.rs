use std::os::unix::fs::PermissionsExt;

use grid_sys::{write_atomic, write_atomic_with_hook};

use crate::scratch_dir;

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_write_replaces_the_whole_file_and_leaves_no_temporary() {
    let scratch = scratch_dir();
    let dir = scratch.path();
    let path = dir.join("nested/result.json");
    write_atomic(&path, b"first").expect("creates the parent and writes");
    write_atomic(&path, b"second").expect("replaces");
    assert_eq!(std::fs::read(&path).expect("read"), b"second");
    assert_eq!(names(&dir.join("nested")), ["result.json"]);
    // The mode File::create would give (0o666 less the umask), not
    // tempfile's private 0o600.
    let probe = dir.join("probe");
    std::fs::write(&probe, b"").expect("probe");
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&path), mode(&probe));
}

#[test]
fn until_the_rename_readers_see_the_old_content_beside_a_marked_temporary() {
    let scratch = scratch_dir();
    let dir = scratch.path();
    let path = dir.join("manifest.json");
    write_atomic(&path, b"old").expect("first write");
    write_atomic_with_hook(&path, b"new", || {
        assert_eq!(std::fs::read(&path).expect("read"), b"old");
        let names = names(dir);
        assert_eq!(names.len(), 2, "{names:?}");
        let temporary = names.iter().find(|n| *n != "manifest.json").expect("temp");
        // The sweeps recognise a torn write by this shape.
        assert!(
            temporary.starts_with(".manifest.json.") && temporary.ends_with(".tmp"),
            "{temporary}"
        );
    })
    .expect("second write");
    assert_eq!(std::fs::read(&path).expect("read"), b"new");
    assert_eq!(names(dir), ["manifest.json"]);
}

#[test]
fn a_failed_write_leaves_the_target_and_no_temporary() {
    let scratch = scratch_dir();
    let dir = scratch.path();
    // A directory cannot be replaced by a file: the rename fails.
    let target = dir.join("taken");
    std::fs::create_dir_all(target.join("inside")).expect("dir");
    let error = write_atomic(&target, b"x").expect_err("cannot replace a directory");
    assert!(error.raw_os_error().is_some(), "{error}");
    assert!(target.join("inside").is_dir());
    assert_eq!(names(dir), ["taken"]);
    assert!(write_atomic(std::path::Path::new("/"), b"x").is_err());
}
