//! The container to create: the profile's settings as the engine's create
//! body, our labels on it.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, DeviceRequest, HealthConfig, HostConfig, PortBinding, ResourcesUlimits,
};

use super::{DockerBackend, labels};
use crate::profile::{GpuRequest, Profile, ResolvedProfile};
use crate::slot::GpuSlot;
use crate::spec::LaunchSpec;

impl DockerBackend {
    pub(super) fn create_body(
        &self,
        profile: &Profile,
        resolved: &ResolvedProfile,
        spec: &LaunchSpec,
    ) -> ContainerCreateBody {
        let mut all_labels: HashMap<String, String> = resolved
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let owner = &self.config.owner;
        for (key, value) in [
            (labels::TOOL, labels::TOOL_VALUE.to_string()),
            (labels::RUN_ID, spec.run_id.clone()),
            (labels::CONFIG_ID, spec.config_id.clone()),
            (labels::OWNER_PID, owner.pid.to_string()),
            (
                labels::OWNER_START,
                owner.start_ticks.map(|t| t.to_string()).unwrap_or_default(),
            ),
            (labels::HOST, owner.host.clone()),
        ] {
            all_labels.insert(key.to_string(), value);
        }
        if let Some(slot) = &spec.slot {
            all_labels.insert(labels::SLOT.to_string(), slot.index.to_string());
            all_labels.insert(labels::DEVICES.to_string(), slot.visible_devices());
        }
        let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        let mut exposed = Vec::new();
        for mapping in &resolved.ports {
            let key = format!("{}/{}", mapping.container_port, mapping.protocol);
            if !exposed.contains(&key) {
                exposed.push(key.clone());
            }
            port_bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: Some(mapping.host_ip.clone().unwrap_or_default()),
                    host_port: Some(mapping.host_port.map(|p| p.to_string()).unwrap_or_default()),
                });
        }
        let device_requests: Vec<DeviceRequest> = match &spec.slot {
            Some(slot) => slot_device_requests(profile, slot),
            None => profile.gpus.iter().map(profile_device_request).collect(),
        };
        let nanos =
            |d: Option<Duration>| d.map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        let healthcheck = resolved.healthcheck.as_ref().map(|h| HealthConfig {
            test: Some(h.test.clone()),
            interval: nanos(h.interval),
            timeout: nanos(h.timeout),
            retries: h.retries,
            start_period: nanos(h.start_period),
            start_interval: None,
        });
        let host_config = HostConfig {
            port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
            binds: (!resolved.binds.is_empty()).then(|| resolved.binds.clone()),
            ipc_mode: profile.ipc.clone(),
            shm_size: profile.shm_size,
            runtime: profile.runtime.clone(),
            network_mode: profile.network_mode.clone(),
            ulimits: (!profile.ulimits.is_empty()).then(|| {
                profile
                    .ulimits
                    .iter()
                    .map(|u| ResourcesUlimits {
                        name: Some(u.name.clone()),
                        soft: Some(u.soft),
                        hard: Some(u.hard),
                    })
                    .collect()
            }),
            device_requests: (!device_requests.is_empty()).then_some(device_requests),
            // We need the exit code and OOMKilled after an exit, so the
            // engine must not remove the container by itself.
            auto_remove: Some(false),
            ..Default::default()
        };
        ContainerCreateBody {
            image: Some(resolved.image.clone()),
            cmd: (!resolved.command.is_empty()).then(|| resolved.command.clone()),
            entrypoint: resolved.entrypoint.clone(),
            env: Some(
                resolved
                    .environment
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect(),
            ),
            labels: Some(all_labels),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            healthcheck,
            stop_timeout: Some(i64::try_from(spec.grace_period.as_secs()).unwrap_or(i64::MAX)),
            tty: Some(false),
            host_config: Some(host_config),
            ..Default::default()
        }
    }
}

fn profile_device_request(gpu: &GpuRequest) -> DeviceRequest {
    DeviceRequest {
        driver: Some(gpu.driver.clone()),
        count: gpu.count,
        device_ids: (!gpu.device_ids.is_empty()).then(|| gpu.device_ids.clone()),
        capabilities: Some(vec![gpu.capabilities.clone()]),
        options: (!gpu.options.is_empty()).then(|| {
            gpu.options
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }),
    }
}

/// A slot's devices by ID: the profile's GPU request (driver, capabilities,
/// options) with its count or IDs replaced by the slot's, or `--gpus`'
/// default request (`driver: nvidia`, `[[gpu]]`) when the profile has none.
fn slot_device_requests(profile: &Profile, slot: &GpuSlot) -> Vec<DeviceRequest> {
    let base = profile
        .gpus
        .first()
        .map(profile_device_request)
        .unwrap_or(DeviceRequest {
            driver: Some("nvidia".to_string()),
            capabilities: Some(vec![vec!["gpu".to_string()]]),
            ..Default::default()
        });
    vec![DeviceRequest {
        count: None,
        device_ids: Some(slot.devices.clone()),
        ..base
    }]
}
