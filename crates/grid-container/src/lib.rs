//! The container manager: one vLLM server per configuration, started from a
//! docker-compose profile through the Docker engine (bollard) or as a local
//! process, checked ready, logged with secrets redacted, diagnosed when it
//! fails, and torn down on every path.
//!
//! ```text
//! load_profile ─► render_command ─► Backend::launch ─► RunningServer ─► teardown
//!                                      │ preflight, labels, logs,        │ Drop guard
//!                                      │ readiness, diagnosis            │ removes it too
//! ```
//!
//! Files: `profile/` (compose parsing and resolution), `render` (flags into
//! commands), `interpolate` (`${VAR}`), `spec` (what a launch needs),
//! `launch` (what both backends share, the one readiness wait in `ready`),
//! `docker/` and `process/` (the backends), `server` (a ready server and
//! its teardown), `slot` (GPU slots: devices, names, ports), `backend` (the two behind one enum, sweeps), `failure` and
//! `diagnose` (classes and the diagnosis), `logs` (container.log), `secret`
//! (redaction).

mod backend;
mod diagnose;
mod docker;
mod failure;
mod interpolate;
mod launch;
mod logs;
mod process;
mod profile;
mod ready;
mod render;
mod secret;
mod server;
mod slot;
mod spec;

pub use backend::{Backend, SweepError, SweepOptions, SweepReport, SweptItem};
pub use diagnose::{Stage, diagnose, diagnose_at};
pub use docker::{
    DaemonUnavailable, DockerBackend, DockerBackendConfig, EngineUnreachable, labels,
};
pub use failure::{Blame, ExitInfo, FailureClass, LaunchFailure};
pub use interpolate::{SyntaxError, SyntaxProblem, UnresolvedVariable};
pub use logs::{HEAD_BYTES, LogFileError, TAIL_LINES, WINDOW_BYTES};
#[cfg(feature = "test-hooks")]
pub use process::SpawnGate;
pub use process::{LAUNCH_ID_VARIABLE, PidRecord, ProcessBackend, ProcessBackendConfig};
pub use profile::{
    API_KEY_VARIABLE, BindError, DEFAULT_SERVER_PORT, DeclaredHardware, DeclaredModel,
    DurationError, EnvEntry, GpuRequest, Healthcheck, LoadedProfile, MAX_DURATION, ModelSource,
    PortError, PortMapping, PredictHints, ProcessHints, Profile, ProfileError, ProfileOptions,
    ResolveError, ResolvedProfile, ServerPortError, ServiceChoice, SizeError, Ulimit, WordsError,
    expand_leniently, load_profile, load_profile_with, parse_bytes, parse_duration, parse_port,
    parse_profile, parse_profile_with, parse_server_port, split_words,
};
pub use ready::ReadinessConfig;
pub use render::{
    flag_value, flag_values, render_command, served_model_from_command, setting_tokens, take_flag,
};
pub use secret::{Redact, RedactedError, Redactor};
pub use server::{RunningServer, TeardownError, TeardownReport};
pub use slot::{
    GpuListError, GpuSlot, MAX_SLOTS, SlotError, SlotRequest, list_gpus, slots_from_devices,
};
pub use spec::{LaunchSpec, ServerEndpoint};
