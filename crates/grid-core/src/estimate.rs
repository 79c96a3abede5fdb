//! A point estimate with its 95 % interval: the one type behind every
//! interval the battery reports and the ranking compares.

use serde::{Deserialize, Serialize};

/// A median with its 95 % interval and the number of samples behind it.
///
/// The JSON field names (`median`, `ci95_low`, `ci95_high`, `samples`) are
/// part of the result-file and report formats: renaming one would make
/// existing runs unreadable.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub median: f64,
    pub ci95_low: f64,
    pub ci95_high: f64,
    pub samples: usize,
}

impl Estimate {
    /// One sample: the interval is the value itself.
    pub fn exact(value: f64) -> Self {
        Self {
            median: value,
            ci95_low: value,
            ci95_high: value,
            samples: 1,
        }
    }

    /// Whether the two intervals share a point.
    pub fn overlaps(&self, other: &Estimate) -> bool {
        self.ci95_low <= other.ci95_high && other.ci95_low <= self.ci95_high
    }

    /// Whether `value` lies in the interval (bounds included).
    pub fn contains(&self, value: f64) -> bool {
        self.ci95_low <= value && value <= self.ci95_high
    }
}
