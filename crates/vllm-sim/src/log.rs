//! vLLM-style log lines: `INFO 11-22 11:00:00 [file.py:123] message`.
//! INFO goes to stdout, WARNING and ERROR to stderr, as vLLM's handlers do
//! with uvicorn's; each line is written whole.

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// `MM-DD HH:MM:SS` in UTC (no time-zone database in a FROM-scratch image).
fn stamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    format!(
        "{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub fn info(source: &str, msg: &str) {
    let line = format!("INFO {} [{source}] {msg}\n", stamp());
    let _ = std::io::stdout().lock().write_all(line.as_bytes());
}

pub fn warning(source: &str, msg: &str) {
    let line = format!("WARNING {} [{source}] {msg}\n", stamp());
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

pub fn error(source: &str, msg: &str) {
    let line = format!("ERROR {} [{source}] {msg}\n", stamp());
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// A raw line (uvicorn's `INFO:     ...` lines, tracebacks).
pub fn raw_out(line: &str) {
    let _ = std::io::stdout()
        .lock()
        .write_all(format!("{line}\n").as_bytes());
}

pub fn raw_err(line: &str) {
    let _ = std::io::stderr()
        .lock()
        .write_all(format!("{line}\n").as_bytes());
}
