use std::os::unix::process::CommandExt;

use grid_sys::{
    Owner, Signal, group_alive, hostname, pid_alive, process_matches, process_start_ticks,
    signal_group, signal_process,
};

#[test]
fn this_process_is_alive_and_has_a_start_time() {
    let me = std::process::id();
    assert!(pid_alive(me));
    let ticks = process_start_ticks(me).expect("procfs");
    assert!(process_matches(me, Some(ticks)));
    assert!(
        !process_matches(me, Some(ticks + 1)),
        "another start time is another process"
    );
    assert!(process_matches(me, None));
}

#[test]
fn impossible_pids_are_never_alive_and_never_signalled() {
    for pid in [0, u32::MAX, i32::MAX as u32 + 1] {
        assert!(!pid_alive(pid), "{pid}");
        assert!(!group_alive(pid), "{pid}");
        assert!(signal_process(pid, Signal::Kill).is_err(), "{pid}");
        assert!(signal_group(pid, Signal::Kill).is_err(), "{pid}");
    }
}

#[test]
fn a_killed_child_is_dead_even_before_it_is_reaped() {
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .process_group(0)
        .spawn()
        .expect("sleep");
    let pid = child.id();
    assert!(pid_alive(pid));
    assert!(group_alive(pid), "its own group");
    assert!(
        signal_group(pid, Signal::Kill).expect("signal"),
        "delivered"
    );
    // Unreaped, it is a zombie: not alive, for the lock and the sweeps.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while pid_alive(pid) {
        assert!(std::time::Instant::now() < deadline, "still alive");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.wait().expect("reap");
    assert!(!group_alive(pid));
    assert!(
        !signal_process(pid, Signal::Terminate).expect("no error"),
        "nothing to signal"
    );
    assert!(
        !signal_group(pid, Signal::Terminate).expect("no error"),
        "no group"
    );
}

#[test]
fn signal_numbers_are_the_kernel_ones() {
    assert_eq!(
        [
            Signal::Hangup.number(),
            Signal::Interrupt.number(),
            Signal::Kill.number(),
            Signal::Terminate.number()
        ],
        [1, 2, 9, 15]
    );
}

#[test]
fn the_host_name_is_the_kernel_one() {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("procfs");
    assert_eq!(hostname(), kernel.trim());
}

#[test]
fn an_owner_is_alive_while_its_process_runs_and_always_on_another_host() {
    let me = Owner::current();
    assert_eq!(me.pid, std::process::id());
    assert!(me.is_alive());
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("sleep");
    let pid = child.id();
    // With its start time recorded, a reuse of the pid cannot pass for it.
    let start_ticks = process_start_ticks(pid);
    assert!(start_ticks.is_some());
    child.kill().expect("kill");
    child.wait().expect("reap");
    let gone = Owner {
        pid,
        start_ticks,
        host: hostname(),
    };
    assert!(!gone.is_alive());
    // A pid on another machine cannot be checked: never treat it as dead.
    let elsewhere = Owner {
        host: format!("{}-elsewhere", hostname()),
        ..gone
    };
    assert!(elsewhere.is_alive());
    // The JSON keys of lock files, pid files and labels.
    let json = serde_json::to_value(&me).expect("json");
    let mut keys: Vec<&str> = json
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, ["host", "pid", "start_ticks"]);
}
