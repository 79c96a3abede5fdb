//! Integration tests for grid-container. The lifecycle tests run the real
//! Docker engine with the locally built simulator image (and the simulator
//! binary for the process backend); they fail, with the fix, when either is
//! missing: run scripts/build-sim-image.sh.

mod common;

mod cleanup;
mod diagnosis;
mod failures;
mod lifecycle;
mod predict_inputs;
mod profiles;
mod render;
mod secrets;
mod slots;
