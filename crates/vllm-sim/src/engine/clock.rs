//! Simulated time: a simulated span becomes a real [`Duration`] (times
//! `--sim-time-scale`, slowed by `--sim-degradation-per-hour`), and the
//! engine sleeps to absolute deadlines precisely. Spans saturate at
//! [`FOREVER`], so no knob value can overflow a deadline.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::Msg;

/// The time model of one engine.
#[derive(Debug, Clone)]
pub(super) struct Clock {
    pub(super) time_scale: f64,
    pub(super) degradation_per_hour: f64,
    pub(super) start: Instant,
}

impl Clock {
    /// Real duration of a simulated span, with time scale and degradation.
    pub(super) fn real(&self, simulated_ms: f64, now: Instant) -> Duration {
        if self.time_scale <= 0.0 || simulated_ms <= 0.0 {
            return Duration::ZERO;
        }
        let uptime_h = now.duration_since(self.start).as_secs_f64() / self.time_scale / 3600.0;
        let factor = 1.0 + self.degradation_per_hour * uptime_h;
        saturating_secs(simulated_ms * factor * self.time_scale / 1000.0)
    }
}

/// The longest span the simulator waits: a year stands for "forever" and
/// keeps every deadline (`Instant` plus up to 2^32 of these) representable.
pub(crate) const FOREVER: Duration = Duration::from_secs(365 * 24 * 3600);

/// Seconds as a `Duration`, at most [`FOREVER`]; huge or non-finite values
/// (`--sim-decode-base-ms 1e300`, or a product that overflows) saturate
/// instead of panicking in `Duration::from_secs_f64`.
pub(crate) fn saturating_secs(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        Duration::ZERO
    } else if secs >= FOREVER.as_secs_f64() {
        FOREVER
    } else {
        Duration::from_secs_f64(secs)
    }
}

/// Sleeps until `deadline` precisely, taking messages that arrive meanwhile.
/// Returns early (false) on Shutdown.
pub(super) fn wait_until(deadline: Instant, rx: &Receiver<Msg>, inbox: &mut VecDeque<Msg>) -> bool {
    const SPIN: Duration = Duration::from_micros(250);
    loop {
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        let left = deadline - now;
        if left > SPIN {
            match rx.recv_timeout(left - SPIN) {
                Ok(Msg::Shutdown) => return false,
                Ok(m) => inbox.push_back(m),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        } else {
            std::thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_saturate_at_forever() {
        grid_core::testing::check(
            &[
                ("zero", 0.0, Duration::ZERO),
                ("negative", -1.0, Duration::ZERO),
                ("not a number", f64::NAN, Duration::ZERO),
                ("a millisecond", 0.001, Duration::from_millis(1)),
                (
                    "just under",
                    FOREVER.as_secs_f64() - 1.0,
                    FOREVER - Duration::from_secs(1),
                ),
                ("huge", 1e300, FOREVER),
                ("infinite", f64::INFINITY, FOREVER),
            ],
            |secs| saturating_secs(*secs),
        );
    }
}
