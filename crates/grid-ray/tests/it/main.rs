//! grid-ray's tests: the parsers and the diagnosis against replies recorded
//! from a real Ray 2.60.0 head (tests/data/ray-2.60.0/, made by
//! scripts/ray/record-fixtures.py), the package hash against Ray's own, and
//! the client against a real local head (`VLLM_GRID_RAY`; fails in CI
//! without it, skips elsewhere).

mod common;
mod diagnose;
mod errors;
mod fixtures;
mod live;
mod package;
mod spec;
