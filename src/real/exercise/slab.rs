// SPDX-License-Identifier: GPL-2.0

//! The kmalloc and kmem_cache exercises: size classes and ksize up to
//! KMALLOC_MAX_SIZE; caches with constructors, alignment and zeroing.

use super::super::{gfp::GfpFlags, kmalloc::Kmalloc, kmalloc::KMALLOC_MAX_SIZE, kmem_cache};
use super::{reps_for, Run};
use crate::platform::phys::Placement;
use crate::platform::{clock::time, phys};
use crate::real::report::Latency;
use crate::real::report::Row;
use crate::request::{CacheFlags, Gfp, GfpSel};
use kernel::{bindings::gfp_t, page::PAGE_SIZE, prelude::*, sync::Arc};

/// The size class kmalloc should pick for `size` (<= 8 KiB: the kmalloc
/// caches incl. 96 and 192; above: whole pages of the next order).
fn expected_ksize(size: usize) -> usize {
    match size {
        0..=8 => 8,
        65..=96 => 96,
        129..=192 => 192,
        s if s <= 8192 => s.next_power_of_two(),
        s => PAGE_SIZE << (s.div_ceil(PAGE_SIZE)).next_power_of_two().trailing_zeros(),
    }
}

pub(super) fn ex_kmalloc(run: &mut Run, reps: u32) -> Result {
    let mut sizes = KVec::new();
    let mut s = 8;
    while s <= KMALLOC_MAX_SIZE {
        sizes.push(s, GFP_KERNEL)?;
        if s == 64 {
            sizes.push(96, GFP_KERNEL)?;
        }
        if s == 128 {
            sizes.push(192, GFP_KERNEL)?;
        }
        s *= 2;
    }
    sizes.push(100, GFP_KERNEL)?;
    sizes.push(KMALLOC_MAX_SIZE + 1, GFP_KERNEL)?;
    let flags = Gfp::KERNEL.flags();
    for &size in sizes.iter() {
        let row = Row::new("kmalloc", "size", size as u64, size <= KMALLOC_MAX_SIZE);
        let alloc = || Kmalloc::new(size, flags);
        run.case(row, reps_for(reps, size), alloc, |row, k| {
            row.place(Placement::linear(k.phys(), size));
            let ksize = k.ksize();
            row.note("ksize", ksize as u64);
            row.note("expected_ksize", expected_ksize(size) as u64);
            ksize == expected_ksize(size)
        })?;
    }
    Ok(())
}

pub(super) fn ex_kmem_cache(run: &mut Run, reps: u32) -> Result {
    // (object size, align, constructor, zero)
    let cases: [(usize, usize, bool, bool); 7] = [
        (24, 0, true, false),
        (64, 0, true, false),
        (100, 0, true, false),
        (100, 64, true, false),
        (200, 256, true, false),
        (512, 512, true, false),
        (128, 0, false, true),
    ];
    let n = (reps as usize).max(64);
    for (size, align, ctor, zero) in cases {
        let mut row = Row::new(
            if ctor {
                "kmem_cache+ctor"
            } else {
                "kmem_cache+zero"
            },
            "size",
            size as u64,
            true,
        );
        row.note("align", align as u64);
        let cache = kmem_cache::Cache::new(size, align, CacheFlags::default(), ctor)?;
        let flags = Gfp::new(GfpSel::Kernel, zero).flags();
        let fill = fill_cache(run, &cache, flags, n, align, zero)?;
        let lat = Latency::from_samples(&mut run.scratch);
        let ctor_calls = kmem_cache::ctor_calls() - fill.ctor0;
        judge_cache(&mut row, &fill, n, size, ctor, ctor_calls);
        drop(fill);
        drop(cache);
        run.push(row, lat)?;
    }
    Ok(())
}

/// What [`fill_cache`] took from a cache and saw while doing so.
struct Fill {
    /// The objects allocated, in order; fewer than asked if one failed.
    objs: KVec<kmem_cache::Object>,
    /// Constructor calls before the first allocation.
    ctor0: u64,
    /// Objects per slab, from the smallest burst of constructor calls.
    per_slab: u64,
    /// Whether every object met the cache's alignment.
    aligned: bool,
    /// Whether every object read zero (checked only if `zero`).
    zeroed: bool,
}

/// Allocates up to `n` objects from `cache`, timing each allocation into
/// `run.scratch`, and stops at the first failure.
fn fill_cache(
    run: &mut Run,
    cache: &Arc<kmem_cache::Cache>,
    flags: gfp_t,
    n: usize,
    align: usize,
    zero: bool,
) -> Result<Fill> {
    let mut fill = Fill {
        objs: KVec::with_capacity(n, GFP_KERNEL)?,
        ctor0: kmem_cache::ctor_calls(),
        per_slab: 0,
        aligned: true,
        zeroed: true,
    };
    let mut last_ctor = fill.ctor0;
    run.scratch.clear();
    for _ in 0..n {
        let (r, dt) = time(|| kmem_cache::Object::new(cache, flags));
        let _ = run.scratch.push_within_capacity(dt);
        let Ok(o) = r else { break };
        let calls = kmem_cache::ctor_calls();
        if calls > last_ctor && (fill.per_slab == 0 || calls - last_ctor < fill.per_slab) {
            // A new slab was set up: its objects were all constructed.
            fill.per_slab = calls - last_ctor;
        }
        last_ctor = calls;
        fill.aligned &= align == 0 || o.addr() % align == 0;
        if zero {
            fill.zeroed &= o.is_zero();
        }
        if fill.objs.push_within_capacity(o).is_err() {
            break;
        }
    }
    Ok(fill)
}

/// Fills in `row` from what [`fill_cache`] saw: a constructor case passes if
/// every object was constructed, a zeroing case if every object read zero.
fn judge_cache(row: &mut Row, fill: &Fill, n: usize, size: usize, ctor: bool, ctor_calls: u64) {
    let objs = &fill.objs;
    if let Some(o) = objs.first() {
        row.ok = objs.len() == n;
        row.place(Placement::linear(o.phys(), size));
        row.align_log2 = objs
            .iter()
            .map(|o| phys::align_log2(o.phys()))
            .min()
            .unwrap_or(0);
    }
    row.note("objects", objs.len() as u64);
    row.failed_reps = (n - objs.len()) as u32;
    if ctor {
        row.note("ctor_calls", ctor_calls);
        row.note("objs_per_slab", fill.per_slab);
    } else {
        row.zeroed = Some(fill.zeroed);
    }
    row.pass = row.ok
        && fill.aligned
        && if ctor {
            // Every object handed out was constructed, whole slabs at a time.
            ctor_calls >= objs.len() as u64 && fill.per_slab > 0
        } else {
            fill.zeroed
        };
}
