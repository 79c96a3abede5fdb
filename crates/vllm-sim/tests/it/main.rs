//! Integration tests of the simulator. Test data under tests/data/ is copied
//! from the recording of a real vLLM 0.32.0 CPU server (see FIXTURES.md).

mod behaviour;
mod cli;
mod common;
mod contract;
mod faults;
mod limits;
mod memory;
mod real032;
mod tools;
mod truth;
mod wire;
