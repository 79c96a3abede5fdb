use grid_core::{bootstrap_median, cluster_bootstrap_median};
use grid_plan::ChampionCriterion;
use grid_search::rank::{
    CacheEvidence, Candidate, ConfigRef, ConfigStatus, Noise, TieBreakRule, acceleration_seed,
    combine_acceleration, rank, tie_break,
};
use grid_search::store::PressureMeasurement;

use crate::fixtures::*;

/// Rank one config's result and expect `status` with reasons containing
/// every fragment.
fn check(
    gates: &str,
    result: impl Fn(&grid_plan::Plan) -> grid_search::ConfigResult,
    status: ConfigStatus,
    fragments: &[&str],
) {
    let plan = plan(&format!(
        r#""axes": {{}}, "named_configs": [{{"name": "only", "settings": {{"max_num_seqs": 4}}}}], "ranking": {gates}"#
    ));
    let ranking = rank(&plan, &results(vec![result(&plan)]));
    let c = &ranking.configs[0];
    assert_eq!(c.status, status, "{gates}: {:?}", c.reasons);
    let text = c.reasons.join("; ");
    for f in fragments {
        assert!(text.contains(f), "{gates}: {text:?} lacks {f:?}");
    }
    assert_eq!(ranking.champion.is_some(), status == ConfigStatus::Valid);
}

#[test]
fn gates() {
    let with = |f: fn(&mut grid_search::store::Measurement)| {
        move |plan: &grid_plan::Plan| {
            let mut m = good(2.0, 0.1);
            f(&mut m);
            completed(plan, 0, vec![m])
        }
    };
    check("{}", with(|_| {}), ConfigStatus::Valid, &[]);
    check(
        "{}",
        with(|m| m.request_error_rate = Some(0.01)),
        ConfigStatus::Valid,
        &[],
    );
    check(
        "{}",
        with(|m| m.request_error_rate = Some(0.02)),
        ConfigStatus::Rejected,
        &["request error rate 2.0 % is above the 1.0 % gate"],
    );
    check(
        "{}",
        with(|m| m.request_error_rate = None),
        ConfigStatus::Rejected,
        &["request error rate not measured"],
    );
    check(
        "{}",
        with(|m| m.stability_degradation = Some(0.20)),
        ConfigStatus::Rejected,
        &["not below the 20.0 % gate"],
    );
    check(
        "{}",
        with(|m| m.stability_degradation = Some(0.19)),
        ConfigStatus::Valid,
        &[],
    );
    // A stability figure the noise guard marked disturbed is no verdict:
    // the host, not the server, shaped it; one for another benchmark is.
    check(
        "{}",
        with(|m| {
            m.stability_degradation = Some(0.63);
            m.disturbed.push(disturbance("stability"));
        }),
        ConfigStatus::Valid,
        &[],
    );
    check(
        "{}",
        with(|m| {
            m.stability_degradation = Some(0.63);
            m.disturbed.push(disturbance("kv_cache"));
        }),
        ConfigStatus::Rejected,
        &["stability degradation 63.0 % is not below the 20.0 % gate"],
    );
    // Two repeats: the undisturbed one over the gate still rejects; the
    // undisturbed one under it leaves the disturbed one's figure unjudged.
    check(
        "{}",
        |p| {
            let mut a = good(2.0, 0.1);
            a.stability_degradation = Some(0.63);
            a.disturbed.push(disturbance("stability"));
            let mut b = good(2.0, 0.1);
            b.stability_degradation = Some(0.31);
            completed(p, 0, vec![a, b])
        },
        ConfigStatus::Rejected,
        &["stability degradation 31.0 % is not below the 20.0 % gate"],
    );
    check(
        "{}",
        |p| {
            let mut a = good(2.0, 0.1);
            a.stability_degradation = Some(0.63);
            a.disturbed.push(disturbance("stability"));
            completed(p, 0, vec![a, good(2.0, 0.1)])
        },
        ConfigStatus::Valid,
        &[],
    );
    check(
        "{}",
        with(|m| {
            m.benchmarks_failed
                .insert("stability".into(), "boom".into());
        }),
        ConfigStatus::Rejected,
        &["stability (boom)"],
    );
    check(
        r#"{"require_all_benchmarks": false}"#,
        with(|m| {
            m.benchmarks_failed
                .insert("stability".into(), "boom".into());
        }),
        ConfigStatus::Valid,
        &[],
    );
    check(
        r#"{"require_tool_calling": true}"#,
        with(|m| m.tool_call_success_rate = Some(0.5)),
        ConfigStatus::Rejected,
        &["tool-call success 50.0 % is below the required 90.0 %"],
    );
    check(
        r#"{"require_tool_calling": true}"#,
        with(|m| m.tool_call_success_rate = None),
        ConfigStatus::Rejected,
        &["not measured"],
    );
    check(
        "{}",
        with(|m| m.tool_call_success_rate = Some(0.0)),
        ConfigStatus::Valid,
        &[],
    );
    check(
        "{}",
        with(|m| m.kv_cache_acceleration = None),
        ConfigStatus::Rejected,
        &["cannot be ranked"],
    );
    check(
        "{}",
        |p| launch_failed(p, 0, "gpu_out_of_memory", true),
        ConfigStatus::Rejected,
        &["server did not start (gpu out of memory)"],
    );
    check(
        "{}",
        |p| launch_failed(p, 0, "missing_image", false),
        ConfigStatus::Failed,
        &["server did not start (missing image)"],
    );
}

fn disturbance(benchmark: &str) -> grid_search::store::Disturbance {
    grid_search::store::Disturbance {
        benchmark: benchmark.into(),
        client_mean_ttft_ms: 7.5,
        server_mean_ttft_ms: 2.2,
    }
}

#[test]
fn a_disturbed_stability_figure_is_noted_not_judged() {
    let plan = plan(
        r#""axes": {}, "named_configs": [{"name": "only", "settings": {"max_num_seqs": 4}}], "ranking": {}"#,
    );
    let mut m = good(2.0, 0.1);
    m.stability_degradation = Some(0.63);
    m.disturbed.push(disturbance("stability"));
    let all = results(vec![completed(&plan, 0, vec![m])]);
    let ranking = rank(&plan, &all);
    let c = &ranking.configs[0];
    assert_eq!(c.status, ConfigStatus::Valid, "{:?}", c.reasons);
    assert_eq!(c.gate_notes.len(), 1, "{:?}", c.gate_notes);
    assert!(c.gate_notes[0].contains("63.0 %") && c.gate_notes[0].contains("disturbed"));
    let report = grid_search::report::render_markdown(&manifest(&plan, "noisy"), &all, &ranking);
    assert!(
        report.contains("Gates not judged on disturbed figures"),
        "{report}"
    );
}

#[test]
fn a_config_without_result_is_failed_with_a_reason() {
    let plan = plan("");
    let ranking = rank(
        &plan,
        &results(vec![completed(&plan, 0, vec![good(2.0, 0.1)])]),
    );
    assert_eq!(ranking.configs.len(), 12);
    let missing = ranking
        .configs
        .iter()
        .filter(|c| c.status == ConfigStatus::Failed)
        .count();
    assert_eq!(missing, 11);
    assert!(ranking.configs[1].reasons[0].contains("not run yet"));
}

#[test]
fn a_clear_lead_is_settled_and_the_champion_is_the_highest_median() {
    let plan = plan("");
    let r = results(vec![
        completed(&plan, 0, vec![good(2.0, 0.1)]),
        completed(&plan, 1, vec![good(3.0, 0.1)]),
        launch_failed(&plan, 2, "kv_cache_too_small", true),
    ]);
    let ranking = rank(&plan, &r);
    assert_eq!(ranking.champion.as_ref().unwrap().id, plan.configs[1].id);
    assert_eq!(ranking.configs[0].rank, Some(1));
    assert_eq!(ranking.configs[1].rank, Some(2));
    let decision = ranking.decision.as_ref().unwrap();
    assert!(decision.significant, "{:?}", decision.text);
    assert_eq!(decision.repeats_to_settle, None);
    assert!(decision.equivalents.is_empty());
    assert!(decision.tie_break.is_empty());
    assert_eq!(decision.noise, Noise::WithinRun);
    let text = decision.text.join("\n");
    assert!(text.contains("significantly behind"), "{text}");
    assert!(text.contains("within-run noise only"), "{text}");
    assert_eq!(ranking.recommendations.len(), 3);
}

/// Two configs of the same physics (0.85 and 0.90, the issue's flip): their
/// ratio's interval lies inside ±5 %, so they are equivalent, and the
/// champion is the lower memory share whichever came first.
#[test]
fn equivalent_configs_are_decided_by_the_tie_break_chain() {
    let plan = plan("");
    let (low, high) = (&plan.configs[0], &plan.configs[4]);
    assert_eq!(low.settings.gpu_memory_utilization, Some(0.85));
    assert_eq!(high.settings.gpu_memory_utilization, Some(0.90));
    for (a, b) in [(5.99, 5.96), (5.96, 5.99)] {
        let r = results(vec![
            completed(&plan, 0, vec![good(a, 0.05)]),
            completed(&plan, 4, vec![good(b, 0.05)]),
            completed(&plan, 8, vec![good(2.0, 0.05)]),
        ]);
        let ranking = rank(&plan, &r);
        let decision = ranking.decision.as_ref().unwrap();
        assert_eq!(
            ranking.champion.as_ref().unwrap().id,
            low.id,
            "{:?}",
            decision.text
        );
        assert_eq!(ranking.configs[0].id, low.id);
        assert_eq!(decision.equivalents.len(), 1);
        assert_eq!(
            decision.decided_by,
            Some(TieBreakRule::LowerGpuMemoryUtilization)
        );
        assert!(decision.significant);
        let text = decision.text.join("\n");
        assert!(
            text.contains("are equivalent on KV-cache acceleration (")
                && text.contains("margin ±5 %); champion `gmu0.85_chunked-on_prefix-on` by lower gpu-memory-utilization"),
            "{text}"
        );
        let other = ranking.get(&high.id).unwrap();
        assert!(other.equivalent_to_champion);
        assert!(!ranking.get(&low.id).unwrap().equivalent_to_champion);
    }
}

/// Only a confirmed cache effect can make a champion: a faster config whose
/// server reported nothing, or contradicted it, is ranked after, with why.
#[test]
fn an_unconfirmed_cache_effect_cannot_make_a_champion() {
    let plan = plan("");
    let mut unverified = good(6.0, 0.1);
    unverified.cache_confirmed_by_server = None;
    let mut contradicted = good(5.0, 0.1);
    contradicted.cache_confirmed_by_server = Some(false);
    let r = results(vec![
        completed(&plan, 0, vec![unverified]),
        completed(&plan, 1, vec![contradicted]),
        completed(&plan, 2, vec![good(3.0, 0.1)]),
    ]);
    let ranking = rank(&plan, &r);
    assert_eq!(ranking.champion.as_ref().unwrap().id, plan.configs[2].id);
    let order: Vec<&str> = ranking
        .configs
        .iter()
        .take(3)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        order,
        [
            plan.configs[2].name.as_str(),
            plan.configs[0].name.as_str(),
            plan.configs[1].name.as_str()
        ]
    );
    let note = |i: usize| {
        ranking
            .get(&plan.configs[i].id)
            .unwrap()
            .rank_note
            .clone()
            .unwrap_or_default()
    };
    assert!(
        note(0).contains("unverified") && note(0).contains("cannot be champion"),
        "{}",
        note(0)
    );
    assert!(note(1).contains("disagreement"), "{}", note(1));
    assert_eq!(
        ranking.get(&plan.configs[2].id).unwrap().cache_evidence,
        Some(CacheEvidence::Confirmed)
    );

    // No confirmed config at all: no champion, and the decision says why.
    let mut slow = good(1.1, 0.05);
    slow.cache_confirmed_by_server = Some(false);
    let ranking = rank(&plan, &results(vec![completed(&plan, 0, vec![slow])]));
    assert!(ranking.champion.is_none());
    let text = ranking.decision.unwrap().text.join(" ");
    assert!(
        text.contains("no valid config shows a confirmed cache effect"),
        "{text}"
    );
}

/// Per-iteration values for one repeat: `median` ± a small spread.
fn repeat(median: f64, spread: f64) -> grid_search::store::Measurement {
    let samples: Vec<f64> = (0..9)
        .map(|i| median + spread * (i as f64 / 8.0 - 0.5))
        .collect();
    let mut m = good(median, spread / 2.0);
    m.kv_cache_acceleration = bootstrap_median(&samples, 500, 1);
    m.acceleration_samples = samples;
    m.bootstrap_resamples = Some(500);
    m
}

/// "Not significant, N repeats would settle it" only when the ratio's
/// interval straddles the margin, N from the between-repeat variance.
#[test]
fn more_repeats_are_asked_for_only_when_the_ratio_straddles_the_margin() {
    let plan = plan(r#""repeats": 2"#);
    // The runner-up at 0.94 of the best, with repeats that disagree by a
    // few percent: its ratio's interval straddles 0.95.
    let r = results(vec![
        completed(&plan, 0, vec![repeat(5.0, 0.1), repeat(5.2, 0.1)]),
        completed(&plan, 1, vec![repeat(4.6, 0.1), repeat(5.0, 0.1)]),
    ]);
    let ranking = rank(&plan, &r);
    let decision = ranking.decision.as_ref().unwrap();
    assert_eq!(decision.noise, Noise::BetweenServerStarts);
    assert!(!decision.significant, "{:?}", decision.text);
    assert_eq!(decision.unsettled.len(), 1);
    let n = decision
        .repeats_to_settle
        .expect("a number from two repeats");
    assert!(n > 2, "{n}");
    let text = decision.text.join("\n");
    assert!(
        text.contains("Not significant") && text.contains(&format!("about {n} repeats (now 2)")),
        "{text}"
    );
    assert!(!text.contains("within-run"), "{text}");
    let best = ranking.get(&plan.configs[0].id).unwrap();
    assert_eq!(best.per_repeat_medians, vec![5.0, 5.2]);

    // The same gap with one repeat each: no number of repeats is invented.
    let plan = plan_one();
    let r = results(vec![
        completed(&plan, 0, vec![repeat(5.1, 0.6)]),
        completed(&plan, 1, vec![repeat(4.8, 0.6)]),
    ]);
    let decision = rank(&plan, &r).decision.unwrap();
    assert!(!decision.significant, "{:?}", decision.text);
    assert_eq!(decision.repeats_to_settle, None);
    let text = decision.text.join("\n");
    assert!(
        text.contains("run 2 or more") && text.contains("within-run noise only"),
        "{text}"
    );

    // A true tie is equivalent, not "not significant", at any repeat count.
    let plan = plan_two();
    let r = results(vec![
        completed(&plan, 0, vec![repeat(5.0, 0.1), repeat(5.05, 0.1)]),
        completed(&plan, 4, vec![repeat(5.02, 0.1), repeat(5.0, 0.1)]),
    ]);
    let decision = rank(&plan, &r).decision.unwrap();
    assert!(decision.significant, "{:?}", decision.text);
    assert_eq!(decision.equivalents.len(), 1, "{:?}", decision.text);
}

fn plan_one() -> grid_plan::Plan {
    plan("")
}

fn plan_two() -> grid_plan::Plan {
    plan(r#""repeats": 2"#)
}

/// The plan's criterion picks the pressured workload; a config without it
/// is ranked after the ones that have it, with the reason; a run where no
/// config has it falls back to `kv_cache`, saying so.
#[test]
fn the_pressured_criterion_ranks_configs_without_the_figure_last() {
    let plan = plan(r#""ranking": {"champion_criterion": "kv_cache_pressure"}"#);
    let pressured = |kv: f64, pressure: f64, capacity: u64| {
        let mut m = good(kv, 0.1);
        m.kv_cache_pressure = Some(PressureMeasurement {
            acceleration: Some(grid_core::Estimate {
                median: pressure,
                ci95_low: pressure - 0.1,
                ci95_high: pressure + 0.1,
                samples: 8,
            }),
            warm_hit_rate: Some(0.9),
            kv_capacity_tokens: Some(capacity),
            preemptions: Some(0),
            cache_confirmed_by_server: Some(true),
            ..PressureMeasurement::default()
        });
        m
    };
    let r = results(vec![
        completed(&plan, 0, vec![pressured(6.0, 2.0, 1000)]),
        completed(&plan, 4, vec![pressured(5.9, 4.0, 2000)]),
        completed(&plan, 1, vec![good(9.0, 0.1)]),
    ]);
    let ranking = rank(&plan, &r);
    let decision = ranking.decision.as_ref().unwrap();
    assert_eq!(decision.criterion, ChampionCriterion::KvCachePressure);
    assert_eq!(ranking.champion.as_ref().unwrap().id, plan.configs[4].id);
    assert_eq!(
        ranking.configs[0]
            .pressure
            .as_ref()
            .unwrap()
            .kv_capacity_tokens,
        Some(2000)
    );
    let last = ranking.get(&plan.configs[1].id).unwrap();
    assert_eq!(last.rank, Some(3));
    assert!(
        last.rank_note
            .as_deref()
            .unwrap_or_default()
            .contains("no KV-cache acceleration under pressure figure"),
        "{:?}",
        last.rank_note
    );

    let r = results(vec![
        completed(&plan, 0, vec![good(3.0, 0.1)]),
        completed(&plan, 1, vec![good(2.0, 0.1)]),
    ]);
    let decision = rank(&plan, &r).decision.unwrap();
    assert_eq!(decision.criterion, ChampionCriterion::KvCache);
    assert_eq!(
        decision.requested_criterion,
        ChampionCriterion::KvCachePressure
    );
    assert!(
        decision.text[0].contains("no valid config has that figure"),
        "{:?}",
        decision.text
    );
}

/// The chain, step by step: each case lists candidates (name, confirmed,
/// stability, gmu, throughput) and expects the champion and the rules
/// applied.
#[test]
fn the_tie_break_chain() {
    type Row = (&'static str, bool, Option<f64>, Option<f64>, Option<f64>);
    type Expected = (&'static str, Vec<TieBreakRule>);
    let cases: &[(&str, Vec<Row>, Expected)] = &[
        (
            "one candidate: no step",
            vec![("a", true, Some(0.05), Some(0.9), Some(100.0))],
            ("a", vec![]),
        ),
        (
            "an unconfirmed candidate drops first",
            vec![
                ("a", false, Some(0.01), Some(0.85), Some(200.0)),
                ("b", true, Some(0.05), Some(0.90), Some(100.0)),
            ],
            ("b", vec![TieBreakRule::ConfirmedCacheEffect]),
        ),
        (
            "stability decides by 10 points or more",
            vec![
                ("a", true, Some(0.15), Some(0.85), Some(100.0)),
                ("b", true, Some(0.05), Some(0.90), Some(100.0)),
            ],
            (
                "b",
                vec![
                    TieBreakRule::ConfirmedCacheEffect,
                    TieBreakRule::LowerStabilityDegradation,
                ],
            ),
        ),
        (
            "a stability difference under 10 points ties; memory decides",
            vec![
                ("a", true, Some(0.14), Some(0.85), Some(100.0)),
                ("b", true, Some(0.05), Some(0.90), Some(100.0)),
            ],
            (
                "a",
                vec![
                    TieBreakRule::ConfirmedCacheEffect,
                    TieBreakRule::LowerStabilityDegradation,
                    TieBreakRule::LowerGpuMemoryUtilization,
                ],
            ),
        ),
        (
            "an unset memory share counts as vLLM's 0.90",
            vec![
                ("a", true, Some(0.05), None, Some(100.0)),
                ("b", true, Some(0.05), Some(0.95), Some(100.0)),
            ],
            (
                "a",
                vec![
                    TieBreakRule::ConfirmedCacheEffect,
                    TieBreakRule::LowerStabilityDegradation,
                    TieBreakRule::LowerGpuMemoryUtilization,
                ],
            ),
        ),
        (
            "throughput decides by 5 % or more",
            vec![
                ("a", true, Some(0.05), Some(0.90), Some(100.0)),
                ("b", true, Some(0.05), Some(0.90), Some(110.0)),
            ],
            (
                "b",
                vec![
                    TieBreakRule::ConfirmedCacheEffect,
                    TieBreakRule::LowerStabilityDegradation,
                    TieBreakRule::LowerGpuMemoryUtilization,
                    TieBreakRule::HigherOutputThroughput,
                ],
            ),
        ),
        (
            "everything ties: the lowest config ID",
            vec![
                ("b", true, Some(0.05), Some(0.90), Some(100.0)),
                ("a", true, Some(0.05), Some(0.90), Some(103.0)),
            ],
            (
                "a",
                vec![
                    TieBreakRule::ConfirmedCacheEffect,
                    TieBreakRule::LowerStabilityDegradation,
                    TieBreakRule::LowerGpuMemoryUtilization,
                    TieBreakRule::HigherOutputThroughput,
                    TieBreakRule::StableConfigId,
                ],
            ),
        ),
        (
            "nobody confirmed: the step keeps everyone",
            vec![
                ("a", false, Some(0.05), Some(0.90), Some(100.0)),
                ("b", false, Some(0.05), Some(0.85), Some(100.0)),
            ],
            (
                "b",
                vec![
                    TieBreakRule::ConfirmedCacheEffect,
                    TieBreakRule::LowerStabilityDegradation,
                    TieBreakRule::LowerGpuMemoryUtilization,
                ],
            ),
        ),
    ];
    grid_core::testing::check(cases, |rows| {
        let candidates: Vec<Candidate> = rows
            .iter()
            .map(|(name, confirmed, stability, gmu, tput)| Candidate {
                // The ID orders like the name, so the last rule is readable.
                config: ConfigRef {
                    name: name.to_string(),
                    id: grid_plan::ConfigId(format!("id-{name}")),
                },
                confirmed: *confirmed,
                stability_degradation: *stability,
                gpu_memory_utilization: *gmu,
                output_throughput: *tput,
            })
            .collect();
        let result = tie_break(&candidates).unwrap();
        // The last step applied, and only it, names the winner.
        if let Some((last, rest)) = result.steps.split_last() {
            assert_eq!(last.winner.as_ref(), Some(&result.champion));
            assert!(rest.iter().all(|s| s.winner.is_none()));
        }
        let name: &'static str = rows
            .iter()
            .find(|r| r.0 == result.champion.name)
            .map(|r| r.0)
            .unwrap();
        (name, result.steps.iter().map(|s| s.rule).collect())
    });
}

#[test]
fn repeats_combine_into_one_interval() {
    let a = good(2.0, 0.4);
    let b = good(3.0, 0.4);
    let combined = combine_acceleration(&[&a, &b], 1).unwrap();
    assert_eq!(combined.median, 2.5);
    // Half-width sqrt(0.4² + 0.4²) / 2 ≈ 0.283.
    assert!(
        (combined.ci95_high - 2.5 - 0.2828).abs() < 1e-3,
        "{combined:?}"
    );
    // Per-iteration samples are pooled when present.
    let mut a = good(2.0, 0.4);
    let mut b = good(3.0, 0.4);
    a.acceleration_samples = vec![1.0, 2.0, 3.0];
    b.acceleration_samples = vec![4.0, 5.0];
    let pooled = combine_acceleration(&[&a, &b], 1).unwrap();
    assert_eq!(pooled.median, 3.0);
    assert_eq!(pooled.samples, 5);
    // A repeat without a number makes the whole unmeasured.
    let mut c = good(2.0, 0.4);
    c.kv_cache_acceleration = None;
    assert!(combine_acceleration(&[&a, &c], 1).is_none());
    // The bootstrap is deterministic for a seed and brackets the median.
    let x = bootstrap_median(&[1.0, 2.0, 3.0, 4.0, 10.0], 500, 9).unwrap();
    assert_eq!(
        x,
        bootstrap_median(&[1.0, 2.0, 3.0, 4.0, 10.0], 500, 9).unwrap()
    );
    assert!(x.ci95_low <= 3.0 && 3.0 <= x.ci95_high);
}

/// One bootstrap: the interval the battery reports for a repeat is the one
/// the ranking shows, and pooled repeats go through the same grid-core
/// function with the battery's resample count.
#[test]
fn one_seed_gives_one_interval_in_the_battery_and_the_ranking() {
    let plan = plan("");
    let resamples = 300;
    // What the battery does for a repeat (grid-bench's kv_cache benchmark
    // calls grid_core::bootstrap_median with its config and seed; its own
    // test asserts that).
    let battery = |samples: Vec<f64>, seed: u64| {
        let mut m = good(1.0, 0.0);
        m.kv_cache_acceleration = bootstrap_median(&samples, resamples, seed);
        m.acceleration_samples = samples;
        m.bootstrap_resamples = Some(resamples);
        m
    };
    let first = battery(vec![2.9, 3.4, 3.1, 2.7, 3.3], 11);
    let second = battery(vec![3.6, 3.0, 3.8, 3.2], 12);

    // One repeat: the battery's figure, bit for bit.
    assert_eq!(
        combine_acceleration(&[&first], 99),
        first.kv_cache_acceleration
    );
    let r = results(vec![completed(&plan, 0, vec![first.clone()])]);
    let ranked = rank(&plan, &r);
    assert_eq!(
        ranked
            .get(&plan.configs[0].id)
            .unwrap()
            .kv_cache_acceleration,
        first.kv_cache_acceleration
    );

    // Two repeats: grid-core's cluster bootstrap of the two repeats' values
    // (repeats, then iterations), with the battery's resamples and the
    // config's seed; the point is the pooled median.
    let groups = vec![
        first.acceleration_samples.clone(),
        second.acceleration_samples.clone(),
    ];
    let cluster =
        |resamples, seed| cluster_bootstrap_median(&groups, resamples, seed).map(|c| c.pooled);
    let id = &plan.configs[1].id;
    let expected = cluster(resamples, acceleration_seed(id));
    assert!(expected.is_some());
    let r = results(vec![completed(
        &plan,
        1,
        vec![first.clone(), second.clone()],
    )]);
    let ranked = rank(&plan, &r);
    assert_eq!(ranked.get(id).unwrap().kv_cache_acceleration, expected);
    assert_eq!(
        combine_acceleration(&[&first, &second], 5),
        cluster(resamples, 5)
    );

    // Results written before the resample count was recorded use the
    // battery's default.
    let mut old_first = first.clone();
    let mut old_second = second.clone();
    old_first.bootstrap_resamples = None;
    old_second.bootstrap_resamples = None;
    assert_eq!(
        combine_acceleration(&[&old_first, &old_second], 5),
        cluster(grid_core::DEFAULT_RESAMPLES, 5)
    );
}

#[test]
fn advice_follows_the_evidence() {
    let plan = plan("");
    let mut no_tools = good(3.0, 0.1);
    no_tools.tool_call_success_rate = Some(0.0);
    let r = results(vec![
        completed(&plan, 0, vec![no_tools]),
        launch_failed(&plan, 2, "kv_cache_too_small", true),
        launch_failed(&plan, 3, "invalid_argument", true),
    ]);
    let ranking = rank(&plan, &r);
    // No config is recommended for tool calling on 0 % success.
    let tools = ranking
        .recommendations
        .iter()
        .find(|r| r.use_case == "tool calling")
        .expect("a tool-calling line");
    assert!(tools.config.is_none(), "{tools:?}");
    assert!(tools.why.contains("0 %"), "{}", tools.why);
    // Memory advice only for the memory failure; the other one apart.
    let text = ranking.tradeoffs.join("\n");
    assert!(
        text.contains("1 config(s) could not start for lack of memory"),
        "{text}"
    );
    assert!(
        text.contains("1 config(s) could not start for another reason"),
        "{text}"
    );
}

/// Issue 9, defect 3: a config not measured because of the environment (as
/// older runs recorded a taken port: `launch_failed`, not the config's
/// fault) is no verdict: no champion is named from the others, the ranking
/// says the run is incomplete and why, and `resume` runs it again. A
/// deadline stays a final result.
#[test]
fn an_environment_failure_leaves_the_run_without_a_champion() {
    let plan = plan("");
    let port_taken = launch_failed(&plan, 2, "port_in_use", false);
    assert!(!port_taken.is_final());
    let mut deadline = launch_failed(&plan, 3, "config_deadline", false);
    deadline.outcome = grid_search::store::RunOutcome::Failed;
    assert!(deadline.is_final());
    assert!(launch_failed(&plan, 4, "gpu_out_of_memory", true).is_final());

    let all: Vec<_> = (0..plan.configs.len())
        .map(|i| match i {
            2 => port_taken.clone(),
            3 => deadline.clone(),
            // Far enough apart (≥ 7 %) that no two are equivalent.
            _ => completed(&plan, i, vec![good(2.0 + i as f64 / 2.0, 0.01)]),
        })
        .collect();
    let ranking = rank(&plan, &results(all.clone()));
    assert!(ranking.champion.is_none(), "{:?}", ranking.champion);
    assert!(ranking.decision.is_none());
    assert!(ranking.recommendations.is_empty());
    let incomplete = ranking.incomplete.as_ref().expect("incomplete");
    assert!(incomplete.blocks_champion());
    assert_eq!(incomplete.not_measured.len(), 1);
    assert_eq!(incomplete.not_measured[0].id, plan.configs[2].id);
    assert!(incomplete.not_run.is_empty());
    assert!(
        incomplete.text.contains("port in use") && incomplete.text.contains("no champion"),
        "{}",
        incomplete.text
    );
    let unmeasured = ranking.get(&plan.configs[2].id).expect("ranked");
    assert_eq!(unmeasured.status, ConfigStatus::Failed);
    assert!(
        unmeasured.reasons[0].contains("no verdict on the config"),
        "{:?}",
        unmeasured.reasons
    );

    // Measured again, the run is complete and has its champion.
    let mut all = all;
    all[2] = completed(&plan, 2, vec![good(1.0, 0.01)]);
    let ranking = rank(&plan, &results(all));
    assert!(ranking.incomplete.is_none());
    assert_eq!(
        ranking.champion.map(|c| c.id),
        Some(plan.configs[11].id.clone())
    );
}

/// Configs with no result yet do not block the champion (the run was
/// interrupted); the ranking says it is provisional.
#[test]
fn configs_not_run_yet_make_the_champion_provisional() {
    let plan = plan("");
    let ranking = rank(
        &plan,
        &results(vec![completed(&plan, 0, vec![good(2.0, 0.1)])]),
    );
    assert!(ranking.champion.is_some());
    let incomplete = ranking.incomplete.expect("incomplete");
    assert!(!incomplete.blocks_champion());
    assert_eq!(incomplete.not_run.len(), 11);
    assert!(
        incomplete.text.contains("provisional"),
        "{}",
        incomplete.text
    );
}
