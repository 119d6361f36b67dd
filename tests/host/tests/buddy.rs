// SPDX-License-Identifier: GPL-2.0

//! Unit tests of the buddy allocator (src/core/buddy/).

use memlab_core::buddy::{
    Buddy, BuddyError, PageMeta, Region, FIRST_PROTECTED_TAG, MAX_PAGE_ORDER, MAX_PFN,
    NR_PAGE_ORDERS, TAG_NONE,
};

type Zone = Buddy<Vec<PageMeta>, Vec<Region>>;

fn zone(pages: usize, regions: usize) -> Zone {
    Buddy::new(vec![PageMeta::INIT; pages], vec![Region::EMPTY; regions])
}

fn counts(z: &Zone) -> [u64; NR_PAGE_ORDERS] {
    z.free_counts()
}

fn ok(z: &Zone) {
    z.check_invariants().expect("invariants");
}

#[test]
fn page_meta_is_one_cache_line() {
    // 16 bytes of buddy state, 32 for the owner (a slab's descriptor).
    assert_eq!(std::mem::size_of::<PageMeta>(), 64);
}

#[test]
fn region_is_carved_into_maximal_blocks() {
    let mut z = zone(4096, 4);
    z.add_region(0, 2048).unwrap();
    ok(&z);
    let mut want = [0; NR_PAGE_ORDERS];
    want[10] = 2;
    assert_eq!(counts(&z), want);
    assert_eq!(z.free_pages(), 2048);
    assert_eq!(z.managed_pages(), 2048);

    // Unaligned start and end: [3, 3 + 1030) = 3, 4..8, 8..16, ..., 1024..1033.
    let mut z = zone(4096, 4);
    z.add_region(3, 1030).unwrap();
    ok(&z);
    let c = counts(&z);
    assert_eq!(c[0], 2, "{c:?}"); // pfn 3 and pfn 1032
    assert_eq!(c[2], 1); // 4..8
    assert_eq!(c[3], 2); // 8..16 and 1024..1032
    assert_eq!(c.iter().zip(0..).map(|(n, o)| n << o).sum::<u64>(), 1030);
}

#[test]
fn split_and_coalesce() {
    let mut z = zone(1024, 1);
    z.add_region(0, 1024).unwrap();
    let a = z.alloc(0).unwrap();
    ok(&z);
    assert_eq!(a, 0);
    // Splitting an order-10 block leaves one free block of orders 0..=9.
    let mut want = [1; NR_PAGE_ORDERS];
    want[10] = 0;
    assert_eq!(counts(&z), want);
    let b = z.alloc(0).unwrap();
    assert_eq!(b, 1);
    let c = z.alloc(3).unwrap();
    assert_eq!(c, 8);
    ok(&z);
    z.free(a, 0).unwrap();
    ok(&z);
    z.free(c, 3).unwrap();
    ok(&z);
    z.free(b, 0).unwrap();
    ok(&z);
    let mut want = [0; NR_PAGE_ORDERS];
    want[10] = 1;
    assert_eq!(counts(&z), want);
}

#[test]
fn allocates_smallest_fitting_block_first() {
    let mut z = zone(2048, 2);
    z.add_region(0, 1024).unwrap();
    z.add_region(1024 + 7, 1).unwrap(); // a lone order-0 block
    let p = z.alloc(0).unwrap();
    assert_eq!(p, 1031, "order 0 comes from the order-0 list, not a split");
    assert_eq!(z.nr_free(10), 1);
    ok(&z);
}

#[test]
fn out_of_memory_and_invalid_order() {
    let mut z = zone(16, 1);
    z.add_region(0, 16).unwrap();
    assert_eq!(z.alloc(5), Err(BuddyError::OutOfMemory));
    assert_eq!(z.alloc(11), Err(BuddyError::InvalidOrder(11)));
    assert_eq!(z.alloc(u32::MAX), Err(BuddyError::InvalidOrder(u32::MAX)));
    let all = z.alloc(4).unwrap();
    assert_eq!(z.alloc(0), Err(BuddyError::OutOfMemory));
    assert_eq!(z.free(all, 11), Err(BuddyError::InvalidOrder(11)));
    ok(&z);
    z.free(all, 4).unwrap();
    ok(&z);
}

#[test]
fn misuse_is_reported_and_changes_nothing() {
    let mut z = zone(64, 2);
    z.add_region(100, 64).unwrap();
    let a = z.alloc(2).unwrap();
    let b = z.alloc(0).unwrap();
    let before = counts(&z);
    let check = |z: &Zone| {
        ok(z);
        assert_eq!(counts(z), before);
    };
    assert_eq!(z.free(5, 0), Err(BuddyError::OutsideRegions(5)));
    assert_eq!(z.free(164, 0), Err(BuddyError::OutsideRegions(164)));
    assert_eq!(
        z.free(u64::MAX, 0),
        Err(BuddyError::OutsideRegions(u64::MAX))
    );
    check(&z);
    assert_eq!(
        z.free(a + 1, 2),
        Err(BuddyError::Misaligned {
            pfn: a + 1,
            order: 2
        })
    );
    assert_eq!(z.free(a + 1, 0), Err(BuddyError::NotBlockHead(a + 1)));
    check(&z);
    assert_eq!(
        z.free(a, 1),
        Err(BuddyError::WrongOrder {
            pfn: a,
            allocated: 2,
            given: 1
        })
    );
    assert_eq!(
        z.free_tagged(a, 2, 7),
        Err(BuddyError::WrongOwner {
            pfn: a,
            owner: TAG_NONE,
            given: 7
        })
    );
    check(&z);
    // A free frame: the head of a free block, and a frame inside one.
    let free_head = (100..164)
        .find(|&p| p != a && p != b && p % 8 == 0)
        .unwrap();
    assert_eq!(z.free(free_head, 3), Err(BuddyError::DoubleFree(free_head)));
    let inside = (100..164)
        .find(|&p| {
            z.block_of(p)
                .map(|bl| bl.free && bl.head_pfn != p)
                .unwrap_or(false)
        })
        .unwrap();
    assert_eq!(z.free(inside, 0), Err(BuddyError::DoubleFree(inside)));
    check(&z);
    // Double free, including after the block merged into a larger one.
    z.free(b, 0).unwrap();
    assert_eq!(z.free(b, 0), Err(BuddyError::DoubleFree(b)));
    z.free(a, 2).unwrap();
    assert_eq!(z.free(a, 2), Err(BuddyError::DoubleFree(a)));
    assert_eq!(z.free(a + 2, 1), Err(BuddyError::DoubleFree(a + 2)));
    ok(&z);
    assert_eq!(z.free_pages(), 64);
}

#[test]
fn regions_reject_overlap_and_bad_ranges() {
    let mut z = zone(4096, 4);
    z.add_region(1000, 100).unwrap();
    let overlap = Err(BuddyError::RegionOverlap {
        start_pfn: 1000,
        end_pfn: 1100,
    });
    assert_eq!(z.add_region(1000, 1), overlap);
    assert_eq!(z.add_region(999, 2), overlap);
    assert_eq!(z.add_region(1099, 5), overlap);
    assert_eq!(z.add_region(900, 500), overlap);
    assert_eq!(z.add_region(1050, 10), overlap);
    assert_eq!(z.add_region(5, 0), Err(BuddyError::EmptyRegion));
    assert_eq!(z.add_region(u64::MAX, 2), Err(BuddyError::RegionTooHigh));
    assert_eq!(z.add_region(MAX_PFN - 1, 2), Err(BuddyError::RegionTooHigh));
    assert_eq!(z.add_region(0, 5000), Err(BuddyError::NoMetaSpace));
    ok(&z);
    assert_eq!(z.regions().len(), 1);
    z.add_region(MAX_PFN - 1024, 1024).unwrap();
    z.add_region(0, 1).unwrap();
    z.add_region(2000, 1).unwrap();
    assert_eq!(z.add_region(3000, 1), Err(BuddyError::NoRegionSlot));
    ok(&z);
    let starts: Vec<u64> = z.regions().iter().map(|r| r.start_pfn()).collect();
    assert_eq!(starts, [0, 1000, 2000, MAX_PFN - 1024]);
    let top = z.alloc(10).unwrap();
    assert_eq!(top, MAX_PFN - 1024);
    z.free(top, 10).unwrap();
    ok(&z);
}

#[test]
fn adjacent_region_extends_and_coalesces() {
    let mut z = zone(2048, 4);
    z.add_region(0, 1000).unwrap();
    z.add_region(1000, 1048).unwrap();
    ok(&z);
    assert_eq!(z.regions().len(), 1, "extension merges the regions");
    assert_eq!(z.nr_free(10), 2);
    assert_eq!(z.free_pages(), 2048);
}

#[test]
fn adjacent_region_with_foreign_metadata_stays_separate() {
    let mut z = zone(2048, 4);
    z.add_region(1024, 512).unwrap();
    z.add_region(0, 1024).unwrap(); // precedes: no extension
    ok(&z);
    assert_eq!(z.regions().len(), 2);
    assert_eq!(z.nr_free(10), 1);
    assert_eq!(z.nr_free(9), 1);
}

#[test]
fn hundreds_of_regions() {
    let n = 500u64;
    let mut z = zone(n as usize * 7, n as usize);
    // Added in a scrambled order, each 7 pages with a 3-page hole.
    for i in 0..n {
        let j = (i * 263) % n;
        z.add_region(j * 10 + 2, 7).unwrap();
    }
    ok(&z);
    assert_eq!(z.regions().len(), n as usize);
    assert_eq!(z.free_pages(), n * 7);
    let mut got = Vec::new();
    while let Ok(p) = z.alloc(0) {
        got.push(p);
    }
    assert_eq!(got.len() as u64, n * 7);
    ok(&z);
    for (k, p) in got.iter().enumerate() {
        assert!(p % 10 >= 2 && p % 10 < 9, "pfn {p} in a hole");
        if k % 97 == 0 {
            ok(&z);
        }
        z.free(*p, 0).unwrap();
    }
    ok(&z);
    assert_eq!(z.free_pages(), n * 7);
    // Each 7-page region [10j+2, 10j+9) is one block each of order 0, 1, 2.
    assert_eq!((z.nr_free(0), z.nr_free(1), z.nr_free(2)), (n, n, n));
}

#[test]
fn block_of_finds_heads_and_tags() {
    let mut z = zone(1024, 1);
    z.add_region(0, 1024).unwrap();
    assert_eq!(
        z.alloc_tagged(0, FIRST_PROTECTED_TAG),
        Err(BuddyError::ProtectedTag(FIRST_PROTECTED_TAG))
    );
    let a = z.alloc_tagged(3, 0x12).unwrap();
    for p in a..a + 8 {
        let b = z.block_of(p).unwrap();
        assert_eq!((b.head_pfn, b.order, b.free, b.tag), (a, 3, false, 0x12));
        assert_eq!(z.allocated_block(p), Some(b));
    }
    let b = z.block_of(a + 8).unwrap();
    assert!(b.free);
    assert_eq!(z.allocated_block(a + 8), None);
    assert_eq!(z.block_of(5000), Err(BuddyError::OutsideRegions(5000)));
    assert_eq!(
        z.set_tag(a, u32::MAX),
        Err(BuddyError::ProtectedTag(u32::MAX))
    );
    assert_eq!(
        z.free_tagged(a, 3, 0x100),
        Err(BuddyError::ProtectedTag(0x100))
    );
    z.set_tag(a, 7).unwrap();
    assert_eq!(z.block_of(a + 3).unwrap().tag, 7);
    assert_eq!(z.set_tag(a + 1, 7), Err(BuddyError::NotBlockHead(a + 1)));
    assert_eq!(
        z.free(a, 3),
        Err(BuddyError::WrongOwner {
            pfn: a,
            owner: 7,
            given: 0
        })
    );
    z.free_tagged(a, 3, 7).unwrap();
    ok(&z);
}

#[test]
fn exhaust_every_order_then_coalesce() {
    for order in 0..=MAX_PAGE_ORDER {
        let mut z = zone(4096, 2);
        z.add_region(1, 4095).unwrap();
        let initial = counts(&z);
        let mut blocks = Vec::new();
        while let Ok(p) = z.alloc(order) {
            assert_eq!(p % (1 << order), 0);
            blocks.push(p);
        }
        ok(&z);
        assert!(
            (order as usize..NR_PAGE_ORDERS).all(|o| z.nr_free(o as u32) == 0),
            "order {order}: free block left"
        );
        // Free in an interleaved order.
        let (even, odd): (Vec<_>, Vec<_>) =
            blocks.iter().enumerate().partition(|(i, _)| i % 2 == 0);
        for (_, p) in odd.into_iter().chain(even) {
            z.free(*p, order).unwrap();
        }
        ok(&z);
        assert_eq!(counts(&z), initial, "order {order}");
    }
}

#[test]
fn errors_display() {
    let e = BuddyError::WrongOrder {
        pfn: 16,
        allocated: 2,
        given: 1,
    };
    assert_eq!(
        e.to_string(),
        "pfn 0x10 allocated with order 2, freed with order 1"
    );
    assert_eq!(
        BuddyError::DoubleFree(3).to_string(),
        "double free of pfn 0x3"
    );
}
