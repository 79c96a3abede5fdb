//! `vllm-sim serve MODEL [FLAGS]`: the command line, dispatched as vLLM's
//! is (usage, `--help`, argparse errors), then [`crate::startup::serve`].
//!
//! Exit codes: 0 after SIGTERM/SIGINT, 1 for startup failures and simulated
//! crashes, 2 for command-line errors (argparse's code).

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::ServeConfig;
use crate::log;
use crate::startup::serve;

const USAGE: &str = "usage: vllm serve [model_tag] [options]";

/// Runs the command line (without the program name): `["serve", "tiny",
/// "--port", "0"]`. Builds its own tokio runtime, so call it from a plain
/// `main`, not from inside a runtime (use [`serve`] there). Installs
/// SIGTERM/SIGINT handlers itself: as PID 1 in a FROM-scratch container a
/// signal without a handler does nothing.
pub fn run_cli<I: IntoIterator<Item = OsString>>(args: I) -> ExitCode {
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match args.first().map(String::as_str) {
        Some("serve") => {}
        Some("-h" | "--help") | None => {
            log::raw_out(
                "usage: vllm-sim serve [model_tag] [options]\n\nA simulator of `vllm serve`: the same flags (see `vllm serve --help=all`), plus --sim-* knobs documented in crates/vllm-sim/README.md.",
            );
            return if args.is_empty() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
        Some(other) => {
            log::raw_err("usage: vllm-sim serve [model_tag] [options]");
            log::raw_err(&format!(
                "vllm-sim: error: argument subparser: invalid choice: '{other}' (choose from 'serve')"
            ));
            return ExitCode::from(2);
        }
    }
    if args
        .iter()
        .skip(1)
        .any(|a| a == "-h" || a == "--help" || a.starts_with("--help="))
    {
        log::raw_out(USAGE);
        log::raw_out(
            "\nA simulator of `vllm serve`; see crates/vllm-sim/README.md for the --sim-* knobs.",
        );
        return ExitCode::SUCCESS;
    }
    let cfg = match ServeConfig::from_args(&args[1..]) {
        Ok(cfg) => cfg,
        Err(e) => {
            log::raw_err(USAGE);
            log::raw_err(&format!("vllm serve: error: {}", with_causes(&e)));
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log::raw_err(&format!("vllm-sim: cannot start the async runtime: {e}"));
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(serve(cfg));
    // Connections still open (a hung request, a client that never reads) must
    // not delay the exit: SIGTERM has to stop us within a second.
    runtime.shutdown_timeout(Duration::from_millis(100));
    code
}

/// An error and its causes, `: `-joined.
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}
