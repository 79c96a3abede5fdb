use grid_core::bootstrap_median;
use grid_search::rank::{ConfigStatus, acceleration_seed, combine_acceleration, rank};

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
fn the_champion_is_the_highest_median_and_significance_is_judged_by_overlap() {
    let plan = plan("");
    // Clear lead: intervals apart.
    let r = results(vec![
        completed(&plan, 0, vec![good(2.0, 0.1)]),
        completed(&plan, 1, vec![good(3.0, 0.1)]),
        launch_failed(&plan, 2, "kv_cache_too_small", true),
    ]);
    let ranking = rank(&plan, &r);
    assert_eq!(ranking.champion.as_ref().unwrap().id, plan.configs[1].id);
    assert_eq!(ranking.configs[0].rank, Some(1));
    assert_eq!(ranking.configs[1].rank, Some(2));
    let sig = ranking.significance.as_ref().unwrap();
    assert!(sig.significant, "{}", sig.text);
    assert_eq!(sig.repeats_needed, None);

    // Overlap: 3.0 ± 0.5 against 2.8 ± 0.5 with 1 repeat: the gap 0.2
    // needs (1.0 / 0.2)² = 25 repeats.
    let r = results(vec![
        completed(&plan, 0, vec![good(2.8, 0.5)]),
        completed(&plan, 1, vec![good(3.0, 0.5)]),
    ]);
    let ranking = rank(&plan, &r);
    let sig = ranking.significance.as_ref().unwrap();
    assert!(!sig.significant);
    assert_eq!(sig.repeats_needed, Some(25), "{}", sig.text);
    assert!(
        sig.text.contains("NOT significant") && sig.text.contains("about 25 repeats"),
        "{}",
        sig.text
    );
    assert_eq!(ranking.recommendations.len(), 3);
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

    // Two repeats: the pooled values through the same bootstrap, with the
    // battery's resamples and the config's seed.
    let pooled: Vec<f64> = first
        .acceleration_samples
        .iter()
        .chain(&second.acceleration_samples)
        .copied()
        .collect();
    let id = &plan.configs[1].id;
    let expected = bootstrap_median(&pooled, resamples, acceleration_seed(id));
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
        bootstrap_median(&pooled, resamples, 5)
    );

    // Results written before the resample count was recorded use the
    // battery's default.
    let mut old_first = first.clone();
    let mut old_second = second.clone();
    old_first.bootstrap_resamples = None;
    old_second.bootstrap_resamples = None;
    assert_eq!(
        combine_acceleration(&[&old_first, &old_second], 5),
        bootstrap_median(&pooled, grid_core::DEFAULT_RESAMPLES, 5)
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
            _ => completed(&plan, i, vec![good(2.0 + i as f64 / 10.0, 0.01)]),
        })
        .collect();
    let ranking = rank(&plan, &results(all.clone()));
    assert!(ranking.champion.is_none(), "{:?}", ranking.champion);
    assert!(ranking.significance.is_none());
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
