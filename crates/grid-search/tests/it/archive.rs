use grid_search::archive::{Archive, compare};
use grid_search::rank::rank;

use crate::fixtures::*;

fn archive(plan: &grid_plan::Plan, list: Vec<grid_search::ConfigResult>) -> Archive {
    Archive {
        dir: "archives/x".into(),
        manifest: manifest(plan, "old"),
        results: results(list),
        profile_text: String::new(),
    }
}

#[test]
fn reproduce_compares_config_by_config_and_judges_the_champion() {
    let plan = plan("");
    let old = archive(
        &plan,
        vec![
            completed(&plan, 0, vec![good(3.0, 0.2)]),
            completed(&plan, 1, vec![good(2.0, 0.2)]),
        ],
    );
    // Same numbers: holds, every config within.
    let new = results(vec![
        completed(&plan, 0, vec![good(3.1, 0.2)]),
        completed(&plan, 1, vec![good(2.0, 0.2)]),
    ]);
    let new_manifest = manifest(&plan, "new");
    let repro = compare(&old, &new_manifest, &rank(&plan, &new));
    assert!(repro.champion_holds, "{}", repro.why);
    assert!(repro.setup_changes.is_empty(), "{:?}", repro.setup_changes);
    assert_eq!(repro.configs[0].verdict, "within");

    // The champion no longer starts: not confirmed, the status change shown.
    let new = results(vec![
        launch_failed(&plan, 0, "gpu_out_of_memory", true),
        completed(&plan, 1, vec![good(2.0, 0.2)]),
    ]);
    let mut changed = manifest(&plan, "new");
    changed.profile_hash = "fnv1a64:1".into();
    let repro = compare(&old, &changed, &rank(&plan, &new));
    assert!(!repro.champion_holds);
    assert!(repro.why.contains("rejected"), "{}", repro.why);
    assert!(
        repro
            .setup_changes
            .iter()
            .any(|c| c.starts_with("profile changed"))
    );
    let first = repro
        .configs
        .iter()
        .find(|c| c.id == plan.configs[0].id)
        .unwrap();
    assert_eq!(first.verdict, "status_changed");
    assert!(repro.render().contains("NOT confirmed"));

    // Behind within the noise, neither equivalent nor beaten: the new run
    // does not confirm it (and says why).
    let new = results(vec![
        completed(&plan, 0, vec![good(2.9, 0.3)]),
        completed(&plan, 1, vec![good(3.0, 0.3)]),
    ]);
    let repro = compare(&old, &new_manifest, &rank(&plan, &new));
    assert!(!repro.champion_holds, "{}", repro.why);
    assert!(repro.why.contains("does not settle it"), "{}", repro.why);
    // Beaten clearly: does not.
    let new = results(vec![
        completed(&plan, 0, vec![good(2.0, 0.1)]),
        completed(&plan, 1, vec![good(3.0, 0.1)]),
    ]);
    let repro = compare(&old, &new_manifest, &rank(&plan, &new));
    assert!(!repro.champion_holds);
    assert_eq!(
        repro
            .configs
            .iter()
            .find(|c| c.id == plan.configs[1].id)
            .unwrap()
            .verdict,
        "outside"
    );
    assert!(
        repro
            .why
            .contains("significantly better than the archived champion"),
        "{}",
        repro.why
    );
}

/// What was decided is compared: equivalent configs whose order flips hold
/// when the same tie-break chooses; another rule choosing does not.
#[test]
fn reproduce_compares_the_decision_not_the_order() {
    let plan = plan("");
    // Configs 0 and 2 share gpu-memory-utilization 0.85: between them the
    // output throughput decides.
    assert_eq!(
        plan.configs[0].settings.gpu_memory_utilization,
        plan.configs[2].settings.gpu_memory_utilization
    );
    let with = |acceleration: f64, throughput: f64, stability: f64| {
        let mut m = good(acceleration, 0.03);
        m.output_throughput = Some(throughput);
        m.stability_degradation = Some(stability);
        m
    };
    let old = archive(
        &plan,
        vec![
            completed(&plan, 0, vec![with(3.00, 500.0, 0.05)]),
            completed(&plan, 2, vec![with(2.98, 400.0, 0.05)]),
        ],
    );
    let old_ranking = rank(&old.manifest.plan, &old.results);
    assert_eq!(
        old_ranking.champion.as_ref().unwrap().id,
        plan.configs[0].id
    );
    let new_manifest = manifest(&plan, "new");
    let cases = [
        // The order flips, the same champion: holds.
        (
            "same champion",
            (2.98, 500.0, 0.05),
            (3.00, 400.0, 0.05),
            true,
            "champion again",
        ),
        // Another champion, equivalent, chosen by throughput as before: holds.
        (
            "equivalent, same rule",
            (3.00, 400.0, 0.05),
            (2.98, 500.0, 0.05),
            true,
            "the same tie-break chose (higher output throughput)",
        ),
        // Another champion, equivalent, but stability chose this time.
        (
            "equivalent, another rule",
            (3.00, 500.0, 0.17),
            (2.98, 400.0, 0.05),
            false,
            "another tie-break chose",
        ),
    ];
    for (name, first, second, holds, words) in cases {
        let new = results(vec![
            completed(&plan, 0, vec![with(first.0, first.1, first.2)]),
            completed(&plan, 2, vec![with(second.0, second.1, second.2)]),
        ]);
        let repro = compare(&old, &new_manifest, &rank(&plan, &new));
        assert_eq!(repro.champion_holds, holds, "{name}: {}", repro.why);
        assert!(repro.why.contains(words), "{name}: {}", repro.why);
    }
}
