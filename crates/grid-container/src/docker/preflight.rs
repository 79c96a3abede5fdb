//! Preflight of the Docker backend: nothing is created until the image is
//! there and the name is free (or ours to replace); and what a refused start
//! means.

use std::collections::HashMap;

use bollard::errors::Error as DockerError;
use bollard::query_parameters::ListContainersOptionsBuilder;

use super::connect::{is_connection_error, short, status_of};
use super::server::remove_container;
use super::sweep::owner_from_labels;
use super::{DockerBackend, labels};
use crate::failure::{FailureClass, LaunchFailure};
use crate::logs::LogSink;
use crate::profile::ResolvedProfile;
use crate::spec::LaunchSpec;

impl DockerBackend {
    pub(super) async fn check_image(&self, image: &str) -> Result<(), LaunchFailure> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(()),
            Err(error) if status_of(&error) == Some(404) => Err(LaunchFailure::new(
                FailureClass::MissingImage,
                format!(
                    "image {image} is not on the Docker engine at {} (vllm-grid never pulls); run `docker pull {image}`, \
                     or for vllm-sim:latest build it with scripts/build-sim-image.sh",
                    self.connector.host
                ),
            )
            .with_source(error)),
            Err(error) => Err(self.daemon_failure("inspect the image", error)),
        }
    }

    /// A container already holding the profile's name: ours is replaced, a
    /// foreign one is refused unless the spec allows replacing it.
    pub(super) async fn clear_name(
        &self,
        name: &str,
        spec: &LaunchSpec,
        sink: &LogSink,
    ) -> Result<(), LaunchFailure> {
        let mut filters = HashMap::new();
        filters.insert("name".to_string(), vec![format!("^/{name}$")]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|error| self.daemon_failure("list containers", error))?;
        for container in containers {
            let Some(id) = container.id.clone() else {
                continue;
            };
            let names = container.names.clone().unwrap_or_default();
            if !names.iter().any(|n| n.trim_start_matches('/') == name) {
                continue;
            }
            let labels = container.labels.clone().unwrap_or_default();
            let ours = labels.get(labels::TOOL).map(String::as_str) == Some(labels::TOOL_VALUE);
            let state = container
                .state
                .map(|s| format!("{s:?}").to_lowercase())
                .unwrap_or_default();
            if ours {
                let owner = owner_from_labels(&labels);
                let is_us = owner.as_ref().is_some_and(|o| *o == self.config.owner);
                if let Some(owner) = owner.filter(|o| !is_us && o.is_alive()) {
                    return Err(LaunchFailure::new(
                        FailureClass::ForeignContainer,
                        format!(
                            "container {name} ({}) belongs to vllm-grid process {} on {}, which is still running (run {}); \
                             wait for it to finish or stop it first",
                            short(&id),
                            owner.pid,
                            owner.host,
                            labels.get(labels::RUN_ID).cloned().unwrap_or_default()
                        ),
                    ));
                }
                sink.note(&format!(
                    "replacing leftover vllm-grid container {name} ({})",
                    short(&id)
                ));
            } else if spec.replace_foreign {
                sink.note(&format!(
                    "replacing foreign container {name} ({}) as explicitly allowed",
                    short(&id)
                ));
            } else {
                return Err(LaunchFailure::new(
                    FailureClass::ForeignContainer,
                    format!(
                        "a container named {name} ({}, image {}, {state}) exists and was not created by vllm-grid \
                         (it has no {}={} label), so it was left untouched. Stop it yourself, give the profile another \
                         container_name, or allow replacing it explicitly (--replace-foreign)",
                        short(&id),
                        container.image.clone().unwrap_or_default(),
                        labels::TOOL,
                        labels::TOOL_VALUE
                    ),
                ));
            }
            remove_container(&self.docker, &id).await.map_err(|error| {
                self.daemon_failure("remove the container holding the profile's name", error)
            })?;
        }
        Ok(())
    }
}

pub(super) fn classify_start_error(
    resolved: &ResolvedProfile,
    error: DockerError,
) -> LaunchFailure {
    let text = error.to_string();
    let lower = text.to_lowercase();
    let (class, advice) = if lower.contains("port is already allocated")
        || lower.contains("address already in use")
    {
        (
            FailureClass::PortInUse,
            "a host port of the profile is taken; free it or publish another port".to_string(),
        )
    } else if lower.contains("could not select device driver") {
        (
            FailureClass::BackendError,
            "the engine cannot give GPUs to containers; install the NVIDIA Container Toolkit and restart docker".to_string(),
        )
    } else if lower.contains("unknown or invalid runtime") {
        (
            FailureClass::BackendError,
            "the profile's `runtime` is not configured in the engine".to_string(),
        )
    } else if is_connection_error(&error) {
        (
            FailureClass::DaemonUnavailable,
            "the engine stopped answering".to_string(),
        )
    } else {
        (
            FailureClass::BackendError,
            format!("docker could not start a container from {}", resolved.image),
        )
    };
    LaunchFailure::new(class, format!("{advice}: {text}")).with_source(error)
}
