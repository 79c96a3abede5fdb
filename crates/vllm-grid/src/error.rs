//! The binary's errors, one variant per failed operation with its cause as
//! `#[source]`, and the documented exit codes they map to.

use std::path::PathBuf;

use grid_search::{ErrorKind, SearchError};

pub const EXIT_OK: u8 = 0;
pub const EXIT_INTERNAL: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;
/// The search found no valid config; `bench`: a benchmark did not complete.
pub const EXIT_NO_VALID_RESULT: u8 = 3;
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
    #[error("the battery parameters in {path} are invalid")]
    PlanBattery {
        path: PathBuf,
        #[source]
        source: Box<SearchError>,
    },
    #[error("cannot use the profile {path}")]
    Profile {
        path: PathBuf,
        #[source]
        source: grid_container::ProfileError,
    },
    #[error("the profile {path} defines several services; pick one with --service NAME")]
    ChooseService {
        path: PathBuf,
        #[source]
        source: grid_container::ProfileError,
    },
    #[error(
        "the profile {path} references {variables} with no value; nothing was started. Export it before running (the value is never written anywhere)"
    )]
    MissingSecret { path: String, variables: String },
    #[error("the profile {path} cannot be resolved; nothing was started")]
    ResolveProfile {
        path: String,
        #[source]
        source: grid_container::ResolveError,
    },
    #[error("cannot generate a random value for {variable} for the simulated run")]
    GenerateSecret {
        variable: String,
        #[source]
        source: getrandom::Error,
    },
    #[error("the GPU slots given (--gpu-slots) cannot be used")]
    GpuSlots {
        #[source]
        source: grid_container::SlotError,
    },
    #[error("--executor ray needs the cluster's dashboard: add --ray-address http://HOST:8265")]
    RayNeedsAddress,
    #[error("cannot encode the unit result as JSON")]
    EncodeResult {
        #[source]
        source: serde_json::Error,
    },
    #[error("--ray-address cannot be used")]
    RayAddress {
        #[source]
        source: grid_ray::InvalidAddress,
    },
    #[error("cannot find this vllm-grid binary to send to the Ray cluster")]
    CurrentExe {
        #[source]
        source: std::io::Error,
    },
    #[error(
        "--gpu-slots is for the local executor; on Ray the cluster places each job on TP × PP of its GPUs: leave --gpu-slots out"
    )]
    SlotsOnRay,
    #[error("--ray-address is for --executor ray; add `--executor ray`, or leave the address out")]
    AddressWithoutRay,
    #[error(
        "GPU slot {slot} has {gpus} GPU(s) but config {config} needs {needed} (tensor × pipeline parallel size); give each slot at least {needed} GPUs"
    )]
    SlotTooSmall {
        slot: u32,
        gpus: usize,
        config: String,
        needed: usize,
    },
    #[error("cannot list this host's GPUs for `--gpu-slots auto`")]
    ListGpus {
        #[source]
        source: grid_container::GpuListError,
    },
    #[error("cannot use the unit spec")]
    UnitSpec {
        #[source]
        source: grid_search::search::executor::UnitSpecError,
    },
    #[error("cannot reach the Docker engine")]
    Docker {
        #[source]
        source: grid_container::DaemonUnavailable,
    },
    #[error("the environment variable {name} named by --api-key-env is not set; export it first")]
    MissingApiKeyEnv { name: String },
    #[error("cannot read the battery parameters {path}")]
    ReadBattery {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the battery parameters {path} are not JSON")]
    BatteryJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "the endpoint {url} does not answer as an OpenAI-compatible server; nothing was benchmarked. Check --base-url, --model and that the server is up"
    )]
    Probe {
        url: String,
        #[source]
        source: grid_bench::ProbeError,
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
    /// Boxed: the search's errors are large, and every command returns this.
    #[error(transparent)]
    Search(Box<SearchError>),
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
    #[error("cannot install the signal handler")]
    Signals {
        #[source]
        source: std::io::Error,
    },
    #[error("the simulator's thread stopped without an exit status")]
    Simulator {
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("cannot write to standard output")]
    WriteOutput {
        #[source]
        source: std::io::Error,
    },
}

impl From<SearchError> for AppError {
    fn from(source: SearchError) -> Self {
        AppError::Search(Box::new(source))
    }
}

impl AppError {
    pub fn exit_code(&self) -> u8 {
        // A full disk is the environment's fault whichever operation hit it
        // (the journal, a result, the report, the console redirected to a
        // file): exit 5, so a script can tell it from a bug.
        if self.disk_full() {
            return EXIT_ENVIRONMENT;
        }
        match self {
            AppError::ReadPlan { .. }
            | AppError::Plan { .. }
            | AppError::PlanBattery { .. }
            | AppError::Profile { .. }
            | AppError::ChooseService { .. }
            | AppError::MissingSecret { .. }
            | AppError::ResolveProfile { .. }
            | AppError::MissingApiKeyEnv { .. }
            | AppError::ReadBattery { .. }
            | AppError::BatteryJson { .. }
            | AppError::ReadProfileCopy { .. }
            | AppError::GpuSlots { .. }
            | AppError::SlotTooSmall { .. }
            | AppError::RayNeedsAddress
            | AppError::RayAddress { .. }
            | AppError::SlotsOnRay
            | AppError::AddressWithoutRay => EXIT_BAD_INPUT,
            AppError::UnitSpec { source } => match source {
                grid_search::search::executor::UnitSpecError::Write { .. } => EXIT_ENVIRONMENT,
                _ => EXIT_BAD_INPUT,
            },
            AppError::Docker { .. }
            | AppError::Sweep { .. }
            | AppError::Probe { .. }
            | AppError::ListGpus { .. }
            | AppError::GenerateSecret { .. }
            | AppError::CurrentExe { .. } => EXIT_ENVIRONMENT,
            AppError::EncodeResult { .. } => EXIT_INTERNAL,
            AppError::Search(err) => match err.kind() {
                ErrorKind::BadInput => EXIT_BAD_INPUT,
                ErrorKind::EnvironmentUnavailable => EXIT_ENVIRONMENT,
                ErrorKind::Internal => EXIT_INTERNAL,
            },
            AppError::Battery { source } => match source.kind() {
                grid_bench::BatteryErrorKind::BadInput => EXIT_BAD_INPUT,
                grid_bench::BatteryErrorKind::Cancelled => EXIT_INTERRUPTED,
                grid_bench::BatteryErrorKind::Environment => EXIT_ENVIRONMENT,
                grid_bench::BatteryErrorKind::Internal => EXIT_INTERNAL,
            },
            AppError::Runtime { .. }
            | AppError::Signals { .. }
            | AppError::Simulator { .. }
            | AppError::WriteOutput { .. } => EXIT_INTERNAL,
        }
    }

    /// Whether an I/O error anywhere in the chain says the disk (or the
    /// quota) is full.
    fn disk_full(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(error) = cause {
            if let Some(io) = error.downcast_ref::<std::io::Error>() {
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
                ) {
                    return true;
                }
            }
            cause = error.source();
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::ErrorKind::{Other, QuotaExceeded, StorageFull};

    type Make = fn(std::io::ErrorKind) -> AppError;

    fn journal_write(kind: std::io::ErrorKind) -> AppError {
        AppError::from(SearchError::WriteFile {
            path: PathBuf::from("logs/r/journal.jsonl"),
            source: std::io::Error::from(kind),
        })
    }

    fn stdout_write(kind: std::io::ErrorKind) -> AppError {
        AppError::WriteOutput {
            source: std::io::Error::from(kind),
        }
    }

    fn runtime(kind: std::io::ErrorKind) -> AppError {
        AppError::Runtime {
            source: std::io::Error::from(kind),
        }
    }

    #[test]
    fn a_full_disk_anywhere_in_the_chain_is_the_environment() {
        grid_core::testing::check(
            &[
                (
                    "journal, disk full",
                    (journal_write as Make, StorageFull),
                    EXIT_ENVIRONMENT,
                ),
                (
                    "stdout, disk full",
                    (stdout_write as Make, StorageFull),
                    EXIT_ENVIRONMENT,
                ),
                (
                    "stdout, quota",
                    (stdout_write as Make, QuotaExceeded),
                    EXIT_ENVIRONMENT,
                ),
                (
                    "runtime, disk full",
                    (runtime as Make, StorageFull),
                    EXIT_ENVIRONMENT,
                ),
                ("runtime, other", (runtime as Make, Other), EXIT_INTERNAL),
            ],
            |(make, kind)| make(*kind).exit_code(),
        );
    }
}
