//! `vllm-sim serve MODEL [FLAGS]`: startup logs, the memory model's
//! failures, "loading", binding, readiness, signals and exit codes.
//!
//! Exit codes: 0 after SIGTERM/SIGINT, 1 for startup failures and simulated
//! crashes, 2 for command-line errors (argparse's code).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use crate::config::{ServeConfig, StartupFailure};
use crate::engine::clock::saturating_secs;
use crate::log;
use crate::memory::{self, StartupError};
use crate::server::{SimError, SimState, app};

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
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

fn print_startup_error(err: &StartupError) {
    let source = match err.phase() {
        "config" => "arg_utils.py:1720",
        "worker init" => "gpu_worker.py:245",
        "model loading" => "gpu_model_runner.py:2890",
        "profiling" => "gpu_model_runner.py:3450",
        _ => "core.py:720",
    };
    if err.phase() != "config" {
        log::error("core.py:720", "EngineCore failed to start.");
        log::raw_err("Traceback (most recent call last):");
        log::raw_err(
            "  File \"/usr/local/lib/python3.12/dist-packages/vllm/v1/engine/core.py\", line 711, in run_engine_core",
        );
        log::raw_err("    engine_core = EngineCoreProc(*args, **kwargs)");
        if let StartupError::CudaOom { phase, .. } = err {
            log::raw_err(&format!("  (simulated: during {phase})"));
        }
    }
    log::raw_err(&err.to_string());
    log::error(
        source,
        &format!("{} failed: {}", err.phase(), first_clause(&err.to_string())),
    );
}

fn first_clause(s: &str) -> &str {
    s.split(". ").next().unwrap_or(s)
}

/// Registers SIGTERM/SIGINT handlers now (synchronously, so a signal that
/// arrives right after readiness is never missed) and returns a future that
/// cancels `stop` when one arrives.
fn shutdown_signal(stop: CancellationToken) -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let streams = {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Some((term, int)),
            _ => None,
        }
    };
    async move {
        #[cfg(unix)]
        match streams {
            Some((mut term, mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            None => {
                log::warning(
                    "vllm-sim",
                    "cannot install signal handlers; stop with Ctrl-C",
                );
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        stop.cancel();
    }
}

/// Sleeps for a simulated duration, or returns false early on `stop`.
async fn simulated_sleep(seconds: f64, time_scale: f64, stop: &CancellationToken) -> bool {
    let real = saturating_secs(seconds * time_scale);
    if real.is_zero() {
        return !stop.is_cancelled();
    }
    tokio::select! {
        _ = tokio::time::sleep(real) => true,
        _ = stop.cancelled() => false,
    }
}

/// Serves until SIGTERM/SIGINT (exit 0), a startup failure or a simulated
/// crash (exit 1). Call from inside a tokio runtime.
pub async fn serve(cfg: ServeConfig) -> ExitCode {
    let stop = CancellationToken::new();
    tokio::spawn(shutdown_signal(stop.clone()));
    let pid = std::process::id();
    log::info(
        "api_server.py:1880",
        "vLLM API server version 0.32.0 (vllm-sim)",
    );
    log::info(
        "utils.py:328",
        &format!("non-default args: {}", cfg.non_default_args_repr()),
    );
    if !cfg.sim_args.is_empty() {
        let items: Vec<String> = cfg
            .sim_args
            .iter()
            .map(|(k, v)| format!("'{k}': '{v}'"))
            .collect();
        log::info("vllm-sim", &format!("sim args: {{{}}}", items.join(", ")));
    }
    for flag in &cfg.ignored_flags {
        log::warning(
            "vllm-sim",
            &format!(
                "{flag} is accepted for compatibility with vllm serve but has no effect in the simulator"
            ),
        );
    }
    if cfg.tensor_parallel_size.is_none() {
        log::info(
            "vllm-sim",
            &format!(
                "no --tensor-parallel-size given: simulating {} (--sim-default-tensor-parallel-size)",
                cfg.sim.default_tensor_parallel_size
            ),
        );
    }
    let scale = cfg.sim.time_scale;
    log::info(
        "model.py:1650",
        &format!(
            "Resolved architecture: Qwen3ForCausalLM; using max model len {}",
            cfg.max_model_len.unwrap_or(cfg.sim.model_max_len)
        ),
    );
    if cfg.sim.startup_failure == StartupFailure::Hang {
        log::info("gpu_model_runner.py:2850", "Starting to load model ...");
        stop.cancelled().await;
        log::raw_out("INFO:     Shutting down");
        return ExitCode::SUCCESS;
    }
    // Config errors surface at once; memory errors after "loading".
    let plan = memory::plan(&cfg);
    if let Err(
        e @ (StartupError::MaxModelLenTooLarge { .. }
        | StartupError::BatchedTokensBelowModelLen { .. }
        | StartupError::BatchedTokensBelowNumSeqs { .. }
        | StartupError::NotEnoughGpus { .. }),
    ) = &plan
    {
        print_startup_error(e);
        return ExitCode::from(1);
    }
    if let Err(e @ StartupError::FreeMemory { .. }) = &plan {
        print_startup_error(e);
        return ExitCode::from(1);
    }
    let load_s = cfg.sim.model_load_s;
    let mut early: Option<(Arc<SimState>, tokio::task::JoinHandle<()>)> = None;
    if cfg.sim.listen_during_load {
        if let Ok(state) = SimState::new(cfg.clone()) {
            match bind_and_serve(Arc::clone(&state), &cfg, stop.clone()).await {
                Ok(task) => early = Some((state, task)),
                Err(e) => {
                    log::error("api_server.py:1900", &with_causes(&e));
                    return ExitCode::from(1);
                }
            }
        }
    }
    log::info(
        "gpu_model_runner.py:2850",
        &format!("Starting to load model {} ...", cfg.model),
    );
    if !simulated_sleep(load_s * 0.7, scale, &stop).await {
        return ExitCode::SUCCESS;
    }
    if let Ok(p) = &plan {
        log::info(
            "gpu_model_runner.py:2900",
            &format!(
                "Model loading took {:.4} GiB memory and {:.6} seconds",
                p.weights_gib_per_gpu,
                load_s * 0.7
            ),
        );
    }
    if !simulated_sleep(load_s * 0.3, scale, &stop).await {
        return ExitCode::SUCCESS;
    }
    let plan = match plan {
        Ok(p) => p,
        Err(e) => {
            print_startup_error(&e);
            return ExitCode::from(1);
        }
    };
    log::info(
        "gpu_worker.py:390",
        &format!("Available KV cache memory: {:.2} GiB", plan.kv_cache_gib),
    );
    log::info(
        "kv_cache_utils.py:1290",
        &format!(
            "GPU KV cache size: {} tokens",
            group_digits(plan.kv_cache_tokens())
        ),
    );
    log::info(
        "kv_cache_utils.py:1294",
        &format!(
            "Maximum concurrency for {} tokens per request: {:.2}x",
            group_digits(plan.max_model_len),
            plan.max_concurrency()
        ),
    );
    let (state, task) = match early {
        Some(pair) => pair,
        None => {
            let state = match SimState::new(cfg.clone()) {
                Ok(s) => s,
                Err(SimError::Startup(e)) => {
                    print_startup_error(&e);
                    return ExitCode::from(1);
                }
                Err(e) => {
                    log::error("vllm-sim", &with_causes(&e));
                    return ExitCode::from(1);
                }
            };
            match bind_and_serve(Arc::clone(&state), &cfg, stop.clone()).await {
                Ok(task) => (state, task),
                Err(e) => {
                    log::error("api_server.py:1900", &with_causes(&e));
                    return ExitCode::from(1);
                }
            }
        }
    };
    state.set_ready();
    log::raw_out(&format!("INFO:     Started server process [{pid}]"));
    log::raw_out("INFO:     Waiting for application startup.");
    log::raw_out("INFO:     Application startup complete.");
    let ready_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    log::raw_out(&format!("vllm-sim: ready unix_ms={ready_ms}"));
    let crashed = state.crashed.clone();
    tokio::select! {
        _ = stop.cancelled() => {
            log::raw_out("INFO:     Shutting down");
            let _ = tokio::time::timeout(Duration::from_millis(300), task).await;
            state.engine.shutdown();
            log::raw_out("INFO:     Application shutdown complete.");
            log::raw_out(&format!("INFO:     Finished server process [{pid}]"));
            ExitCode::SUCCESS
        }
        _ = crashed.cancelled() => {
            stop.cancel();
            let _ = tokio::time::timeout(Duration::from_millis(300), task).await;
            log::error("api_server.py:1950", "Engine core died; shutting down the API server.");
            ExitCode::from(1)
        }
    }
}

fn group_digits(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Binds `--host`/`--port` and serves the app until `stop` (or a crash).
async fn bind_and_serve(
    state: Arc<SimState>,
    cfg: &ServeConfig,
    stop: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, SimError> {
    let host = cfg.bind_host();
    let addr_text = if host.contains(':') {
        format!("[{host}]:{}", cfg.port)
    } else {
        format!("{host}:{}", cfg.port)
    };
    let listener = tokio::net::TcpListener::bind(&addr_text)
        .await
        .map_err(|source| SimError::Bind {
            addr: addr_text.clone(),
            source,
        })?;
    let local: SocketAddr = listener
        .local_addr()
        .map_err(|source| SimError::LocalAddr {
            addr: addr_text.clone(),
            source,
        })?;
    // vLLM 0.32's wording and source location.
    log::info(
        "entry.py:140",
        &format!("Starting vLLM server on http://{}:{}", host, local.port()),
    );
    log::raw_out(&format!(
        "INFO:     Uvicorn running on http://{}:{} (Press CTRL+C to quit)",
        host,
        local.port()
    ));
    let crashed = state.crashed.clone();
    let router = app(state);
    Ok(tokio::spawn(async move {
        let shutdown = async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = crashed.cancelled() => {}
            }
        };
        serve_until(listener, router, shutdown).await;
    }))
}

/// Serves `router` until `shutdown` resolves. Every accepted socket gets
/// TCP_NODELAY, as uvicorn sets for real vLLM: without it, a token written
/// right after another waits for the client's delayed ACK (about 40 ms on
/// Linux) and every measured gap would carry that artefact.
async fn serve_until(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let _ = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await;
}

/// An in-process simulator on 127.0.0.1 with an OS-chosen port, for tests.
/// It is ready at once (no simulated model loading). Dropping it stops it.
#[derive(Debug)]
pub struct TestServer {
    pub addr: SocketAddr,
    pub state: Arc<SimState>,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server for a configuration (its host and port are ignored).
    pub async fn start(cfg: ServeConfig) -> Result<TestServer, SimError> {
        let state = SimState::new(cfg)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|source| SimError::Bind {
                addr: "127.0.0.1:0".into(),
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| SimError::LocalAddr {
                addr: "127.0.0.1:0".into(),
                source,
            })?;
        state.set_ready();
        let stop = CancellationToken::new();
        let (stop2, crashed) = (stop.clone(), state.crashed.clone());
        let router = app(Arc::clone(&state));
        let task = tokio::spawn(async move {
            let shutdown = async move {
                tokio::select! {
                    _ = stop2.cancelled() => {}
                    _ = crashed.cancelled() => {}
                }
            };
            serve_until(listener, router, shutdown).await;
        });
        Ok(TestServer {
            addr,
            state,
            stop,
            task: Some(task),
        })
    }

    /// Parses a `vllm serve` argument list (without `serve`) and starts it.
    pub async fn start_args(args: &[&str]) -> Result<TestServer, TestServerError> {
        let cfg = ServeConfig::from_args_with_env(args, None)?;
        Ok(TestServer::start(cfg).await?)
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving and waits (at most 1 s) for the server task to end.
    pub async fn stop(mut self) {
        self.stop.cancel();
        self.state.engine.shutdown();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Why [`TestServer::start_args`] failed.
#[derive(Debug, thiserror::Error)]
pub enum TestServerError {
    #[error("invalid vllm serve arguments")]
    Args(#[from] crate::config::CliError),
    #[error("the simulator did not start")]
    Start(#[from] SimError),
}
