//! Client overhead benchmark: the streaming client at concurrency 1, 64 and
//! 512 against the simulator at zero delay, the simulator in its OWN
//! process so this process's CPU time is the client's alone.
//!
//! Run: `cargo bench -p grid-bench --bench client`
//! The simulator binary is `$VLLM_SIM_BIN`, else
//! `target/vllm-sim-static/vllm-sim` (built by scripts/build-sim-image.sh).
//!
//! Prints requests/s, streamed tokens/s, client CPU time per request
//! (CLOCK_PROCESS_CPUTIME_ID: user + system, all threads) and the TTFT the client adds:
//! client-measured TTFT minus the server's true TTFT from `/sim/requests`.
//! Goals: <= 80 µs CPU per request (256 prompt tokens, 64 output tokens),
//! p99 added TTFT < 1 ms at concurrency 64.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use grid_bench::Endpoint;
use grid_bench::client::{Client, ClientConfig, RequestRecord};
use grid_bench::openai::{ChatMessage, ChatRequest};
use grid_core::Secret;
use grid_core::percentile_sorted;
use tokio_util::sync::CancellationToken;

const OUTPUT_TOKENS: u32 = 64;
const PROMPT_TOKENS: u64 = 256;

struct SimProcess(Child);

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sim_binary() -> Result<PathBuf, String> {
    if let Ok(path) = std::env::var("VLLM_SIM_BIN") {
        return Ok(PathBuf::from(path));
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = root.join("target/vllm-sim-static/vllm-sim");
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "no simulator binary at {}: build it with scripts/build-sim-image.sh or set VLLM_SIM_BIN",
            path.display()
        ))
    }
}

/// User + system CPU time of this process, all threads
/// (`CLOCK_PROCESS_CPUTIME_ID`, nanosecond resolution; no `unsafe`).
fn cpu_time() -> Duration {
    let time = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(time.tv_sec as u64, time.tv_nsec as u32)
}

async fn wait_healthy(base_url: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    while Instant::now() < deadline {
        if let Ok(response) = http.get(format!("{base_url}/health")).send().await {
            if response.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "the simulator at {base_url} did not become healthy in 30 s"
    ))
}

/// The server's truth for one request, in the server's clock.
struct Truth {
    received_us: f64,
    first_token_us: f64,
}

/// Where the simulator's clock origin lies on the client's clock, as ms
/// after the client's epoch, and the uncertainty of that estimate (half
/// the shortest round trip). Both processes read CLOCK_MONOTONIC, so the
/// offset is constant; the probe with the shortest round trip bounds it
/// best. With it, added TTFT splits into the request path (client send to
/// the server's handler) and the response path (the server handing the
/// first token to its socket to the client reading it).
async fn server_origin_ms(base_url: &str, epoch: Instant) -> Result<(f64, f64), String> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .build()
        .map_err(|e| e.to_string())?;
    let url = format!("{base_url}/sim/requests");
    let mut best: Option<(f64, f64)> = None;
    for _ in 0..30 {
        let before = Instant::now();
        let body: serde_json::Value = http
            .get(&url)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let after = Instant::now();
        let now_us = body["now_us"]
            .as_f64()
            .ok_or("/sim/requests has no now_us")?;
        let round_trip_ms = after.duration_since(before).as_secs_f64() * 1000.0;
        let middle_ms = (before.duration_since(epoch).as_secs_f64() * 1000.0) + round_trip_ms / 2.0;
        let origin_ms = middle_ms - now_us / 1000.0;
        if best.is_none_or(|(_, uncertainty)| round_trip_ms / 2.0 < uncertainty) {
            best = Some((origin_ms, round_trip_ms / 2.0));
        }
    }
    best.ok_or_else(|| "no clock probe".to_string())
}

async fn truths(base_url: &str) -> Result<HashMap<String, Truth>, String> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let body: serde_json::Value = http
        .get(format!("{base_url}/sim/requests"))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    Ok(body["requests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            Some((
                r["id"].as_str()?.to_string(),
                Truth {
                    received_us: r["received_us"].as_f64()?,
                    first_token_us: r["first_token_us"].as_f64()?,
                },
            ))
        })
        .collect())
}

/// CPU per request of the client's parsing alone: one real reply from the
/// simulator, recorded once, then parsed again and again in memory. The
/// rest of the per-request CPU is HTTP, sockets and the runtime.
async fn parse_only_cpu_us(base_url: &str, request: &ChatRequest) -> Result<f64, String> {
    let mut wire = serde_json::to_value(request).map_err(|e| e.to_string())?;
    wire["model"] = "tiny".into();
    wire["stream"] = true.into();
    wire["stream_options"] = serde_json::json!({"include_usage": true});
    let body = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?
        .post(format!("{base_url}/v1/chat/completions"))
        .bearer_auth("bench-key")
        .json(&wire)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .bytes()
        .await
        .map_err(|e| e.to_string())?;
    let check = grid_bench::client::parse_recorded_stream(&body, None);
    if !check.record.succeeded() {
        return Err(format!(
            "the recorded reply does not parse: {:?}",
            check.record.failure
        ));
    }
    const ROUNDS: u32 = 5000;
    let before = cpu_time();
    for _ in 0..ROUNDS {
        std::hint::black_box(grid_bench::client::parse_recorded_stream(
            std::hint::black_box(&body),
            None,
        ));
    }
    Ok((cpu_time() - before).as_secs_f64() * 1e6 / f64::from(ROUNDS))
}

async fn run_level(
    client: &Client,
    request: Arc<ChatRequest>,
    concurrency: usize,
    total: usize,
) -> (Vec<RequestRecord>, Duration, Duration) {
    let started = Arc::new(AtomicUsize::new(0));
    let cancel = CancellationToken::new();
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let cpu_before = cpu_time();
    let wall = Instant::now();
    for _ in 0..concurrency {
        let (client, request, started, cancel, sender) = (
            client.clone(),
            request.clone(),
            started.clone(),
            cancel.clone(),
            sender.clone(),
        );
        tokio::spawn(async move {
            while started.fetch_add(1, Ordering::Relaxed) < total {
                let exchange = client
                    .chat(&request, Instant::now(), &cancel, "bench", String::new())
                    .await;
                if sender.send(exchange.record).is_err() {
                    break;
                }
            }
        });
    }
    drop(sender);
    let mut records = Vec::with_capacity(total);
    while let Some(record) = receiver.recv().await {
        records.push(record);
    }
    (records, wall.elapsed(), cpu_time() - cpu_before)
}

/// Builds one tokio runtime flavour.
type BuildRuntime = fn() -> std::io::Result<tokio::runtime::Runtime>;

fn main() {
    // The first runtime is the one vllm-grid runs the battery on
    // (crates/vllm-grid/src/app.rs); the second shows what one thread
    // costs and saves.
    let flavours: [(&str, BuildRuntime); 2] = [
        (
            "multi-thread runtime, 2 workers (as vllm-grid runs)",
            || {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
            },
        ),
        ("current-thread runtime", || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        }),
    ];
    for (name, build) in flavours {
        let runtime = match build() {
            Ok(runtime) => runtime,
            Err(error) => {
                eprintln!("client bench failed: cannot build the tokio runtime: {error}");
                std::process::exit(1);
            }
        };
        if let Err(error) = runtime.block_on(bench(name)) {
            eprintln!("client bench failed: {error}");
            std::process::exit(1);
        }
    }
}

async fn bench(runtime_name: &str) -> Result<(), String> {
    let binary = sim_binary()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let port_text = port.to_string();
    let child = Command::new(&binary)
        .args([
            "serve",
            "tiny",
            "--host",
            "127.0.0.1",
            "--port",
            &port_text,
            "--api-key",
            "bench-key",
            "--sim-model-load-s",
            "0",
            "--sim-fixed-ttft-ms",
            "0",
            "--sim-fixed-itl-ms",
            "0",
            "--max-num-seqs",
            "1024",
            "--sim-max-records",
            "100000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let _guard = SimProcess(child);
    let base_url = format!("http://127.0.0.1:{port}");
    wait_healthy(&base_url).await?;
    let client = Client::new(
        &Endpoint {
            base_url: base_url.clone(),
            model: "tiny".into(),
            api_key: Some(Secret::new("bench-key")),
        },
        ClientConfig {
            request_timeout: Duration::from_secs(60),
            epoch: Instant::now(),
            keep_text: false,
            ..ClientConfig::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let (origin_ms, origin_uncertainty_ms) = server_origin_ms(&base_url, client.epoch()).await?;
    // Calibrate the prompt to 256 prompt tokens as the server counts them.
    let mut words = 256usize;
    let mut request = ChatRequest::default();
    for _ in 0..4 {
        request = ChatRequest {
            messages: vec![ChatMessage::user(vec!["token"; words].join(" "))],
            max_tokens: OUTPUT_TOKENS,
            ignore_eos: Some(true),
            ..ChatRequest::default()
        };
        let probe = client
            .chat(
                &request,
                Instant::now(),
                &CancellationToken::new(),
                "bench",
                String::new(),
            )
            .await;
        let prompt = probe
            .record
            .usage
            .and_then(|u| u.prompt_tokens)
            .ok_or_else(|| format!("calibration failed: {:?}", probe.record.failure))?;
        if prompt == PROMPT_TOKENS {
            break;
        }
        words = (words as i64 + PROMPT_TOKENS as i64 - prompt as i64).max(1) as usize;
    }
    let parse_us = parse_only_cpu_us(&base_url, &request).await?;
    let request = Arc::new(request);
    // Warm-up: connections, allocator, simulator.
    let _ = run_level(&client, request.clone(), 64, 500).await;
    println!(
        "client bench, {runtime_name}: {PROMPT_TOKENS} prompt tokens, {OUTPUT_TOKENS} streamed output tokens per request, simulator at zero delay in its own process"
    );
    println!(
        "added TTFT = client TTFT - server true TTFT = request path (client send -> server handler) + response path (server hands token to socket -> client reads it); path split uses a clock offset known to +/- {:.3} ms",
        origin_uncertainty_ms
    );
    println!(
        "{:>11} {:>9} {:>8} {:>10} {:>12} {:>11} {:>15} {:>15} {:>13} {:>13} {:>7}",
        "concurrency",
        "requests",
        "wall s",
        "req/s",
        "tokens/s",
        "CPU µs/req",
        "added TTFT p50",
        "added TTFT p99",
        "req path p99",
        "resp path p99",
        "failed"
    );
    println!(
        "parse only (SSE split + chunk parse of one recorded {OUTPUT_TOKENS}-token reply, no I/O): {parse_us:.1} µs CPU per request"
    );
    for (concurrency, total) in [(1usize, 2000usize), (64, 8000), (512, 8192)] {
        let (records, wall, cpu) = run_level(&client, request.clone(), concurrency, total).await;
        let truth = truths(&base_url).await?;
        let ok: Vec<&RequestRecord> = records.iter().filter(|r| r.succeeded()).collect();
        let tokens: u64 = ok
            .iter()
            .filter_map(|r| r.usage.and_then(|u| u.completion_tokens))
            .sum();
        let mut added = Vec::with_capacity(ok.len());
        let mut request_path = Vec::with_capacity(ok.len());
        let mut response_path = Vec::with_capacity(ok.len());
        for record in &ok {
            let (Some(ttft), Some(truth)) = (
                record.ttft_ms,
                record.response_id.as_ref().and_then(|id| truth.get(id)),
            ) else {
                continue;
            };
            let true_ttft = (truth.first_token_us - truth.received_us) / 1000.0;
            added.push(ttft - true_ttft);
            request_path.push(origin_ms + truth.received_us / 1000.0 - record.sent_ms);
            response_path.push(record.sent_ms + ttft - (origin_ms + truth.first_token_us / 1000.0));
        }
        let pct = |values: &mut Vec<f64>, p| {
            values.sort_by(f64::total_cmp);
            if values.is_empty() {
                f64::NAN
            } else {
                percentile_sorted(values, p)
            }
        };
        println!(
            "{:>11} {:>9} {:>8.2} {:>10.0} {:>12.0} {:>11.1} {:>12.3} ms {:>12.3} ms {:>10.3} ms {:>10.3} ms {:>7}",
            concurrency,
            records.len(),
            wall.as_secs_f64(),
            ok.len() as f64 / wall.as_secs_f64(),
            tokens as f64 / wall.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / records.len().max(1) as f64,
            pct(&mut added, 50.0),
            pct(&mut added, 99.0),
            pct(&mut request_path, 99.0),
            pct(&mut response_path, 99.0),
            records.len() - ok.len()
        );
    }
    Ok(())
}
