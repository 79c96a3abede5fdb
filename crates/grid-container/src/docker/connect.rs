//! Reaching the engine: the address, the connection with its timeout, and
//! what an unreachable engine looks like.

use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as DockerError;

use crate::failure::{FailureClass, LaunchFailure, chain_text};

/// The engine cannot be reached.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot reach the Docker engine at {host}. Start the engine (e.g. `sudo systemctl start docker`), \
     or point DOCKER_HOST at a running one (tcp with TLS: set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH)"
)]
pub struct DaemonUnavailable {
    pub host: String,
    #[source]
    pub cause: EngineUnreachable,
}

/// How the engine failed to answer.
#[derive(Debug, thiserror::Error)]
pub enum EngineUnreachable {
    #[error("the client cannot be set up for this address")]
    Client {
        #[source]
        source: DockerError,
    },
    #[error("the engine refused the API version negotiation")]
    Negotiate {
        #[source]
        source: DockerError,
    },
    #[error("no answer within {timeout:?}")]
    NoAnswer { timeout: Duration },
    #[error("the connection failed while trying to {operation}")]
    Dropped {
        operation: &'static str,
        #[source]
        source: DockerError,
    },
}

impl From<DaemonUnavailable> for LaunchFailure {
    fn from(error: DaemonUnavailable) -> Self {
        LaunchFailure::new(FailureClass::DaemonUnavailable, chain_text(&error)).with_source(error)
    }
}

/// How to reach the engine, kept so a guard can open its own connection.
#[derive(Debug, Clone)]
pub(crate) struct Connector {
    pub(crate) host: String,
    pub(crate) timeout: Duration,
}

impl Connector {
    fn unavailable(&self, cause: EngineUnreachable) -> DaemonUnavailable {
        DaemonUnavailable {
            host: self.host.clone(),
            cause,
        }
    }

    pub(crate) fn client(&self) -> Result<Docker, DaemonUnavailable> {
        Docker::connect_with_host(&self.host)
            .map_err(|source| self.unavailable(EngineUnreachable::Client { source }))
    }

    pub(crate) async fn connect(&self) -> Result<Docker, DaemonUnavailable> {
        let client = self.client()?;
        match tokio::time::timeout(self.timeout, client.negotiate_version()).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(source)) => Err(self.unavailable(EngineUnreachable::Negotiate { source })),
            Err(_) => Err(self.unavailable(EngineUnreachable::NoAnswer {
                timeout: self.timeout,
            })),
        }
    }

    /// The engine stopped answering during `operation`.
    pub(crate) fn dropped(
        &self,
        operation: &'static str,
        source: DockerError,
    ) -> DaemonUnavailable {
        self.unavailable(EngineUnreachable::Dropped { operation, source })
    }

    /// Whether the engine runs on this machine (so host ports can be checked).
    pub(crate) fn is_local(&self) -> bool {
        self.host.starts_with("unix://")
            || ["127.0.0.1", "localhost", "[::1]"]
                .iter()
                .any(|h| self.remote_host().as_deref() == Some(*h))
    }

    /// The host part of a tcp engine address.
    pub(crate) fn remote_host(&self) -> Option<String> {
        let rest = self.host.split_once("://").map(|(_, rest)| rest)?;
        if self.host.starts_with("unix://") {
            return None;
        }
        let authority = rest.split('/').next()?;
        let host = match authority.rsplit_once(':') {
            Some((host, _)) if !host.is_empty() => host,
            _ => authority,
        };
        Some(host.to_string())
    }
}

pub(crate) fn status_of(error: &DockerError) -> Option<u16> {
    match error {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

pub(crate) fn is_connection_error(error: &DockerError) -> bool {
    !matches!(
        error,
        DockerError::DockerResponseServerError { .. }
            | DockerError::DockerContainerWaitError { .. }
    )
}

/// A container ID as `docker ps` shows it.
pub(crate) fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}
