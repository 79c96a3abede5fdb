//! Console output: tracing (console + `logs/<run-id>/run.log`), progress
//! bars (or plain lines when stderr is not a terminal), the error chain.

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

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
                bars.suspend(|| eprint!("{text}"));
            }
            _ => eprint!("{text}"),
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
    eprintln!("{chain}");
    tracing::error!(target: "run_log_only", "{chain}");
}

/// The search's progress display.
pub struct UiProgress {
    overall: ProgressBar,
    current: ProgressBar,
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
            fancy,
        }
    }

    fn line(&self, text: &str) {
        if !self.fancy {
            eprintln!("vllm-grid: {text}");
        }
    }

    pub fn finish(&self) {
        self.current.finish_and_clear();
        self.overall.finish_and_clear();
    }
}

impl grid_search::Progress for UiProgress {
    fn run_started(&self, run_id: &str, total: usize, done: usize) {
        self.overall.set_length(total as u64);
        self.overall.set_position(done as u64);
        // The ETA covers only this invocation's configs.
        self.overall.reset_eta();
        self.line(&format!(
            "run {run_id}: {done}/{total} configs already have a result"
        ));
    }
    fn config_started(&self, name: &str, repeat: u32, attempt: u32) {
        let text = format!("{name}: repeat {} attempt {attempt}", repeat + 1);
        self.current.set_message(text.clone());
        self.line(&text);
    }
    fn phase(&self, name: &str, phase: &str) {
        let text = format!("{name}: {phase}");
        self.current.set_message(text.clone());
        self.line(&text);
    }
    fn config_finished(&self, name: &str, summary: &str) {
        self.overall.inc(1);
        let text = format!(
            "[{}/{}] {name}: {summary}",
            self.overall.position(),
            self.overall.length().unwrap_or(0)
        );
        if self.fancy {
            bars().suspend(|| eprintln!("{text}"));
        } else {
            eprintln!("vllm-grid: {text}");
        }
    }
    fn warning(&self, message: &str) {
        if self.fancy {
            bars().suspend(|| eprintln!("warning: {message}"));
        } else {
            eprintln!("vllm-grid: warning: {message}");
        }
    }
    fn battery_bars(&self) -> Option<MultiProgress> {
        self.fancy.then(|| bars().clone())
    }
}
