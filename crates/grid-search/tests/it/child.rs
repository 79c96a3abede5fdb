//! Child processes of the tests: the test binary itself, re-executed with
//! [`ROLE_ENV`] set, plays one role instead of running the tests. Roles:
//! * `vllm-sim`: the simulator (`vllm_sim::run_cli` on the arguments after
//!   `--`), the server the process backend starts for a search;
//! * `lock`: on a first line on stdin (the start signal, so that several
//!   children try at the same instant) take a run's lock (`RunLock::acquire`
//!   on the run directory given after `--`), say `won` or `locked`
//!   ([`answer`]), and hold it until stdin closes;
//! * `failpoint`: pass through the failpoint `probe`, then say `passed`.
//!
//! libtest offers no hook before the tests, so the entry is a test whose
//! name the children are started with (`--exact child::entry`); without the
//! variable it has nothing to do and returns.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

pub const ROLE_ENV: &str = "GRID_SEARCH_IT_CHILD";

/// This test binary, started in `role` with `args` after `--`.
pub fn command(role: &str, args: &[&str]) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the test binary's path"));
    command
        .args(prefix())
        .args(args)
        .env(ROLE_ENV, role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// What runs the test binary as a child: its path and the arguments that
/// select [`entry`]; the child's own arguments come after.
pub fn program_prefix() -> Vec<String> {
    let mut argv = vec![
        std::env::current_exe()
            .expect("the test binary's path")
            .display()
            .to_string(),
    ];
    argv.extend(prefix().iter().map(|a| a.to_string()));
    argv
}

fn prefix() -> [&'static str; 5] {
    [
        "--exact",
        "child::entry",
        "--nocapture",
        "--test-threads=1",
        "--",
    ]
}

#[test]
fn entry() {
    let Ok(role) = std::env::var(ROLE_ENV) else {
        return;
    };
    let args: Vec<String> = std::env::args().skip_while(|a| a != "--").skip(1).collect();
    let code = match role.as_str() {
        "vllm-sim" => exit_status(vllm_sim::run_cli(args.iter().map(Into::into))),
        "lock" => hold_lock(Path::new(&args[0])),
        "failpoint" => {
            grid_search::failpoint::hit("probe");
            say("passed");
            0
        }
        other => panic!("unknown child role {other}"),
    };
    std::process::exit(code);
}

const ANSWER: &str = "child answers: ";

/// A line for the parent, among libtest's own on stdout.
fn say(answer: &str) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "\n{ANSWER}{answer}");
    let _ = out.flush();
}

/// The child's answer on `stdout` (libtest's lines skipped); empty when it
/// ended without one.
pub fn answer(stdout: &mut impl BufRead) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        match stdout.read_line(&mut line) {
            Ok(0) | Err(_) => return String::new(),
            Ok(_) => {
                if let Some(answer) = line.trim().strip_prefix(ANSWER) {
                    return answer.to_string();
                }
            }
        }
    }
}

/// The number behind an `ExitCode` (it has no getter).
fn exit_status(code: ExitCode) -> i32 {
    (0..=255u8)
        .find(|c| ExitCode::from(*c) == code)
        .map(i32::from)
        .unwrap_or(1)
}

fn hold_lock(run_dir: &Path) -> i32 {
    let store = grid_search::RunStore {
        dir: run_dir.to_path_buf(),
        run_id: "run".to_string(),
    };
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    let _ = stdin.read_line(&mut line);
    let lock = grid_search::store::RunLock::acquire(&store);
    say(if lock.is_ok() { "won" } else { "locked" });
    // Held until the parent closes our stdin.
    let _ = stdin.read_line(&mut line);
    drop(lock);
    0
}
