//! Console output: tracing (console + `logs/<run-id>/run.log`), progress
//! bars (or plain lines when stderr is not a terminal), the error chain.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use grid_bench::{BatteryEvent, BatteryProgress, BenchmarkName};
use grid_search::SearchEvent;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::out::errln;

/// The run log, once a run directory is known.
static RUN_LOG: OnceLock<Arc<Mutex<Option<File>>>> = OnceLock::new();
/// The bars, when drawn, so log lines print above them.
static BARS: OnceLock<MultiProgress> = OnceLock::new();

fn run_log() -> &'static Arc<Mutex<Option<File>>> {
    RUN_LOG.get_or_init(|| Arc::new(Mutex::new(None)))
}

/// Whether progress is drawn as bars (stderr is a terminal).
pub fn fancy() -> bool {
    std::io::stderr().is_terminal()
}

pub fn bars() -> &'static MultiProgress {
    BARS.get_or_init(|| {
        if fancy() {
            MultiProgress::with_draw_target(ProgressDrawTarget::stderr())
        } else {
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
        }
    })
}

#[derive(Clone, Copy)]
struct RunLogWriter;

impl Write for RunLogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut guard) = run_log().lock() {
            if let Some(file) = guard.as_mut() {
                let _ = file.write_all(buf);
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if let Ok(mut guard) = run_log().lock() {
            if let Some(file) = guard.as_mut() {
                let _ = file.flush();
            }
        }
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for RunLogWriter {
    type Writer = RunLogWriter;
    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

/// Console lines go above the bars.
#[derive(Clone, Copy)]
struct ConsoleWriter;

impl Write for ConsoleWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        match BARS.get() {
            Some(bars) if fancy() => {
                bars.suspend(|| crate::out::write_err(format_args!("{text}")));
            }
            _ => crate::out::write_err(format_args!("{text}")),
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for ConsoleWriter {
    type Writer = ConsoleWriter;
    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

/// Console level from -v (RUST_LOG wins); the run log always gets info and
/// our crates' debug lines.
pub fn init_tracing(verbose: u8) {
    let console_default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    // Events with the target `run_log_only` are for run.log: the console
    // already shows them another way (the error chain, printed once).
    let console_filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(console_default))
        .add_directive(
            "run_log_only=off"
                .parse()
                .expect("a constant, valid filter directive"),
        );
    let file_filter = EnvFilter::new(
        "info,grid_search=debug,grid_container=debug,grid_bench=info,vllm_grid=debug",
    );
    let console = tracing_subscriber::fmt::layer()
        .with_writer(ConsoleWriter)
        .with_target(false)
        .with_ansi(fancy())
        .with_filter(console_filter);
    let file = tracing_subscriber::fmt::layer()
        .with_writer(RunLogWriter)
        .with_ansi(false)
        .with_filter(file_filter);
    let _ = tracing_subscriber::registry()
        .with(console)
        .with(file)
        .try_init();
}

use tracing_subscriber::Layer as _;

/// Start appending tracing output to `<run dir>/run.log`.
pub fn set_run_log(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("run.log"))?;
    if let Ok(mut guard) = run_log().lock() {
        *guard = Some(file);
    }
    Ok(())
}

/// Print an error and every cause.
pub fn print_error_chain(err: &dyn std::error::Error) {
    if let Some(bars) = BARS.get() {
        let _ = bars.clear();
    }
    let mut chain = format!("error: {err}");
    let mut source = err.source();
    while let Some(cause) = source {
        chain.push_str(&format!("\n  caused by: {cause}"));
        source = cause.source();
    }
    errln!("{chain}");
    tracing::error!(target: "run_log_only", "{chain}");
}

/// The battery's bars: one per running benchmark, cleared when it ends
/// (a search runs the battery per config and repeat, and finished bars
/// would pile up; the outcome is reported by the table or the config's
/// line). Drawn only on a terminal. Keyed by config too: on GPU slots two
/// configs run the same benchmark at once.
pub struct BatteryBars {
    running: Mutex<BTreeMap<(String, BenchmarkName), ProgressBar>>,
}

impl BatteryBars {
    pub fn new() -> Self {
        BatteryBars {
            running: Mutex::new(BTreeMap::new()),
        }
    }
}

impl BatteryProgress for BatteryBars {
    fn event(&self, event: &BatteryEvent) {
        self.config_event("", event);
    }
}

impl BatteryBars {
    /// An event of `config`'s battery (`""`: the only battery, `bench`).
    fn config_event(&self, config: &str, event: &BatteryEvent) {
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        let key = |benchmark: &BenchmarkName| (config.to_string(), *benchmark);
        match event {
            BatteryEvent::BenchmarkStarted {
                benchmark,
                expected_requests,
            } => {
                let bar = bars().add(ProgressBar::new(*expected_requests));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>18} [{bar:30}] {pos}/{len} requests {elapsed}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar.set_prefix(if config.is_empty() {
                    benchmark.as_str().to_string()
                } else {
                    format!("{config} {}", benchmark.as_str())
                });
                if let Some(old) = running.insert(key(benchmark), bar) {
                    old.finish_and_clear();
                }
            }
            BatteryEvent::RequestFinished { benchmark, .. } => {
                if let Some(bar) = running.get(&key(benchmark)) {
                    bar.inc(1);
                }
            }
            BatteryEvent::BenchmarkFinished { benchmark, .. }
            | BatteryEvent::BenchmarkCancelled { benchmark } => {
                if let Some(bar) = running.remove(&key(benchmark)) {
                    bar.finish_and_clear();
                }
            }
            _ => {}
        }
    }
}

/// The search's progress display.
pub struct UiProgress {
    overall: ProgressBar,
    current: ProgressBar,
    /// The battery's bars, on a terminal only (plain lines stay per phase).
    battery: Option<BatteryBars>,
    fancy: bool,
}

impl UiProgress {
    pub fn new() -> Self {
        let fancy = fancy();
        let bars = bars();
        let overall = bars.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template(
                "configs {pos}/{len} [{bar:30.cyan/blue}] elapsed {elapsed_precise} ETA {eta_precise}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let current = bars.add(ProgressBar::new_spinner());
        current.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        if fancy {
            current.enable_steady_tick(Duration::from_millis(200));
        }
        UiProgress {
            overall,
            current,
            battery: fancy.then(BatteryBars::new),
            fancy,
        }
    }

    fn line(&self, text: &str) {
        if !self.fancy {
            errln!("vllm-grid: {text}");
        }
    }

    /// A line that stays: above the bars on a terminal, prefixed otherwise.
    fn lasting_line(&self, text: &str) {
        if self.fancy {
            bars().suspend(|| errln!("{text}"));
        } else {
            errln!("vllm-grid: {text}");
        }
    }

    fn status(&self, text: String) {
        self.line(&text);
        self.current.set_message(text);
    }

    pub fn finish(&self) {
        self.current.finish_and_clear();
        self.overall.finish_and_clear();
    }
}

impl grid_search::Progress for UiProgress {
    fn event(&self, event: &SearchEvent) {
        match event {
            SearchEvent::RunStarted {
                run_id,
                total,
                done,
            } => {
                self.overall.set_length(*total as u64);
                self.overall.set_position(*done as u64);
                // The ETA covers only this invocation's configs.
                self.overall.reset_eta();
                self.line(&format!(
                    "run {run_id}: {done}/{total} configs already have a result"
                ));
            }
            SearchEvent::ConfigStarted {
                config,
                repeat,
                attempt,
            } => self.status(format!("{config}: repeat {} attempt {attempt}", repeat + 1)),
            SearchEvent::Phase { config, phase } => self.status(format!("{config}: {phase}")),
            SearchEvent::ConfigFinished { config, summary } => {
                self.overall.inc(1);
                self.lasting_line(&format!(
                    "[{}/{}] {config}: {summary}",
                    self.overall.position(),
                    self.overall.length().unwrap_or(0)
                ));
            }
            SearchEvent::Warning { message } => self.lasting_line(&format!("warning: {message}")),
            SearchEvent::Battery { config, event } => {
                if let Some(battery) = &self.battery {
                    battery.config_event(config, event);
                }
            }
            _ => {}
        }
    }
}
