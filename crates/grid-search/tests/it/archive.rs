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

    // Beaten within the noise: still holds.
    let new = results(vec![
        completed(&plan, 0, vec![good(2.9, 0.3)]),
        completed(&plan, 1, vec![good(3.0, 0.3)]),
    ]);
    let repro = compare(&old, &new_manifest, &rank(&plan, &new));
    assert!(repro.champion_holds, "{}", repro.why);
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
}
