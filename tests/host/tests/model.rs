// SPDX-License-Identifier: GPL-2.0

//! Model-based property tests: random operation sequences over the buddy,
//! slab caches and kmalloc, checked step by step against the reference model
//! of `harness.rs` (no overlap, alignment, intact contents, accounting, every
//! invariant checker) and required to coalesce back to the initial free lists
//! once everything is freed.

#[path = "../harness.rs"]
mod harness;

use harness::{Op, World, NR_CACHES, NR_LAYOUTS};
use memlab_core::sizeclass::KMALLOC_MAX_SIZE;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

/// Failing cases are kept next to the package (cargo runs tests there).
fn persistence() -> Option<Box<dyn proptest::test_runner::FailurePersistence>> {
    Some(Box::new(FileFailurePersistence::Direct(
        "proptest-regressions/model.txt",
    )))
}

fn kmalloc_size() -> impl Strategy<Value = u32> {
    prop_oneof![
        6 => 0u32..=256,
        4 => 257u32..=8192,
        2 => 8193u32..=200_000,
        1 => 200_000u32..=(KMALLOC_MAX_SIZE as u32 + 4096),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0u8..=11).prop_map(|order| Op::AllocPages { order: if order > 6 { order % 4 } else { order } }),
        2 => (7u8..=11).prop_map(|order| Op::AllocPages { order }),
        12 => (0..NR_CACHES).prop_map(|cache| Op::AllocObj { cache }),
        10 => kmalloc_size().prop_map(|size| Op::Kmalloc { size }),
        20 => any::<u16>().prop_map(|which| Op::Free { which }),
        2 => any::<u16>().prop_map(|which| Op::DoubleFree { which }),
        3 => (any::<u16>(), -4096i32..=4096, any::<u8>())
            .prop_map(|(which, delta, api)| Op::FreeAt { which, delta, api }),
        1 => (any::<u16>(), prop_oneof![0i32..=0, (-64i32..=64).prop_map(|d| d * 8)], any::<u8>())
            .prop_map(|(which, delta, api)| Op::FreeAt { which, delta, api }),
        2 => (any::<u32>(), any::<u8>()).prop_map(|(offset, api)| Op::FreeWild { offset: offset % (10 << 20), api }),
        1 => (0..=NR_CACHES).prop_map(|cache| Op::Shrink { cache }),
        3 => (any::<u8>(), 0u8..=80).prop_map(|(cache, n)| Op::AllocBulk { cache, n }),
        3 => (any::<u16>(), 0u8..=80, 0u8..8).prop_map(|(which, n, junk)| Op::FreeBulk { which, n, junk: if junk < 5 { 0 } else { junk } }),
    ]
}

fn run(layout: u8, ops: &[Op]) {
    let mut world = World::new(layout);
    for (i, op) in ops.iter().enumerate() {
        world.apply(op);
        if i % 4 == 3 {
            world.check_slabs();
        }
    }
    world.check_slabs();
    world.finish();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, max_shrink_iters: 2000, failure_persistence: persistence(), ..ProptestConfig::default() })]

    /// Mixed workloads, every region layout.
    #[test]
    fn mixed_ops_match_the_model(layout in 0..NR_LAYOUTS, ops in prop::collection::vec(op(), 1..120)) {
        run(layout, &ops);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, failure_persistence: persistence(), ..ProptestConfig::default() })]

    /// Buddy-only churn of mixed orders, long sequences.
    #[test]
    fn buddy_churn(layout in 0..NR_LAYOUTS, ops in prop::collection::vec(prop_oneof![
        (0u8..=10).prop_map(|order| Op::AllocPages { order }),
        any::<u16>().prop_map(|which| Op::Free { which }),
        (any::<u16>(), 0u8..=11).prop_map(|(which, api)| Op::FreeAt { which, delta: 4096, api }),
    ], 1..300)) {
        run(layout, &ops);
    }

    /// Slab-only churn over a few caches, long sequences (many slabs).
    #[test]
    fn slab_churn(ops in prop::collection::vec(prop_oneof![
        3 => (0..NR_CACHES).prop_map(|cache| Op::AllocObj { cache }),
        2 => any::<u16>().prop_map(|which| Op::Free { which }),
        1 => (any::<u16>(), -256i32..=256, 16u8..=(16 + NR_CACHES)).prop_map(|(which, delta, api)| Op::FreeAt { which, delta, api }),
        1 => (0..NR_CACHES, 0u8..=200).prop_map(|(cache, n)| Op::AllocBulk { cache, n }),
        1 => (any::<u16>(), 0u8..=200, 0u8..8).prop_map(|(which, n, junk)| Op::FreeBulk { which, n, junk }),
    ], 1..400)) {
        run(0, &ops);
    }
}
