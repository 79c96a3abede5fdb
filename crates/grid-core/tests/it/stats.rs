use grid_core::{Distribution, mean, median, percentile_sorted, relative_change};

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
fn median_and_mean_have_no_value_for_an_empty_sample() {
    check(
        &[
            ("odd", vec![3.0, 1.0, 2.0], (Some(2.0), Some(2.0))),
            ("even", vec![4.0, 1.0, 2.0, 3.0], (Some(2.5), Some(2.5))),
            (
                "non-finite ignored",
                vec![1.0, f64::NAN, 3.0],
                (Some(2.0), Some(2.0)),
            ),
            ("empty", vec![], (None, None)),
            ("only non-finite", vec![f64::INFINITY], (None, None)),
        ],
        |values| (median(values), mean(values)),
    );
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
