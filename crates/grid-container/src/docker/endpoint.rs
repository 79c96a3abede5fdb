//! Where a started container's server answers: the published port as the
//! engine reports it (so `127.0.0.1::8000` works), the host network, or the
//! container's own address.

use super::DockerBackend;
use crate::failure::{FailureClass, LaunchFailure};
use crate::profile::ResolvedProfile;
use crate::spec::ServerEndpoint;

impl DockerBackend {
    /// Where the started server answers: the published port as the engine
    /// reports it (so `127.0.0.1::8000` works), or the host network.
    pub(super) async fn endpoint(
        &self,
        resolved: &ResolvedProfile,
        id: &str,
    ) -> Result<ServerEndpoint, LaunchFailure> {
        let served_model = resolved.served_model.clone().unwrap_or_default();
        let api_key = resolved.api_key.clone();
        let local_host = self
            .connector
            .remote_host()
            .unwrap_or_else(|| "127.0.0.1".to_string());
        if resolved.network_mode_is_host() {
            return Ok(ServerEndpoint {
                base_url: format!("http://{local_host}:{}", resolved.server_port),
                served_model,
                api_key,
            });
        }
        let inspect = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|error| self.daemon_failure("inspect the new container", error))?;
        let settings = inspect.network_settings.unwrap_or_default();
        let key = format!("{}/tcp", resolved.server_port);
        let binding = settings
            .ports
            .as_ref()
            .and_then(|ports| ports.get(&key).cloned().flatten())
            .and_then(|bindings| {
                // Prefer IPv4 when the engine publishes on both families.
                bindings
                    .iter()
                    .find(|b| !b.host_ip.as_deref().unwrap_or("").contains(':'))
                    .cloned()
                    .or_else(|| bindings.first().cloned())
            });
        if let Some(binding) = binding {
            let port = binding.host_port.unwrap_or_default();
            let ip = binding.host_ip.unwrap_or_default();
            let host = match ip.as_str() {
                "" | "0.0.0.0" | "::" => local_host,
                ip if ip.contains(':') => format!("[{ip}]"),
                ip => ip.to_string(),
            };
            return Ok(ServerEndpoint {
                base_url: format!("http://{host}:{port}"),
                served_model,
                api_key,
            });
        }
        // Not published: reach the container on its network (Linux engines).
        let address = settings
            .networks
            .unwrap_or_default()
            .values()
            .filter_map(|n| n.ip_address.clone())
            .find(|ip| !ip.is_empty());
        match address {
            Some(ip) => Ok(ServerEndpoint {
                base_url: format!("http://{ip}:{}", resolved.server_port),
                served_model,
                api_key,
            }),
            None => Err(LaunchFailure::new(
                FailureClass::InvalidProfile,
                format!(
                    "the server's port {} is not published and the container has no network address; add a `ports:` entry such as \"127.0.0.1:5002:{}\"",
                    resolved.server_port, resolved.server_port
                ),
            )),
        }
    }
}
