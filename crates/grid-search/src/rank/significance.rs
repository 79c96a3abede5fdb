//! Whether the champion's lead over the runner-up is significant, and how
//! many repeats would settle it when it is not.

use grid_core::Estimate;

use super::{ConfigRef, RankedConfig, Significance};

pub(super) fn significance(
    first: &RankedConfig,
    second: &RankedConfig,
    repeats: u32,
) -> Significance {
    let (c, r) = (
        first.kv_cache_acceleration.unwrap_or(Estimate {
            median: 0.0,
            ci95_low: 0.0,
            ci95_high: 0.0,
            samples: 0,
        }),
        second.kv_cache_acceleration.unwrap_or(Estimate {
            median: 0.0,
            ci95_low: 0.0,
            ci95_high: 0.0,
            samples: 0,
        }),
    );
    let runner_up = ConfigRef {
        name: second.name.clone(),
        id: second.id.clone(),
    };
    if !c.overlaps(&r) {
        return Significance {
            text: format!(
                "The lead is significant: `{}`'s 95 % interval ({:.2}–{:.2}) lies above the runner-up `{}`'s ({:.2}–{:.2}).",
                first.name, c.ci95_low, c.ci95_high, second.name, r.ci95_low, r.ci95_high
            ),
            runner_up,
            significant: true,
            repeats_now: repeats,
            repeats_needed: None,
        };
    }
    let gap = c.median - r.median;
    let spread = (c.median - c.ci95_low).max(0.0) + (r.ci95_high - r.median).max(0.0);
    let needed = if gap > 0.0 {
        let n = (f64::from(repeats) * (spread / gap).powi(2)).ceil();
        Some(n.clamp(f64::from(repeats) + 1.0, 10_000.0) as u32)
    } else {
        None
    };
    let advice = match needed {
        Some(n) if n >= 10_000 => format!(
            "even 10000 repeats (now {repeats}) would hardly settle it: the gap is negligible against the intervals"
        ),
        Some(n) => format!(
            "about {n} repeats (now {repeats}) would settle it, assuming intervals shrink like 1/sqrt(repeats)"
        ),
        None => "the medians are equal, so more repeats are unlikely to separate them".to_string(),
    };
    Significance {
        text: format!(
            "The lead is NOT significant: the runner-up `{}` ({:.2}, 95 % interval {:.2}–{:.2}) overlaps `{}` ({:.2}, {:.2}–{:.2}); {advice}.",
            second.name,
            r.median,
            r.ci95_low,
            r.ci95_high,
            first.name,
            c.median,
            c.ci95_low,
            c.ci95_high
        ),
        runner_up,
        significant: false,
        repeats_now: repeats,
        repeats_needed: needed,
    }
}
