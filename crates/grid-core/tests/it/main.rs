//! Integration tests of grid-core. Tabular cases go through `check`, which
//! runs every case and reports all mismatches at once.

mod architecture;
mod bootstrap;
mod estimate;
mod hash;
mod rng;
mod secret;
mod stats;

use std::fmt::Debug;

/// Runs `actual` on each case's input and compares with the expectation.
pub fn check<I: Debug, O: Debug + PartialEq>(cases: &[(&str, I, O)], actual: impl Fn(&I) -> O) {
    let mut failures = Vec::new();
    for (name, input, expected) in cases {
        let got = actual(input);
        if &got != expected {
            failures.push(format!(
                "case {name:?}: input {input:?}\n  expected {expected:?}\n  got      {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
