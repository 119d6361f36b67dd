// SPDX-License-Identifier: GPL-2.0

//! The WORKLOAD validation rules (src/request/workload.rs), on the host:
//! every EINVAL/E2BIG rule with the refusal that names it, the typed
//! request, and the bytes a run is charged.

use memlab_core::request::{
    BackendId, Ioctl, Mode, Pattern, Refusal, RequestError, WorkloadFamily, WorkloadRequest,
};
use memlab_core::uapi::{self, MemlabWorkload};

use RequestError::{Invalid, TooBig};

/// A good timed PAIRS of 10 kmalloc(64), K = 2.
fn ok() -> MemlabWorkload {
    MemlabWorkload {
        backend: uapi::MEMLAB_BACKEND_REAL,
        family: uapi::MEMLAB_FAMILY_KMALLOC,
        pattern: uapi::MEMLAB_PATTERN_PAIRS,
        count: 10,
        size: 64,
        ops_per_sample: 2,
        ..Default::default()
    }
}

fn parse(w: MemlabWorkload) -> Result<WorkloadRequest, Refusal> {
    WorkloadRequest::try_from(&w)
}

fn errno(w: MemlabWorkload) -> Result<(), RequestError> {
    parse(w).map(|_| ()).map_err(Refusal::error)
}

#[test]
fn a_good_request_is_typed() {
    let r = parse(ok()).unwrap();
    assert_eq!(r.backend, BackendId::Real);
    assert_eq!(r.family, WorkloadFamily::Kmalloc { size: 64 });
    assert_eq!(r.pattern, Pattern::Pairs);
    assert_eq!((r.count, r.k, r.warmup, r.samples()), (10, 2, 0, 5));
    assert_eq!((r.mode, r.samples_ptr), (Mode::Timed, None));
    let p = parse(MemlabWorkload {
        backend: uapi::MEMLAB_BACKEND_MIRROR,
        family: uapi::MEMLAB_FAMILY_PAGES,
        size: 0,
        order: 3,
        pattern: uapi::MEMLAB_PATTERN_RANDOM,
        seed: 7,
        warmup: 10,
        samples_ptr: 0x1000,
        samples_cap: 10,
        ..ok()
    })
    .unwrap();
    assert_eq!(p.family, WorkloadFamily::Pages { order: 3 });
    assert_eq!(p.family.arg(), 3);
    assert_eq!(
        (p.backend, p.pattern, p.seed),
        (BackendId::Mirror, Pattern::Random, 7)
    );
    assert_eq!(p.samples_ptr, Some(0x1000));
    for (family, want) in [
        (
            uapi::MEMLAB_FAMILY_KMEM_CACHE,
            WorkloadFamily::KmemCache { size: 64 },
        ),
        (
            uapi::MEMLAB_FAMILY_VMALLOC,
            WorkloadFamily::Vmalloc { size: 64 },
        ),
    ] {
        assert_eq!(
            parse(MemlabWorkload { family, ..ok() }).unwrap().family,
            want
        );
    }
    for (flags, mode) in [
        (uapi::MEMLAB_WORKLOAD_THROUGHPUT, Mode::Throughput),
        (uapi::MEMLAB_WORKLOAD_KEEP, Mode::Keep),
        (uapi::MEMLAB_WORKLOAD_FREE_KEPT, Mode::FreeKept),
    ] {
        let w = MemlabWorkload {
            flags,
            pattern: uapi::MEMLAB_PATTERN_BATCH,
            ..ok()
        };
        assert_eq!(parse(w).unwrap().mode, mode);
    }
}

#[test]
fn every_einval_rule_names_itself() {
    let buf = MemlabWorkload {
        samples_ptr: 0x1000,
        samples_cap: 10,
        ..ok()
    };
    let cases: [(&str, MemlabWorkload, Refusal); 20] = [
        (
            "an output set",
            MemlabWorkload { ops: 1, ..ok() },
            Refusal::OutputSet {
                ioctl: Ioctl::Workload,
            },
        ),
        (
            "page_meta_bytes set",
            MemlabWorkload {
                page_meta_bytes: 1,
                ..ok()
            },
            Refusal::OutputSet {
                ioctl: Ioctl::Workload,
            },
        ),
        (
            "unknown backend",
            MemlabWorkload { backend: 2, ..ok() },
            Refusal::Backend(2),
        ),
        (
            "unknown pattern",
            MemlabWorkload {
                pattern: uapi::MEMLAB_NR_PATTERNS,
                ..ok()
            },
            Refusal::Pattern(uapi::MEMLAB_NR_PATTERNS),
        ),
        (
            "count 0",
            MemlabWorkload { count: 0, ..ok() },
            Refusal::Count(0),
        ),
        (
            "count above the max",
            MemlabWorkload {
                count: uapi::MEMLAB_WORKLOAD_MAX_COUNT + 1,
                ..ok()
            },
            Refusal::Count(uapi::MEMLAB_WORKLOAD_MAX_COUNT + 1),
        ),
        (
            "order above MAX_PAGE_ORDER",
            MemlabWorkload {
                family: uapi::MEMLAB_FAMILY_PAGES,
                order: 11,
                ..ok()
            },
            Refusal::Order {
                order: 11,
                error: Invalid,
            },
        ),
        (
            "K 0",
            MemlabWorkload {
                ops_per_sample: 0,
                ..ok()
            },
            Refusal::OpsPerSample(0),
        ),
        (
            "K above the max",
            MemlabWorkload {
                ops_per_sample: uapi::MEMLAB_WORKLOAD_MAX_K + 1,
                ..ok()
            },
            Refusal::OpsPerSample(uapi::MEMLAB_WORKLOAD_MAX_K + 1),
        ),
        (
            "a warm-up longer than the run",
            MemlabWorkload { warmup: 11, ..ok() },
            Refusal::Warmup {
                warmup: 11,
                max: 10,
            },
        ),
        (
            "KEEP and FREE_KEPT at once",
            MemlabWorkload {
                flags: uapi::MEMLAB_WORKLOAD_KEEP | uapi::MEMLAB_WORKLOAD_FREE_KEPT,
                ..ok()
            },
            Refusal::Flags(3),
        ),
        (
            "FREE_KEPT with a warm-up",
            MemlabWorkload {
                flags: uapi::MEMLAB_WORKLOAD_FREE_KEPT,
                pattern: uapi::MEMLAB_PATTERN_BATCH,
                warmup: 1,
                ..ok()
            },
            Refusal::Warmup { warmup: 1, max: 0 },
        ),
        (
            "THROUGHPUT with a sample buffer",
            MemlabWorkload {
                flags: uapi::MEMLAB_WORKLOAD_THROUGHPUT,
                ..buf
            },
            Refusal::ThroughputSamples,
        ),
        (
            "KEEP of PAIRS",
            MemlabWorkload {
                flags: uapi::MEMLAB_WORKLOAD_KEEP,
                ..ok()
            },
            Refusal::Keep {
                pattern: uapi::MEMLAB_PATTERN_PAIRS,
                family: uapi::MEMLAB_FAMILY_KMALLOC,
            },
        ),
        (
            "KEEP of a kmem_cache",
            MemlabWorkload {
                flags: uapi::MEMLAB_WORKLOAD_KEEP,
                pattern: uapi::MEMLAB_PATTERN_BATCH,
                family: uapi::MEMLAB_FAMILY_KMEM_CACHE,
                ..ok()
            },
            Refusal::Keep {
                pattern: uapi::MEMLAB_PATTERN_BATCH,
                family: uapi::MEMLAB_FAMILY_KMEM_CACHE,
            },
        ),
        (
            "a buffer without room",
            MemlabWorkload {
                samples_cap: 0,
                ..buf
            },
            Refusal::BufferHalf {
                ioctl: Ioctl::Workload,
            },
        ),
        (
            "a buffer too small",
            MemlabWorkload {
                samples_cap: 9,
                ..buf
            },
            Refusal::SamplesShort {
                ioctl: Ioctl::Workload,
                room: 9,
                need: 10,
            },
        ),
        (
            "the dma family",
            MemlabWorkload {
                family: uapi::MEMLAB_FAMILY_DMA,
                ..ok()
            },
            Refusal::Family {
                ioctl: Ioctl::Workload,
                family: uapi::MEMLAB_FAMILY_DMA,
            },
        ),
        (
            "an object below 8 bytes",
            MemlabWorkload { size: 4, ..ok() },
            Refusal::SizeBelow {
                family: uapi::MEMLAB_FAMILY_KMALLOC,
                size: 4,
                min: 8,
            },
        ),
        (
            "an order for kmalloc",
            MemlabWorkload { order: 1, ..ok() },
            Refusal::FieldNotTaken {
                family: uapi::MEMLAB_FAMILY_KMALLOC,
                field: "order",
                value: 1,
            },
        ),
    ];
    for (what, w, want) in cases {
        assert_eq!(parse(w), Err(want), "{what}");
        assert_eq!(errno(w), Err(Invalid), "{what}");
    }
    // Pages read no size, but it has always had to fit 32 bits.
    let pages = MemlabWorkload {
        family: uapi::MEMLAB_FAMILY_PAGES,
        ..ok()
    };
    assert!(parse(MemlabWorkload {
        size: 12345,
        ..pages
    })
    .is_ok());
    assert_eq!(
        errno(MemlabWorkload {
            size: 1 << 32,
            ..pages
        }),
        Err(Invalid)
    );
}

#[test]
fn every_e2big_rule_names_itself() {
    let w = MemlabWorkload {
        samples_ptr: 0x1000,
        samples_cap: 2 * uapi::MEMLAB_WORKLOAD_MAX_COUNT + 1,
        ..ok()
    };
    assert_eq!(
        parse(w),
        Err(Refusal::SamplesCap(2 * uapi::MEMLAB_WORKLOAD_MAX_COUNT + 1))
    );
    let big = MemlabWorkload {
        size: (4 << 20) + 1,
        ..ok()
    };
    assert_eq!(
        parse(big),
        Err(Refusal::SizeAbove {
            family: uapi::MEMLAB_FAMILY_KMALLOC,
            size: (4 << 20) + 1,
            max: 4 << 20,
            error: TooBig,
        })
    );
    for w in [w, big] {
        assert_eq!(errno(w), Err(TooBig));
    }
    // KMALLOC_MAX_SIZE itself is fine.
    assert!(parse(MemlabWorkload {
        size: 4 << 20,
        ..ok()
    })
    .is_ok());
}

#[test]
fn the_charge_covers_objects_and_vectors() {
    // PAIRS holds one object: 64 B, plus 10 steps of 16 B, one slot of
    // 32 B and 6 vectors of 5 samples.
    assert_eq!(parse(ok()).unwrap().bytes, 64 + 160 + 32 + 5 * 8 * 6);
    // BATCH holds them all, each charged its power of two.
    let b = parse(MemlabWorkload {
        pattern: uapi::MEMLAB_PATTERN_BATCH,
        size: 96,
        ..ok()
    })
    .unwrap();
    assert_eq!(b.bytes, 10 * 128 + 160 + 10 * 32 + 5 * 8 * 6);
    // RANDOM holds at most half, pages their block.
    let r = parse(MemlabWorkload {
        pattern: uapi::MEMLAB_PATTERN_RANDOM,
        family: uapi::MEMLAB_FAMILY_PAGES,
        size: 0,
        order: 2,
        ..ok()
    })
    .unwrap();
    assert_eq!(r.bytes, 5 * 16384 + 160 + 5 * 32 + 5 * 8 * 6);
    assert_eq!(Pattern::Random.max_live(1), 1);
    assert_eq!(Pattern::Batch.max_live(7), 7);
    assert_eq!(Pattern::Pairs.max_live(7), 1);
}

#[test]
fn free_kept_names_what_keep_left() {
    let keep = MemlabWorkload {
        flags: uapi::MEMLAB_WORKLOAD_KEEP,
        pattern: uapi::MEMLAB_PATTERN_BATCH,
        ..ok()
    };
    let free = MemlabWorkload {
        flags: uapi::MEMLAB_WORKLOAD_FREE_KEPT,
        ops_per_sample: 5,
        ..keep
    };
    let kept = parse(keep).unwrap();
    assert!(parse(free).unwrap().frees_what(&kept));
    assert!(!parse(keep).unwrap().frees_what(&kept));
    let other = parse(MemlabWorkload { count: 9, ..free }).unwrap();
    assert!(!other.frees_what(&kept));
    let mirror = parse(MemlabWorkload {
        backend: uapi::MEMLAB_BACKEND_MIRROR,
        ..free
    })
    .unwrap();
    assert!(!mirror.frees_what(&kept));
}

#[test]
fn refusals_read_as_one_line_with_the_limit() {
    let text = |w| parse(w).unwrap_err().to_string();
    assert_eq!(
        text(MemlabWorkload { count: 0, ..ok() }),
        "count 0: count must be 1..=100000 (MEMLAB_WORKLOAD_MAX_COUNT)"
    );
    assert_eq!(
        text(MemlabWorkload {
            family: uapi::MEMLAB_FAMILY_PAGES,
            order: 11,
            ..ok()
        }),
        "order 11 is above MAX_PAGE_ORDER 10"
    );
    assert_eq!(
        text(MemlabWorkload { size: 4, ..ok() }),
        "kmalloc size 4: size must be at least 8"
    );
    assert_eq!(Refusal::Count(0).errno_name(), "EINVAL");
    assert_eq!(Refusal::SamplesCap(1).errno_name(), "E2BIG");
}

#[test]
fn every_refusal_has_a_sentence() {
    use memlab_core::request::Ioctl::{Alloc, Replay, Workload};
    let all = [
        Refusal::OutputSet { ioctl: Alloc },
        Refusal::Backend(2),
        Refusal::Family {
            ioctl: Replay,
            family: 1,
        },
        Refusal::GfpBits(0x200),
        Refusal::GfpSelector(9),
        Refusal::SlabGfp {
            family: 0,
            gfp: "GFP_DMA32",
        },
        Refusal::CacheFlags(4),
        Refusal::FieldNotTaken {
            family: 2,
            field: "align",
            value: 8,
        },
        Refusal::SizeBelow {
            family: 0,
            size: 0,
            min: 1,
        },
        Refusal::SizeAbove {
            family: 3,
            size: 5 << 20,
            max: 4 << 20,
            error: Invalid,
        },
        Refusal::Unaddressable(u64::MAX),
        Refusal::Order {
            order: 11,
            error: TooBig,
        },
        Refusal::Align(48),
        Refusal::Pattern(3),
        Refusal::Count(0),
        Refusal::OpsPerSample(0),
        Refusal::Warmup { warmup: 2, max: 1 },
        Refusal::Flags(3),
        Refusal::ThroughputSamples,
        Refusal::Keep {
            pattern: 0,
            family: 0,
        },
        Refusal::BufferHalf { ioctl: Workload },
        Refusal::SamplesShort {
            ioctl: Replay,
            room: 1,
            need: 2,
        },
        Refusal::SamplesCap(200_001),
        Refusal::Zone(3),
        Refusal::StepsLen(25),
        Refusal::Steps(1 << 21),
        Refusal::SamplesWithoutInterval,
        Refusal::StepOp(2),
        Refusal::StepId(1 << 16),
        Refusal::FreeFields(1),
        Refusal::IdLive(1),
        Refusal::IdNotLive(1),
        Refusal::Caches,
        Refusal::PinCap {
            bytes: 1,
            pinned: 0,
            cap: 0,
        },
        Refusal::TotalCap {
            bytes: 1,
            pinned: 0,
            cap: 0,
        },
        Refusal::Handles(1024),
    ];
    let mut seen = std::collections::HashSet::new();
    for r in all {
        let s = r.to_string();
        assert!(s.len() > 10 && !s.contains('\n'), "{r:?}: {s:?}");
        assert!(seen.insert(s), "{r:?} says what another says");
    }
}
