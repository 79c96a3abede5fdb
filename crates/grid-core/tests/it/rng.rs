use grid_core::SplitMix64;

/// Seeded outputs (filler prompts, bootstrap draws, the simulator's texts)
/// depend on the sequence; the seed-0 outputs are SplitMix64's reference.
#[test]
fn splitmix64_sequences_are_pinned() {
    let mut zero = SplitMix64::new(0);
    assert_eq!(
        [zero.next_u64(), zero.next_u64(), zero.next_u64()],
        [
            0xe220_a839_7b1d_cdaf,
            0x6e78_9e6a_a1b9_65f4,
            0x06c4_5d18_8009_454f
        ]
    );
    let mut rng = SplitMix64::new(42);
    assert_eq!(
        [rng.next_u64(), rng.next_u64()],
        [0xbdd7_3226_2feb_6e95, 0x28ef_e333_b266_f103]
    );
    let mut rng = SplitMix64::new(42);
    let draws: Vec<u64> = (0..8).map(|_| rng.below(10)).collect();
    assert_eq!(draws, [7, 1, 2, 3, 0, 8, 2, 8]);
}

#[test]
fn ranges_stay_in_bounds() {
    let mut rng = SplitMix64::new(9);
    for _ in 0..1000 {
        let x = rng.between(3, 5);
        assert!((3..=5).contains(&x), "{x}");
        let f = rng.next_f64();
        assert!((0.0..1.0).contains(&f), "{f}");
    }
    assert_eq!(rng.between(5, 5), 5);
    assert_eq!(rng.between(6, 2), 6);
    assert_eq!(rng.below(1), 0);
}
