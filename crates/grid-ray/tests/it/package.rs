//! Working-dir packages: Ray's name for the same files, a zip Ray unpacks
//! with modes kept.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;

use grid_ray::{Package, PackageError};

use crate::common::fixture_dir;

/// Writes the recorded package's files (`package-uri.json`) into a dir.
fn recorded_package() -> (tempfile::TempDir, String) {
    let text = std::fs::read_to_string(fixture_dir().join("package-uri.json")).expect("read");
    let recorded: serde_json::Value = serde_json::from_str(&text).expect("json");
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, content) in recorded["files"].as_object().expect("files") {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, content.as_str().expect("text")).expect("write");
        let mode =
            u32::from_str_radix(recorded["modes"][name].as_str().expect("mode"), 8).expect("octal");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    (dir, recorded["ray_uri"].as_str().expect("uri").to_string())
}

#[test]
fn the_uri_is_the_one_ray_computes_for_the_same_files() {
    let (dir, ray_uri) = recorded_package();
    let package = Package::from_directory(dir.path()).expect("packs");
    assert_eq!(package.uri.as_str(), ray_uri);
    assert_eq!(package.uri.name(), ray_uri.trim_start_matches("gcs://"));
    assert_eq!(package.files, 2);
}

#[test]
fn the_uri_follows_content_and_names() {
    let (dir, ray_uri) = recorded_package();
    std::fs::write(dir.path().join("spec.json"), "{\"unit\": \"small-b\"}\n").expect("write");
    let changed = Package::from_directory(dir.path()).expect("packs");
    assert_ne!(changed.uri.as_str(), ray_uri);
    std::fs::create_dir(dir.path().join("empty")).expect("mkdir");
    let with_dir = Package::from_directory(dir.path()).expect("packs");
    assert_ne!(
        with_dir.uri, changed.uri,
        "an empty directory counts, as in Ray"
    );
}

#[test]
fn the_zip_holds_the_files_with_their_modes() {
    let (dir, _) = recorded_package();
    std::fs::create_dir(dir.path().join("empty")).expect("mkdir");
    let package = Package::from_directory(dir.path()).expect("packs");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(package.zip)).expect("a zip");
    let mut names: Vec<String> = archive.file_names().map(str::to_string).collect();
    names.sort();
    assert_eq!(names, ["bin/hello.sh", "empty/", "spec.json"]);
    let mut script = archive.by_name("bin/hello.sh").expect("the script");
    assert_eq!(script.unix_mode().map(|m| m & 0o777), Some(0o755));
    let mut text = String::new();
    script.read_to_string(&mut text).expect("reads");
    assert!(text.starts_with("#!/bin/sh\n"));
}

#[test]
fn a_symlink_is_refused() {
    let (dir, _) = recorded_package();
    std::os::unix::fs::symlink("spec.json", dir.path().join("link")).expect("symlink");
    let error = Package::from_directory(dir.path()).expect_err("a link");
    assert!(matches!(error, PackageError::Symlink { .. }), "{error}");
    let missing = Package::from_directory(&dir.path().join("nope")).expect_err("no dir");
    assert!(missing.to_string().starts_with("cannot read "), "{missing}");
}
