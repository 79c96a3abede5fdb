//! Shared types and numerics of vllm-grid, in one place so every crate
//! computes them alike: the estimate type of every interval in a report or
//! a result file, the one bootstrap, descriptive statistics, the seeded RNG,
//! FNV-1a and the redacting secret.
//!
//! Pure by design: no IO, no async, no dependency beyond `serde`
//! (`crates/grid-core/tests/it/architecture.rs` checks it). OS helpers live
//! in `grid-sys`.

pub mod bootstrap;
pub mod cluster;
pub mod estimate;
pub mod hash;
pub mod rng;
pub mod secret;
pub mod stats;
pub mod testing;

pub use bootstrap::{DEFAULT_RESAMPLES, bootstrap_median};
pub use cluster::{ClusterEstimate, cluster_bootstrap_median, cluster_bootstrap_ratio};
pub use estimate::Estimate;
pub use hash::fnv1a64;
pub use rng::SplitMix64;
pub use secret::Secret;
pub use stats::{Distribution, mean, median, percentile_sorted, relative_change};
