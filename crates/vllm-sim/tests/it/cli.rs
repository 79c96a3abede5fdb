//! The binary: argparse errors, startup failures, logs, SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vllm_sim::{CliError, ServeConfig};

const BIN: &str = env!("CARGO_BIN_EXE_vllm-sim");

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("VLLM_API_KEY")
        .output()
        .expect("run vllm-sim");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts the binary with `args`, stdout piped (to read its log lines).
fn spawn(args: &[&str], stderr: Stdio) -> std::process::Child {
    Command::new(BIN)
        .args(args)
        .env_remove("VLLM_API_KEY")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn vllm-sim")
}

#[test]
fn argparse_errors_exit_2_with_vllm_wording() {
    for (args, expected) in [
        (
            vec!["serve", "tiny", "--foo-bar", "3"],
            "vllm serve: error: unrecognized arguments: --foo-bar 3",
        ),
        (
            vec!["serve", "tiny", "--kv-cache-dtype", "fp7"],
            "vllm serve: error: argument --kv-cache-dtype: invalid choice: 'fp7'",
        ),
        (
            vec!["serve", "tiny", "--max-model-len"],
            "vllm serve: error: argument --max-model-len: expected one argument",
        ),
    ] {
        let (code, _, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[test]
fn startup_failures_exit_1_with_vllm_errors() {
    for (args, expected) in [
        (
            vec![
                "--sim-gpu-memory-used-gib",
                "2",
                "--gpu-memory-utilization",
                "0.95",
            ],
            "ValueError: Free memory on device cuda:0 (22.00/24.00 GiB) on startup is less than desired GPU memory utilization (0.95, 22.80 GiB)",
        ),
        (
            vec!["--gpu-memory-utilization", "0.6"],
            "KV cache is needed, which is larger than the available KV cache memory",
        ),
        (
            vec![
                "--no-enable-chunked-prefill",
                "--max-model-len",
                "8192",
                "--max-num-batched-tokens",
                "4096",
            ],
            "ValueError: max_num_batched_tokens (4096) is smaller than max_model_len (8192).",
        ),
        (
            vec!["--sim-startup-failure", "cuda-oom"],
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate",
        ),
    ] {
        let mut full = vec!["serve", "tiny", "--port", "0", "--sim-time-scale", "0"];
        full.extend(args.iter().copied());
        let (code, _, err) = run(&full);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[test]
fn flags_parse_both_spellings_and_env_key() {
    let a = ServeConfig::from_args_with_env(
        &["m", "--max-model-len=4096", "--max-num-seqs", "8"],
        None,
    )
    .expect("args");
    let b =
        ServeConfig::from_args_with_env(&["m", "--max_model_len", "4k", "--max-num-seqs=8"], None)
            .expect("args");
    assert_eq!(a.max_model_len, Some(4096));
    assert_eq!(b.max_model_len, Some(4000));
    assert_eq!(a.max_num_seqs, b.max_num_seqs);
    let c = ServeConfig::from_args_with_env(&["m"], Some("from-env".into())).expect("args");
    assert_eq!(c.api_keys.len(), 1);
    assert_eq!(format!("{:?}", c.api_keys), "[***]");
    let d = ServeConfig::from_args_with_env(
        &["m", "--no-enable-prefix-caching", "--enforce-eager"],
        None,
    )
    .expect("args");
    assert!(!d.enable_prefix_caching);
    assert_eq!(d.ignored_flags, vec!["--enforce-eager".to_owned()]);
    assert!(matches!(
        ServeConfig::from_args_with_env(&["m", "--sim-nonsense", "1"], None),
        Err(CliError::Unrecognized(_))
    ));
}

#[test]
fn logs_non_default_args_and_stops_on_sigterm() {
    let mut child = spawn(
        &[
            "serve",
            "tiny",
            "--port",
            "0",
            "--api-key",
            "sk-visible",
            "--enforce-eager",
            "--sim-time-scale",
            "0",
        ],
        Stdio::null(),
    );
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("line");
        let ready = line.starts_with("vllm-sim: ready unix_ms=");
        seen.push(line);
        if ready {
            break;
        }
    }
    let text = seen.join("\n");
    assert!(text.contains("non-default args: {'model_tag': 'tiny', 'port': 0, 'api_key': ['sk-visible'], 'enforce_eager': True"), "{text}");
    assert!(
        text.contains("INFO:     Application startup complete."),
        "{text}"
    );
    let port_line = seen
        .iter()
        .find(|l| l.contains("[entry.py:140] Starting vLLM server on http://127.0.0.1:"))
        .expect("port line");
    let port: u16 = port_line
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    let delivered = grid_sys::signal_process(child.id(), grid_sys::Signal::Terminate);
    assert!(delivered.expect("SIGTERM"), "the child was running");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("vllm-sim did not exit after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|l| l == "INFO:     Shutting down"),
        "{rest:?}"
    );
}

#[test]
fn a_taken_port_is_reported_with_the_os_reason() {
    // grid-container classifies `port_in_use` from "Address already in use"
    // in the server's log, as real vLLM prints it.
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = holder.local_addr().expect("addr").port().to_string();
    let (code, _, err) = run(&["serve", "tiny", "--port", &port, "--sim-time-scale", "0"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot bind 127.0.0.1:"), "{err}");
    assert!(err.contains("Address already in use"), "{err}");
}

/// A file under the temp dir, removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("vllm-sim-{}-{name}", std::process::id()));
        std::fs::write(&path, text).expect("write temp file");
        TempFile(path)
    }
    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn sim_config_file_is_read_and_the_command_line_overrides_it() {
    let file = TempFile::new(
        "sim.json",
        r#"{"time_scale": 0.5, "seed": 9, "output-len-mode": "max"}"#,
    );
    let cfg = ServeConfig::from_args_with_env(
        &["m", "--sim-config", file.path(), "--sim-seed", "4"],
        None,
    )
    .expect("args");
    assert_eq!(cfg.sim.time_scale, 0.5);
    assert_eq!(cfg.sim.seed, 4);
    assert_eq!(
        cfg.sim.output_len_mode,
        vllm_sim::config::OutputLenMode::Max
    );
}

#[test]
fn bad_sim_config_files_exit_2_naming_the_file_and_the_cause() {
    let not_json = TempFile::new("not-json.json", "{time_scale: 1");
    let not_object = TempFile::new("list.json", "[1, 2]");
    let bad_value = TempFile::new("bad-value.json", r#"{"http-500-rate": 2}"#);
    let missing =
        std::env::temp_dir().join(format!("vllm-sim-{}-missing.json", std::process::id()));
    let missing = missing.to_str().expect("utf-8");
    for (path, expected) in [
        (missing, "cannot read sim config"),
        (not_json.path(), "is not JSON"),
        (not_object.path(), "is not a JSON object"),
        (
            bad_value.path(),
            "argument --sim-http-500-rate: expected a probability between 0 and 1, got '2'",
        ),
    ] {
        let (code, _, err) = run(&["serve", "tiny", "--sim-config", path]);
        assert_eq!(code, 2, "{path}: {err}");
        assert!(err.contains(expected), "{path}: {err}");
        assert!(
            err.contains(path) || expected.starts_with("argument"),
            "{path}: {err}"
        );
    }
    // The cause is printed after the message.
    let (_, _, err) = run(&["serve", "tiny", "--sim-config", missing]);
    assert!(err.contains("No such file or directory"), "{err}");
    let (_, _, err) = run(&["serve", "tiny", "--sim-config", not_json.path()]);
    assert!(err.contains("key must be a string"), "{err}");
}

#[test]
fn a_huge_model_load_time_loads_until_sigterm() {
    let mut child = spawn(
        &[
            "serve",
            "tiny",
            "--port",
            "0",
            "--sim-model-load-s",
            "1e300",
        ],
        Stdio::piped(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let early = child.try_wait().expect("try_wait");
    let delivered = grid_sys::signal_process(child.id(), grid_sys::Signal::Terminate);
    let status = child.wait().expect("wait");
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert!(early.is_none(), "exited while loading: {early:?}: {err}");
    assert!(delivered.expect("SIGTERM"), "the child was running");
    assert!(status.success(), "{status:?}: {err}");
}

/// The status code of `GET /health` on 127.0.0.1:`port`, over plain HTTP/1.1.
fn health_status(port: u16) -> u16 {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .expect("send");
    let mut reply = String::new();
    let _ = tcp.read_to_string(&mut reply);
    reply
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP reply: {reply:?}"))
}

#[test]
fn listen_during_load_answers_503_until_loaded() {
    let mut child = spawn(
        &[
            "serve",
            "tiny",
            "--port",
            "0",
            "--sim-listen-during-load",
            "--sim-model-load-s",
            "1",
        ],
        Stdio::null(),
    );
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut port = None;
    let mut loading = None;
    let mut ready = None;
    for line in lines.by_ref() {
        let line = line.expect("line");
        if let Some(rest) = line
            .split("Starting vLLM server on http://127.0.0.1:")
            .nth(1)
        {
            port = rest.trim().parse::<u16>().ok();
        }
        if line.contains("Starting to load model") {
            // Bound before loading: the port answers, but not ready.
            loading = port.map(health_status);
        }
        if line.starts_with("vllm-sim: ready unix_ms=") {
            ready = port.map(health_status);
            break;
        }
    }
    let _ = grid_sys::signal_process(child.id(), grid_sys::Signal::Terminate);
    let status = child.wait().expect("wait");
    assert_eq!(loading, Some(503), "port {port:?}");
    assert_eq!(ready, Some(200), "port {port:?}");
    assert!(status.success(), "{status:?}");
}
