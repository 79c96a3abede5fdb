//! Integration tests of the `vllm-grid` binary: real child processes, the
//! simulator built into the binary (`vllm-grid sim`), the process backend
//! and the real Docker engine. Every run writes to a temporary directory.

mod common;

mod bench;
mod cli;
mod deadlines;
mod docker;
mod dry_run;
mod inputs;
mod kill;
mod kill_loop;
mod pipes;
mod predict;
mod ray;
mod resume;
mod search;
mod signals;
mod slots;
