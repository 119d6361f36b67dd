// SPDX-License-Identifier: GPL-2.0

//! SLUB's slab geometry (src/core/slab/order.rs and layout.rs) and the bulk
//! calls (src/core/slab/bulk.rs).
//!
//! The expected tables are worked out by hand from mm/slub.c (Linux 7.2):
//! `calculate_order()` aims for `min_objects = 4 * (fls(nr_cpus) + 1)`
//! (8 for 1 CPU, 12 for 2 or 3, 16 for 4 to 7, 20 for 8 to 15), capped by
//! what order 3 holds; `min_order = get_order(min_objects * size)`; then
//! the first order up to 3 wasting at most 1/16. For example kmalloc-512
//! on 2 CPUs: 12 * 512 = 6 KiB, order 1, 16 objects, no waste; kmalloc-192
//! on 4 CPUs: 16 * 192 = 3 KiB, order 0, 21 objects, 64 bytes left (under
//! 4096 / 16); kmalloc-8k: order 3 holds 4, so min_objects is 4, 32 KiB.

#[path = "../harness.rs"]
mod harness;

use std::collections::HashSet;

use harness::Pool;
use memlab_core::buddy::PAGE_SIZE;
use memlab_core::sizeclass::{Kmalloc, SizeClass};
use memlab_core::slab::order::{calculate_order, slub_geometry, slub_min_objects};
use memlab_core::slab::{Reciprocal, SlabCache, SlabError, SlabFlags, DEFAULT_NR_CPUS};

/// (objperslab, pagesperslab) of kmalloc-8 .. kmalloc-8k.
type Table = [(u32, u32); 13];

const ONE_CPU: Table = [
    (512, 1),
    (256, 1),
    (128, 1),
    (64, 1),
    (42, 1),
    (32, 1),
    (21, 1),
    (16, 1),
    (8, 1),
    (8, 2),
    (8, 4),
    (8, 8),
    (4, 8),
];
/// What changes with more CPUs: (index in [`ONE_CPU`], objperslab,
/// pagesperslab) for 2 to 7 CPUs (min_objects 12 and 16 give the same
/// kmalloc geometry) and for 8 to 15 (min_objects 20).
const TWO_TO_SEVEN_CPUS: [(usize, u32, u32); 3] = [(8, 16, 2), (9, 16, 4), (10, 16, 8)];
const EIGHT_CPUS: [(usize, u32, u32); 4] = [(7, 32, 2), (8, 32, 4), (9, 32, 8), (10, 16, 8)];

fn table(changes: &[(usize, u32, u32)]) -> Table {
    let mut t = ONE_CPU;
    for &(i, objs, pages) in changes {
        t[i] = (objs, pages);
    }
    t
}

#[test]
fn kmalloc_geometry_is_slub_s_for_1_2_4_and_8_cpus() {
    assert_eq!(
        [1, 2, 3, 4, 7, 8, 16].map(slub_min_objects),
        [8, 12, 12, 16, 16, 20, 24]
    );
    for (cpus, table) in [
        (1, ONE_CPU),
        (2, table(&TWO_TO_SEVEN_CPUS)),
        (4, table(&TWO_TO_SEVEN_CPUS)),
        (8, table(&EIGHT_CPUS)),
    ] {
        for dma in [false, true] {
            let k = Kmalloc::new_for_cpus(dma, cpus).unwrap();
            for (class, &(objs, pages)) in SizeClass::ALL.iter().zip(&table) {
                let i = k.cache(*class).info();
                assert_eq!(
                    (i.objsize as usize, i.objperslab, i.pagesperslab),
                    (class.size(), objs, pages),
                    "{} on {cpus} CPUs",
                    class.name()
                );
                let rule = slub_geometry(class.size(), cpus).unwrap();
                assert_eq!(rule, (class.size(), objs as usize, pages as usize));
            }
        }
    }
    // The default is 2 CPUs.
    assert_eq!(DEFAULT_NR_CPUS, 2);
    let k = Kmalloc::new().unwrap();
    let i = k.cache(SizeClass::for_size(512).unwrap()).info();
    assert_eq!((i.objperslab, i.pagesperslab), (16, 2));
}

#[test]
fn calculate_order_follows_mm_slub() {
    // 3000 B on 2 CPUs wants 12 objects, capped at the 10 order 3 holds:
    // order 3, whose 2768 B left over pass at 1/8 after failing 1/16.
    assert_eq!(calculate_order(3000, 2), Some(3));
    // 700 B: 12 * 700 = 8400 B, order 2, which holds 23 and leaves 284 B,
    // within 1/16 of 16 KiB.
    assert_eq!(calculate_order(700, 2), Some(2));
    // Objects above order 3: the smallest order holding one.
    assert_eq!(calculate_order(40_000, 2), Some(4));
    assert_eq!(calculate_order(2 << 20, 2), Some(9));
    assert_eq!(calculate_order((2 << 20) + 8, 2), Some(10));
    assert_eq!(calculate_order((4 << 20) + 8, 2), None);
    assert_eq!(calculate_order(0, 2), None);
    // A CPU count of 0 behaves as fls(0) = 0: 4 objects.
    assert_eq!(calculate_order(2048, 0), Some(1));
}

#[test]
fn reciprocal_divides_exactly() {
    let mut strides: Vec<u32> = SizeClass::ALL.iter().map(|c| c.size() as u32).collect();
    strides.extend([1, 3, 8, 24, 56, 72, 104, 136, 200, 3000, 4097, 40_000]);
    for d in strides {
        let r = Reciprocal::new(d);
        for a in (0..(PAGE_SIZE << 3) as u32).chain([u32::MAX, u32::MAX - 1, 1 << 31]) {
            assert_eq!(r.divide(a), a / d, "{a} / {d}");
        }
    }
}

#[test]
fn objects_fill_slabs_from_offset_zero() {
    let mut pool = pool(256);
    let mut src = pool.src();
    for (name, size) in [("k8", 8), ("k96", 96), ("k8k", 8192)] {
        let mut c = SlabCache::new_for_cpus(name, size, 0, SlabFlags::NONE, None, 1).unwrap();
        let per = c.objects_per_slab() as usize;
        let objs: Vec<_> = (0..per).map(|_| c.alloc(&mut src).unwrap()).collect();
        assert_eq!(c.info().num_slabs, 1, "{name}: one slab holds {per}");
        let base = objs[0].as_ptr().addr();
        assert_eq!(
            base % (PAGE_SIZE << c.order()),
            0,
            "{name}: object 0 heads the slab"
        );
        for (i, o) in objs.iter().enumerate() {
            assert_eq!(o.as_ptr().addr(), base + i * size);
        }
        for o in objs {
            c.free(&mut src, o.as_ptr()).unwrap();
        }
        c.check_invariants(&src).unwrap();
        c.destroy(&mut src).unwrap();
    }
}

const BASE_PFN: u64 = 0x10000;

fn pool(pages: u64) -> Pool {
    Pool::new(pages, BASE_PFN)
}

#[test]
fn bulk_alloc_and_free_across_slabs() {
    // 192 B: 21 objects per slab, in-use bits; 32 B: 128, two words of
    // them; 16 B: 256, a freelist.
    for size in [192, 32, 16] {
        let mut pool = pool(64);
        let mut src = pool.src();
        let mut c = SlabCache::new("bulk", size, 0, SlabFlags::NONE, None).unwrap();
        let per = c.objects_per_slab() as usize;
        let mut out = vec![std::ptr::null_mut(); per * 3 + 5];
        assert_eq!(c.alloc_bulk(&mut src, &mut out), out.len());
        let set: HashSet<_> = out.iter().copied().collect();
        assert_eq!(set.len(), out.len(), "distinct objects");
        assert!(out.iter().all(|&p| c.owns(&src, p)));
        let i = c.info();
        assert_eq!((i.active_objs, i.num_slabs), (out.len() as u64, 4));
        c.check_invariants(&src).unwrap();
        // Free every other object, then the rest, in two batches.
        let (even, odd): (Vec<_>, Vec<_>) = out.iter().enumerate().partition(|(i, _)| i % 2 == 0);
        let even: Vec<_> = even.into_iter().map(|(_, &p)| p).collect();
        let odd: Vec<_> = odd.into_iter().map(|(_, &p)| p).collect();
        c.free_bulk(&mut src, &even).unwrap();
        assert_eq!(c.active_objs(), odd.len() as u64);
        assert!(even.iter().all(|&p| !c.owns(&src, p)));
        c.check_invariants(&src).unwrap();
        c.free_bulk(&mut src, &odd).unwrap();
        assert_eq!(c.active_objs(), 0);
        c.check_invariants(&src).unwrap();
        let mut again = [std::ptr::null_mut(); 2];
        assert_eq!(c.alloc_bulk(&mut src, &mut again), 2);
        if per > 128 {
            // A freelist gives the most recently freed objects first.
            assert!(again.iter().all(|p| odd.contains(p)));
        } else {
            // In-use bits give the lowest free objects of the slab.
            assert_eq!(again[1].addr() - again[0].addr(), size);
        }
        c.free_bulk(&mut src, &again).unwrap();
        c.destroy(&mut src).unwrap();
        assert_eq!(src.buddy().free_pages(), 64);
    }
}

#[test]
fn bulk_free_reports_bad_pointers_and_frees_the_rest() {
    let mut pool = pool(64);
    let mut src = pool.src();
    let mut a = SlabCache::new("a", 64, 0, SlabFlags::NONE, None).unwrap();
    let mut b = SlabCache::new("b", 64, 0, SlabFlags::NONE, None).unwrap();
    let mut objs = [std::ptr::null_mut(); 10];
    assert_eq!(a.alloc_bulk(&mut src, &mut objs), 10);
    let foreign = b.alloc(&mut src).unwrap().as_ptr();
    let batch = [
        objs[0],
        foreign,
        objs[1],
        objs[0],
        objs[2].wrapping_add(8),
        std::ptr::null_mut(),
        objs[3],
    ];
    let e = a.free_bulk(&mut src, &batch).unwrap_err();
    assert_eq!((e.failed, e.first_index), (4, 1));
    assert_eq!(e.first, SlabError::ForeignPointer);
    assert_eq!(a.active_objs(), 7, "objs 0, 1 and 3 freed");
    assert!(b.owns(&src, foreign));
    assert_eq!(a.free(&mut src, objs[1]), Err(SlabError::DoubleFree));
    a.check_invariants(&src).unwrap();
    a.free_bulk(&mut src, &objs[4..]).unwrap();
    a.free(&mut src, objs[2]).unwrap();
    assert_eq!(a.active_objs(), 0);
    b.free(&mut src, foreign).unwrap();
    a.destroy(&mut src).unwrap();
    b.destroy(&mut src).unwrap();
}

#[test]
fn bulk_alloc_stops_at_out_of_memory() {
    let mut pool = pool(8);
    let mut src = pool.src();
    let mut c = SlabCache::new_for_cpus("oom", 1024, 0, SlabFlags::NONE, None, 1).unwrap();
    assert_eq!((c.order(), c.objects_per_slab()), (1, 8));
    let mut out = vec![std::ptr::null_mut(); 40];
    assert_eq!(c.alloc_bulk(&mut src, &mut out), 32, "4 slabs of 8");
    assert_eq!(c.alloc(&mut src), Err(SlabError::OutOfMemory));
    c.free_bulk(&mut src, &out[..32]).unwrap();
    c.destroy(&mut src).unwrap();
}

#[test]
fn a_write_into_a_free_object_is_caught_not_followed() {
    let mut pool = pool(8);
    let mut src = pool.src();
    // 16-byte objects: 256 per slab, linked through a freelist.
    let mut c = SlabCache::new("uaf", 16, 0, SlabFlags::NONE, None).unwrap();
    assert_eq!(c.objects_per_slab(), 256);
    let x = c.alloc(&mut src).unwrap().as_ptr();
    let y = c.alloc(&mut src).unwrap().as_ptr();
    c.free(&mut src, x).unwrap();
    // A second free of `x` is caught by walking the freelist.
    assert_eq!(c.free(&mut src, x), Err(SlabError::DoubleFree));
    // Use after free: scribble over the whole freed object.
    // SAFETY: `x` is a 16-byte object of a slab the test owns; nothing else
    // reads it but the cache.
    unsafe { x.write_bytes(0x5A, 16) };
    assert!(c.check_invariants(&src).is_err());
    assert_eq!(c.alloc(&mut src), Err(SlabError::Corrupt));
    assert_eq!(c.free(&mut src, y), Ok(()));
}

/// Random bulk allocations and frees (in random order, with repeats and
/// strangers mixed in) against a model: every object handed out is
/// distinct and owned, every refusal is of a pointer the model says is not
/// live, and the invariants hold after each call.
#[test]
fn bulk_calls_agree_with_a_model() {
    for size in [64, 32, 192, 16] {
        let mut pool = pool(256);
        let mut src = pool.src();
        let mut c = SlabCache::new("model", size, 0, SlabFlags::NONE, None).unwrap();
        let mut live: Vec<*mut u8> = Vec::new();
        let mut x = 0x9e37_79b9u32 ^ size as u32;
        let mut rng = move |n: usize| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as usize % n.max(1)
        };
        for _ in 0..300 {
            if rng(2) == 0 || live.is_empty() {
                let mut out = vec![std::ptr::null_mut(); 1 + rng(150)];
                let got = c.alloc_bulk(&mut src, &mut out);
                assert_eq!(got, out.len(), "size {size}: the pool is large enough");
                for &p in &out {
                    assert!(c.owns(&src, p) && !live.contains(&p), "size {size}");
                }
                live.extend_from_slice(&out);
            } else {
                // A random subset, shuffled, with a repeat and a stranger.
                let mut batch = Vec::new();
                for _ in 0..1 + rng(live.len()) {
                    batch.push(live.swap_remove(rng(live.len())));
                    if live.is_empty() {
                        break;
                    }
                }
                // A repeat or a stranger whose slab emptied and went back
                // to the buddy earlier in the call is no longer in one of
                // this cache's slabs: foreign.
                use SlabError::{DoubleFree, ForeignPointer, NotAnObject};
                let bad = [
                    (batch[0], &[DoubleFree, ForeignPointer][..]),
                    (batch[0].wrapping_add(1), &[NotAnObject, ForeignPointer][..]),
                    (std::ptr::null_mut(), &[SlabError::NullPointer][..]),
                ];
                let (p, why) = bad[rng(3)];
                batch.insert(rng(batch.len() + 1), p);
                let e = c.free_bulk(&mut src, &batch).unwrap_err();
                assert_eq!(
                    e.failed, 1,
                    "size {size}: only the repeat, stranger or null"
                );
                assert!(why.contains(&e.first), "size {size}: {:?}", e.first);
            }
            assert_eq!(c.active_objs(), live.len() as u64, "size {size}");
            c.check_invariants(&src).unwrap();
        }
        c.free_bulk(&mut src, &live).unwrap();
        assert_eq!(c.active_objs(), 0);
        c.destroy(&mut src).unwrap();
        assert_eq!(src.buddy().free_pages(), 256, "size {size}");
    }
}
