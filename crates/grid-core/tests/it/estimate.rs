use grid_core::Estimate;

#[test]
fn the_json_field_names_of_result_files_still_read() {
    // As written by battery.json and results/<id>.json before grid-core.
    let text = r#"{"median":2.5,"ci95_low":2.0,"ci95_high":3.25,"samples":12}"#;
    let estimate: Estimate = serde_json::from_str(text).expect("reads");
    assert_eq!(
        estimate,
        Estimate {
            median: 2.5,
            ci95_low: 2.0,
            ci95_high: 3.25,
            samples: 12
        }
    );
    assert_eq!(serde_json::to_string(&estimate).expect("writes"), text);
}

#[test]
fn overlap_and_containment_include_the_bounds() {
    let a = Estimate {
        median: 2.0,
        ci95_low: 1.0,
        ci95_high: 3.0,
        samples: 5,
    };
    let touching = Estimate {
        median: 4.0,
        ci95_low: 3.0,
        ci95_high: 5.0,
        samples: 5,
    };
    let apart = Estimate {
        median: 5.0,
        ci95_low: 3.5,
        ci95_high: 6.0,
        samples: 5,
    };
    assert!(a.overlaps(&touching) && touching.overlaps(&a));
    assert!(!a.overlaps(&apart) && !apart.overlaps(&a));
    assert!(a.contains(1.0) && a.contains(3.0) && !a.contains(3.01));
    assert_eq!(Estimate::exact(2.0).samples, 1);
    assert!(Estimate::exact(2.0).contains(2.0));
}
