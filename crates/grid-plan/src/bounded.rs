//! Bounded values read at the boundary: counts within a range, and numbers
//! of seconds that become a [`Duration`] within a range. Once a plan holds
//! them, later code cannot meet a NaN, an infinity, a negative time or a
//! count that overflows a loop or a shift.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A count within `MIN..=MAX`. It is refused when read (from a plan file or
/// a manifest), so whoever holds one holds a value in range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u32")]
pub struct BoundedU32<const MIN: u32, const MAX: u32>(u32);

/// How many times each config runs, each on a fresh server.
pub type Repeats = BoundedU32<1, 100>;

/// How many times a transient launch failure is retried.
pub type Retries = BoundedU32<0, 20>;

impl<const MIN: u32, const MAX: u32> BoundedU32<MIN, MAX> {
    /// `value` if it lies in `MIN..=MAX`.
    pub fn new(value: u64) -> Result<Self, OutOfRange> {
        match u32::try_from(value) {
            Ok(v) if (MIN..=MAX).contains(&v) => Ok(BoundedU32(v)),
            _ => Err(OutOfRange {
                value,
                min: MIN,
                max: MAX,
            }),
        }
    }

    /// `value` moved into `MIN..=MAX`: for limits set by code (the dry run's
    /// caps), where a value out of range is a cap, not a mistake.
    pub const fn saturating(value: u32) -> Self {
        if value < MIN {
            BoundedU32(MIN)
        } else if value > MAX {
            BoundedU32(MAX)
        } else {
            BoundedU32(value)
        }
    }

    /// The count.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl<const MIN: u32, const MAX: u32> TryFrom<u64> for BoundedU32<MIN, MAX> {
    type Error = OutOfRange;
    fn try_from(value: u64) -> Result<Self, OutOfRange> {
        Self::new(value)
    }
}

impl<const MIN: u32, const MAX: u32> From<BoundedU32<MIN, MAX>> for u32 {
    fn from(value: BoundedU32<MIN, MAX>) -> u32 {
        value.0
    }
}

/// Compares the count, so `plan.repeats == 2` reads as it did when it was a
/// plain `u32`.
impl<const MIN: u32, const MAX: u32> PartialEq<u32> for BoundedU32<MIN, MAX> {
    fn eq(&self, other: &u32) -> bool {
        self.0 == *other
    }
}

impl<const MIN: u32, const MAX: u32> fmt::Display for BoundedU32<MIN, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A count outside its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{value} is outside {min} to {max}")]
pub struct OutOfRange {
    pub value: u64,
    pub min: u32,
    pub max: u32,
}

/// The range a number of seconds must lie in to become a [`Duration`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecondsRange {
    /// Whether 0 is allowed (a backoff may be 0; a timeout may not).
    pub zero_allowed: bool,
    /// The largest value allowed.
    pub max: Duration,
    /// `max` for a reader: "7 days".
    pub max_in_words: &'static str,
}

impl SecondsRange {
    /// The duration of `seconds` if it is a finite number within the range.
    /// `Duration::try_from_secs_f64` rounds to the nearest nanosecond, so a
    /// positive value below half a nanosecond counts as zero.
    pub fn parse(&self, seconds: f64) -> Result<Duration, SecondsError> {
        if !seconds.is_finite() {
            return Err(SecondsError::NotFinite { value: seconds });
        }
        if seconds < 0.0 {
            return Err(SecondsError::Negative { value: seconds });
        }
        if seconds > self.max.as_secs_f64() {
            return Err(SecondsError::TooLarge {
                value: seconds,
                max: self.max,
            });
        }
        // Finite, non-negative and at most `max`: the conversion cannot
        // fail, but its error is kept rather than unwrapped.
        let duration = Duration::try_from_secs_f64(seconds)
            .map_err(|_| SecondsError::NotFinite { value: seconds })?;
        if duration.is_zero() && !self.zero_allowed {
            return Err(SecondsError::Zero { value: seconds });
        }
        Ok(duration)
    }
}

impl fmt::Display for SecondsRange {
    /// The fix, as it is said after "give": "a positive number of seconds, at
    /// most 604800 (7 days)".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.zero_allowed {
            "0 or a positive number of seconds"
        } else {
            "a positive number of seconds"
        };
        write!(
            f,
            "{kind}, at most {} ({})",
            self.max.as_secs_f64(),
            self.max_in_words
        )
    }
}

/// A number of seconds that is not a usable duration.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum SecondsError {
    #[error("{} is not a finite number of seconds", Readable(*value))]
    NotFinite { value: f64 },
    #[error("{} s is negative", Readable(*value))]
    Negative { value: f64 },
    #[error("{} s is not positive", Readable(*value))]
    Zero { value: f64 },
    #[error("{} s is more than the bound of {} s", Readable(*value), max.as_secs_f64())]
    TooLarge { value: f64, max: Duration },
}

/// A number as the reader wrote it: 1e20 stays `1e20`, not 21 digits.
struct Readable(f64);

impl fmt::Display for Readable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let magnitude = self.0.abs();
        if magnitude >= 1e9 || (magnitude > 0.0 && magnitude < 1e-6) {
            write!(f, "{:e}", self.0)
        } else {
            write!(f, "{}", self.0)
        }
    }
}
