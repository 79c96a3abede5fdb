//! Issue 9, defect 9: the failpoints, which hold a process for good once
//! hit, exist in debug builds only (the kill tests run the debug binary).
//! A child with `VLLM_GRID_FAILPOINT=probe` stops at the point in a debug
//! build and passes through in a release build (`cargo test --release`).

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::Duration;

use grid_search::failpoint::{COMPILED_IN, FAILPOINT_ENV};

#[derive(Debug, PartialEq)]
enum Seen {
    Held,
    Passed,
}

#[test]
fn a_failpoint_holds_only_in_a_debug_build() {
    assert_eq!(COMPILED_IN, cfg!(debug_assertions));
    let mut child = crate::child::command("failpoint", &[])
        .env(FAILPOINT_ENV, "probe")
        .spawn()
        .expect("start a child");
    drop(child.stdin.take());
    let (sender, receiver) = mpsc::channel();
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let passed = sender.clone();
    std::thread::spawn(move || {
        if crate::child::answer(&mut stdout) == "passed" {
            let _ = passed.send(Seen::Passed);
        }
    });
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if line.contains("failpoint reached: probe@1") {
                let _ = sender.send(Seen::Held);
            }
        }
    });
    let seen = receiver.recv_timeout(Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    let expected = if cfg!(debug_assertions) {
        Seen::Held
    } else {
        Seen::Passed
    };
    assert_eq!(seen, Ok(expected));
}
