//! The sweep of containers left by a vllm-grid that died (SIGKILL): found
//! by our labels, which exist from the moment the container is created.

use std::collections::HashMap;

use bollard::query_parameters::ListContainersOptionsBuilder;
use grid_sys::Owner;

use super::connect::status_of;
use super::server::remove_container;
use super::{DockerBackend, labels};
use crate::backend::{SweepError, SweepOptions, SweepReport, SweptItem};

impl DockerBackend {
    /// Removes containers left by dead owners (see [`SweepOptions`]).
    pub async fn sweep_leftovers(&self, options: &SweepOptions) -> Result<SweepReport, SweepError> {
        let mut filters = HashMap::new();
        filters.insert(
            "label".to_string(),
            vec![format!("{}={}", labels::TOOL, labels::TOOL_VALUE)],
        );
        let list = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let containers = self
            .docker
            .list_containers(Some(list))
            .await
            .map_err(|source| SweepError::ListContainers { source })?;
        let this_host = grid_sys::hostname();
        let mut report = SweepReport::default();
        for container in containers {
            let Some(id) = container.id.clone() else {
                continue;
            };
            let labels = container.labels.clone().unwrap_or_default();
            let owner = owner_from_labels(&labels);
            let item = SweptItem {
                id: id.clone(),
                run_id: labels.get(labels::RUN_ID).cloned().unwrap_or_default(),
                config_id: labels.get(labels::CONFIG_ID).cloned().unwrap_or_default(),
                owner_pid: owner.as_ref().map(|o| o.pid),
            };
            let host = labels.get(labels::HOST).cloned().unwrap_or_default();
            if host != this_host {
                report.skipped_other_host.push(item);
                continue;
            }
            let alive = owner.as_ref().is_some_and(Owner::is_alive);
            if alive && !options.include_live_owners {
                report.skipped_live_owner.push(item);
                continue;
            }
            match remove_container(&self.docker, &id).await {
                Ok(()) => report.removed.push(item),
                Err(source) if status_of(&source) == Some(404) => report.removed.push(item),
                Err(source) => {
                    return Err(SweepError::RemoveContainer {
                        container: id.clone(),
                        source,
                    });
                }
            }
        }
        Ok(report)
    }
}

pub(super) fn owner_from_labels(labels: &HashMap<String, String>) -> Option<Owner> {
    let pid = labels.get(labels::OWNER_PID)?.parse().ok()?;
    Some(Owner {
        pid,
        start_ticks: labels.get(labels::OWNER_START).and_then(|t| t.parse().ok()),
        host: labels.get(labels::HOST).cloned().unwrap_or_default(),
    })
}
