// SPDX-License-Identifier: GPL-2.0

//! The kernel's real allocators behind small safe owners, one file per
//! family, each freeing in `Drop`:
//!
//! - [`kmalloc`] - `kmalloc`/`kfree`/`ksize`;
//! - [`vmalloc`] - `vmalloc`/`vfree`, `vmalloc_to_pfn`;
//! - [`pages`] - `alloc_pages`/`__free_pages`, `__get_free_pages`;
//! - [`kmem_cache`] - `kmem_cache_create`/`alloc`/`free`/`destroy`;
//! - [`dma`] - `dma_alloc_coherent` on memlab's devices (`platform::dma`);
//! - [`gfp`] - memlab's [`Gfp`] as the kernel's `gfp_t`;
//! - [`exercise`] and [`report`] - the exercises and what they found.
//!
//! [`Real`] serves ALLOC through [`Backend`]. Every user-triggered
//! allocation carries `__GFP_NOWARN` (a failure is an answer, not a splat),
//! and no kernel virtual address ever leaves the module: blocks are
//! described by PFN, physical alignment and bus address ([`Facts`]).
//!
//! Locks (the whole order is in `rust_memlab.rs`): `run` serialises
//! exercises (the constructor counter is global); `reports` is held only to
//! swap in a finished report or to render one, and is taken under `run`;
//! `atomic` is the spinlock the atomic GFP cases allocate under, innermost.

pub(crate) mod dma;
mod exercise;
pub(crate) mod gfp;
pub(crate) mod kmalloc;
pub(crate) mod kmem_cache;
pub(crate) mod objects;
pub(crate) mod report;
pub(crate) mod vmalloc;

/// `alloc_pages` owners live in the platform layer: the mirror's pool is
/// made of them too.
pub(crate) use crate::platform::pages;

use crate::backend::{Allocation, Backend, Facts};
use crate::platform::{clock, dma::DmaDevices, pages::order_for, phys::Placement, vmap};
use crate::request::{AllocRequest, Family, Gfp};
use crate::uapi;
use core::fmt;
use gfp::GfpFlags;
use kernel::{
    new_mutex, new_spinlock,
    page::PAGE_SIZE,
    prelude::*,
    sync::{Arc, Mutex, SpinLock},
};

/// State shared by every open file and debugfs: exercise reports, and the
/// DMA devices (shared with the mirror).
#[pin_data]
pub(crate) struct Real {
    #[pin]
    reports: Mutex<[Option<KBox<report::Report>>; uapi::MEMLAB_NR_EXERCISES as usize]>,
    #[pin]
    run: Mutex<()>,
    #[pin]
    atomic: SpinLock<()>,
    dma: Arc<DmaDevices>,
}

/// The most an exercise holds at once, charged to the module-wide budget
/// for its run: a case keeps its last success while it measures the next
/// repetition, so two allocations of the largest case, a 64 MiB vmalloc,
/// with their page tables and page arrays.
pub(crate) const EXERCISE_PEAK: usize = 2 * (64 << 20) + (4 << 20);

impl Real {
    /// Creates the shared state over memlab's DMA devices.
    pub(crate) fn new(dma: Arc<DmaDevices>) -> impl PinInit<Self, Error> {
        try_pin_init!(Real {
            reports <- new_mutex!([const { None }; uapi::MEMLAB_NR_EXERCISES as usize]),
            run <- new_mutex!(()),
            atomic <- new_spinlock!(()),
            dma,
        }? Error)
    }

    /// Runs `f` in atomic context (under the `atomic` spinlock) if `gfp`
    /// is an atomic selector, else directly.
    fn maybe_atomic<T>(&self, gfp: Gfp, f: impl FnOnce() -> T) -> T {
        if gfp.atomic() {
            let _guard = self.atomic.lock();
            f()
        } else {
            f()
        }
    }

    /// Times `f`, in atomic context if `gfp` is atomic.
    fn timed<T>(&self, gfp: Gfp, f: impl FnOnce() -> Result<T>) -> Result<(T, u64)> {
        self.maybe_atomic(gfp, || {
            let (r, ns) = clock::time(f);
            r.map(|v| (v, ns))
        })
    }
}

impl Backend for Real {
    fn alloc(&self, req: &AllocRequest) -> Result<Allocation> {
        let gfp = req.gfp;
        let flags = gfp.flags();
        match req.family {
            Family::Kmalloc { size } => {
                let (k, ns) = self.timed(gfp, || kmalloc::Kmalloc::new(size, flags))?;
                let f = Facts::new(req, Placement::linear(k.phys(), size))
                    .usable(k.ksize())
                    .zeroed(gfp.zero && k.is_zero())
                    .took(ns);
                Allocation::new(k, f)
            }
            Family::Vmalloc { size } => {
                // Never under the spinlock: vmalloc maps pages and may sleep.
                let (v, ns) = clock::time(|| vmalloc::Vmalloc::new(size, flags));
                let v = v?;
                let f = Facts::new(req, Placement::pages((0..v.nr_pages()).map(|i| v.pfn(i))))
                    .usable(v.nr_pages() * PAGE_SIZE)
                    .zeroed(gfp.zero && v.is_zero())
                    .took(ns);
                let held = vmap::footprint(v.nr_pages());
                Ok(Allocation::new(v, f)?.pinning(held))
            }
            Family::Pages { order } => {
                let (p, ns) = self.timed(gfp, || pages::Pages::new(order, flags))?;
                let f = Facts::new(
                    req,
                    Placement::pages(p.pfn()..p.pfn() + p.nr_pages() as u64),
                )
                .usable(p.nr_pages() * PAGE_SIZE)
                .zeroed(gfp.zero && p.is_zero())
                .took(ns);
                Allocation::new(p, f)
            }
            Family::KmemCache {
                size,
                align,
                flags: cache_flags,
            } => {
                // SLUB takes the objects' zone from the cache's flags and
                // drops the zone bits of `gfp` itself.
                let cache = kmem_cache::Cache::new(size, align, cache_flags, false)?;
                let (o, ns) = self.timed(gfp, || kmem_cache::Object::new(&cache, flags))?;
                let f = Facts::new(req, Placement::linear(o.phys(), size))
                    .usable(o.cache().size())
                    .zeroed(gfp.zero && o.is_zero())
                    .took(ns);
                let held = kmem_cache::footprint(size, align, cache_flags);
                Ok(Allocation::new(o, f)?.pinning(held))
            }
            Family::Dma { size } => {
                let bound = self.dma.for_gfp(gfp)?.lock_bound()?;
                let (r, ns) = clock::time(|| dma::DmaBlock::new(&bound, size, gfp.atomic()));
                let (b, c) = r?;
                drop(bound);
                let f = Facts::new(req, Placement::of(&c.pages))
                    // dma_alloc_coherent takes whole pages (at least).
                    .usable(size.div_ceil(PAGE_SIZE) * PAGE_SIZE)
                    .dma_addr(c.dma_addr)
                    // It always zeroes; checked either way.
                    .zeroed(gfp.zero && c.zeroed)
                    .took(ns);
                // dma-direct allocates whole blocks of get_order(size).
                let held = order_for(size).map_or(usize::MAX, |o| PAGE_SIZE << o);
                Ok(Allocation::new(b, f)?.pinning(held))
            }
        }
    }
}

impl Real {
    /// Runs exercise `id` with `reps` repetitions per case (0 = default) and
    /// keeps its report for debugfs.
    pub(crate) fn exercise(&self, id: u32, reps: u32) -> Result<uapi::MemlabExercise> {
        let reps = if reps == 0 {
            exercise::DEFAULT_REPS
        } else {
            reps.min(1000)
        };
        let _run = self.run.lock();
        let report = exercise::run(self, id, reps)?;
        let reply = uapi::MemlabExercise {
            id,
            reps,
            cases: report.rows.len() as u32,
            passed: report.passed() as u32,
            median_ns: report.median_ns,
            p99_ns: report.p99_ns,
        };
        let old = {
            let mut reports = self.reports.lock();
            let slot = reports.get_mut(id as usize).ok_or(EINVAL)?;
            slot.replace(report)
        };
        // The previous report is freed outside the lock.
        drop(old);
        Ok(reply)
    }

    /// Writes `real/report`: the last run of every exercise, in id order.
    pub(crate) fn write_report(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reports = self.reports.lock();
        writeln!(f, "memlab real allocators: last run of each exercise")?;
        match clock::tsc_khz() {
            0 => writeln!(f, "clock: ktime_get (clocksource resolution)")?,
            khz => writeln!(f, "clock: TSC at {khz} kHz")?,
        }
        writeln!(f)?;
        for (i, r) in reports.iter().enumerate() {
            match r {
                Some(r) => r.write_text(f)?,
                None => writeln!(
                    f,
                    "== {} (exercise {i}): not run yet ==\n",
                    report::EXERCISE_NAMES[i]
                )?,
            }
        }
        Ok(())
    }

    /// Writes `real/report.json`: `{"exercises":[...]}` of those that ran.
    pub(crate) fn write_report_json(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reports = self.reports.lock();
        write!(f, "{{\"abi\":{},\"exercises\":[", uapi::MEMLAB_ABI_VERSION)?;
        let mut first = true;
        for r in reports.iter().flatten() {
            if !first {
                write!(f, ",")?;
            }
            first = false;
            r.write_json(f)?;
        }
        writeln!(f, "]}}")
    }
}
