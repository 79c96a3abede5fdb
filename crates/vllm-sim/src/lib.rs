//! `vllm-sim`: a stand-in for `vllm serve` (vLLM 0.32, V1 engine) for tests,
//! rehearsals and `vllm-grid search --dry-run`.
//!
//! * [`run_cli`] runs `serve MODEL [FLAGS]` as the binary does (own runtime,
//!   signal handlers, vLLM-like logs, exit codes; [`cli`]); [`serve`] is the
//!   same inside an existing runtime ([`startup`]).
//! * [`ServeConfig::from_args`] parses a `vllm serve` command line (vLLM's
//!   flags plus `--sim-*` knobs) — see [`config`].
//! * [`SimState::new`] runs the memory model ([`memory`]) and starts the
//!   engine thread ([`engine`], [`kv`]); [`app`] is the axum router
//!   ([`server`]); [`TestServer`] runs it in-process on 127.0.0.1:0
//!   ([`test_server`]).
//! * Ground truth for measuring clients: `GET /sim/requests` ([`truth`]).
//!
//! The behaviour model and its formulas are in the module docs of [`memory`],
//! [`engine`], [`kv`], [`text`] and [`script`], and in the crate README.

pub mod cli;
pub mod config;
pub mod engine;
pub mod kv;
mod log;
pub mod memory;
pub mod metrics;
pub mod schema;
pub mod script;
pub mod server;
pub mod startup;
pub mod test_server;
pub mod text;
pub mod truth;

pub use cli::run_cli;
pub use config::{CliError, ServeConfig, SimConfig};
pub use memory::{MemoryPlan, StartupError};
pub use server::{SimError, SimState, app};
pub use startup::serve;
pub use test_server::{TestServer, TestServerError};
