use grid_bench::stats::{Distribution, bootstrap_median, percentile_sorted, relative_change};

use crate::check;

#[test]
fn percentiles_interpolate_like_numpy() {
    // Expected values computed with numpy.percentile (linear) by hand:
    // [1,2,3,4]: p50 = 2.5, p90 = 3.7, p99 = 3.97.
    check(
        &[
            ("p50 of four", 50.0, 2.5),
            ("p90 of four", 90.0, 3.7),
            ("p99 of four", 99.0, 3.97),
            ("p0", 0.0, 1.0),
            ("p100", 100.0, 4.0),
        ],
        |percent| (percentile_sorted(&[1.0, 2.0, 3.0, 4.0], *percent) * 1000.0).round() / 1000.0,
    );
}

#[test]
fn distribution_uses_population_std_and_ignores_non_finite_values() {
    let d = Distribution::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0, f64::NAN]).expect("values");
    assert_eq!((d.mean, d.std, d.median, d.samples), (5.0, 2.0, 4.5, 8));
    assert_eq!(Distribution::of(&[]), None);
    assert_eq!(Distribution::of(&[f64::INFINITY]), None);
}

#[test]
fn bootstrap_is_reproducible_from_its_seed_and_brackets_the_median() {
    let values = [3.1, 2.9, 3.4, 3.0, 2.7, 3.3, 3.2];
    let a = bootstrap_median(&values, 1000, 42).expect("estimate");
    let b = bootstrap_median(&values, 1000, 42).expect("estimate");
    assert_eq!(a, b);
    assert_eq!(a.median, 3.1);
    assert_eq!(a.samples, 7);
    assert!(a.ci95_low <= a.median && a.median <= a.ci95_high, "{a:?}");
    assert!(a.ci95_low >= 2.7 && a.ci95_high <= 3.4, "{a:?}");
    assert_eq!(bootstrap_median(&[], 100, 1), None);
    let single = bootstrap_median(&[2.0], 100, 1).expect("estimate");
    assert_eq!((single.ci95_low, single.ci95_high), (2.0, 2.0));
}

#[test]
fn relative_change_has_no_value_without_a_positive_baseline() {
    check(
        &[
            ("20 % slower", (10.0, 12.0), Some(20)),
            ("faster", (10.0, 5.0), Some(-50)),
            ("zero baseline", (0.0, 5.0), None),
        ],
        |(before, after)| relative_change(*before, *after).map(|c| (c * 100.0).round() as i64),
    );
}
