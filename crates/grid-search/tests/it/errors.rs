//! Issue 9, defect 8: which errors are bad input, which the environment:
//! a full disk while writing the store is the environment (exit 5), a
//! damaged run file is bad input (exit 2). And who a failure blames.

use std::io;
use std::path::PathBuf;

use grid_core::testing::check;
use grid_search::blame::{Blame, io_blame, launch_blame};
use grid_search::{ErrorKind, SearchError};

#[test]
fn a_full_disk_is_the_environment_not_an_internal_error() {
    check(
        &[
            ("disk full", io::ErrorKind::StorageFull, Blame::Environment),
            ("quota", io::ErrorKind::QuotaExceeded, Blame::Environment),
            (
                "read-only mount",
                io::ErrorKind::ReadOnlyFilesystem,
                Blame::Environment,
            ),
            (
                "not ours",
                io::ErrorKind::PermissionDenied,
                Blame::Environment,
            ),
            (
                "something else",
                io::ErrorKind::InvalidData,
                Blame::Internal,
            ),
        ],
        |kind| io_blame(&io::Error::from(*kind)),
    );
    // ENOSPC as the kernel reports it, on each way into the store.
    let enospc = || io::Error::from_raw_os_error(28);
    let path = PathBuf::from("logs/run/results/x.json");
    for err in [
        SearchError::WriteFile {
            path: path.clone(),
            source: enospc(),
        },
        SearchError::LockFile {
            run_id: "run".into(),
            path: path.clone(),
            source: enospc(),
        },
    ] {
        assert_eq!(err.kind(), ErrorKind::EnvironmentUnavailable, "{err:?}");
    }
    assert_eq!(
        SearchError::WriteFile {
            path,
            source: io::Error::other("unexpected"),
        }
        .kind(),
        ErrorKind::Internal
    );
}

#[test]
fn launch_failures_blame_the_config_or_the_environment() {
    use grid_container::FailureClass as F;
    check(
        &[
            ("out of memory", F::GpuOutOfMemory, Blame::Config),
            ("memory held", F::FreeMemoryBelowUtilization, Blame::Config),
            ("kv cache", F::KvCacheTooSmall, Blame::Config),
            ("arguments", F::InvalidArgument, Blame::Config),
            ("crash", F::ExitedWithCode(1), Blame::Config),
            ("slow", F::HealthTimeout, Blame::Config),
            ("port", F::PortInUse, Blame::Environment),
            ("image", F::MissingImage, Blame::Environment),
            ("daemon", F::DaemonUnavailable, Blame::Environment),
            ("engine", F::BackendError, Blame::Environment),
            ("foreign", F::ForeignContainer, Blame::Environment),
            ("secret", F::MissingSecret, Blame::BadInput),
            ("profile", F::InvalidProfile, Blame::BadInput),
        ],
        launch_blame,
    );
}
