//! The decision: which config is champion, which are equivalent to it, which
//! tie-break chose, whether the data settle it, and what noise the
//! intervals cover.
//!
//! The best is the config with the highest median on the criterion among
//! those whose cache effect is confirmed. Every other valid config with the
//! figure is compared with it by the ratio of their accelerations
//! ([`super::equivalence`]): inside `1 ± margin` it is equivalent, and the
//! tie-break chain ([`super::tiebreak`]) chooses among the best and its
//! equivalents. The decision is significant when no confirmed config's
//! ratio straddles the margin; only then is the champion settled by the
//! data, and only otherwise does the report ask for more repeats.

use grid_core::Estimate;
use grid_plan::ChampionCriterion;
use serde::{Deserialize, Serialize};

use super::equivalence::{Settle, Standing, ratio, repeats_to_settle, standing};
use super::tiebreak::{Candidate, TieBreakRule, TieBreakStep, tie_break};
use super::{ConfigRef, RankedConfig, reference};

/// What the intervals cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Noise {
    /// One repeat (one server start) per config: the iterations of one
    /// server only.
    #[serde(rename = "within-run only")]
    WithinRun,
    /// Two or more repeats, resampled as clusters: the spread between
    /// server starts is in the intervals.
    #[serde(rename = "between server starts")]
    BetweenServerStarts,
}

/// A config equivalent to the best.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Equivalent {
    pub config: ConfigRef,
    /// Its acceleration over the best's.
    pub ratio: Estimate,
    pub margin: f64,
}

/// A confirmed config whose ratio to the best straddles the margin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unsettled {
    pub config: ConfigRef,
    pub ratio: Estimate,
    pub repeats_to_settle: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The figure the champion was chosen on.
    pub criterion: ChampionCriterion,
    /// What the plan asked for (differs from `criterion` only when no
    /// config has the plan's figure).
    pub requested_criterion: ChampionCriterion,
    pub champion: Option<ConfigRef>,
    /// Highest median among the confirmed configs.
    pub best: Option<ConfigRef>,
    pub margin: f64,
    pub equivalents: Vec<Equivalent>,
    pub tie_break: Vec<TieBreakStep>,
    /// The rule that left one candidate; `None` when the best had no
    /// equivalent.
    pub decided_by: Option<TieBreakRule>,
    pub significant: bool,
    pub repeats_to_settle: Option<u32>,
    pub unsettled: Vec<Unsettled>,
    pub noise: Noise,
    /// Whether a figure of the champion or an equivalent was disturbed
    /// (the client's TTFT exceeded the server's own).
    pub disturbed: bool,
    /// The decision in plain sentences, for the report.
    pub text: Vec<String>,
}

fn ratio_text(r: &Estimate) -> String {
    format!(
        "ratio {:.2}, 95 % CI {:.2}–{:.2}",
        r.median, r.ci95_low, r.ci95_high
    )
}

fn names(list: &[String]) -> String {
    match list {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Decides among `candidates`: the valid configs with the criterion's
/// figure, confirmed ones first (each by median, highest first).
/// `gmu` gives a config's gpu-memory-utilization setting.
pub(super) fn decide(
    candidates: &[&RankedConfig],
    criterion: ChampionCriterion,
    requested: ChampionCriterion,
    margin: f64,
    gmu: &dyn Fn(&RankedConfig) -> Option<f64>,
) -> Decision {
    let figure = criterion.figure();
    let pct_margin = margin * 100.0;
    let mut text = Vec::new();
    if criterion != requested {
        text.push(format!(
            "The plan ranks by {} (`{requested}`), but no valid config has that figure (its battery did not run the workload), so the champion is chosen on {figure} (`{criterion}`).",
            requested.figure()
        ));
    }
    let repeats = candidates
        .iter()
        .map(|c| c.per_repeat_medians.len())
        .min()
        .unwrap_or(0);
    let noise = if repeats >= 2 {
        Noise::BetweenServerStarts
    } else {
        Noise::WithinRun
    };
    let mut decision = Decision {
        criterion,
        requested_criterion: requested,
        champion: None,
        best: None,
        margin,
        equivalents: Vec::new(),
        tie_break: Vec::new(),
        decided_by: None,
        significant: false,
        repeats_to_settle: None,
        unsettled: Vec::new(),
        noise,
        disturbed: false,
        text: Vec::new(),
    };
    let Some(best) = candidates.iter().find(|c| c.cache_evidence_confirmed()) else {
        text.push(format!(
            "No champion: no valid config shows a confirmed cache effect on {figure} (faster warm turns and cache hits reported by the server); see the ranking notes."
        ));
        decision.text = text;
        return decision;
    };
    decision.best = Some(reference(best));
    let mut members: Vec<&RankedConfig> = vec![best];
    let mut behind: Vec<(&RankedConfig, Estimate)> = Vec::new();
    for other in candidates.iter().filter(|c| c.id != best.id) {
        let Some(r) = ratio(other, best) else {
            continue;
        };
        match standing(&r, margin) {
            Standing::Equivalent => {
                members.push(other);
                decision.equivalents.push(Equivalent {
                    config: reference(other),
                    ratio: r,
                    margin,
                });
            }
            Standing::Unsettled if other.cache_evidence_confirmed() => {
                let settle = repeats_to_settle(
                    &r,
                    &other.per_repeat_medians,
                    &best.per_repeat_medians,
                    margin,
                );
                decision.unsettled.push(Unsettled {
                    config: reference(other),
                    ratio: r,
                    repeats_to_settle: match settle {
                        Settle::Repeats(n) => Some(n),
                        _ => None,
                    },
                });
            }
            Standing::Behind if other.cache_evidence_confirmed() => behind.push((other, r)),
            _ => {}
        }
    }
    let chain: Vec<Candidate> = members
        .iter()
        .map(|c| Candidate {
            config: reference(c),
            confirmed: c.cache_evidence_confirmed(),
            stability_degradation: c.secondary.stability_degradation,
            gpu_memory_utilization: gmu(c),
            output_throughput: c.secondary.output_throughput,
        })
        .collect();
    let Some(chosen) = tie_break(&chain) else {
        decision.text = text;
        return decision;
    };
    decision.decided_by = chosen
        .steps
        .last()
        .and_then(|s| s.winner.as_ref().map(|_| s.rule));
    decision.tie_break = chosen.steps;
    decision.champion = Some(chosen.champion.clone());
    let champion_name = chosen.champion.name.clone();

    if decision.equivalents.is_empty() {
        text.push(format!(
            "`{champion_name}` has the highest {figure} of the configs with a confirmed cache effect, and no other config is equivalent to it (margin ±{pct_margin:.0} %)."
        ));
    } else {
        let mut all = vec![format!("`{}`", best.name)];
        all.extend(
            decision
                .equivalents
                .iter()
                .map(|e| format!("`{}`", e.config.name)),
        );
        let ratios = decision
            .equivalents
            .iter()
            .map(|e| {
                format!(
                    "`{}` over `{}`: {}",
                    e.config.name,
                    best.name,
                    ratio_text(&e.ratio)
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let by = decision
            .decided_by
            .map_or("the tie-break", TieBreakRule::words);
        text.push(format!(
            "{} are equivalent on {figure} ({ratios}; margin ±{pct_margin:.0} %); champion `{champion_name}` by {by}.",
            names(&all)
        ));
        for step in &decision.tie_break {
            text.push(format!("Tie-break, {}.", step.text));
        }
    }
    decision.significant = decision.unsettled.is_empty();
    if decision.significant {
        if let Some((nearest, r)) = behind.first() {
            text.push(format!(
                "The decision is settled: every other confirmed config is equivalent or significantly behind; the nearest, `{}`, has {} against `{}`, below the −{pct_margin:.0} % margin.",
                nearest.name,
                ratio_text(r),
                best.name
            ));
        }
    } else {
        decision.repeats_to_settle = decision
            .unsettled
            .iter()
            .map(|u| u.repeats_to_settle)
            .collect::<Option<Vec<u32>>>()
            .and_then(|all| all.into_iter().max());
        for u in &decision.unsettled {
            let advice = match u.repeats_to_settle {
                Some(n) if n >= super::equivalence::MAX_REPEATS_TO_SETTLE => format!(
                    "even {n} repeats would hardly settle it: the ratio sits on the margin"
                ),
                // The ratio sits on the margin's edge: say so rather than
                // leave a large number looking like a plan.
                Some(n) if n > 100 => format!(
                    "the ratio sits at the margin's edge (point {:.3} against {:.3}), so only about {n} repeats (now {repeats}) would settle it, from the between-repeat variance of the two configs' per-repeat medians; the two differ by about the margin either way",
                    u.ratio.median,
                    if u.ratio.median < 1.0 { 1.0 - margin } else { 1.0 + margin }
                ),
                Some(n) => format!(
                    "about {n} repeats (now {repeats}) would settle it, from the between-repeat variance of the two configs' per-repeat medians"
                ),
                None if repeats < 2 => "with one repeat there is no between-repeat variance to say how many repeats would settle it; run 2 or more".to_string(),
                None => "the repeats agree exactly, so the width is within-run noise: more iterations per repeat would narrow it, not more repeats".to_string(),
            };
            text.push(format!(
                "Not significant: `{}` against `{}` has {}, which straddles the ±{pct_margin:.0} % margin; {advice}.",
                u.config.name,
                best.name,
                ratio_text(&u.ratio)
            ));
        }
    }
    if noise == Noise::WithinRun {
        text.push(
            "With one repeat, the intervals cover within-run noise only (the iterations of one server start), not the spread between server starts.".to_string(),
        );
    }
    let deciding: Vec<&RankedConfig> = members;
    let disturbed: Vec<String> = deciding
        .iter()
        .filter(|c| !c.disturbed.is_empty())
        .map(|c| format!("`{}` ({})", c.name, c.disturbed_text()))
        .collect();
    if !disturbed.is_empty() {
        decision.disturbed = true;
        text.push(format!(
            "This decision rests on disturbed figures: the client's mean TTFT exceeded the server's own by more than the noise guard allows for {}. Re-run on a quieter host before trusting it.",
            disturbed.join(", ")
        ));
    }
    decision.text = text;
    decision
}
