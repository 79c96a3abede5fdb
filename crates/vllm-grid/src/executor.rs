//! `--executor ray --ray-address URL`: where the search's units run,
//! checked at the boundary (the address's form here; its reachability by
//! the search, with the fix in its error).

use std::time::Duration;

use grid_container::GpuSlot;
use grid_search::ExecutorKind;
use grid_search::search::executor::RayTarget;

use crate::cli::{ExecutorArg, ExecutorName};
use crate::error::AppError;

/// How often a Ray job's status is read: a unit takes seconds at least.
const RAY_POLL: Duration = Duration::from_millis(250);

pub fn resolve(arg: &ExecutorArg, slots: &[GpuSlot]) -> Result<ExecutorKind, AppError> {
    match (arg.executor, &arg.ray_address) {
        (ExecutorName::Local, None) => Ok(ExecutorKind::Local),
        (ExecutorName::Local, Some(_)) => Err(AppError::AddressWithoutRay),
        (ExecutorName::Ray, None) => Err(AppError::RayNeedsAddress),
        (ExecutorName::Ray, Some(_)) if !slots.is_empty() => Err(AppError::SlotsOnRay),
        (ExecutorName::Ray, Some(address)) => {
            // Its form is checked before any run directory exists.
            grid_ray::RayClient::new(address, grid_ray::ClientOptions::default())
                .map_err(|source| AppError::RayAddress { source })?;
            // The jobs run this very binary from the package the executor
            // uploads.
            let worker_binary =
                std::env::current_exe().map_err(|source| AppError::CurrentExe { source })?;
            Ok(ExecutorKind::Ray(RayTarget {
                address: address.clone(),
                worker_binary,
                poll: RAY_POLL,
            }))
        }
    }
}
