//! kill -9 at random moments of a 4-config dry run, each followed by
//! `resume`; prints how each iteration ended (see tests/it/kill_loop.rs,
//! which this shares with the test suite's short version).
//!
//! Run: `cargo bench -p vllm-grid --bench kill_loop -- 50` (N iterations,
//! default 50; `KILL_LOOP_SEED` fixes the kill times).

#[allow(dead_code)]
#[path = "../tests/it/common.rs"]
mod common;
#[allow(dead_code)]
#[path = "../tests/it/kill_loop.rs"]
mod kill_loop;

fn main() {
    let n = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(50);
    let seed = std::env::var("KILL_LOOP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
    let started = std::time::Instant::now();
    let window = kill_loop::baseline();
    println!(
        "uninterrupted 4-config dry run: {:.1} s (kills fall uniformly in [0, that] after the manifest appears); seed {seed}",
        window.as_secs_f64()
    );
    let iterations = kill_loop::kill_loop(n, window, seed, &|i, it| {
        println!(
            "{:>3}: killed after {:>5.2} s at {:<16} orphans {} resume {:?}{}",
            i + 1,
            it.killed_after.as_secs_f64(),
            it.moment,
            it.orphans,
            it.resume_code,
            if it.problems.is_empty() {
                String::new()
            } else {
                format!("  PROBLEM: {}", it.problems.join("; "))
            }
        );
    });
    print!("{}", kill_loop::summary(&iterations));
    println!("total {:.0} s", started.elapsed().as_secs_f64());
    if iterations.iter().any(|i| !i.problems.is_empty()) {
        std::process::exit(1);
    }
}
