//! Integration tests of the search crate that need no server: ranking,
//! the run store, reports, archive comparison and resume refusals. The
//! searches themselves run against the simulator in the vllm-grid crate's
//! tests (they need the binary that hosts the simulator).

mod fixtures;

mod archive;
mod rank;
mod report;
mod resume;
mod store;
