// SPDX-License-Identifier: GPL-2.0

//! The exercises: each runs a list of cases against one family, `reps`
//! times each, and records per case success, latency (min / median / p99),
//! zone, physical alignment and contiguity, plus buddyinfo around the run.
//!
//! A case passes when the allocation succeeded exactly when expected and
//! every family-specific check held (size class, alignment, zone limit,
//! zeroing, ...). Failing cases are expected to fail quietly: every mask
//! carries `__GFP_NOWARN`.

use super::{
    dma,
    gfp::GfpFlags,
    kmalloc::Kmalloc,
    kmalloc::KMALLOC_MAX_SIZE,
    kmem_cache,
    pages::{FreePages, Pages},
    report::{Latency, Report, Row},
    vmalloc::Vmalloc,
    Real,
};
use crate::platform::{
    clock::now_ns,
    phys::{self, Placement, MAX_ORDER},
};
use crate::request::{Gfp, GfpSel};
use crate::uapi;
use kernel::{page::PAGE_SIZE, prelude::*};

/// Repetitions per case when the caller asks for 0.
pub(crate) const DEFAULT_REPS: u32 = 32;

const MIB: usize = 1 << 20;

/// Caps repetitions for large sizes (a 64 MiB vmalloc under TCG and KASAN
/// takes a while).
fn reps_for(reps: u32, bytes: usize) -> u32 {
    if bytes >= 16 * MIB {
        reps.min(4)
    } else if bytes >= MIB {
        reps.min(16)
    } else {
        reps
    }
}

/// One run in progress: its rows and every latency sample.
struct Run {
    rows: KVec<Row>,
    all: KVVec<u64>,
    scratch: KVec<u64>,
}

impl Run {
    fn new(reps: u32) -> Result<Self> {
        Ok(Run {
            rows: KVec::new(),
            all: KVVec::new(),
            scratch: KVec::with_capacity(reps as usize, GFP_KERNEL)?,
        })
    }

    /// Times `alloc` `reps` times, keeping the last success (each previous
    /// one is freed after its timing). Does not allocate: usable in atomic
    /// context. The samples stay in `scratch` until [`Run::push`].
    fn measure<T>(
        &mut self,
        reps: u32,
        mut alloc: impl FnMut() -> Result<T>,
    ) -> (Option<T>, Latency) {
        self.scratch.clear();
        let mut keep = None;
        for _ in 0..reps.max(1) {
            let t0 = now_ns();
            let r = alloc();
            let dt = now_ns().saturating_sub(t0);
            let _ = self.scratch.push_within_capacity(dt);
            if let Ok(x) = r {
                keep = Some(x);
            }
        }
        let lat = Latency::from_samples(&mut self.scratch);
        (keep, lat)
    }

    /// Appends a finished row and its samples.
    fn push(&mut self, mut row: Row, lat: Latency) -> Result {
        row.lat = lat;
        self.all.extend_from_slice(&self.scratch, GFP_KERNEL)?;
        self.rows.push(row, GFP_KERNEL)?;
        Ok(())
    }
}

/// Runs exercise `id`; `reps` is 1..=1000.
pub(super) fn run(real: &Real, id: u32, reps: u32) -> Result<KBox<Report>> {
    // A report holds two buddyinfo snapshots, most of a kilobyte: it is
    // built in place on the heap, never as a value on the 16 KiB kernel
    // stack (this runs under the ioctl, above deep allocator call chains).
    let mut report = KBox::init(
        try_init!(Report {
            id,
            reps,
            before <- pin_init::init_zeroed(),
            after <- pin_init::init_zeroed(),
            rows: KVec::new(),
            median_ns: 0,
            p99_ns: 0,
        }),
        GFP_KERNEL,
    )?;
    report.before.read();
    let mut run = Run::new(reps.max(64))?;
    match id {
        uapi::MEMLAB_EX_KMALLOC => ex_kmalloc(&mut run, reps)?,
        uapi::MEMLAB_EX_VMALLOC => ex_vmalloc(&mut run, reps)?,
        uapi::MEMLAB_EX_PAGES => ex_pages(&mut run, reps)?,
        uapi::MEMLAB_EX_KMEM_CACHE => ex_kmem_cache(&mut run, reps)?,
        uapi::MEMLAB_EX_DMA => ex_dma(real, &mut run, reps)?,
        uapi::MEMLAB_EX_GFP => ex_gfp(real, &mut run, reps)?,
        _ => return Err(EINVAL),
    }
    report.after.read();
    let overall = Latency::from_samples(&mut run.all);
    report.rows = run.rows;
    report.median_ns = overall.median;
    report.p99_ns = overall.p99;
    Ok(report)
}

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

fn ex_kmalloc(run: &mut Run, reps: u32) -> Result {
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
        let expect_ok = size <= KMALLOC_MAX_SIZE;
        let mut row = Row::new("kmalloc", "size", size as u64, expect_ok);
        let (k, lat) = run.measure(reps_for(reps, size), || Kmalloc::new(size, flags));
        if let Some(k) = &k {
            row.ok = true;
            row.place(Placement::linear(k.phys(), size));
            let ksize = k.ksize();
            row.note("ksize", ksize as u64);
            row.note("expected_ksize", expected_ksize(size) as u64);
            row.pass = ksize == expected_ksize(size);
        } else {
            row.pass = !expect_ok;
        }
        drop(k);
        run.push(row, lat)?;
    }
    Ok(())
}

fn ex_vmalloc(run: &mut Run, reps: u32) -> Result {
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
        let expect_ok = size < (1 << 40);
        let mut row = Row::new(what, "size", size as u64, expect_ok);
        let f = if z { zero } else { flags };
        let (v, lat) = run.measure(reps_for(reps, size), || Vmalloc::new(size, f));
        if let Some(v) = &v {
            row.ok = true;
            let at = Placement::pages((0..v.nr_pages()).map(|i| v.pfn(i)));
            row.place(at);
            row.note("largest_run_pages", largest_run(v) as u64);
            row.pass = at.nr_pages == size.div_ceil(PAGE_SIZE) as u64 && at.runs >= 1;
            if z {
                let zeroed = v.is_zero();
                row.zeroed = Some(zeroed);
                row.pass &= zeroed;
            }
        } else {
            row.pass = !expect_ok;
        }
        drop(v);
        run.push(row, lat)?;
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

fn ex_pages(run: &mut Run, reps: u32) -> Result {
    let flags = Gfp::KERNEL.flags();
    for order in 0..=(MAX_ORDER as u32 + 1) {
        let expect_ok = order as usize <= MAX_ORDER;
        let mut row = Row::new("alloc_pages", "order", u64::from(order), expect_ok);
        let bytes = PAGE_SIZE << order;
        let (p, lat) = run.measure(reps_for(reps, bytes), || Pages::new(order, flags));
        if let Some(p) = &p {
            row.ok = true;
            let pfn = p.pfn();
            row.place(Placement::pages(pfn..pfn + p.nr_pages() as u64));
            // The buddy allocator hands out blocks aligned to their size.
            row.pass = pfn % (1u64 << order) == 0;
        } else {
            row.pass = !expect_ok;
        }
        drop(p);
        run.push(row, lat)?;
    }
    for order in [0u32, 3] {
        let mut row = Row::new("__get_free_pages", "order", u64::from(order), true);
        let (p, lat) = run.measure(reps, || FreePages::new(order, flags));
        if let Some(p) = &p {
            row.ok = true;
            let pfn = p.pfn();
            row.place(Placement::pages(pfn..pfn + (1 << order)));
            row.pass = pfn % (1u64 << order) == 0;
        }
        drop(p);
        run.push(row, lat)?;
    }
    // Zeroing through the page allocator.
    let mut row = Row::new("alloc_pages+zero", "order", 2, true);
    let zflags = Gfp::new(GfpSel::Kernel, true).flags();
    let (p, lat) = run.measure(reps, || Pages::new(2, zflags));
    if let Some(p) = &p {
        row.ok = true;
        let pfn = p.pfn();
        row.place(Placement::pages(pfn..pfn + 4));
        let z = p.is_zero();
        row.zeroed = Some(z);
        row.pass = z && pfn % 4 == 0;
    }
    drop(p);
    run.push(row, lat)
}

fn ex_kmem_cache(run: &mut Run, reps: u32) -> Result {
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
        let cache = kmem_cache::Cache::new(size, align, ctor)?;
        let flags = Gfp::new(GfpSel::Kernel, zero).flags();
        let mut objs = KVec::with_capacity(n, GFP_KERNEL)?;
        let ctor0 = kmem_cache::ctor_calls();
        let mut last_ctor = ctor0;
        let mut per_slab = 0u64;
        let mut aligned = true;
        let mut zeroed = true;
        run.scratch.clear();
        for _ in 0..n {
            let t0 = now_ns();
            let r = kmem_cache::Object::new(&cache, flags);
            let dt = now_ns().saturating_sub(t0);
            let _ = run.scratch.push_within_capacity(dt);
            let Ok(o) = r else { break };
            let calls = kmem_cache::ctor_calls();
            if calls > last_ctor && (per_slab == 0 || calls - last_ctor < per_slab) {
                // A new slab was set up: its objects were all constructed.
                per_slab = calls - last_ctor;
            }
            last_ctor = calls;
            aligned &= align == 0 || o.addr() % align == 0;
            if zero {
                zeroed &= o.is_zero();
            }
            if objs.push_within_capacity(o).is_err() {
                break;
            }
        }
        let lat = Latency::from_samples(&mut run.scratch);
        let ctor_calls = kmem_cache::ctor_calls() - ctor0;
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
        if ctor {
            row.note("ctor_calls", ctor_calls);
            row.note("objs_per_slab", per_slab);
        } else {
            row.zeroed = Some(zeroed);
        }
        row.pass = row.ok
            && aligned
            && if ctor {
                // Every object handed out was constructed, whole slabs at a time.
                ctor_calls >= objs.len() as u64 && per_slab > 0
            } else {
                zeroed
            };
        drop(objs);
        drop(cache);
        run.push(row, lat)?;
    }
    Ok(())
}

fn ex_dma(real: &Real, run: &mut Run, reps: u32) -> Result {
    for bits in crate::platform::dma::MASKS {
        let dev = real.dma.by_bits(bits)?;
        let bound = dev.lock_bound()?;
        let sizes: &[usize] = if bits == 24 {
            // ZONE_DMA is 16 MiB, mostly in use: stay small.
            &[PAGE_SIZE, 64 << 10, 256 << 10]
        } else {
            &[PAGE_SIZE, 64 << 10, MIB, 4 * MIB]
        };
        let limit = if bits >= 64 { u64::MAX } else { 1u64 << bits };
        let what = match bits {
            24 => "coherent/24bit",
            32 => "coherent/32bit",
            _ => "coherent/64bit",
        };
        for &size in sizes {
            let mut row = Row::new(what, "size", size as u64, true);
            let (c, lat) = run.measure(reps_for(reps, size), || dma::coherent(&bound, size, false));
            if let Some(c) = &c {
                row.ok = true;
                let f = dma::facts(c);
                row.place(Placement::of(&f.pages));
                row.zeroed = Some(f.zeroed);
                row.note("dma_eq_phys", u64::from(f.dma_addr == f.phys));
                row.note("mask_bits", u64::from(bound.mask_bits()));
                let zone_ok = match bits {
                    24 => f.pages.zone == uapi::MEMLAB_ZONE_DMA,
                    32 => f.pages.zone <= uapi::MEMLAB_ZONE_DMA32,
                    _ => true,
                };
                row.pass = zone_ok
                    && f.pages.runs == 1
                    && f.zeroed
                    && f.dma_addr.saturating_add(size as u64 - 1) < limit;
            }
            drop(c);
            run.push(row, lat)?;
        }
        if bits >= 32 {
            // dma_map_single of a kmalloc buffer (a 24-bit mask would bounce
            // through swiotlb, which may not reach below 16 MiB).
            let buf = Kmalloc::new(4096, Gfp::KERNEL.flags())?;
            let mut row = Row::new(
                if bits == 32 {
                    "map_single/32bit"
                } else {
                    "map_single/64bit"
                },
                "size",
                4096,
                true,
            );
            let (m, lat) = run.measure(reps, || dma::map_single(&bound, &buf));
            if let Some(m) = &m {
                row.ok = true;
                row.place(Placement::linear(buf.phys(), buf.size()));
                let direct = m.addr() == buf.phys();
                row.note("dma_eq_phys", u64::from(direct));
                row.note("mask_bits", u64::from(bits));
                // Without an IOMMU the bus address is the physical one,
                // unless swiotlb had to bounce a buffer beyond the mask.
                row.pass = m.addr().saturating_add(4095) < limit && (bits < 64 || direct);
            }
            drop(m);
            drop(buf);
            run.push(row, lat)?;
        }
    }
    Ok(())
}

/// Whether `zone` (a `MEMLAB_ZONE_*`) is one `gfp` allows.
fn within(gfp: Gfp, zone: u32) -> bool {
    gfp.zone_limit().is_none_or(|z| zone <= z as u32)
}

fn ex_gfp(real: &Real, run: &mut Run, reps: u32) -> Result {
    for sel in GfpSel::ALL {
        for zero in [false, true] {
            let gfp = Gfp::new(sel, zero);
            let flags = gfp.flags();
            // alloc_pages(order 0) with this mask.
            let mut row = Row::new(gfp.name(), "pages_order", 0, true);
            let (p, lat) = real.maybe_atomic(gfp, || run.measure(reps, || Pages::new(0, flags)));
            if let Some(p) = &p {
                row.ok = true;
                row.place(Placement::pages([p.pfn()]));
                row.pass = within(gfp, row.zone);
                if zero {
                    let z = p.is_zero();
                    row.zeroed = Some(z);
                    row.pass &= z;
                }
            }
            row.note("atomic", u64::from(gfp.atomic()));
            row.note("zero", u64::from(zero));
            drop(p);
            run.push(row, lat)?;

            if !gfp.slab_ok() {
                continue;
            }
            // kmalloc(256) with this mask.
            let mut row = Row::new(gfp.name(), "kmalloc_size", 256, true);
            let (k, lat) =
                real.maybe_atomic(gfp, || run.measure(reps, || Kmalloc::new(256, flags)));
            if let Some(k) = &k {
                row.ok = true;
                row.place(Placement::linear(k.phys(), 256));
                row.pass = within(gfp, row.zone);
                if zero {
                    let z = k.is_zero();
                    row.zeroed = Some(z);
                    row.pass &= z;
                }
            }
            row.note("atomic", u64::from(gfp.atomic()));
            row.note("zero", u64::from(zero));
            drop(k);
            run.push(row, lat)?;
        }
    }
    Ok(())
}
