// SPDX-License-Identifier: GPL-2.0

//! The mirror allocators in the module, beyond the family tables: their
//! allocations show in their own debugfs files, their kmalloc size classes
//! are the kernel's, and their watermarks behave like the kernel's.

use super::req::{self, gfp, on};
use super::{free_pages_in, mirror_file, open};
use crate::bench;
use crate::dev::{uapi, Memlab};
use crate::tap::{check, Outcome, Suite};
use uapi::*;

fn mirror(r: MemlabAlloc) -> MemlabAlloc {
    on(MEMLAB_BACKEND_MIRROR, r)
}

/// ALLOC then INSPECT, keeping the block (freed with the file).
fn alloc_inspect(d: &Memlab, r: &MemlabAlloc) -> Result<MemlabBlockInfo, String> {
    d.alloc(r)
        .and_then(|h| d.inspect(h))
        .map_err(|e| format!("{r:?}: {e}"))
}

pub fn cases(s: &mut Suite) {
    s.case(
        "mirror pages: order 3 is 8 aligned pages and shows in mirror/buddyinfo",
        pages_in_buddyinfo,
    );
    s.case(
        "mirror kmalloc: ksize is the size class; above KMALLOC_MAX_SIZE is ENOMEM",
        kmalloc_classes,
    );
    s.case("mirror kmem_cache honours a 256-byte alignment", || {
        let d = open()?;
        let r = mirror(req::kmem_cache(100, 256));
        for _ in 0..4 {
            let i = alloc_inspect(&d, &r)?;
            check(i.align_log2 >= 8, || {
                format!("object at 2^{} alignment", i.align_log2)
            })?;
        }
        Ok(())
    });
    s.case(
        "mirror GFP: DMA from ZONE_DMA, DMA32 below 4 GiB (Normal where the kernel has neither), __GFP_ZERO zeroes",
        || {
            let d = open()?;
            let page = |g| mirror(gfp(req::pages(0), g));
            let i = alloc_inspect(&d, &page(MEMLAB_GFP_DMA))?;
            let want = super::kernel::zone_limit(MEMLAB_GFP_DMA).unwrap_or(MEMLAB_ZONE_NORMAL);
            check(i.zone == want, || {
                format!("GFP_DMA zone {}, want {want}", i.zone)
            })?;
            let i = alloc_inspect(&d, &page(MEMLAB_GFP_DMA32))?;
            match super::kernel::zone_limit(MEMLAB_GFP_DMA32) {
                Some(_) => check(i.zone <= MEMLAB_ZONE_DMA32 && i.first_pfn < 1 << 20, || {
                    format!("GFP_DMA32: {i:?}")
                })?,
                None => check(i.zone == MEMLAB_ZONE_NORMAL, || format!("GFP_DMA32: {i:?}"))?,
            }
            let i = alloc_inspect(&d, &page(MEMLAB_GFP_KERNEL | MEMLAB_GFP_ZERO))?;
            check(i.zeroed == 1, || format!("GFP_KERNEL|__GFP_ZERO: {i:?}"))
        },
    );
    s.case(
        "mirror __GFP_ZERO: a block freed dirty comes back zeroed, in every family",
        zero_after_dirty_free,
    );
    s.case(
        "mirror watermark: GFP_NOWAIT stops at the reserve, GFP_ATOMIC dips into it",
        watermark,
    );
}

fn pages_in_buddyinfo() -> Outcome {
    let d = open()?;
    mirror_file("check")?;
    let before = free_pages_in(&mirror_file("buddyinfo")?);
    let i = alloc_inspect(&d, &mirror(req::pages(3)))?;
    check(
        i.nr_pages == 8 && i.first_pfn % 8 == 0 && i.phys_runs == 1 && i.usable == 8 << 12,
        || format!("{i:?}"),
    )?;
    // The block may come through a CPU's page list, which refills from the
    // buddy a batch at a time (more than one page once the pool is larger
    // than the default): drain the lists again, so that only the block is
    // missing from the buddy.
    mirror_file("check")?;
    let during = free_pages_in(&mirror_file("buddyinfo")?);
    check(before - during == 8, || {
        format!("free pages {before} -> {during}, want -8")
    })?;
    d.free(i.handle).map_err(|e| e.to_string())?;
    // Orders up to 3 are freed onto a CPU's page list, as in the kernel;
    // reading mirror/check drains the lists back to the buddy.
    mirror_file("check")?;
    let after = free_pages_in(&mirror_file("buddyinfo")?);
    check(after == before, || {
        format!("free pages {before} -> {after} after FREE")
    })
}

fn kmalloc_classes() -> Outcome {
    let d = open()?;
    // (size, class); above 8 KiB kmalloc takes whole pages: 8193 B is an
    // order-2 block.
    for (size, usable) in [
        (1u64, 8u64),
        (100, 128),
        (150, 192),
        (4097, 8192),
        (8193, 16384),
    ] {
        let i = alloc_inspect(&d, &mirror(req::kmalloc(size)))?;
        check(i.usable == usable, || {
            format!("kmalloc({size}): usable {} want {usable}", i.usable)
        })?;
    }
    let max = super::kernel::kmalloc_max_size()?;
    match d.alloc(&mirror(req::kmalloc(max + 1))) {
        Err(e) if e.raw_os_error() == Some(libc::ENOMEM) => Ok(()),
        other => Err(format!(
            "kmalloc(KMALLOC_MAX_SIZE {max} + 1): {other:?}, want ENOMEM"
        )),
    }
}

/// The mirror fills every block a handle frees with 0xaa (`PAGE_POISON`).
/// Each family here frees such a block and allocates it again with
/// `__GFP_ZERO`; the module then reads the bytes back apart from the code
/// that zeroed them, so a mirror that skips or shortens the zeroing fails.
/// The block must be the dirty one (same first PFN), or the check proves
/// nothing: the sizes are the ones that come back from a CPU's page list or
/// sheaf, last in, first out, with the harness pinned to one CPU.
fn zero_after_dirty_free() -> Outcome {
    let _unpin = bench::SavedAffinity::save().map_err(|e| format!("sched_getaffinity: {e}"))?;
    bench::pin_to(0).map_err(|e| format!("pin to CPU 0: {e}"))?;
    let d = open()?;
    for (what, r) in [
        ("pages order 0", req::pages(0)),
        ("pages order 3", req::pages(3)),
        ("kmalloc 100 B", req::kmalloc(100)),
        ("kmalloc 16 KiB (pages)", req::kmalloc(16 << 10)),
        ("kmem_cache 64 B", req::kmem_cache(64, 0)),
        ("vmalloc 4 KiB", req::vmalloc(4096)),
        ("dma 8 KiB", req::dma(8192)),
    ] {
        // No DMA API on UML: the other families still run.
        if r.family == uapi::MEMLAB_FAMILY_DMA && super::kernel::need_dma().is_err() {
            continue;
        }
        let r = mirror(r);
        let dirty = alloc_inspect(&d, &r)?;
        d.free(dirty.handle)
            .map_err(|e| format!("{what}: FREE: {e}"))?;
        let z = alloc_inspect(&d, &gfp(r, MEMLAB_GFP_KERNEL | MEMLAB_GFP_ZERO))?;
        check(z.first_pfn == dirty.first_pfn, || {
            format!(
                "{what}: __GFP_ZERO got PFN {:#x}, not the dirty block at {:#x}",
                z.first_pfn, dirty.first_pfn
            )
        })?;
        check(z.zeroed == 1, || {
            format!("{what}: the dirty block did not read zero after __GFP_ZERO: {z:?}")
        })?;
        d.free(z.handle).map_err(|e| format!("{what}: FREE: {e}"))?;
    }
    Ok(())
}

/// Order-4 blocks of mask `g` until ENOMEM, in as many files as the
/// per-file cap needs (a new file on E2BIG, for a pool larger than the
/// cap); returns the count and the files, which hold the blocks.
fn count_until_enomem(g: u32) -> Result<(u32, Vec<Memlab>), String> {
    let r = mirror(gfp(req::pages(4), g));
    // The pool's order-4 blocks, and a few more.
    let most = super::params::params().pool_pages() / 16 + 16;
    let mut files = vec![open()?];
    let mut n = 0;
    while u64::from(n) < most {
        let d = files.last().ok_or("no file")?;
        match d.alloc(&r) {
            Ok(_) => n += 1,
            Err(e) if e.raw_os_error() == Some(libc::ENOMEM) => return Ok((n, files)),
            Err(e) if e.raw_os_error() == Some(libc::E2BIG) && files.len() < 64 => {
                files.push(open()?)
            }
            Err(e) => return Err(format!("after {n}: {e}")),
        }
    }
    Err(format!("no ENOMEM after {n} order-4 blocks"))
}

fn watermark() -> Outcome {
    // Both counts start with the per-CPU lists drained (reading
    // mirror/check does that): blocks of orders up to 3 are freed onto them.
    let n1 = {
        mirror_file("check")?;
        let (n, files) = count_until_enomem(MEMLAB_GFP_NOWAIT)?;
        let d = files.last().ok_or("no file")?;
        // Order 1: the CPU's list of that order is empty (no order-1 block
        // was freed since the drain), so it must come out of a zone's
        // reserve.
        d.alloc(&mirror(gfp(req::pages(1), MEMLAB_GFP_ATOMIC)))
            .map_err(|e| format!("GFP_ATOMIC below the watermark: {e}"))?;
        n
    };
    // Closing the files gave everything back: the same count again.
    mirror_file("check")?;
    let (n2, _files) = count_until_enomem(MEMLAB_GFP_NOWAIT)?;
    check(n1 > 100 && n1 == n2, || {
        format!("order-4 blocks before ENOMEM: {n1} then {n2}")
    })
}
