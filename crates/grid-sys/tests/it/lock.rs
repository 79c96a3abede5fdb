use grid_sys::FileLock;

use crate::scratch_dir;

#[test]
fn one_holder_at_a_time_and_released_on_drop() {
    let scratch = scratch_dir();
    let dir = scratch.path();
    let path = dir.join("lock");
    let held = FileLock::try_exclusive(&path)
        .expect("opens")
        .expect("free at first");
    // A second open file description, even in this process, is refused.
    assert!(FileLock::try_exclusive(&path).expect("opens").is_none());
    assert_eq!(held.path(), path);
    drop(held);
    let again = FileLock::try_exclusive(&path).expect("opens");
    assert!(again.is_some(), "released when the holder is dropped");
    drop(again);
}

#[test]
fn a_lock_held_by_another_process_is_refused_and_freed_by_its_kill() {
    let scratch = scratch_dir();
    let dir = scratch.path();
    let path = dir.join("lock");
    // The shell opens the file as fd 9, flock(1) locks that open file
    // description, and `exec sleep` keeps it: the sleeping process is the
    // only holder, so killing it must free the lock.
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg("exec 9>>\"$1\" && flock --exclusive 9 && exec sleep 30")
        .arg("sh")
        .arg(&path)
        .spawn()
        .expect("sh and flock(1) (util-linux) are part of the base system");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match FileLock::try_exclusive(&path).expect("opens") {
            None => break,
            Some(lock) => drop(lock),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the child never took it"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert!(
        FileLock::try_exclusive(&path).expect("opens").is_some(),
        "a killed holder's lock is free at once"
    );
}
