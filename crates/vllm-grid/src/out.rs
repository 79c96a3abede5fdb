//! Standard output and error without panics.
//!
//! `println!` panics when the reader has gone (`vllm-grid plan | head -1`:
//! EPIPE, since Rust ignores SIGPIPE), and `eprintln!` panics the same way
//! on a closed stderr. A reader that stops reading is a normal end: the
//! rest of the output is dropped and the command ends with its own exit
//! code. Any other write error (a full disk behind a redirect) is reported.

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::AppError;

/// Set once stdout's reader has gone; later writes are skipped.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes to stdout; a vanished reader ends the output quietly.
pub fn write(args: fmt::Arguments<'_>) -> Result<(), AppError> {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut stdout = std::io::stdout().lock();
    match stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(source) => Err(AppError::WriteOutput { source }),
    }
}

/// Writes to stderr, ignoring failures: there is nowhere left to report them.
pub fn write_err(args: fmt::Arguments<'_>) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_fmt(args);
    let _ = stderr.flush();
}

/// `println!` that returns `Result<(), AppError>` (see the module doc).
macro_rules! outln {
    () => { $crate::out::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::out::write(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` that returns `Result<(), AppError>`.
macro_rules! out {
    ($($arg:tt)*) => { $crate::out::write(format_args!($($arg)*)) };
}

/// `eprintln!` that never panics.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::out::write_err(format_args!("{}\n", format_args!($($arg)*))) };
}

pub(crate) use {errln, out, outln};
