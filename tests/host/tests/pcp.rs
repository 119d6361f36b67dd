// SPDX-License-Identifier: GPL-2.0

//! Unit tests of the per-CPU cache sizing (src/core/pcp.rs) against the
//! kernel's own numbers.

use memlab_core::pcp::{
    kmalloc_index, pcp_alloc_count, pcp_free_count, sheaf_capacity, zone_batchsize, zone_highsize,
    PCP_BATCH_SCALE_MAX, SHEAF_HEADER_BYTES, SHEAF_MAX_CAPACITY,
};
use memlab_core::sizeclass::{kmalloc_size_roundup, SizeClass, KMALLOC_MAX_CACHE_SIZE};

/// `/sys/kernel/slab/kmalloc-*/sheaf_capacity` on a 7.2 kernel without
/// slab debugging: 60 below 256 B, 28 to 1 KiB, 12 to 4 KiB, then 4.
#[test]
fn sheaf_capacity_of_every_kmalloc_class() {
    for class in SizeClass::ALL {
        let want = match class.size() {
            s if s < 256 => 60,
            s if s < 1024 => 28,
            s if s < 4096 => 12,
            _ => 4,
        };
        assert_eq!(
            sheaf_capacity(class.size()),
            want,
            "kmalloc-{}",
            class.size()
        );
    }
    assert_eq!(sheaf_capacity(8), SHEAF_MAX_CAPACITY);
}

/// A sheaf exactly fills the kmalloc bucket it lives in.
#[test]
fn a_sheaf_fills_its_kmalloc_bucket() {
    for size in [8, 64, 255, 256, 1000, 1024, 4095, 4096, 8192] {
        let bytes = SHEAF_HEADER_BYTES + 8 * sheaf_capacity(size);
        assert_eq!(
            kmalloc_size_roundup(bytes),
            Some(bytes),
            "object size {size}"
        );
    }
}

/// `zone_batchsize`: 0.025% of the zone, 2^n - 1, capped at 63 (256 KiB).
#[test]
fn batch_follows_zone_size() {
    assert_eq!(zone_batchsize(0), 1);
    assert_eq!(zone_batchsize(1792), 1);
    assert_eq!(zone_batchsize(2 << 12), 1);
    // 4 -> rounddown_pow_of_two(6) - 1.
    assert_eq!(zone_batchsize(4 << 12), 3);
    // A 512 MiB zone: 32 -> rounddown_pow_of_two(48) - 1.
    assert_eq!(zone_batchsize(131_072), 31);
    assert_eq!(zone_batchsize(1 << 18), 63);
    assert_eq!(zone_batchsize(1 << 30), 63);
    // The full batch starts at 43 << 12 pages (688 MiB; memlabctl bench
    // names the threshold, and make bench's pool_mb=1600 passes it).
    assert_eq!(zone_batchsize(43 << 12), 63);
    assert_eq!(zone_batchsize((43 << 12) - 1), 31);
    for managed in (0..1u64 << 20).step_by(4099) {
        let b = zone_batchsize(managed);
        assert!((b + 1).is_power_of_two() && b <= 63, "{managed}: {b}");
    }
}

/// `zone_highsize`: the low watermark split over the CPUs, at least four
/// batches.
#[test]
fn high_is_at_least_four_batches() {
    assert_eq!(zone_highsize(70, 2, 1), 35);
    assert_eq!(zone_highsize(70, 2, 31), 124);
    assert_eq!(zone_highsize(10_000, 0, 63), 10_000);
    for batch in [1, 3, 7, 15, 31, 63] {
        for low in [0, 10, 1000, 100_000] {
            assert!(zone_highsize(low, 2, batch) >= 4 * batch);
        }
    }
}

/// `nr_pcp_alloc`: order-0 refills double until the list would pass high;
/// higher orders move batch >> order blocks, at least 2 unless batch is 1.
#[test]
fn refills_grow_and_stop_at_high() {
    let (batch, high) = (7, 200);
    let mut factor = 0;
    let mut seen = Vec::new();
    for _ in 0..8 {
        let (n, grow) = pcp_alloc_count(batch, high, 0, factor, 0);
        seen.push(n);
        factor += u32::from(grow);
    }
    assert_eq!(seen, [7, 14, 28, 56, 112, 193, 193, 193]);
    assert!(factor <= PCP_BATCH_SCALE_MAX);
    // A list already near high gets one batch.
    assert_eq!(pcp_alloc_count(batch, high, 195, 3, 0), (7, false));
    assert_eq!(pcp_alloc_count(31, 124, 0, 0, 3).0, 3);
    assert_eq!(pcp_alloc_count(31, 124, 0, 0, 1).0, 15);
    assert_eq!(pcp_alloc_count(1, 35, 0, 0, 3).0, 1);
    // A list whose high is below its batch is not a cache.
    assert_eq!(pcp_alloc_count(31, 10, 0, 0, 0), (1, false));
}

/// `nr_pcp_free`: a run of frees gives back as many pages as it freed,
/// between one batch and high minus a batch.
#[test]
fn frees_grow_with_the_run() {
    assert_eq!(pcp_free_count(7, 200, 0), 7);
    assert_eq!(pcp_free_count(7, 200, 50), 50);
    assert_eq!(pcp_free_count(7, 200, 5000), 193);
    assert_eq!(pcp_free_count(1, 35, 100), 34);
    assert_eq!(pcp_free_count(31, 10, 100), 1);
}

/// The table-and-log2 lookup finds the same class as the search, for every
/// size up to one past the largest class.
#[test]
fn kmalloc_index_agrees_with_the_size_classes() {
    for size in 0..=KMALLOC_MAX_CACHE_SIZE + 4096 {
        assert_eq!(
            kmalloc_index(size),
            SizeClass::for_size(size).map(SizeClass::index),
            "size {size}"
        );
    }
    // The fast path's rounding wraps here: still no class.
    for size in usize::MAX - 16..=usize::MAX {
        assert_eq!(kmalloc_index(size), None, "size {size}");
    }
}
