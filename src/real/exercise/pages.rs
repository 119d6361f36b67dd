// SPDX-License-Identifier: GPL-2.0

//! The page-level exercises: vmalloc, alloc_pages and __get_free_pages
//! of every order, and the GFP matrix.

use super::super::{
    gfp::GfpFlags,
    kmalloc::Kmalloc,
    pages::{FreePages, Pages},
    vmalloc::Vmalloc,
    Real,
};
use super::{reps_for, Run, MIB};
use crate::platform::phys::MAX_ORDER;
use crate::platform::phys::{self, Placement};
use crate::real::report::Row;
use crate::request::{Gfp, GfpSel};
use kernel::{page::PAGE_SIZE, prelude::*};

pub(super) fn ex_vmalloc(run: &mut Run, reps: u32) -> Result {
    let flags = Gfp::KERNEL.flags();
    let zero = Gfp::new(GfpSel::Kernel, true).flags();
    let cases: [(&str, usize, bool); 8] = [
        ("vmalloc", PAGE_SIZE, false),
        ("vmalloc", 64 << 10, false),
        ("vmalloc", MIB, false),
        ("vzalloc", MIB, true),
        ("vmalloc", 4 * MIB, false),
        ("vmalloc", 16 * MIB, false),
        ("vmalloc", 64 * MIB, false),
        // More than the machine has: refused up front, quietly.
        ("vmalloc", 1 << 40, false),
    ];
    for (what, size, z) in cases {
        let row = Row::new(what, "size", size as u64, size < (1 << 40));
        let f = if z { zero } else { flags };
        run.case(
            row,
            reps_for(reps, size),
            || Vmalloc::new(size, f),
            |row, v| {
                let at = Placement::pages((0..v.nr_pages()).map(|i| v.pfn(i)));
                row.place(at);
                row.note("largest_run_pages", largest_run(v) as u64);
                let whole = at.nr_pages == size.div_ceil(PAGE_SIZE) as u64 && at.runs >= 1;
                let zeroed = !z || row.check_zero(v.is_zero());
                whole && zeroed
            },
        )?;
    }
    Ok(())
}

/// The longest run of consecutive PFNs in a vmalloc area, in pages.
fn largest_run(v: &Vmalloc) -> usize {
    let (mut best, mut cur, mut last) = (0, 0, u64::MAX);
    for i in 0..v.nr_pages() {
        let pfn = v.pfn(i);
        cur = if i > 0 && pfn == last.wrapping_add(1) {
            cur + 1
        } else {
            1
        };
        best = core::cmp::max(best, cur);
        last = pfn;
    }
    best
}

/// Records a block of `1 << order` pages at `pfn`: buddy blocks are
/// aligned to their size.
fn place_block(row: &mut Row, pfn: u64, order: u32) -> bool {
    row.place(Placement::pages(pfn..pfn + (1 << order)));
    pfn % (1u64 << order) == 0
}

pub(super) fn ex_pages(run: &mut Run, reps: u32) -> Result {
    let flags = Gfp::KERNEL.flags();
    for order in 0..=(MAX_ORDER as u32 + 1) {
        let row = Row::new(
            "alloc_pages",
            "order",
            u64::from(order),
            order as usize <= MAX_ORDER,
        );
        let r = reps_for(reps, PAGE_SIZE << order);
        run.case(
            row,
            r,
            || Pages::new(order, flags),
            |row, p| place_block(row, p.pfn(), order),
        )?;
    }
    for order in [0u32, 3] {
        let row = Row::new("__get_free_pages", "order", u64::from(order), true);
        run.case(
            row,
            reps,
            || FreePages::new(order, flags),
            |row, p| place_block(row, p.pfn(), order),
        )?;
    }
    // Zeroing through the page allocator.
    let row = Row::new("alloc_pages+zero", "order", 2, true);
    let zflags = Gfp::new(GfpSel::Kernel, true).flags();
    run.case(
        row,
        reps,
        || Pages::new(2, zflags),
        |row, p| row.check_zero(p.is_zero()) && place_block(row, p.pfn(), 2),
    )
}

/// Whether `zone` (a `MEMLAB_ZONE_*`) is one `gfp` allows on this kernel.
fn within(gfp: Gfp, zone: u32) -> bool {
    phys::zone_limit(gfp).is_none_or(|z| zone <= z as u32)
}

pub(super) fn ex_gfp(real: &Real, run: &mut Run, reps: u32) -> Result {
    for sel in GfpSel::ALL {
        for zero in [false, true] {
            let gfp = Gfp::new(sel, zero);
            let flags = gfp.flags();
            // alloc_pages(order 0), then kmalloc(256), with this mask;
            // atomic masks under a spinlock, to prove they do not sleep.
            let mut row = Row::new(gfp.name(), "pages_order", 0, true);
            row.note("atomic", u64::from(gfp.atomic()));
            row.note("zero", u64::from(zero));
            let (p, lat) = real.maybe_atomic(gfp, || run.measure(reps, || Pages::new(0, flags)));
            run.record(row, p, lat, |row, p| {
                row.place(Placement::pages([p.pfn()]));
                let zeroed = !zero || row.check_zero(p.is_zero());
                within(gfp, row.zone) && zeroed
            })?;
            if !gfp.slab_ok() {
                continue;
            }
            let mut row = Row::new(gfp.name(), "kmalloc_size", 256, true);
            row.note("atomic", u64::from(gfp.atomic()));
            row.note("zero", u64::from(zero));
            let (k, lat) =
                real.maybe_atomic(gfp, || run.measure(reps, || Kmalloc::new(256, flags)));
            run.record(row, k, lat, |row, k| {
                row.place(Placement::linear(k.phys(), 256));
                let zeroed = !zero || row.check_zero(k.is_zero());
                within(gfp, row.zone) && zeroed
            })?;
        }
    }
    Ok(())
}
