//! A typed client of Ray's Jobs REST API (Ray 2.60.0, the dashboard of
//! `ray start --head`), the groundwork of vllm-grid's Ray executor:
//!
//! - [`RayClient`]: submit a job ([`JobSpec`]: entrypoint, GPUs, the unit of
//!   work as metadata, a working-dir package, public env vars), read its
//!   status and logs, stop it, list a run's jobs by their metadata;
//! - [`Package`]: a directory zipped and named by its content the way Ray
//!   names it (`gcs://_ray_pkg_<hash>.zip`), uploaded once;
//! - [`diagnose`]: a finished job's outcome as a failure class
//!   (`job_failed` with the log tail, `node_lost`, `stopped`, ...);
//! - `testing::RayHead` (feature `test-support`): a local head for tests.
//!
//! Every fact about Ray this relies on is in shared/ray-reference.md, with
//! where it was checked; the replies it parses are recorded in
//! tests/data/ray-2.60.0/.

pub mod api;
pub mod client;
pub mod diagnose;
pub mod error;
pub mod package;
pub mod spec;
#[cfg(feature = "test-support")]
pub mod testing;

pub use api::{JobDetails, JobErrorType, JobStatus};
pub use client::{ClientOptions, ClusterGpus, RayClient, Upload, of_run, tail};
pub use diagnose::{JobFailure, JobFailureClass, JobOutcome, diagnose, entrypoint_output};
pub use error::{InvalidAddress, RayError, RequestError};
pub use package::{Package, PackageError, PackageUri};
pub use spec::{CpuShare, JobSpec, PublicEnv, SecretInEnv, SubmissionId, UnitMetadata};
