//! The startup of `vllm serve`, simulated: vLLM's log lines, the memory
//! model's failures (config errors at once, memory errors after "loading"),
//! the simulated model load, binding, readiness, and the end on a signal
//! (exit 0) or a simulated crash (exit 1).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::with_causes;
use crate::config::{ServeConfig, StartupFailure};
use crate::engine::clock::saturating_secs;
use crate::log;
use crate::memory::{self, MemoryPlan, StartupError};
use crate::server::{SimError, SimState, bind, spawn_server};

/// A started server: its state and the task serving it.
type Serving = (Arc<SimState>, JoinHandle<()>);

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
    log_header(&cfg);
    if cfg.sim.startup_failure == StartupFailure::Hang {
        log::info("gpu_model_runner.py:2850", "Starting to load model ...");
        stop.cancelled().await;
        log::raw_out("INFO:     Shutting down");
        return ExitCode::SUCCESS;
    }
    let plan = memory::plan(&cfg);
    if let Err(e) = &plan {
        if fails_before_loading(e) {
            print_startup_error(e);
            return ExitCode::from(1);
        }
    }
    // `--sim-listen-during-load`: the port answers (503) while loading.
    // A memory failure shows after "loading", so the early state may not exist.
    let early_state = cfg
        .sim
        .listen_during_load
        .then(|| SimState::new(cfg.clone()).ok())
        .flatten();
    let early = match early_state {
        Some(state) => match listen(state, &cfg, &stop).await {
            Ok(serving) => Some(serving),
            Err(code) => return code,
        },
        None => None,
    };
    if !load_model(&cfg, plan.as_ref().ok(), &stop).await {
        return ExitCode::SUCCESS;
    }
    let plan = match plan {
        Ok(p) => p,
        Err(e) => {
            print_startup_error(&e);
            return ExitCode::from(1);
        }
    };
    log_kv_cache(&plan);
    let (state, task) = match early {
        Some(serving) => serving,
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
            match listen(state, &cfg, &stop).await {
                Ok(serving) => serving,
                Err(code) => return code,
            }
        }
    };
    state.set_ready();
    announce_ready();
    run_until_stop(state, task, &stop).await
}

/// vLLM's opening lines, then the simulator's notes on its arguments.
fn log_header(cfg: &ServeConfig) {
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
    log::info(
        "model.py:1650",
        &format!(
            "Resolved architecture: Qwen3ForCausalLM; using max model len {}",
            cfg.max_model_len.unwrap_or(cfg.sim.model_max_len)
        ),
    );
}

/// Config errors and the free-memory check fail before the model loads.
fn fails_before_loading(e: &StartupError) -> bool {
    matches!(
        e,
        StartupError::MaxModelLenTooLarge { .. }
            | StartupError::BatchedTokensBelowModelLen { .. }
            | StartupError::BatchedTokensBelowNumSeqs { .. }
            | StartupError::NotEnoughGpus { .. }
            | StartupError::FreeMemory { .. }
    )
}

/// The simulated model load (`--sim-model-load-s`: 70 % weights, then 30 %
/// profiling); false when stopped meanwhile.
async fn load_model(
    cfg: &ServeConfig,
    plan: Option<&MemoryPlan>,
    stop: &CancellationToken,
) -> bool {
    let (load_s, scale) = (cfg.sim.model_load_s, cfg.sim.time_scale);
    log::info(
        "gpu_model_runner.py:2850",
        &format!("Starting to load model {} ...", cfg.model),
    );
    if !simulated_sleep(load_s * 0.7, scale, stop).await {
        return false;
    }
    if let Some(p) = plan {
        log::info(
            "gpu_model_runner.py:2900",
            &format!(
                "Model loading took {:.4} GiB memory and {:.6} seconds",
                p.weights_gib_per_gpu,
                load_s * 0.7
            ),
        );
    }
    simulated_sleep(load_s * 0.3, scale, stop).await
}

/// The KV-cache lines the orchestrator reads (capacity, concurrency).
fn log_kv_cache(plan: &MemoryPlan) {
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
}

/// uvicorn's startup lines and the simulator's readiness line.
fn announce_ready() {
    let pid = std::process::id();
    log::raw_out(&format!("INFO:     Started server process [{pid}]"));
    log::raw_out("INFO:     Waiting for application startup.");
    log::raw_out("INFO:     Application startup complete.");
    let ready_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    log::raw_out(&format!("vllm-sim: ready unix_ms={ready_ms}"));
}

/// Serves until a signal (exit 0, after a graceful shutdown) or a
/// simulated crash (exit 1).
async fn run_until_stop(
    state: Arc<SimState>,
    task: JoinHandle<()>,
    stop: &CancellationToken,
) -> ExitCode {
    let pid = std::process::id();
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

/// Binds `--host`/`--port` and serves the app until `stop` (or a crash);
/// a failure is logged as vLLM logs it and gives exit 1.
async fn listen(
    state: Arc<SimState>,
    cfg: &ServeConfig,
    stop: &CancellationToken,
) -> Result<Serving, ExitCode> {
    let host = cfg.bind_host();
    let addr = if host.contains(':') {
        format!("[{host}]:{}", cfg.port)
    } else {
        format!("{host}:{}", cfg.port)
    };
    let (listener, local) = match bind(&addr).await {
        Ok(bound) => bound,
        Err(e) => {
            log::error("api_server.py:1900", &with_causes(&e));
            return Err(ExitCode::from(1));
        }
    };
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
    let task = spawn_server(listener, Arc::clone(&state), stop.clone());
    Ok((state, task))
}
