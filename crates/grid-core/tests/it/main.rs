//! Integration tests of grid-core. Tabular cases go through `check`, which
//! runs every case and reports all mismatches at once.

mod architecture;
mod bootstrap;
mod cluster;
mod estimate;
mod hash;
mod rng;
mod secret;
mod stats;

pub use grid_core::testing::check;
