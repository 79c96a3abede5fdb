//! Failure reasons per benchmark: how many requests failed for each
//! reason, and the few most frequent with an example message, so a console
//! can say "too few (0/3): connect ×3 (cannot send to …: connection refused)".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::client::{Failure, FailureKind};
use crate::openai::truncate;

/// How many reasons [`FailureTally::top`] keeps.
pub const TOP_FAILURE_REASONS: usize = 3;

/// Characters of the example message kept.
const EXAMPLE_CHARS: usize = 300;

/// One failure reason of a benchmark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureReason {
    pub kind: FailureKind,
    pub count: u64,
    /// The first message of this kind (truncated), e.g. "cannot send to
    /// http://127.0.0.1:8000/v1/chat/completions: … Connection refused".
    pub example: String,
}

/// Failures counted by kind, keeping the first message of each.
#[derive(Debug, Clone, Default)]
pub struct FailureTally {
    by_kind: BTreeMap<FailureKind, (u64, String)>,
}

impl FailureTally {
    pub fn add(&mut self, failure: &Failure) {
        let entry = self
            .by_kind
            .entry(failure.kind)
            .or_insert_with(|| (0, truncate(&failure.message, EXAMPLE_CHARS)));
        entry.0 += 1;
    }

    /// Counts by kind name (`failure_reasons` in the report).
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.by_kind
            .iter()
            .map(|(kind, (count, _))| (kind.as_str().to_string(), *count))
            .collect()
    }

    /// The [`TOP_FAILURE_REASONS`] most frequent reasons, most frequent
    /// first (ties in the kinds' order).
    pub fn top(&self) -> Vec<FailureReason> {
        let mut reasons: Vec<FailureReason> = self
            .by_kind
            .iter()
            .map(|(kind, (count, example))| FailureReason {
                kind: *kind,
                count: *count,
                example: example.clone(),
            })
            .collect();
        reasons.sort_by(|a, b| b.count.cmp(&a.count).then(a.kind.cmp(&b.kind)));
        reasons.truncate(TOP_FAILURE_REASONS);
        reasons
    }
}

/// `connect ×3, http_status ×1`, or `None` without failures.
pub(crate) fn counts_line(reasons: &[FailureReason]) -> Option<String> {
    (!reasons.is_empty()).then(|| {
        reasons
            .iter()
            .map(|reason| format!("{} ×{}", reason.kind, reason.count))
            .collect::<Vec<_>>()
            .join(", ")
    })
}
