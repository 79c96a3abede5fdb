//! The one table-driven test helper, shared by the crates' test suites
//! (the design card: data-driven tests go through one `check()`).

use std::fmt::Debug;

/// Runs `actual` on each case's input and compares with the expectation;
/// every case runs, and all mismatches are reported at once.
///
/// # Panics
/// When a case's result differs from its expectation: it is a test helper.
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
