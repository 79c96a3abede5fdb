//! Issue 9, defect 2: the run lock is exclusive. Many starters at once,
//! threads or processes, over many rounds: exactly one owns the run each
//! time; a killed holder's lock is free; two searches of one new run ID,
//! or several resumes of one run, never both get past the lock.

use std::io::{BufReader, Write};
use std::process::Child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::Duration;

use grid_container::{Backend, ProcessBackend, ProcessBackendConfig};
use grid_search::store::{RunLock, RunStore};
use grid_search::{Progress, SearchError, SearchEvent, SearchMode, SearchOptions, run_search};
use tokio_util::sync::CancellationToken;

use crate::sim::{STARTS, Sim, plan, profile};

#[test]
fn exactly_one_of_many_threads_takes_the_lock_every_round() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RunStore::at(dir.path(), "run").expect("store");
    const THREADS: usize = 8;
    for round in 0..200 {
        let start = Arc::new(Barrier::new(THREADS));
        let tried = Arc::new(Barrier::new(THREADS));
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let (store, start, tried) = (store.clone(), start.clone(), tried.clone());
                std::thread::spawn(move || {
                    start.wait();
                    let lock = RunLock::acquire(&store);
                    // Held until every thread has tried.
                    tried.wait();
                    match lock {
                        Ok(_) => true,
                        Err(SearchError::Locked { .. }) => false,
                        Err(other) => panic!("round {round}: {other:?}"),
                    }
                })
            })
            .collect();
        let winners = handles
            .into_iter()
            .map(|h| h.join().expect("no panic"))
            .filter(|won| *won)
            .count();
        assert_eq!(winners, 1, "round {round}");
        assert!(!store.lock_path().exists(), "round {round}: released");
    }
}

/// A child process in the `lock` role, waiting for [`go`].
fn lock_child(dir: &std::path::Path) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = crate::child::command("lock", &[dir.to_str().expect("utf-8 path")])
        .spawn()
        .expect("start a child");
    let stdout = BufReader::new(child.stdout.take().expect("its stdout"));
    (child, stdout)
}

/// The start signal: the child tries the lock now.
fn go(child: &mut Child) {
    let stdin = child.stdin.as_mut().expect("its stdin");
    stdin.write_all(b"go\n").expect("signal the child");
    stdin.flush().expect("signal the child");
}

fn first_line(stdout: &mut BufReader<std::process::ChildStdout>) -> String {
    crate::child::answer(stdout)
}

#[test]
fn exactly_one_of_many_processes_takes_the_lock_every_round() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run_dir = dir.path().join("run");
    const CHILDREN: usize = 8;
    for round in 0..40 {
        // Signalled together once all are up; each holds what it got
        // until its stdin closes.
        let mut children: Vec<_> = (0..CHILDREN).map(|_| lock_child(&run_dir)).collect();
        // Let them all reach their read of the signal.
        std::thread::sleep(Duration::from_millis(100));
        for (child, _) in &mut children {
            go(child);
        }
        let answers: Vec<String> = children
            .iter_mut()
            .map(|(_, stdout)| first_line(stdout))
            .collect();
        for (child, _) in &mut children {
            drop(child.stdin.take());
            assert!(child.wait().expect("the child ends").success());
        }
        assert_eq!(
            answers.iter().filter(|a| *a == "won").count(),
            1,
            "round {round}: {answers:?}"
        );
        assert!(
            answers.iter().all(|a| a == "won" || a == "locked"),
            "{answers:?}"
        );
    }
}

#[test]
fn a_killed_holders_lock_is_free_and_a_live_ones_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RunStore::at(dir.path(), "run").expect("store");
    let (mut child, mut stdout) = lock_child(&store.dir);
    go(&mut child);
    assert_eq!(first_line(&mut stdout), "won");
    match RunLock::acquire(&store) {
        Err(err @ SearchError::Locked { .. }) => {
            let SearchError::Locked { owner, .. } = &err else {
                unreachable!()
            };
            assert_eq!(owner.as_ref().map(|o| o.process.pid), Some(child.id()));
            assert!(err.to_string().contains(&format!("process {}", child.id())));
            assert_eq!(err.kind(), grid_search::ErrorKind::EnvironmentUnavailable);
        }
        other => panic!("{other:?}"),
    }
    // SIGKILL: its lock file stays, naming a dead process; the kernel
    // released the flock.
    child.kill().expect("kill");
    child.wait().expect("reaped");
    assert!(store.lock_path().exists());
    let lock = RunLock::acquire(&store).expect("a dead holder's lock is free");
    assert_eq!(lock.owner().process.pid, std::process::id());
    let text = std::fs::read_to_string(store.lock_path()).expect("the lock file");
    assert!(
        text.contains(&format!("\"pid\":{}", std::process::id())),
        "{text}"
    );
}

fn backend(dir: &std::path::Path) -> Backend {
    Backend::Process(ProcessBackend::new(ProcessBackendConfig::new(
        dir.join(".pids"),
    )))
}

/// Runs `search` on its own thread and runtime, as a separate process would.
fn on_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    std::thread::spawn(work)
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(future)
}

#[test]
fn two_searches_of_one_new_run_id_never_both_start_it() {
    let sim = Sim::new();
    const STARTERS: usize = 6;
    for round in 0..20 {
        let run_id = format!("same-{round}");
        let setup = Arc::new(sim.setup(&run_id, plan(&[("only", STARTS)]), &profile(None, &[])));
        let start = Arc::new(Barrier::new(STARTERS));
        let handles: Vec<_> = (0..STARTERS)
            .map(|_| {
                let (setup, start, logs) = (setup.clone(), start.clone(), sim.logs());
                on_thread(move || {
                    let backend = backend(&logs);
                    // Cancelled at once: the winner opens the run and stops
                    // before its first config.
                    let cancel = CancellationToken::new();
                    cancel.cancel();
                    start.wait();
                    block_on(run_search(
                        &backend,
                        &setup,
                        &SearchOptions::default(),
                        &cancel,
                        &grid_search::QuietProgress,
                    ))
                })
            })
            .collect();
        let mut winners = 0;
        for handle in handles {
            match handle.join().expect("no panic") {
                Ok(outcome) => {
                    assert!(outcome.interrupted);
                    winners += 1;
                }
                Err(SearchError::RunExists { .. } | SearchError::Locked { .. }) => {}
                Err(other) => panic!("round {round}: {other:?}"),
            }
        }
        assert_eq!(winners, 1, "round {round}");
    }
}

/// Holds the winner at its start until every other starter has given up.
struct HoldUntilOthersReturn {
    others_done: Arc<(Mutex<usize>, Condvar)>,
    others: usize,
    started: AtomicUsize,
}

impl Progress for HoldUntilOthersReturn {
    fn event(&self, event: &SearchEvent) {
        if let SearchEvent::RunStarted { .. } = event {
            self.started.fetch_add(1, Ordering::SeqCst);
            let (count, changed) = &*self.others_done;
            let guard = count.lock().expect("the counter");
            let (_guard, timeout) = changed
                .wait_timeout_while(guard, Duration::from_secs(30), |done| *done < self.others)
                .expect("the counter");
            assert!(
                !timeout.timed_out(),
                "the others did not all give up while a run was started"
            );
        }
    }
}

#[test]
fn of_many_resumes_of_one_run_exactly_one_runs() {
    let sim = Sim::new();
    let setup = Arc::new(sim.setup("resumed", plan(&[("only", STARTS)]), &profile(None, &[])));
    let cancel = CancellationToken::new();
    cancel.cancel();
    block_on(run_search(
        &sim.backend,
        &setup,
        &SearchOptions::default(),
        &cancel,
        &grid_search::QuietProgress,
    ))
    .expect("the run is opened");
    const STARTERS: usize = 6;
    for round in 0..10 {
        let others_done = Arc::new((Mutex::new(0), Condvar::new()));
        let start = Arc::new(Barrier::new(STARTERS));
        let handles: Vec<_> = (0..STARTERS)
            .map(|_| {
                let (setup, start, logs, others_done) = (
                    setup.clone(),
                    start.clone(),
                    sim.logs(),
                    others_done.clone(),
                );
                on_thread(move || {
                    let backend = backend(&logs);
                    let cancel = CancellationToken::new();
                    cancel.cancel();
                    let progress = HoldUntilOthersReturn {
                        others_done: others_done.clone(),
                        others: STARTERS - 1,
                        started: AtomicUsize::new(0),
                    };
                    let options = SearchOptions {
                        mode: SearchMode::Resume {
                            allow_changes: false,
                        },
                        ..SearchOptions::default()
                    };
                    start.wait();
                    let result =
                        block_on(run_search(&backend, &setup, &options, &cancel, &progress));
                    if result.is_err() {
                        let (count, changed) = &*others_done;
                        *count.lock().expect("the counter") += 1;
                        changed.notify_all();
                    }
                    result
                })
            })
            .collect();
        let mut winners = 0;
        for handle in handles {
            match handle.join().expect("no panic (a second winner times out)") {
                Ok(_) => winners += 1,
                Err(SearchError::Locked { .. }) => {}
                Err(other) => panic!("round {round}: {other:?}"),
            }
        }
        assert_eq!(winners, 1, "round {round}");
    }
}
