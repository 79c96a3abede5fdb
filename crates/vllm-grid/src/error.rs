//! The binary's error type and the documented exit codes.

use std::path::PathBuf;

use grid_search::{ErrorKind, SearchError};

pub const EXIT_OK: u8 = 0;
pub const EXIT_INTERNAL: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;
pub const EXIT_NO_VALID_CONFIG: u8 = 3;
pub const EXIT_NOT_CONFIRMED: u8 = 4;
pub const EXIT_ENVIRONMENT: u8 = 5;
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot read the plan file {path}; pass --configs FILE")]
    ReadPlan {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the plan file {path} is invalid")]
    Plan {
        path: PathBuf,
        #[source]
        source: grid_plan::PlanError,
    },
    #[error("cannot use the profile {path}")]
    Profile {
        path: PathBuf,
        #[source]
        source: grid_container::ProfileError,
    },
    #[error(
        "the profile {path} references {variables} with no value; nothing was started. Export it before running (the value is never written anywhere)"
    )]
    MissingSecret { path: String, variables: String },
    #[error("cannot reach the Docker engine")]
    Docker {
        #[source]
        source: grid_container::DaemonUnavailable,
    },
    #[error("the environment variable {name} named by --api-key-env is not set; export it first")]
    MissingApiKeyEnv { name: String },
    #[error("{0}")]
    BadInput(String),
    #[error("cannot read the battery parameters {path}")]
    ReadBattery {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the benchmark battery failed")]
    Battery {
        #[source]
        source: grid_bench::BatteryError,
    },
    #[error("cannot sweep leftovers")]
    Sweep {
        #[source]
        source: grid_container::SweepError,
    },
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error(
        "cannot read the run's profile copy {path}, which names the secrets to redact from the archive; nothing was archived"
    )]
    ReadProfileCopy {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the async runtime")]
    Runtime {
        #[source]
        source: std::io::Error,
    },
}

impl AppError {
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::ReadPlan { .. }
            | AppError::Plan { .. }
            | AppError::Profile { .. }
            | AppError::MissingSecret { .. }
            | AppError::MissingApiKeyEnv { .. }
            | AppError::BadInput(_)
            | AppError::ReadBattery { .. }
            | AppError::ReadProfileCopy { .. } => EXIT_BAD_INPUT,
            AppError::Docker { .. } | AppError::Sweep { .. } => EXIT_ENVIRONMENT,
            AppError::Search(err) => match err.kind() {
                ErrorKind::BadInput => EXIT_BAD_INPUT,
                ErrorKind::EnvironmentUnavailable => EXIT_ENVIRONMENT,
                ErrorKind::Internal => EXIT_INTERNAL,
            },
            AppError::Battery { source } => match source {
                grid_bench::BatteryError::InvalidConfig(_) => EXIT_BAD_INPUT,
                grid_bench::BatteryError::Cancelled => EXIT_INTERRUPTED,
                _ => EXIT_INTERNAL,
            },
            AppError::Runtime { .. } => EXIT_INTERNAL,
        }
    }
}
