// SPDX-License-Identifier: GPL-2.0

//! The kernel's real allocators behind small safe owners, one file per
//! family, each freeing in `Drop`:
//!
//! - [`kmalloc`] - `kmalloc`/`kfree`/`ksize`;
//! - [`vmalloc`] - `vmalloc`/`vfree`, `vmalloc_to_pfn`;
//! - [`pages`] - `alloc_pages`/`__free_pages`, `__get_free_pages`;
//! - [`kmem_cache`] - `kmem_cache_create`/`alloc`/`free`/`destroy`;
//! - [`dma`] - `dma_alloc_coherent`, `dma_map_single`, on memlab's own
//!   platform devices;
//! - [`gfp`] - the `MEMLAB_GFP_*` selectors as `gfp_t`;
//! - [`phys`] - PFNs, zones, alignment and buddyinfo;
//! - [`exercise`] and [`report`] - the exercises and what they found.
//!
//! Every user-triggered allocation carries `__GFP_NOWARN` (a failure is an
//! answer, not a splat), and no kernel virtual address ever leaves the
//! module: blocks are described by PFN, physical alignment and bus address.
//!
//! Locking: `run` serialises exercises (the constructor counter is global);
//! `reports` is held only to swap in a finished report or to render one;
//! `atomic` is the spinlock the atomic GFP cases allocate under. Order:
//! `run` -> device lock -> `atomic`; `reports` nests inside nothing.

pub(crate) mod dma;
mod exercise;
pub(crate) mod gfp;
pub(crate) mod kmalloc;
pub(crate) mod kmem_cache;
pub(crate) mod pages;
pub(crate) mod phys;
pub(crate) mod report;
pub(crate) mod vmalloc;

use crate::uapi;
use core::fmt;
use gfp::Gfp;
use kernel::{
    bindings, driver, new_mutex, new_spinlock,
    page::PAGE_SHIFT,
    page::PAGE_SIZE,
    platform,
    prelude::*,
    sync::{Mutex, SpinLock},
};

/// The TSC frequency in kHz, 0 if the kernel could not calibrate it.
pub(crate) fn tsc_khz() -> u64 {
    // SAFETY: `tsc_khz` is written during boot-time calibration only.
    u64::from(unsafe { bindings::tsc_khz })
}

/// Nanoseconds for latency measurements: the TSC scaled by its calibrated
/// frequency when known, since the clocksource may be as coarse as jiffies
/// (QEMU TCG without ACPI has no HPET and no PM timer); `ktime_get`
/// otherwise.
///
/// Not monotonic: the task may migrate to a CPU whose TSC is behind, and
/// `tsc_khz` may be refined between two reads. Take differences with
/// `saturating_sub` (with overflow checks a plain `-` would panic).
pub(crate) fn now_ns() -> u64 {
    if let Some(khz) = core::num::NonZeroU64::new(tsc_khz()) {
        // SAFETY: `rdtsc` only reads the time stamp counter; every x86-64
        // CPU has one.
        let cycles = unsafe { core::arch::x86_64::_rdtsc() };
        // cycles * 10^6 / khz without overflow or a 128-bit division.
        (cycles / khz) * 1_000_000 + (cycles % khz) * 1_000_000 / khz
    } else {
        // SAFETY: `ktime_get` may be called from any context once timekeeping is up.
        unsafe { bindings::ktime_get() as u64 }
    }
}

/// Largest kmem_cache alignment accepted: the largest block the page
/// allocator serves (the mirror's `SlabCache` has the same limit).
const KMEM_CACHE_MAX_ALIGN: usize = PAGE_SIZE << bindings::MAX_PAGE_ORDER;

/// State shared by every open file and debugfs: exercise reports, the DMA
/// devices and their driver.
#[pin_data]
pub(crate) struct Real {
    #[pin]
    reports: Mutex<[Option<KBox<report::Report>>; uapi::MEMLAB_NR_EXERCISES as usize]>,
    #[pin]
    run: Mutex<()>,
    #[pin]
    atomic: SpinLock<()>,
    /// Dropped (unregistered) before the driver below.
    dma_devices: KVec<dma::DmaDevice>,
    #[pin]
    _dma_driver: driver::Registration<platform::Adapter<dma::DmaDriver>>,
}

/// Registers the DMA devices; without them only the DMA family is missing.
fn register_dma_devices() -> KVec<dma::DmaDevice> {
    let mut v = KVec::new();
    for bits in dma::MASKS {
        match dma::DmaDevice::register(bits) {
            Ok(d) => {
                if v.push(d, GFP_KERNEL).is_err() {
                    break;
                }
            }
            Err(e) => pr_warn!("memlab-dma.{bits}: not registered ({e:?})\n"),
        }
    }
    v
}

impl Real {
    /// Creates the shared state and registers the DMA driver and devices.
    pub(crate) fn new(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Real {
            reports <- new_mutex!([const { None }; uapi::MEMLAB_NR_EXERCISES as usize]),
            run <- new_mutex!(()),
            atomic <- new_spinlock!(()),
            dma_devices: register_dma_devices(),
            _dma_driver <- driver::Registration::new(dma::NAME, module),
        }? Error)
    }

    /// The DMA device with a mask of `bits`, if registered.
    fn dma_device(&self, bits: u32) -> Result<&dma::DmaDevice> {
        self.dma_devices
            .iter()
            .find(|d| d.mask_bits() == bits)
            .ok_or(ENODEV)
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

    /// Allocates what `req` names (already validated for shape by the caller).
    pub(crate) fn alloc(&self, req: &uapi::MemlabAlloc) -> Result<RealBlock> {
        let gfp = Gfp::from_uapi(req.gfp).ok_or(EINVAL)?;
        let size = usize::try_from(req.size).map_err(|_| E2BIG)?;
        let flags = gfp.flags();
        let mut info = uapi::MemlabBlockInfo {
            family: req.family,
            gfp: req.gfp,
            size: req.size,
            ..Default::default()
        };
        let owner = match req.family {
            uapi::MEMLAB_FAMILY_KMALLOC => {
                if !gfp.slab_ok() {
                    return Err(EINVAL);
                }
                let t0 = now_ns();
                let k = self.maybe_atomic(gfp, || kmalloc::Kmalloc::new(size, flags))?;
                info.alloc_ns = now_ns().saturating_sub(t0);
                let phys = k.phys();
                linear_info(&mut info, phys, size);
                info.usable = k.ksize() as u64;
                info.zeroed = u32::from(gfp.zero() && k.is_zero());
                Owner::Kmalloc(k)
            }
            uapi::MEMLAB_FAMILY_VMALLOC => {
                let t0 = now_ns();
                // Not under the spinlock: vmalloc maps pages and may sleep.
                let v = vmalloc::Vmalloc::new(size, flags)?;
                info.alloc_ns = now_ns().saturating_sub(t0);
                let s = v.summary();
                info.zone = s.zone;
                info.first_pfn = s.first;
                info.nr_pages = s.pages;
                info.phys_runs = s.runs;
                info.usable = (v.nr_pages() * PAGE_SIZE) as u64;
                info.align_log2 = phys::align_log2(s.first << PAGE_SHIFT);
                info.zeroed = u32::from(gfp.zero() && v.is_zero());
                Owner::Vmalloc(v)
            }
            uapi::MEMLAB_FAMILY_PAGES => {
                let t0 = now_ns();
                let p = self.maybe_atomic(gfp, || pages::Pages::new(req.order, flags))?;
                info.alloc_ns = now_ns().saturating_sub(t0);
                let pfn = p.pfn();
                info.zone = phys::zone_of_pfn(pfn);
                info.first_pfn = pfn;
                info.nr_pages = p.nr_pages() as u64;
                info.phys_runs = 1;
                info.usable = (p.nr_pages() * PAGE_SIZE) as u64;
                info.align_log2 = phys::align_log2(pfn << PAGE_SHIFT);
                info.zeroed = u32::from(gfp.zero() && p.is_zero());
                Owner::Pages(p)
            }
            uapi::MEMLAB_FAMILY_KMEM_CACHE => {
                if !gfp.slab_ok() {
                    return Err(EINVAL);
                }
                // kmem_cache_create() fails these with a pr_warn and a stack
                // dump (and a huge alignment could wrap SLUB's u32 size
                // arithmetic): refuse them up front, with the mirror's EINVAL.
                if size > kmalloc::KMALLOC_MAX_SIZE || req.align as usize > KMEM_CACHE_MAX_ALIGN {
                    return Err(EINVAL);
                }
                let cache = kmem_cache::Cache::new(size, req.align as usize, false)?;
                let t0 = now_ns();
                let o = self.maybe_atomic(gfp, || kmem_cache::Object::new(&cache, flags))?;
                info.alloc_ns = now_ns().saturating_sub(t0);
                linear_info(&mut info, o.phys(), size);
                info.usable = o.cache().size() as u64;
                info.zeroed = u32::from(gfp.zero() && o.is_zero());
                Owner::Cache(o)
            }
            uapi::MEMLAB_FAMILY_DMA => {
                let dev = self.dma_device_for(req.gfp)?;
                let bound = dev.lock_bound()?;
                let t0 = now_ns();
                let (b, f) = dma::DmaBlock::new(&bound, size, gfp.atomic())?;
                info.alloc_ns = now_ns().saturating_sub(t0);
                drop(bound);
                info.zone = f.pages.zone;
                info.first_pfn = f.pages.first;
                info.nr_pages = f.pages.pages;
                info.phys_runs = f.pages.runs;
                info.usable = (size.div_ceil(PAGE_SIZE) * PAGE_SIZE) as u64;
                info.align_log2 = phys::align_log2(f.phys);
                info.dma_addr = f.dma_addr;
                // dma_alloc_coherent always zeroes; checked either way.
                info.zeroed = u32::from(gfp.zero() && f.zeroed);
                Owner::Dma(b)
            }
            _ => return Err(EINVAL),
        };
        Ok(RealBlock {
            info,
            _owner: owner,
        })
    }

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
        match tsc_khz() {
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

/// Fills zone, PFN, pages, runs and alignment of `size` direct-map bytes at `phys`.
fn linear_info(info: &mut uapi::MemlabBlockInfo, phys: u64, size: usize) {
    let first = phys >> PAGE_SHIFT;
    let last = (phys + size.max(1) as u64 - 1) >> PAGE_SHIFT;
    info.zone = phys::zone_of_pfn(first);
    info.first_pfn = first;
    info.nr_pages = last - first + 1;
    info.phys_runs = 1;
    info.align_log2 = phys::align_log2(phys);
}

/// What a [`RealBlock`] owns; dropping it frees the memory.
enum Owner {
    Kmalloc(kmalloc::Kmalloc),
    Vmalloc(vmalloc::Vmalloc),
    Pages(pages::Pages),
    Cache(kmem_cache::Object),
    Dma(dma::DmaBlock),
}

impl Owner {
    fn pinned_bytes(&self) -> usize {
        match self {
            Owner::Kmalloc(k) => k.ksize(),
            Owner::Vmalloc(v) => v.nr_pages() * PAGE_SIZE,
            Owner::Pages(p) => p.nr_pages() * PAGE_SIZE,
            Owner::Cache(o) => o.cache().size(),
            // dma_alloc_coherent takes whole pages (at least), as INSPECT's
            // `usable` says; the requested size would under-count the cap.
            Owner::Dma(d) => d.size().div_ceil(PAGE_SIZE) * PAGE_SIZE,
        }
    }
}

/// One live allocation; dropping it frees the memory.
pub(crate) struct RealBlock {
    info: uapi::MemlabBlockInfo,
    _owner: Owner,
}

impl RealBlock {
    /// What the kernel handed out (the caller fills in `handle`).
    pub(crate) fn info(&self) -> uapi::MemlabBlockInfo {
        self.info
    }

    /// Bytes this allocation pins (counted against `max_pinned_mb`).
    pub(crate) fn pinned_bytes(&self) -> usize {
        self._owner.pinned_bytes()
    }
}
