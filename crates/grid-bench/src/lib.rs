//! The benchmark battery of vllm-grid: a streaming client for
//! OpenAI-compatible vLLM endpoints, `/metrics` scraping,
//! `nvidia-smi` sampling and eight benchmarks that each measure a quantity
//! by a written definition (see the crate README). Statistics and the
//! bootstrap are grid-core's; progress is reported as [`BatteryEvent`]s.

pub mod benchmarks;
pub mod chunk_scan;
pub mod client;
pub mod config;
pub mod endpoint;
pub mod gpu;
pub mod grading;
pub mod metrics;
pub mod noise;
pub mod openai;
pub mod probe;
pub mod progress;
pub mod report;
pub mod run;
pub mod schema;
pub mod sse;
pub mod summary;

pub use client::{Client, ClientConfig, Exchange, Failure, FailureKind, Reply, RequestRecord};
pub use config::{BatteryConfig, BenchmarkName, ConfigError};
pub use endpoint::Endpoint;
pub use probe::{ProbeConfig, ProbeError, ProbeReport, probe};
pub use progress::{BatteryEvent, BatteryProgress};
pub use report::{
    BatteryReport, BenchmarkDetails, BenchmarkOutcome, FailureReason, Headline, OutcomeStatus,
    render_table,
};
pub use run::{
    BatteryError, BatteryErrorKind, BatteryRun, RunOptions, run_battery, run_battery_isolated,
    run_battery_with_records,
};
