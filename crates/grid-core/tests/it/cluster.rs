//! The two-level bootstrap against cases whose between-group variance is
//! known: groups with a tiny spread inside and far-apart means.

use grid_core::{Estimate, bootstrap_median, cluster_bootstrap_median, cluster_bootstrap_ratio};

use crate::check;

/// `count` values around `mean`, spread by ±`spread`/2, in a fixed order.
fn group(mean: f64, spread: f64, count: usize) -> Vec<f64> {
    (0..count)
        .map(|j| mean + spread * (j as f64 / count as f64 - 0.5))
        .collect()
}

fn width(e: &Estimate) -> f64 {
    e.ci95_high - e.ci95_low
}

/// What the cluster interval looks like beside the pooled one: whether it
/// covers the group means (within 1 %), and how many times wider it is
/// (rounded, capped at 100 so the table stays readable).
fn compare(groups: &[Vec<f64>]) -> (bool, u32) {
    let cluster = cluster_bootstrap_median(groups, 2000, 7).expect("estimate");
    let pooled_values: Vec<f64> = groups.iter().flatten().copied().collect();
    let pooled = bootstrap_median(&pooled_values, 2000, 7).expect("estimate");
    assert_eq!(cluster.pooled.median, pooled.median, "same point estimate");
    assert_eq!(cluster.pooled.samples, pooled_values.len());
    let means: Vec<f64> = groups
        .iter()
        .map(|g| g.iter().sum::<f64>() / g.len() as f64)
        .collect();
    let lowest = means.iter().copied().fold(f64::INFINITY, f64::min);
    let highest = means.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let covers =
        cluster.pooled.ci95_low <= lowest * 1.01 && cluster.pooled.ci95_high >= highest * 0.99;
    let ratio = if width(&pooled) > 0.0 {
        (width(&cluster.pooled) / width(&pooled)).min(100.0).round() as u32
    } else {
        100
    };
    (covers, ratio)
}

#[test]
fn between_group_spread_widens_the_interval_to_the_group_means() {
    let far_apart =
        |means: &[f64]| -> Vec<Vec<f64>> { means.iter().map(|m| group(*m, 0.002, 30)).collect() };
    check(
        &[
            // The pooled interval stays inside the middle group (width
            // ~0.002); resampling the groups moves the median across all
            // three means.
            (
                "three groups 1, 2, 3",
                far_apart(&[1.0, 2.0, 3.0]),
                (true, 100),
            ),
            (
                "five groups 1..5",
                far_apart(&[1.0, 2.0, 3.0, 4.0, 5.0]),
                (true, 100),
            ),
            // Same means: nothing between the groups, so the cluster
            // interval is no wider than the pooled one's order.
            (
                "four identical groups",
                vec![group(2.0, 0.5, 20); 4],
                (true, 1),
            ),
        ],
        |groups| compare(groups),
    );
}

#[test]
fn one_group_gives_the_within_run_interval_and_its_median() {
    let values = group(3.0, 1.0, 25);
    let cluster = cluster_bootstrap_median(std::slice::from_ref(&values), 2000, 3).unwrap();
    let e = cluster.pooled;
    assert_eq!(cluster.group_medians, vec![e.median]);
    assert_eq!(cluster.groups(), 1);
    assert!(e.ci95_low < e.median && e.median < e.ci95_high, "{e:?}");
    assert!(width(&e) < 0.6, "{e:?}");
}

#[test]
fn group_medians_sit_beside_the_pooled_figure_and_bad_values_are_dropped() {
    let groups = vec![
        vec![2.0, 2.2, f64::NAN, 2.4],
        vec![f64::INFINITY],
        vec![6.0, 6.2, 6.4],
    ];
    let cluster = cluster_bootstrap_median(&groups, 500, 1).unwrap();
    assert_eq!(cluster.group_medians, vec![2.2, 6.2]);
    assert_eq!(cluster.pooled.samples, 6);
    assert_eq!(cluster.pooled.median, (2.4 + 6.0) / 2.0);
    assert_eq!(cluster, cluster_bootstrap_median(&groups, 500, 1).unwrap());
    assert_eq!(cluster_bootstrap_median(&[vec![f64::NAN]], 10, 1), None);
    assert_eq!(cluster_bootstrap_median(&[], 10, 1), None);
}

/// The draws are pinned: recorded intervals depend on them. Expected values
/// from an independent implementation (Python) of the same scheme:
/// SplitMix64, per resample the group indices then each drawn group's
/// values by multiply-shift, linear percentiles; the ratio's denominator on
/// the stream `seed ^ 0x9E3779B97F4A7C15`.
#[test]
fn cluster_draws_are_pinned() {
    let groups = vec![
        vec![1.0, 1.5, 2.0],
        vec![3.0, 3.25],
        vec![2.5, 4.0, 4.5, 5.0],
    ];
    assert_eq!(
        cluster_bootstrap_median(&groups, 9, 11).unwrap().pooled,
        PINNED_MEDIAN
    );
    let other = vec![vec![2.0, 2.5], vec![2.25, 3.0, 2.75]];
    assert_eq!(
        cluster_bootstrap_ratio(&groups, &other, 9, 11).unwrap(),
        PINNED_RATIO
    );
}

#[test]
fn ratio_intervals_resample_each_config_independently() {
    let base: Vec<Vec<f64>> = [2.0, 2.1, 1.9]
        .iter()
        .map(|m| group(*m, 0.01, 20))
        .collect();
    let faster: Vec<Vec<f64>> = base
        .iter()
        .map(|g| g.iter().map(|v| v * 1.5).collect())
        .collect();
    let tight = |g: &Vec<Vec<f64>>| -> Vec<Vec<f64>> { vec![g.concat()] };
    check(
        &[
            // Point, whether 1 is inside, and whether the interval is
            // narrower than ±2 % (rounded to 3 decimals for the point).
            (
                "same config against itself",
                (base.clone(), base.clone()),
                (1000, true, false),
            ),
            (
                "a config 1.5 times faster",
                (faster.clone(), base.clone()),
                (1500, false, false),
            ),
            // One group each: only within-run noise, a tight interval.
            (
                "pooled into one group",
                (tight(&faster), tight(&base)),
                (1500, false, true),
            ),
        ],
        |(top, bottom)| {
            let r = cluster_bootstrap_ratio(top, bottom, 2000, 5).unwrap();
            (
                (r.median * 1000.0).round() as i64,
                r.contains(1.0),
                r.ci95_high / r.median < 1.02 && r.ci95_low / r.median > 0.98,
            )
        },
    );
    assert_eq!(
        cluster_bootstrap_ratio(&base, &[vec![0.0, 0.0]], 10, 1),
        None
    );
    assert_eq!(cluster_bootstrap_ratio(&[], &base, 10, 1), None);
}

const PINNED_MEDIAN: Estimate = Estimate {
    median: 3.0,
    ci95_low: 1.5,
    ci95_high: 4.45,
    samples: 9,
};
const PINNED_RATIO: Estimate = Estimate {
    median: 1.2,
    ci95_low: 0.6,
    ci95_high: 1.871111111111111,
    samples: 14,
};
