//! `vllm-grid bench` against servers that are up, down, or not vLLM: it
//! probes first and fails fast with exit 5 and the reason; after a battery
//! it shows each benchmark's top failure reasons and exits 3 when a
//! benchmark did not complete.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// `vllm-grid sim serve` on a port the kernel picks, killed on drop.
struct Sim {
    child: Child,
    url: String,
}

impl Sim {
    fn start(extra: &[&str]) -> Sim {
        let mut child = Command::new(BIN)
            .args([
                "sim",
                "serve",
                "Qwen/Qwen3-32B-AWQ",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--sim-time-scale",
                "0",
                "--sim-model-load-s",
                "0",
            ])
            .args(extra)
            .env_remove("VLLM_API_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the simulator");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("the simulator exited before listening")
                .expect("read the simulator's stdout");
            if let Some(rest) = line.split("Uvicorn running on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        // Keep draining so the simulator never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Sim { child, url }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A web server that answers every request with an HTML page.
fn html_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
            let mut buf = [0u8; 8192];
            let _ = stream.read(&mut buf);
            let body = "<html><body><h1>Welcome to nginx!</h1></body></html>";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

fn bench(ws: &Workspace, url: &str, extra: &[&str]) -> Output {
    let mut args = vec!["bench", "--base-url", url, "--model", "Qwen/Qwen3-32B-AWQ"];
    args.extend_from_slice(extra);
    ws.run(&args)
}

/// A battery small enough for a time-scale-0 simulator.
fn small_battery(ws: &Workspace) -> String {
    let path = ws.path().join("battery.json");
    std::fs::write(&path, TINY_BATTERY).unwrap();
    path.display().to_string()
}

#[test]
fn an_endpoint_that_does_not_answer_fails_fast_with_exit_5_and_the_reason() {
    let ws = Workspace::new();
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let html = html_server();
    let malformed = Sim::start(&["--sim-malformed-sse-rate", "1"]);
    let failing = Sim::start(&["--sim-http-500-rate", "1"]);
    // The reason as the battery's client names it (an HTML page has no
    // event stream), or as grid-bench's probe words it.
    let cases: [(&str, &str, &[&str]); 4] = [
        ("closed port", &closed, &["connect"]),
        ("html page", &html, &["stream_interrupted", "HTML page"]),
        ("malformed SSE", &malformed.url, &["malformed_event"]),
        ("HTTP 500", &failing.url, &["http_status"]),
    ];
    for (what, url, reasons) in cases {
        let started = Instant::now();
        let out = bench(&ws, url, &[]);
        let took = started.elapsed();
        assert_eq!(out.status.code(), Some(5), "{what}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("does not answer"), "{what}: {err}");
        assert!(
            reasons.iter().any(|r| err.contains(r)),
            "{what}: none of {reasons:?} in {err}"
        );
        assert!(took < Duration::from_secs(5), "{what} took {took:?}");
        assert!(
            stdout(&out).is_empty(),
            "{what}: a battery ran: {}",
            stdout(&out)
        );
    }
}

#[test]
fn a_healthy_server_is_benchmarked_and_exits_0() {
    let ws = Workspace::new();
    let sim = Sim::start(&[]);
    let battery = small_battery(&ws);
    let out = bench(
        &ws,
        &sim.url,
        &["--battery", &battery, "--only", "kv_cache,stability"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let text = stdout(&out);
    assert!(text.contains("kv_cache"), "{text}");
    assert!(!text.contains("failure reasons"), "{text}");
}

#[test]
fn a_benchmark_that_fails_shows_its_reasons_and_exits_3() {
    let ws = Workspace::new();
    // The engine dies after 4 finished requests (the probe's and three of
    // kv_cache's): the rest of kv_cache cannot connect, so it has too few
    // samples, and so has stability after it.
    let sim = Sim::start(&["--sim-crash-after-requests", "4"]);
    let battery = small_battery(&ws);
    let out = bench(
        &ws,
        &sim.url,
        &["--battery", &battery, "--only", "kv_cache,stability"],
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{text}\n{}", stderr(&out));
    let reasons = text
        .split_once("failure reasons")
        .unwrap_or_else(|| panic!("no failure reasons:\n{text}"))
        .1;
    let kv_line = reasons
        .lines()
        .find(|l| l.trim_start().starts_with("kv_cache: "))
        .unwrap_or_else(|| panic!("no kv_cache failure line:\n{text}"));
    // A reason with its count, e.g. `connect ×11`.
    assert!(
        ["connect ×", "stream_interrupted ×"]
            .iter()
            .any(|r| kv_line.contains(r)),
        "{kv_line}"
    );
    assert!(
        stderr(&out).contains("did not complete: kv_cache"),
        "{}",
        stderr(&out)
    );
}
