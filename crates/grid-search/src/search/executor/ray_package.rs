//! The Ray executor's working-dir package: the running `vllm-grid` binary
//! and one unit spec per config × repeat, zipped and named as Ray names
//! it, uploaded once per content (a resume with the same binary and plan
//! finds it there). A job's entrypoint runs the binary from the unpacked
//! package: `./vllm-grid worker --spec units/<unit>.json`.

use std::path::{Path, PathBuf};

use grid_plan::PlannedConfig;
use grid_ray::{Package, PackageUri, RayClient};

use crate::SearchError;
use crate::search::context::RunContext;

use super::unit_spec::UnitSpec;

/// The binary's name inside the package.
pub(crate) const BINARY: &str = "vllm-grid";

/// A unit's spec file inside the package.
pub(crate) fn spec_path(config: &PlannedConfig, repeat: u32) -> String {
    format!("units/{}-r{repeat}.json", config.id)
}

/// Builds the package (in `<run dir>/ray-package`, removed once zipped)
/// and uploads it unless the cluster has it already.
pub(crate) async fn upload(
    ctx: &RunContext<'_>,
    client: &RayClient,
    binary: &Path,
) -> Result<PackageUri, SearchError> {
    let dir = ctx.store.dir.join("ray-package");
    let written = write_dir(ctx, &dir, binary);
    let packed = match written {
        Ok(()) => {
            let zip_dir = dir.clone();
            tokio::task::spawn_blocking(move || Package::from_directory(&zip_dir))
                .await
                .ok()
        }
        Err(error) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(error);
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    let package = match packed {
        Some(result) => result.map_err(|source| SearchError::RayPackage {
            source: Box::new(source),
        })?,
        None => {
            return Err(SearchError::RayPackageDir {
                dir,
                source: std::io::Error::other("the packing task panicked"),
            });
        }
    };
    let sent = client
        .upload_package(&package)
        .await
        .map_err(|source| SearchError::RayCluster {
            source: Box::new(source),
        })?;
    tracing::info!(uri = %package.uri, bytes = package.zip.len(), ?sent, "Ray working-dir package ready");
    Ok(package.uri)
}

fn write_dir(ctx: &RunContext<'_>, dir: &Path, binary: &Path) -> Result<(), SearchError> {
    let io = |dir: &Path| {
        let dir: PathBuf = dir.to_path_buf();
        move |source| SearchError::RayPackageDir { dir, source }
    };
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::create_dir_all(dir.join("units")).map_err(io(dir))?;
    // A hard link costs nothing; across file systems, a copy.
    let target = dir.join(BINARY);
    if std::fs::hard_link(binary, &target).is_err() {
        std::fs::copy(binary, &target).map_err(io(binary))?;
    }
    let setup = ctx.setup;
    for config in &setup.plan.configs {
        for repeat in 0..setup.plan.repeats.get() {
            let spec = UnitSpec::new(setup, ctx.backend.name(), config, repeat, None, ctx.options);
            let path = dir.join(spec_path(config, repeat));
            let text = serde_json::to_vec(&spec).map_err(|source| SearchError::Encode {
                what: "a unit spec".to_string(),
                source,
            })?;
            std::fs::write(&path, text).map_err(io(&path))?;
        }
    }
    Ok(())
}
