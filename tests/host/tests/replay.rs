// SPDX-License-Identifier: GPL-2.0

//! The in-kernel replay's validation (src/request/replay.rs), on the host:
//! each step rule with its errno, the id pairing, the cache bound, the
//! peak the caps are charged with, and the unusable index in ppm.

use memlab_core::render::{unusable_free_index, unusable_free_scaled, ContigPageInfo};
use memlab_core::request::replay::{
    charge_of, decode, ids_needed, plan, unusable_ppm, ReplayOp, ReplayPlan, MAX_CACHES,
};
use memlab_core::request::{Family, Gfp, GfpSel, RequestError};
use memlab_core::uapi::{self, MemlabReplayStep};

use RequestError::{Invalid, TooBig};

fn alloc(family: u32, id: u32, arg: u64) -> MemlabReplayStep {
    MemlabReplayStep {
        op: uapi::MEMLAB_REPLAY_ALLOC,
        family,
        gfp: uapi::MEMLAB_GFP_KERNEL,
        id,
        arg,
    }
}

fn kmalloc(id: u32, size: u64) -> MemlabReplayStep {
    alloc(uapi::MEMLAB_FAMILY_KMALLOC, id, size)
}

fn pages(id: u32, order: u64) -> MemlabReplayStep {
    alloc(uapi::MEMLAB_FAMILY_PAGES, id, order)
}

fn cache(id: u32, size: u64) -> MemlabReplayStep {
    alloc(uapi::MEMLAB_FAMILY_KMEM_CACHE, id, size)
}

fn free(id: u32) -> MemlabReplayStep {
    MemlabReplayStep {
        op: uapi::MEMLAB_REPLAY_FREE,
        id,
        ..Default::default()
    }
}

fn run(steps: &[MemlabReplayStep]) -> Result<ReplayPlan, RequestError> {
    let mut live = vec![0u64; ids_needed(steps)];
    plan(steps, &mut live)
}

#[test]
fn steps_decode() {
    assert_eq!(
        decode(&kmalloc(3, 100)),
        Ok(ReplayOp::Alloc {
            id: 3,
            family: Family::Kmalloc { size: 100 },
            gfp: Gfp::KERNEL
        })
    );
    let atomic_pages = MemlabReplayStep {
        gfp: uapi::MEMLAB_GFP_DMA32,
        ..pages(0, 10)
    };
    assert_eq!(
        decode(&atomic_pages),
        Ok(ReplayOp::Alloc {
            id: 0,
            family: Family::Pages { order: 10 },
            gfp: Gfp::new(GfpSel::Dma32, false)
        })
    );
    assert_eq!(decode(&free(7)), Ok(ReplayOp::Free { id: 7 }));
}

#[test]
fn bad_steps_get_their_errno() {
    let max = uapi::MEMLAB_REPLAY_MAX_IDS;
    for (what, s, want) in [
        (
            "unknown op",
            MemlabReplayStep {
                op: 2,
                ..kmalloc(0, 8)
            },
            Invalid,
        ),
        (
            "vmalloc",
            alloc(uapi::MEMLAB_FAMILY_VMALLOC, 0, 4096),
            Invalid,
        ),
        ("dma", alloc(uapi::MEMLAB_FAMILY_DMA, 0, 4096), Invalid),
        ("unknown family", alloc(99, 0, 8), Invalid),
        (
            "unknown gfp",
            MemlabReplayStep {
                gfp: uapi::MEMLAB_NR_GFP,
                ..kmalloc(0, 8)
            },
            Invalid,
        ),
        (
            "__GFP_ZERO",
            MemlabReplayStep {
                gfp: uapi::MEMLAB_GFP_ZERO,
                ..kmalloc(0, 8)
            },
            Invalid,
        ),
        (
            "kmalloc GFP_DMA32",
            MemlabReplayStep {
                gfp: uapi::MEMLAB_GFP_DMA32,
                ..kmalloc(0, 8)
            },
            Invalid,
        ),
        ("size 0", kmalloc(0, 0), Invalid),
        (
            "kmalloc past KMALLOC_MAX_SIZE",
            kmalloc(0, (4 << 20) + 1),
            TooBig,
        ),
        (
            "kmem_cache past KMALLOC_MAX_SIZE",
            cache(0, u64::MAX),
            TooBig,
        ),
        ("order past MAX_PAGE_ORDER", pages(0, 11), TooBig),
        ("id past the table", kmalloc(max, 8), Invalid),
        ("free of an id past the table", free(max), Invalid),
        (
            "free with a family",
            MemlabReplayStep {
                family: 2,
                ..free(0)
            },
            Invalid,
        ),
        (
            "free with a size",
            MemlabReplayStep { arg: 8, ..free(0) },
            Invalid,
        ),
        (
            "free with a gfp",
            MemlabReplayStep { gfp: 1, ..free(0) },
            Invalid,
        ),
    ] {
        assert_eq!(decode(&s), Err(want), "{what}");
        assert_eq!(run(&[s]), Err(want), "{what} in a plan");
    }
    assert_eq!(decode(&kmalloc(0, 4 << 20)).map(|_| ()), Ok(()));
}

#[test]
fn ids_pair_up() {
    assert_eq!(run(&[kmalloc(0, 8), kmalloc(0, 8)]), Err(Invalid));
    assert_eq!(run(&[free(0)]), Err(Invalid));
    assert_eq!(run(&[kmalloc(0, 8), free(0), free(0)]), Err(Invalid));
    assert_eq!(run(&[kmalloc(1, 8), free(0)]), Err(Invalid));
    // A bad step late in the trace is found before anything runs.
    let mut steps: Vec<_> = (0..1000).map(|i| kmalloc(i, 64)).collect();
    steps.push(free(5000));
    assert_eq!(run(&steps), Err(Invalid));
    // An id may be reused once freed.
    let p = run(&[kmalloc(4, 8), free(4), pages(4, 0), free(4)]).unwrap();
    assert_eq!((p.allocs, p.frees, p.ids), (2, 2, 5));
    assert_eq!(ids_needed(&[kmalloc(4, 8), free(4)]), 5);
    assert_eq!(
        ids_needed(&[kmalloc(u32::MAX, 8)]),
        uapi::MEMLAB_REPLAY_MAX_IDS as usize
    );
}

#[test]
fn the_peak_is_what_is_live_at_once() {
    let p = run(&[
        pages(0, 3),     // 32 KiB
        kmalloc(1, 100), // 128
        free(0),
        pages(2, 1),  // 8 KiB
        cache(3, 24), // 32
    ])
    .unwrap();
    assert_eq!(p.peak_bytes, 32768 + 128);
    assert_eq!(charge_of(Family::Kmalloc { size: 1 }), 8);
    assert_eq!(charge_of(Family::Pages { order: 10 }), 4 << 20);
}

#[test]
fn caches_are_one_per_size_and_bounded() {
    let p = run(&[cache(0, 24), cache(1, 100), cache(2, 24), free(0)]).unwrap();
    assert_eq!(p.nr_caches, 2);
    assert_eq!((p.cache_index(24), p.cache_index(100)), (Some(0), Some(1)));
    assert_eq!(p.cache_index(64), None);
    let many: Vec<_> = (0..MAX_CACHES as u32)
        .map(|i| cache(i, 8 + u64::from(i)))
        .collect();
    assert_eq!(run(&many).unwrap().nr_caches, MAX_CACHES);
    let mut more = many.clone();
    more.push(cache(100, 4096));
    assert_eq!(run(&more), Err(TooBig));
}

#[test]
fn unusable_index_in_ppm_matches_the_kernels_thousandths() {
    // 8 free order-0 pages and one order-3 block: half of free memory is
    // unusable for order 3, all of it for order 9.
    let mut nr = [0u64; 11];
    nr[0] = 8;
    nr[3] = 1;
    assert_eq!(unusable_ppm(&nr, 3), 500_000);
    assert_eq!(unusable_ppm(&nr, 9), 1_000_000);
    assert_eq!(unusable_ppm(&nr, 0), 0);
    assert_eq!(unusable_ppm(&[0; 11], 3), 1_000_000);
    for order in 0..11 {
        let info = ContigPageInfo::new(&[3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5], order);
        let k = i64::from(unusable_free_index(order, &info));
        let ppm = unusable_free_scaled(order, &info, 1_000_000) as i64;
        assert_eq!(ppm / 1000, k, "order {order}");
    }
}
