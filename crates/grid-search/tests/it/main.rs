//! Integration tests of the search crate: ranking, the run store and its
//! lock, reports, archive comparison, resume refusals, and searches on the
//! simulator, whose server is this test binary re-executed as `vllm-sim`
//! ([`child`]).

mod child;
mod fixtures;
mod sim;

mod archive;
mod errors;
mod failpoint;
mod lock;
mod predict;
mod rank;
mod report;
mod resume;
mod search;
mod slots;
mod store;
