//! Configs side by side on GPU slots, and one unit run from its spec (what
//! `vllm-grid worker` does), on the simulator.

use std::collections::BTreeMap;

use grid_container::GpuSlot;
use grid_search::search::executor::{UnitEndRecord, UnitResult, UnitSpec, run_unit_spec};
use grid_search::store::{JournalEvent, RunOutcome};
use grid_search::{QuietProgress, SearchOptions};
use tokio_util::sync::CancellationToken;

use crate::sim::{Sim, plan, profile};

fn slot(index: u32, devices: &[&str]) -> GpuSlot {
    GpuSlot {
        index,
        devices: devices.iter().map(|d| d.to_string()).collect(),
    }
}

fn four_configs() -> grid_plan::Plan {
    let settings = |u: f64, prefix: bool| {
        format!(
            r#"{{"gpu_memory_utilization": {u}, "enable_chunked_prefill": true, "enable_prefix_caching": {prefix}}}"#
        )
    };
    let configs = [
        ("u85", settings(0.85, true)),
        ("u90", settings(0.90, true)),
        ("u95", settings(0.95, true)),
        ("u85-noprefix", settings(0.85, false)),
    ];
    let borrowed: Vec<(&str, &str)> = configs.iter().map(|(n, s)| (*n, s.as_str())).collect();
    plan(&borrowed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_slots_give_the_outcomes_of_one_and_say_who_ran_beside_whom() {
    let sim = Sim::new();
    // 2 GiB held by others: 0.95 fails the free-memory check, the rest start.
    let text = profile(None, &["--sim-gpu-memory-used-gib", "2"]);
    let one = sim.setup("one-slot", four_configs(), &text);
    sim.run(&one, SearchOptions::default())
        .await
        .expect("the 1-slot search runs");
    let two = sim.setup("two-slots", four_configs(), &text);
    let slots = vec![slot(0, &["0", "1"]), slot(1, &["2", "3"])];
    sim.run(
        &two,
        SearchOptions {
            slots: slots.clone(),
            ..SearchOptions::default()
        },
    )
    .await
    .expect("the 2-slot search runs");
    sim.assert_nothing_running();

    let outcomes = |run_id: &str| -> BTreeMap<String, RunOutcome> {
        sim.store(run_id)
            .read_results()
            .expect("results read")
            .into_iter()
            .map(|(id, r)| (id.to_string(), r.outcome))
            .collect()
    };
    let single = outcomes("one-slot");
    assert_eq!(single.len(), 4);
    assert_eq!(
        single
            .values()
            .filter(|o| **o == RunOutcome::Completed)
            .count(),
        3,
        "{single:?}"
    );
    assert_eq!(outcomes("two-slots"), single);

    let results = sim.store("two-slots").read_results().expect("results read");
    let repeats: Vec<_> = results.values().flat_map(|r| &r.repeats).collect();
    assert!(!repeats.is_empty());
    for repeat in &repeats {
        let on = repeat.slot.as_ref().expect("each repeat records its slot");
        assert!(slots.contains(on), "{on:?}");
    }
    assert!(
        repeats.iter().any(|r| !r.neighbours.is_empty()),
        "some repeat ran beside another config: {repeats:#?}"
    );
    // The 1-slot run records no slot.
    let alone = sim.store("one-slot").read_results().expect("results read");
    assert!(
        alone
            .values()
            .flat_map(|r| &r.repeats)
            .all(|r| r.slot.is_none() && r.neighbours.is_empty())
    );
    let report =
        std::fs::read_to_string(sim.store("two-slots").dir.join("report.md")).expect("report.md");
    assert!(report.contains("## GPU slots"), "{report}");
    let report =
        std::fs::read_to_string(sim.store("one-slot").dir.join("report.md")).expect("report.md");
    assert!(!report.contains("## GPU slots"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_round_trips_through_its_spec_and_result_files() {
    let sim = Sim::new();
    let text = profile(None, &[]);
    let setup = sim.setup("worker", four_configs(), &text);
    let options = SearchOptions::default();
    let config = &setup.plan.configs[0];
    let spec = UnitSpec::new(
        &setup,
        "process",
        config,
        1,
        Some(slot(1, &["2", "3"])),
        &options,
    );
    let spec_path = sim.dir.path().join("unit.json");
    spec.write(&spec_path).expect("the spec is written");
    let read = UnitSpec::read(&spec_path).expect("the spec reads back");
    assert_eq!(read, spec);

    let result = run_unit_spec(
        &sim.backend,
        &setup,
        &read,
        &options,
        &CancellationToken::new(),
        &QuietProgress,
    )
    .await
    .expect("the unit runs");
    sim.assert_nothing_running();
    let out = sim.dir.path().join("unit-result.json");
    result.write(&out).expect("the result is written");
    let back = UnitResult::read(&out).expect("the result reads back");
    // serde_json's float parsing may move the last digit; the rest is exact.
    let without_figures = |r: &UnitResult| {
        let mut r = r.clone();
        if let UnitEndRecord::Measured { result } = &mut r.end {
            result.measurement = Default::default();
        }
        r
    };
    assert_eq!(without_figures(&back), without_figures(&result));

    let UnitEndRecord::Measured { result: repeat } = &back.end else {
        panic!("the unit was measured: {back:#?}");
    };
    assert_eq!(
        (back.config_id.clone(), back.repeat, repeat.repeat),
        (config.id.clone(), 1, 1)
    );
    assert_eq!(repeat.slot, Some(slot(1, &["2", "3"])));
    assert!(repeat.measurement.kv_cache_acceleration.is_some());
    // The worker wrote no journal; its events are in the result.
    assert!(!sim.store("worker").journal_path().exists());
    assert!(
        back.journal
            .iter()
            .any(|e| matches!(e, JournalEvent::BatteryFinished { repeat: 1, .. })),
        "{:#?}",
        back.journal
    );
    // No secret: the spec holds the profile's references, not values.
    let spec_text = std::fs::read_to_string(&spec_path).expect("spec text");
    assert!(!spec_text.contains("sk-"), "{spec_text}");
}
