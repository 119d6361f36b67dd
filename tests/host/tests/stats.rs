// SPDX-License-Identifier: GPL-2.0

//! The one percentile rule (src/core/stats.rs) the report, the workloads
//! and the replay share.

use memlab_core::stats::{median_p99, percentile};

#[test]
fn index_is_floor_of_len_times_fraction_clamped() {
    let v: Vec<u64> = (1..=100).collect();
    // Upper middle for an even count; the largest as p99 of 100.
    assert_eq!(median_p99(&v), (51, 100));
    assert_eq!(percentile(&v, 1, 1), 100);
    assert_eq!(percentile(&v, 0, 1), 1);
    let odd: Vec<u64> = (1..=5).collect();
    assert_eq!(median_p99(&odd), (3, 5));
    assert_eq!(median_p99(&[7]), (7, 7));
    assert_eq!(median_p99(&[]), (0, 0));
    assert_eq!(percentile(&[1, 2], 1, 0), 0);
    // 1000 samples: p99 is index 990, the 991st.
    let w: Vec<u64> = (0..1000).collect();
    assert_eq!(median_p99(&w), (500, 990));
}

#[test]
fn agrees_with_memlabctls_rule() {
    // memlabctl's bench percentile is floor(len * p), clamped: the same
    // index as here for every length and the fractions used.
    for len in 1..300usize {
        let v: Vec<u64> = (0..len as u64).collect();
        for (num, den, p) in [(1, 2, 0.5f64), (99, 100, 0.99), (1, 4, 0.25), (3, 4, 0.75)] {
            let i = ((len as f64 * p) as usize).min(len - 1);
            assert_eq!(percentile(&v, num, den), v[i], "len {len} p {p}");
        }
    }
}
