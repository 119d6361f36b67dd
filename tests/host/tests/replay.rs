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

mod steps;

use steps::{alloc, cache, free, kmalloc, pages};
use RequestError::{Invalid, TooBig};

fn run(steps: &[MemlabReplayStep]) -> Result<ReplayPlan, RequestError> {
    let mut live = vec![0u64; ids_needed(steps)];
    plan(steps, &mut live).map_err(RequestError::from)
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
        assert_eq!(decode(&s).map_err(RequestError::from), Err(want), "{what}");
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

fn header() -> uapi::MemlabReplay {
    uapi::MemlabReplay {
        steps: 0x1000,
        steps_len: 10 * 24,
        backend: uapi::MEMLAB_BACKEND_MIRROR,
        zone: uapi::MEMLAB_ZONE_NORMAL,
        ..Default::default()
    }
}

#[test]
fn a_good_header_is_typed() {
    use memlab_core::request::{replay::ReplayRequest, BackendId, Zone};
    let r = ReplayRequest::try_from(&header()).unwrap();
    assert_eq!((r.backend, r.zone), (BackendId::Mirror, Zone::Normal));
    assert_eq!(
        (r.steps_ptr, r.steps, r.every, r.nr_samples),
        (0x1000, 10, 0, 0)
    );
    assert_eq!((r.steps_bytes(), r.samples_bytes()), (240, 0));
    // Every 3 steps of 10: before the first, after 3, 6 and 9.
    let s = uapi::MemlabReplay {
        samples: 0x2000,
        samples_len: 4 * 112,
        sample_every: 3,
        ..header()
    };
    let r = ReplayRequest::try_from(&s).unwrap();
    assert_eq!((r.every, r.nr_samples, r.samples_ptr), (3, 4, 0x2000));
    assert_eq!(r.samples_bytes(), 448);
}

#[test]
fn every_header_rule_gets_its_errno() {
    use memlab_core::request::{replay::ReplayRequest, Ioctl, Refusal};
    let max = u64::from(uapi::MEMLAB_REPLAY_MAX_STEPS);
    let sampled = uapi::MemlabReplay {
        samples: 0x2000,
        samples_len: 4 * 112,
        sample_every: 3,
        ..header()
    };
    for (what, q, want) in [
        (
            "an output set",
            uapi::MemlabReplay {
                allocs: 1,
                ..header()
            },
            Refusal::OutputSet {
                ioctl: Ioctl::Replay,
            },
        ),
        (
            "unknown backend",
            uapi::MemlabReplay {
                backend: 2,
                ..header()
            },
            Refusal::Backend(2),
        ),
        (
            "zone Movable",
            uapi::MemlabReplay {
                zone: uapi::MEMLAB_ZONE_MOVABLE,
                ..header()
            },
            Refusal::Zone(uapi::MEMLAB_ZONE_MOVABLE),
        ),
        (
            "no steps",
            uapi::MemlabReplay {
                steps_len: 0,
                ..header()
            },
            Refusal::StepsLen(0),
        ),
        (
            "a part of a step",
            uapi::MemlabReplay {
                steps_len: 25,
                ..header()
            },
            Refusal::StepsLen(25),
        ),
        (
            "more steps than the max",
            uapi::MemlabReplay {
                steps_len: (max + 1) * 24,
                ..header()
            },
            Refusal::Steps(max + 1),
        ),
        (
            "a sample buffer without an interval",
            uapi::MemlabReplay {
                sample_every: 0,
                ..sampled
            },
            Refusal::SamplesWithoutInterval,
        ),
        (
            "a sample buffer too small",
            uapi::MemlabReplay {
                samples_len: 4 * 112 - 1,
                ..sampled
            },
            Refusal::SamplesShort {
                ioctl: Ioctl::Replay,
                room: 4 * 112 - 1,
                need: 4 * 112,
            },
        ),
    ] {
        assert_eq!(ReplayRequest::try_from(&q), Err(want), "{what}");
        let errno = if what == "more steps than the max" {
            TooBig
        } else {
            Invalid
        };
        assert_eq!(want.error(), errno, "{what}");
    }
    assert!(ReplayRequest::try_from(&uapi::MemlabReplay {
        steps_len: max * 24,
        ..header()
    })
    .is_ok());
}

#[test]
fn step_refusals_name_the_rule() {
    use memlab_core::request::Refusal;
    assert_eq!(decode(&free(3)), Ok(ReplayOp::Free { id: 3 }));
    assert_eq!(run_refusal(&[free(3)]), Refusal::IdNotLive(3));
    assert_eq!(
        run_refusal(&[kmalloc(2, 8), kmalloc(2, 8)]),
        Refusal::IdLive(2)
    );
    assert_eq!(
        decode(&pages(0, 11)).unwrap_err().to_string(),
        "order 11 is above MAX_PAGE_ORDER 10"
    );
    assert_eq!(
        decode(&kmalloc(0, 0)).unwrap_err().to_string(),
        "kmalloc size 0: size must be at least 1"
    );
}

fn run_refusal(steps: &[MemlabReplayStep]) -> memlab_core::request::Refusal {
    let mut live = vec![0u64; ids_needed(steps)];
    plan(steps, &mut live).unwrap_err()
}
