// SPDX-License-Identifier: GPL-2.0

//! The ALLOC validation rules (src/request/), on the host: every rule that
//! does not depend on an allocator, with the errno it maps to.

use memlab_core::request::{
    AllocRequest, BackendId, CacheFlags, Family, Gfp, GfpSel, RequestError, Zone,
    KMEM_CACHE_MAX_ALIGN,
};
use memlab_core::uapi::{self, MemlabAlloc};

fn req(family: u32, gfp: u32, size: u64, order: u32, align: u32) -> MemlabAlloc {
    MemlabAlloc {
        family,
        gfp,
        size,
        order,
        align,
        handle: 0,
        backend: uapi::MEMLAB_BACKEND_REAL,
        cache_flags: 0,
        reserved: 0,
    }
}

fn parse(r: MemlabAlloc) -> Result<AllocRequest, RequestError> {
    AllocRequest::try_from(&r).map_err(RequestError::from)
}

const INVALID: Result<AllocRequest, RequestError> = Err(RequestError::Invalid);

#[test]
fn every_family_parses_with_its_own_fields() {
    let k = parse(req(uapi::MEMLAB_FAMILY_KMALLOC, 0, 100, 0, 0)).unwrap();
    assert_eq!(k.family, Family::Kmalloc { size: 100 });
    assert_eq!(k.gfp, Gfp::KERNEL);
    assert_eq!(k.backend, BackendId::Real);
    assert_eq!(k.bytes(), 100);
    let p = parse(req(uapi::MEMLAB_FAMILY_PAGES, 0, 0, 3, 0)).unwrap();
    assert_eq!(p.family, Family::Pages { order: 3 });
    assert_eq!(p.bytes(), 8 * 4096);
    let c = parse(req(uapi::MEMLAB_FAMILY_KMEM_CACHE, 0, 24, 0, 64)).unwrap();
    assert_eq!(
        c.family,
        Family::KmemCache {
            size: 24,
            align: 64,
            flags: CacheFlags::default()
        }
    );
    let v = parse(req(uapi::MEMLAB_FAMILY_VMALLOC, 0, 1 << 20, 0, 0)).unwrap();
    assert_eq!(v.family, Family::Vmalloc { size: 1 << 20 });
    let d = MemlabAlloc {
        backend: uapi::MEMLAB_BACKEND_MIRROR,
        ..req(uapi::MEMLAB_FAMILY_DMA, uapi::MEMLAB_GFP_DMA32, 4096, 0, 0)
    };
    let d = parse(d).unwrap();
    assert_eq!(d.family, Family::Dma { size: 4096 });
    assert_eq!(d.backend, BackendId::Mirror);
    assert_eq!(d.gfp.sel, GfpSel::Dma32);
    for r in [k, p, c, v, d] {
        assert_eq!(r.family.to_uapi(), family_of(&r));
    }
}

fn family_of(r: &AllocRequest) -> u32 {
    match r.family {
        Family::Kmalloc { .. } => 0,
        Family::Vmalloc { .. } => 1,
        Family::Pages { .. } => 2,
        Family::KmemCache { .. } => 3,
        Family::Dma { .. } => 4,
    }
}

#[test]
fn unknown_family_backend_and_nonzero_handle_are_einval() {
    assert_eq!(parse(req(uapi::MEMLAB_NR_FAMILIES, 0, 8, 0, 0)), INVALID);
    assert_eq!(parse(req(u32::MAX, 0, 8, 0, 0)), INVALID);
    let b = MemlabAlloc {
        backend: 2,
        ..req(uapi::MEMLAB_FAMILY_KMALLOC, 0, 8, 0, 0)
    };
    assert_eq!(parse(b), INVALID);
    let h = MemlabAlloc {
        handle: 1,
        ..req(uapi::MEMLAB_FAMILY_KMALLOC, 0, 8, 0, 0)
    };
    assert_eq!(parse(h), INVALID);
}

#[test]
fn gfp_field_is_a_selector_plus_zero_and_nothing_else() {
    for sel in 0..uapi::MEMLAB_NR_GFP {
        for zero in [0, uapi::MEMLAB_GFP_ZERO] {
            let g = Gfp::from_uapi(sel | zero).unwrap();
            assert_eq!(g.to_uapi(), sel | zero);
            assert_eq!(g.zero, zero != 0);
            assert_eq!(g.sel, GfpSel::ALL[sel as usize]);
        }
    }
    let gfp = |g| Gfp::from_uapi(g).map_err(RequestError::from);
    assert_eq!(gfp(uapi::MEMLAB_NR_GFP), Err(RequestError::Invalid));
    assert_eq!(gfp(0xff), Err(RequestError::Invalid));
    assert_eq!(gfp(1 << 9), Err(RequestError::Invalid));
    assert_eq!(gfp(1 << 31), Err(RequestError::Invalid));
    assert_eq!(
        parse(req(uapi::MEMLAB_FAMILY_PAGES, 0x200, 0, 0, 0)),
        INVALID
    );
}

#[test]
fn gfp_semantics_match_the_kernel_masks() {
    let g = |s| Gfp::new(s, false);
    assert!(g(GfpSel::Atomic).atomic() && g(GfpSel::Nowait).atomic());
    assert!(!g(GfpSel::Kernel).atomic() && !g(GfpSel::Noio).atomic());
    assert!(g(GfpSel::Atomic).high() && !g(GfpSel::Nowait).high());
    assert!(!g(GfpSel::Nowait).may_reclaim() && g(GfpSel::Nofs).may_reclaim());
    assert!(!g(GfpSel::Dma32).slab_ok() && !g(GfpSel::HighUser).slab_ok());
    assert!(g(GfpSel::Dma).slab_ok() && g(GfpSel::User).slab_ok());
    assert_eq!(g(GfpSel::Dma).zone_limit(), Some(Zone::Dma));
    assert_eq!(g(GfpSel::Dma32).zone_limit(), Some(Zone::Dma32));
    assert_eq!(g(GfpSel::Kernel).zone_limit(), None);
    // A kmem_cache's zone comes from the cache: the zone bits go, the rest
    // (reclaim, atomic, zeroing) stays.
    assert_eq!(
        Gfp::new(GfpSel::Dma, true).without_zone(),
        Gfp::new(GfpSel::Kernel, true)
    );
    assert_eq!(g(GfpSel::Dma32).without_zone(), g(GfpSel::Kernel));
    assert_eq!(g(GfpSel::HighUser).without_zone(), g(GfpSel::User));
    assert_eq!(g(GfpSel::Atomic).without_zone(), g(GfpSel::Atomic));
    assert_eq!(g(GfpSel::Noio).without_zone(), g(GfpSel::Noio));
    let names: Vec<_> = GfpSel::ALL.iter().map(|s| s.name()).collect();
    assert_eq!(
        names,
        [
            "GFP_KERNEL",
            "GFP_ATOMIC",
            "GFP_NOWAIT",
            "GFP_NOIO",
            "GFP_NOFS",
            "GFP_USER",
            "GFP_HIGHUSER",
            "GFP_DMA",
            "GFP_DMA32"
        ]
    );
}

#[test]
fn slab_families_refuse_dma32_and_highuser() {
    for family in [uapi::MEMLAB_FAMILY_KMALLOC, uapi::MEMLAB_FAMILY_KMEM_CACHE] {
        for sel in [uapi::MEMLAB_GFP_DMA32, uapi::MEMLAB_GFP_HIGHUSER] {
            assert_eq!(parse(req(family, sel, 64, 0, 0)), INVALID);
            assert_eq!(
                parse(req(family, sel | uapi::MEMLAB_GFP_ZERO, 64, 0, 0)),
                INVALID
            );
        }
        assert!(parse(req(family, uapi::MEMLAB_GFP_DMA, 64, 0, 0)).is_ok());
    }
    // The page, vmalloc and DMA families take them.
    for family in [uapi::MEMLAB_FAMILY_VMALLOC, uapi::MEMLAB_FAMILY_DMA] {
        assert!(parse(req(family, uapi::MEMLAB_GFP_DMA32, 4096, 0, 0)).is_ok());
        assert!(parse(req(family, uapi::MEMLAB_GFP_HIGHUSER, 4096, 0, 0)).is_ok());
    }
    assert!(parse(req(
        uapi::MEMLAB_FAMILY_PAGES,
        uapi::MEMLAB_GFP_HIGHUSER,
        0,
        0,
        0
    ))
    .is_ok());
}

#[test]
fn sizes_orders_and_alignments() {
    for family in [
        uapi::MEMLAB_FAMILY_KMALLOC,
        uapi::MEMLAB_FAMILY_VMALLOC,
        uapi::MEMLAB_FAMILY_KMEM_CACHE,
        uapi::MEMLAB_FAMILY_DMA,
    ] {
        assert_eq!(parse(req(family, 0, 0, 0, 0)), INVALID, "size 0");
        assert_eq!(
            parse(req(family, 0, 64, 1, 0)),
            INVALID,
            "order on a sized family"
        );
    }
    // Pages: 0..=10, nothing above; no alignment.
    assert!(parse(req(uapi::MEMLAB_FAMILY_PAGES, 0, 0, 10, 0)).is_ok());
    assert_eq!(parse(req(uapi::MEMLAB_FAMILY_PAGES, 0, 0, 11, 0)), INVALID);
    assert_eq!(
        parse(req(uapi::MEMLAB_FAMILY_PAGES, 0, 0, u32::MAX, 0)),
        INVALID
    );
    assert_eq!(parse(req(uapi::MEMLAB_FAMILY_PAGES, 0, 0, 0, 8)), INVALID);
    // Alignment only for kmem_cache, a power of two up to 4 MiB.
    assert_eq!(
        parse(req(uapi::MEMLAB_FAMILY_KMALLOC, 0, 64, 0, 64)),
        INVALID
    );
    assert_eq!(
        parse(req(uapi::MEMLAB_FAMILY_KMEM_CACHE, 0, 64, 0, 48)),
        INVALID
    );
    let max = KMEM_CACHE_MAX_ALIGN as u32;
    assert!(parse(req(uapi::MEMLAB_FAMILY_KMEM_CACHE, 0, 8, 0, max)).is_ok());
    assert_eq!(
        parse(req(uapi::MEMLAB_FAMILY_KMEM_CACHE, 0, 8, 0, max * 2)),
        INVALID
    );
    // kmem_cache objects up to KMALLOC_MAX_SIZE; kmalloc itself takes any
    // size (above its limit it fails with ENOMEM, in the allocator).
    assert!(parse(req(uapi::MEMLAB_FAMILY_KMEM_CACHE, 0, 4 << 20, 0, 0)).is_ok());
    assert_eq!(
        parse(req(uapi::MEMLAB_FAMILY_KMEM_CACHE, 0, (4 << 20) + 1, 0, 0)),
        INVALID
    );
    assert!(parse(req(uapi::MEMLAB_FAMILY_KMALLOC, 0, u64::MAX, 0, 0)).is_ok());
}

#[test]
fn zones_have_the_kernel_names_and_order() {
    assert_eq!(Zone::from_uapi(uapi::MEMLAB_ZONE_DMA), Some(Zone::Dma));
    assert_eq!(
        Zone::from_uapi(uapi::MEMLAB_ZONE_NORMAL),
        Some(Zone::Normal)
    );
    assert_eq!(Zone::from_uapi(uapi::MEMLAB_ZONE_MIXED), None);
    assert_eq!(Zone::name_of_uapi(uapi::MEMLAB_ZONE_DMA32), "DMA32");
    assert_eq!(Zone::name_of_uapi(uapi::MEMLAB_ZONE_MIXED), "mixed");
    assert!(Zone::Dma < Zone::Dma32 && Zone::Dma32 < Zone::Normal);
    for (i, z) in Zone::ALL.iter().enumerate() {
        assert_eq!(z.index(), i);
    }
}

#[test]
fn cache_flags_only_for_kmem_cache_and_reserved_zero() {
    let c = |flags| MemlabAlloc {
        cache_flags: flags,
        ..req(uapi::MEMLAB_FAMILY_KMEM_CACHE, 0, 64, 0, 0)
    };
    let dma = parse(c(uapi::MEMLAB_CACHE_DMA)).unwrap();
    let Family::KmemCache { flags, .. } = dma.family else {
        panic!("{dma:?}")
    };
    assert!(flags.dma && !flags.hwcache_align);
    assert_eq!(flags.zone(), Some(Zone::Dma));
    let hw = parse(c(uapi::MEMLAB_CACHE_HWCACHE_ALIGN)).unwrap();
    let Family::KmemCache { flags, .. } = hw.family else {
        panic!("{hw:?}")
    };
    assert!(!flags.dma && flags.hwcache_align);
    assert_eq!(flags.zone(), None);
    assert!(parse(c(uapi::MEMLAB_CACHE_FLAGS)).is_ok());
    assert_eq!(parse(c(1 << 2)), INVALID);
    assert_eq!(parse(c(u32::MAX)), INVALID);
    for family in [
        uapi::MEMLAB_FAMILY_KMALLOC,
        uapi::MEMLAB_FAMILY_VMALLOC,
        uapi::MEMLAB_FAMILY_DMA,
        uapi::MEMLAB_FAMILY_PAGES,
    ] {
        let r = MemlabAlloc {
            cache_flags: uapi::MEMLAB_CACHE_DMA,
            ..req(family, 0, 4096, 0, 0)
        };
        assert_eq!(parse(r), INVALID, "cache flags on family {family}");
    }
    let r = MemlabAlloc {
        reserved: 1,
        ..req(uapi::MEMLAB_FAMILY_KMALLOC, 0, 64, 0, 0)
    };
    assert_eq!(parse(r), INVALID);
}

#[test]
fn alloc_refusals_name_the_rule_and_the_limit() {
    use memlab_core::request::{check_pin_cap, Refusal};
    let text = |r| AllocRequest::try_from(&r).unwrap_err().to_string();
    assert_eq!(
        text(req(uapi::MEMLAB_FAMILY_KMALLOC, 0, 0, 0, 0)),
        "kmalloc size 0: size must be at least 1"
    );
    assert_eq!(
        text(req(uapi::MEMLAB_FAMILY_PAGES, 0, 0, 11, 0)),
        "order 11 is above MAX_PAGE_ORDER 10"
    );
    assert_eq!(
        text(req(uapi::MEMLAB_FAMILY_KMEM_CACHE, 0, (4 << 20) + 1, 0, 0)),
        "kmem_cache size 4194305: size must be at most 4194304 (KMALLOC_MAX_SIZE)"
    );
    assert_eq!(
        AllocRequest::try_from(&req(
            uapi::MEMLAB_FAMILY_KMALLOC,
            uapi::MEMLAB_GFP_DMA32,
            8,
            0,
            0
        )),
        Err(Refusal::SlabGfp {
            family: uapi::MEMLAB_FAMILY_KMALLOC,
            gfp: "GFP_DMA32"
        })
    );
    assert_eq!(
        AllocRequest::try_from(&req(uapi::MEMLAB_FAMILY_PAGES, 0, 0, 0, 8)),
        Err(Refusal::FieldNotTaken {
            family: uapi::MEMLAB_FAMILY_PAGES,
            field: "align",
            value: 8
        })
    );
    // The pin cap: E2BIG, naming the cap in MiB.
    assert_eq!(check_pin_cap(64 << 20, 0, 64 << 20), Ok(()));
    let over = check_pin_cap(100 << 20, 0, 64 << 20).unwrap_err();
    assert_eq!(over.error(), RequestError::TooBig);
    assert_eq!(
        over.to_string(),
        "100 MiB would pass this file's pin cap, max_pinned_mb=64 (0 B held)"
    );
    assert!(check_pin_cap(1, 64 << 20, 64 << 20).is_err());
}
