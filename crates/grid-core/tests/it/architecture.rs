//! ARCHITECTURE.md's invariants that can be checked mechanically, read from
//! every `crates/*/Cargo.toml` and from the sources. Each test names the
//! invariant it checks; ARCHITECTURE.md lists them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One crate's manifest: dependency names per section.
#[derive(Debug, Default)]
struct Manifest {
    /// `[dependencies]`
    normal: BTreeSet<String>,
    /// `[dev-dependencies]` and `[build-dependencies]`
    other: BTreeSet<String>,
}

impl Manifest {
    fn all(&self) -> impl Iterator<Item = &String> {
        self.normal.iter().chain(self.other.iter())
    }
    fn depends_on(&self, name: &str) -> bool {
        self.all().any(|dep| dep == name)
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Dependency names of a Cargo.toml: keys of the dependency sections
/// (`name = ...`, `name.workspace = true`) and `[dependencies.name]` tables.
/// Enough TOML for this workspace's manifests, which `cargo` itself parses.
fn parse_manifest(text: &str) -> Manifest {
    let mut manifest = Manifest::default();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = header.trim().to_string();
            for (prefix, normal) in [
                ("dependencies.", true),
                ("dev-dependencies.", false),
                ("build-dependencies.", false),
            ] {
                if let Some(name) = section.strip_prefix(prefix) {
                    let set = if normal {
                        &mut manifest.normal
                    } else {
                        &mut manifest.other
                    };
                    set.insert(name.to_string());
                }
            }
            continue;
        }
        let set = match section.as_str() {
            "dependencies" => &mut manifest.normal,
            "dev-dependencies" | "build-dependencies" => &mut manifest.other,
            _ => continue,
        };
        if let Some(key) = line.split('=').next() {
            let name = key.trim().split('.').next().unwrap_or("").trim();
            if !name.is_empty() {
                set.insert(name.trim_matches('"').to_string());
            }
        }
    }
    manifest
}

/// Every crate of the workspace by name.
fn crates() -> BTreeMap<String, Manifest> {
    let dir = workspace_root().join("crates");
    let mut crates = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("crates/ is readable") {
        let path = entry.expect("a directory entry").path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let name = path
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .expect("a crate directory name");
        crates.insert(name, parse_manifest(&text));
    }
    assert!(crates.len() >= 9, "found only {:?}", crates.keys());
    crates
}

/// Rust sources of a crate's `src/`, with their paths.
fn sources(crate_name: &str) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut pending = vec![workspace_root().join("crates").join(crate_name).join("src")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("src/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("a readable source");
                out.push((path, text));
            }
        }
    }
    assert!(!out.is_empty(), "{crate_name} has no sources");
    out
}

fn dependents_of(crates: &BTreeMap<String, Manifest>, dep: &str) -> Vec<String> {
    crates
        .iter()
        .filter(|(_, manifest)| manifest.depends_on(dep))
        .map(|(name, _)| name.clone())
        .collect()
}

/// Invariant: only grid-container talks to Docker (imports bollard).
#[test]
fn only_grid_container_depends_on_bollard() {
    assert_eq!(dependents_of(&crates(), "bollard"), ["grid-container"]);
}

/// Invariant: libraries report progress as events; only the binary draws.
#[test]
fn only_the_binary_depends_on_indicatif() {
    assert_eq!(dependents_of(&crates(), "indicatif"), ["vllm-grid"]);
}

/// Invariant: grid-core is pure: its only dependency is serde, and its
/// sources touch no file, socket, process or environment and have no async.
#[test]
fn grid_core_is_pure() {
    let crates = crates();
    let core = &crates["grid-core"];
    let allowed: BTreeSet<String> = ["serde".to_string()].into();
    assert_eq!(
        core.normal, allowed,
        "grid-core's dependencies; a new one must keep it free of IO and async"
    );
    let forbidden = [
        "std::fs",
        "std::net",
        "std::process",
        "std::env",
        "async fn",
        "tokio",
    ];
    for (path, text) in sources("grid-core") {
        for word in forbidden {
            assert!(
                !text.contains(word),
                "{} uses {word}; grid-core does no IO (put OS helpers in grid-sys)",
                path.display()
            );
        }
    }
}

/// Invariant: grid-plan does no IO and has no async.
#[test]
fn grid_plan_has_no_async_or_io() {
    let crates = crates();
    let plan = &crates["grid-plan"];
    for dep in [
        "tokio",
        "tokio-util",
        "futures-util",
        "reqwest",
        "axum",
        "bollard",
    ] {
        assert!(
            !plan.normal.contains(dep),
            "grid-plan depends on {dep}; it must stay synchronous"
        );
    }
    for (path, text) in sources("grid-plan") {
        for word in ["async fn", "std::fs", "std::net", "std::process"] {
            assert!(!text.contains(word), "{} uses {word}", path.display());
        }
    }
}

/// Invariant: grid-predict is pure: it computes from inputs its callers
/// gathered (files, nvidia-smi), with no IO and no async.
#[test]
fn grid_predict_is_pure() {
    let crates = crates();
    let predict = &crates["grid-predict"];
    let allowed: BTreeSet<String> = ["serde", "serde_json", "thiserror"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        predict.normal, allowed,
        "grid-predict's dependencies; a new one must keep it free of IO and async"
    );
    for (path, text) in sources("grid-predict") {
        for word in [
            "async fn",
            "std::fs",
            "std::net",
            "std::process",
            "std::env",
            "tokio",
        ] {
            assert!(!text.contains(word), "{} uses {word}", path.display());
        }
    }
}

/// Invariant: the layers of the bird's-eye view; no dependency runs back
/// up. A new crate must be given its layer here (and in ARCHITECTURE.md).
#[test]
fn dependencies_only_point_down_the_layers() {
    let layers: BTreeMap<&str, u32> = [
        ("grid-core", 0),
        ("grid-sys", 0),
        ("grid-plan", 1),
        ("vllm-sim", 1),
        ("vllm-contract", 1),
        ("grid-predict", 1),
        ("grid-bench", 2),
        ("grid-container", 2),
        ("grid-ray", 2),
        ("grid-search", 3),
        ("vllm-grid", 4),
    ]
    .into();
    let crates = crates();
    let mut problems = Vec::new();
    for (name, manifest) in &crates {
        let Some(&layer) = layers.get(name.as_str()) else {
            problems.push(format!("{name} has no layer; add it to this test"));
            continue;
        };
        for dep in &manifest.normal {
            if let Some(&dep_layer) = layers.get(dep.as_str()) {
                if dep_layer >= layer {
                    problems.push(format!(
                        "{name} (layer {layer}) depends on {dep} (layer {dep_layer})"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_manifest_reader_sees_every_form_of_dependency() {
    let manifest = parse_manifest(
        "[package]\nname = \"x\"\n[dependencies]\nserde.workspace = true\n\
         memchr = \"2\" # a comment\n[dependencies.tokio]\nversion = \"1\"\n\
         [dev-dependencies]\nvllm-sim = { path = \"../vllm-sim\" }\n[[test]]\nname = \"it\"\n",
    );
    let normal: Vec<&str> = manifest.normal.iter().map(String::as_str).collect();
    let other: Vec<&str> = manifest.other.iter().map(String::as_str).collect();
    assert_eq!(normal, ["memchr", "serde", "tokio"]);
    assert_eq!(other, ["vllm-sim"]);
}
