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
    let dir = scratch_dir("atomic");
    let path = dir.join("nested/result.json");
    write_atomic(&path, b"first").expect("creates the parent and writes");
    write_atomic(&path, b"second").expect("replaces");
    assert_eq!(std::fs::read(&path).expect("read"), b"second");
    assert_eq!(names(&dir.join("nested")), ["result.json"]);
    // The mode File::create would give, not a private 0o600.
    let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
    assert_eq!(mode & 0o044, 0o044 & !umask_guess(&dir), "mode {mode:o}");
    std::fs::remove_dir_all(&dir).expect("clean up");
}

/// The umask's group/other read bits, read off a file made by File::create.
fn umask_guess(dir: &std::path::Path) -> u32 {
    let probe = dir.join("probe");
    std::fs::write(&probe, b"").expect("probe");
    let mode = std::fs::metadata(&probe)
        .expect("meta")
        .permissions()
        .mode();
    std::fs::remove_file(&probe).expect("remove probe");
    !mode & 0o044
}

#[test]
fn until_the_rename_readers_see_the_old_content_beside_a_marked_temporary() {
    let dir = scratch_dir("hook");
    let path = dir.join("manifest.json");
    write_atomic(&path, b"old").expect("first write");
    write_atomic_with_hook(&path, b"new", || {
        assert_eq!(std::fs::read(&path).expect("read"), b"old");
        let names = names(&dir);
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
    assert_eq!(names(&dir), ["manifest.json"]);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn a_failed_write_leaves_the_target_and_no_temporary() {
    let dir = scratch_dir("fail");
    // A directory cannot be replaced by a file: the rename fails.
    let target = dir.join("taken");
    std::fs::create_dir_all(target.join("inside")).expect("dir");
    let error = write_atomic(&target, b"x").expect_err("cannot replace a directory");
    assert!(error.raw_os_error().is_some(), "{error}");
    assert!(target.join("inside").is_dir());
    assert_eq!(names(&dir), ["taken"]);
    assert!(write_atomic(std::path::Path::new("/"), b"x").is_err());
    std::fs::remove_dir_all(&dir).expect("clean up");
}
