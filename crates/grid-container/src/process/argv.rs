//! The program the process backend runs and where it listens: the server
//! listens where the container's port would have been published, so the
//! endpoint is the same on both backends.

use std::path::Path;

use grid_plan::FlagSetting;

use super::ProcessBackend;
use crate::failure::{FailureClass, LaunchFailure};
use crate::profile::ResolvedProfile;
use crate::render::render_command;

impl ProcessBackend {
    /// The program and arguments the server runs with (expanded), and where
    /// it listens. The server listens where the container's port would have
    /// been published, so the endpoint is the same on both backends.
    pub(super) fn argv(
        &self,
        resolved: &ResolvedProfile,
    ) -> Result<(Vec<String>, String, u16), LaunchFailure> {
        let entry = resolved
            .process_entrypoint
            .clone()
            .or_else(|| resolved.entrypoint.clone())
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| self.config.default_entrypoint.clone());
        let mut argv = Vec::new();
        let program = entry[0].clone();
        let file_name = Path::new(&program)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(&program)
            .to_string();
        match self
            .config
            .program_overrides
            .get(&program)
            .or_else(|| self.config.program_overrides.get(&file_name))
        {
            Some(replacement) if !replacement.is_empty() => {
                argv.extend(replacement.iter().cloned())
            }
            _ => argv.push(program),
        }
        argv.extend(entry[1..].iter().cloned());
        let (host, port, command) = if resolved.network_mode_is_host() {
            (
                "127.0.0.1".to_string(),
                resolved.server_port,
                resolved.command.clone(),
            )
        } else {
            let mapping = resolved.server_mapping();
            let host = mapping
                .and_then(|m| m.host_ip.clone())
                .unwrap_or_else(|| "127.0.0.1".to_string());
            let port = match mapping.and_then(|m| m.host_port) {
                Some(port) => port,
                None => free_port(&host)?,
            };
            let command = render_command(
                &resolved.command,
                &[
                    FlagSetting::Value {
                        flag: "host".to_string(),
                        value: host.clone(),
                    },
                    FlagSetting::Value {
                        flag: "port".to_string(),
                        value: port.to_string(),
                    },
                ],
            );
            (host, port, command)
        };
        argv.extend(command);
        let connect_host = match host.as_str() {
            "0.0.0.0" | "" => "127.0.0.1".to_string(),
            "::" => "[::1]".to_string(),
            h if h.contains(':') => format!("[{h}]"),
            h => h.to_string(),
        };
        Ok((argv, connect_host, port))
    }
}

pub(super) fn free_port(host: &str) -> Result<u16, LaunchFailure> {
    let address = if host.contains(':') {
        format!("[{host}]:0")
    } else {
        format!("{host}:0")
    };
    std::net::TcpListener::bind(&address)
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|error| {
            LaunchFailure::new(
                FailureClass::PortInUse,
                format!("cannot find a free port on {host}: {error}"),
            )
            .with_source(error)
        })
}

/// Fails early, with the fix, when the program does not exist.
pub(super) fn check_program(program: &str) -> Result<(), LaunchFailure> {
    let exists = if program.contains('/') {
        Path::new(program).is_file()
    } else {
        std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
            .unwrap_or(false)
    };
    if exists {
        Ok(())
    } else {
        Err(LaunchFailure::new(
            FailureClass::MissingProgram,
            format!(
                "program {program} was not found; install it, put it on PATH, or map it to another program \
                 (the process backend's program overrides)"
            ),
        ))
    }
}
