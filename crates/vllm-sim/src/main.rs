//! The `vllm-sim` binary: `vllm-sim serve MODEL [FLAGS]`, the same command
//! line as `vllm serve`. Everything lives in the library so `vllm-grid sim`
//! can run the same code in-process.

fn main() -> std::process::ExitCode {
    vllm_sim::run_cli(std::env::args_os().skip(1))
}
