use grid_core::fnv1a64;

use crate::check;

/// Stable config IDs, derived seeds and the simulator's token ids depend on
/// these outputs; the vectors are the FNV reference ones.
#[test]
fn fnv1a64_matches_the_reference_vectors() {
    check(
        &[
            ("empty", "", 0xcbf2_9ce4_8422_2325),
            ("a", "a", 0xaf63_dc4c_8601_ec8c),
            ("foobar", "foobar", 0x8594_4171_f739_67e8),
            // A derived seed as the search writes it: "{base}:{config}:{repeat}".
            ("seed", "42:abc:0", 16_120_428_877_593_774_663),
        ],
        |text| fnv1a64(text.as_bytes()),
    );
}
