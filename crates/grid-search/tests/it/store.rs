use std::io::Write;

use grid_search::SearchError;
use grid_search::store::{JournalEvent, RunLock, RunStore, derive_seed, write_atomic};

use crate::fixtures::*;

#[test]
fn a_truncated_last_journal_line_is_recovered_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let store = RunStore::at(dir.path(), "run").unwrap();
    std::fs::create_dir_all(&store.dir).unwrap();
    store
        .append_journal(JournalEvent::Warning {
            message: "one".into(),
        })
        .unwrap();
    store
        .append_journal(JournalEvent::Warning {
            message: "two".into(),
        })
        .unwrap();
    // A kill in the middle of the third write.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(store.journal_path())
        .unwrap();
    file.write_all(br#"{"unix_ms":1,"pid":1,"event":"warn"#)
        .unwrap();
    drop(file);
    let read = store.read_journal(true).unwrap();
    assert_eq!(read.entries.len(), 2);
    assert_eq!(read.warnings.len(), 1);
    assert!(
        read.warnings[0].contains("cut short"),
        "{:?}",
        read.warnings
    );
    // Repaired: appending goes on in valid JSONL.
    store
        .append_journal(JournalEvent::Warning {
            message: "three".into(),
        })
        .unwrap();
    let read = store.read_journal(false).unwrap();
    assert_eq!(read.entries.len(), 3);
    assert!(read.warnings.is_empty());
}

#[test]
fn results_are_atomic_and_leftover_temporaries_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = RunStore::at(dir.path(), "run").unwrap();
    let plan = plan("");
    let result = completed(&plan, 3, vec![good(2.0, 0.1)]);
    store.write_result(&result).unwrap();
    let tmp = store
        .results_dir()
        .join(format!(".{}.json.tmp", plan.configs[4].id));
    std::fs::write(&tmp, "{half").unwrap();
    let read = store.read_results().unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[&plan.configs[3].id], result);
    assert!(!tmp.exists());
    // A damaged result is an error naming the file, not a silent skip.
    std::fs::write(store.result_path(&plan.configs[5].id), "{}").unwrap();
    match store.read_results() {
        Err(SearchError::DamagedResult { path, .. }) => {
            assert!(path.ends_with(format!("{}.json", plan.configs[5].id)))
        }
        other => panic!("{other:?}"),
    }
    write_atomic(&dir.path().join("x"), b"y").unwrap();
    assert_eq!(std::fs::read(dir.path().join("x")).unwrap(), b"y");
}

#[test]
fn the_lock_refuses_a_live_owner_and_takes_over_a_dead_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = RunStore::at(dir.path(), "run").unwrap();
    std::fs::create_dir_all(&store.dir).unwrap();
    let host = grid_sys::hostname();
    let mut sleeper = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let owner = serde_json::json!({"pid": sleeper.id(), "host": host, "start_ticks": null, "since_unix_ms": 0});
    std::fs::write(store.lock_path(), owner.to_string()).unwrap();
    match RunLock::acquire(&store) {
        Err(SearchError::Locked {
            owner: Some(owner), ..
        }) => assert_eq!(owner.process.pid, sleeper.id()),
        other => panic!("{other:?}"),
    }
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    let lock = RunLock::acquire(&store).expect("a dead owner's lock is taken over");
    let text = std::fs::read_to_string(store.lock_path()).unwrap();
    assert!(text.contains(&format!("\"pid\":{}", std::process::id())));
    drop(lock);
    assert!(!store.lock_path().exists());
    assert!(RunStore::at(dir.path(), "../evil").is_err());
}

/// Seeds and hashes moved to grid-core bit for bit: stable config IDs,
/// recorded seeds and profile hashes of existing runs stay valid.
#[test]
fn derived_seeds_and_hashes_are_unchanged() {
    let id = grid_plan::ConfigId("abc".into());
    // fnv1a64("42:abc:0"), as the derivation recorded in manifests says.
    assert_eq!(derive_seed(42, &id, 0), 16_120_428_877_593_774_663);
    // grid-plan's ID formula goes through the same function.
    for text in ["", "a", "foobar", "42:abc:0", "{\"max-model-len\":8192}"] {
        assert_eq!(
            grid_core::fnv1a64(text.as_bytes()),
            grid_plan::fnv1a64(text.as_bytes()),
            "{text:?}"
        );
    }
    assert_eq!(
        grid_search::search::profile_hash("foobar"),
        "fnv1a64:85944171f73967e8"
    );
}
