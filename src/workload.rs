// SPDX-License-Identifier: GPL-2.0

//! Workloads written once against [`ObjectAllocator`] and run on either
//! backend, timed in the kernel with the same clock, so real and mirror are
//! compared like for like in one VM run.
//!
//! Patterns (`MEMLAB_PATTERN_*`): PAIRS (alloc then free at once), BATCH
//! (all allocs, then all frees), RANDOM (a seeded mix of allocs of random
//! size or order and frees of random live objects). A run, with migration
//! disabled: the step sequence is generated ([`steps`]), the floor measured
//! on an allocator that does nothing, the first `warmup` steps run
//! untimed, then every step is timed alone ([`timed`] says what a window
//! holds); alloc and free samples of K windows each are kept apart, in
//! ticks, and converted after the loop.
//!
//! Equal work: both backends are called on raw objects with no reference
//! count. The real kmem_cache is created `SLAB_NO_MERGE`. kfree differs:
//! the real one is unsized (SLUB finds the cache from the page), the
//! mirror's is told the size by its caller.

#[path = "workload/steps.rs"]
mod steps;
#[path = "workload/timed.rs"]
mod timed;

use crate::mirror::percpu::{Stack, MAG_BATCH, MAG_SIZE};
use crate::mirror::Mirror;
use crate::mirror::vmalloc::MirrorVmalloc;
use crate::real::{kmalloc::Kmalloc, kmem_cache, pages::Pages, vmalloc::Vmalloc};
use crate::sizeclass::KMALLOC_MAX_SIZE;
use crate::slab::{SlabCache, SlabFlags};
use crate::uapi;
use crate::request::Gfp;
use core::{ffi::c_void, ptr::NonNull};
use kernel::{
    bindings,
    prelude::*,
    sync::Arc,
    uaccess::{UserPtr, UserSlice},
};
use timed::{linear_pfn, Clock, NoMigrate, Null, Placed, Samples};

/// One allocator family on one backend, as the workloads see it.
pub(crate) trait ObjectAllocator {
    /// A live allocation.
    type Obj: Placed;
    /// Allocates `size` bytes, or `1 << order` pages for the pages family.
    fn alloc(&mut self, size: usize, order: u32) -> Result<Self::Obj>;
    /// Frees `obj`.
    fn free(&mut self, obj: Self::Obj);
}

/// GFP_KERNEL, quietly: a failed allocation is a figure, not a splat.
const REAL_GFP: bindings::gfp_t = bindings::GFP_KERNEL | bindings::__GFP_NOWARN;

struct RealKmalloc;

impl ObjectAllocator for RealKmalloc {
    type Obj = Kmalloc;
    fn alloc(&mut self, size: usize, _order: u32) -> Result<Kmalloc> {
        Kmalloc::new(size, REAL_GFP)
    }
    fn free(&mut self, obj: Kmalloc) {
        drop(obj);
    }
}

impl Placed for Kmalloc {
    fn pfn(&self) -> u64 {
        self.phys() >> kernel::page::PAGE_SHIFT
    }
}

impl Placed for Pages {
    fn pfn(&self) -> u64 {
        Pages::pfn(self)
    }
}

impl<T> Placed for NonNull<T> {
    fn pfn(&self) -> u64 {
        linear_pfn(self.as_ptr())
    }
}

impl<T, U> Placed for (NonNull<T>, U) {
    fn pfn(&self) -> u64 {
        linear_pfn(self.0.as_ptr())
    }
}

impl Placed for Vmalloc {
    fn pfn(&self) -> u64 {
        Vmalloc::pfn(self, 0)
    }
}

impl Placed for MirrorVmalloc {
    fn pfn(&self) -> u64 {
        self.pfns().next().unwrap_or(0)
    }
}

/// `__vmalloc(size)` / `vfree`: pages and the mapping, both in the window.
struct RealVmalloc;

impl ObjectAllocator for RealVmalloc {
    type Obj = Vmalloc;
    fn alloc(&mut self, size: usize, _order: u32) -> Result<Vmalloc> {
        Vmalloc::new(size, REAL_GFP)
    }
    fn free(&mut self, obj: Vmalloc) {
        drop(obj);
    }
}

/// The mirror's vmalloc: order-0 pages from its buddy, `vm_map_ram`.
struct MirrorVmap<'a>(&'a Arc<Mirror>);

impl ObjectAllocator for MirrorVmap<'_> {
    type Obj = MirrorVmalloc;
    fn alloc(&mut self, size: usize, _order: u32) -> Result<MirrorVmalloc> {
        MirrorVmalloc::new(self.0, size, Gfp::KERNEL)
    }
    fn free(&mut self, obj: MirrorVmalloc) {
        drop(obj);
    }
}

struct RealPages;

impl ObjectAllocator for RealPages {
    type Obj = Pages;
    fn alloc(&mut self, _size: usize, order: u32) -> Result<Pages> {
        Pages::new(order, REAL_GFP)
    }
    fn free(&mut self, obj: Pages) {
        drop(obj);
    }
}

struct RealCache(Arc<kmem_cache::Cache>);

impl ObjectAllocator for RealCache {
    type Obj = NonNull<c_void>;
    fn alloc(&mut self, _size: usize, _order: u32) -> Result<NonNull<c_void>> {
        self.0.alloc_raw(REAL_GFP).ok_or(ENOMEM)
    }
    fn free(&mut self, obj: NonNull<c_void>) {
        // SAFETY: `obj` came from `alloc_raw` on this cache, and the
        // workload frees each object once, before the cache is dropped.
        unsafe { self.0.free_raw(obj) };
    }
}

struct MirrorKmalloc<'a>(&'a Mirror);

impl ObjectAllocator for MirrorKmalloc<'_> {
    type Obj = (NonNull<u8>, usize);
    fn alloc(&mut self, size: usize, _order: u32) -> Result<(NonNull<u8>, usize)> {
        Ok((self.0.kmalloc(size, Gfp::KERNEL)?, size))
    }
    fn free(&mut self, (ptr, size): (NonNull<u8>, usize)) {
        // SAFETY: `ptr` came from `kmalloc(size)` above and is freed once:
        // the workload gives each object back exactly once.
        let _ = unsafe { self.0.kfree(ptr, size, Gfp::KERNEL) };
    }
}

struct MirrorPages<'a>(&'a Mirror);

impl ObjectAllocator for MirrorPages<'_> {
    type Obj = (NonNull<u8>, u32);
    fn alloc(&mut self, _size: usize, order: u32) -> Result<(NonNull<u8>, u32)> {
        Ok((self.0.alloc_pages(order, Gfp::KERNEL)?, order))
    }
    fn free(&mut self, (head, order): (NonNull<u8>, u32)) {
        // SAFETY: `head` came from `alloc_pages(order)` above and is freed
        // once.
        let _ = unsafe { self.0.free_pages(head, order) };
    }
}

/// A kmem_cache with a per-CPU-style object cache in front, as SLUB's
/// per-CPU slab is: the workload owns the cache, so the object cache needs
/// no lock of its own; refills and flushes take the mirror's lock once per
/// batch, and flushed objects are checked by the slab.
struct MirrorCache<'a> {
    mirror: &'a Mirror,
    cache: SlabCache,
    objs: Stack<MAG_SIZE>,
}

impl ObjectAllocator for MirrorCache<'_> {
    type Obj = NonNull<u8>;
    fn alloc(&mut self, _size: usize, _order: u32) -> Result<NonNull<u8>> {
        if let Some(p) = self.objs.pop() {
            return Ok(p);
        }
        let m = self.mirror;
        m.cache_refill(
            &mut self.cache,
            &mut self.objs,
            MAG_BATCH,
            Gfp::KERNEL,
            None,
        );
        match self.objs.pop() {
            Some(p) => Ok(p),
            None => m.cache_alloc(&mut self.cache, Gfp::KERNEL, None),
        }
    }
    fn free(&mut self, obj: NonNull<u8>) {
        if self.objs.is_full() {
            self.mirror
                .cache_flush(&mut self.cache, &mut self.objs, MAG_BATCH);
        }
        if let Err(p) = self.objs.push(obj) {
            // SAFETY: `p` came from this cache and the workload frees each
            // object once; it is in no stack (the push was refused).
            let _ = unsafe { self.mirror.cache_free(&mut self.cache, p) };
        }
    }
}

/// Runs `w` on `a`: floor, warm-up, timed pass, then the figures; the raw
/// samples go to user space if asked.
fn run<A: ObjectAllocator>(a: &mut A, w: &mut uapi::MemlabWorkload) -> Result {
    let seq = steps::generate(w)?;
    let k = w.ops_per_sample;
    let cap = w.count.div_ceil(k) as usize;
    let (mut alloc, mut free) = (Samples::new(cap)?, Samples::new(cap)?);
    let mut slots: KVVec<Option<A::Obj>> = KVVec::with_capacity(seq.slots, GFP_KERNEL)?;
    for _ in 0..seq.slots {
        slots.push(None, GFP_KERNEL)?;
    }
    let mut null_slots = KVVec::from_elem(None, seq.slots, GFP_KERNEL)?;
    let steps = seq.steps.as_slice();
    let clock = Clock::new();
    let pin = NoMigrate::new();
    w.cpu = kernel::cpu::CpuId::current().as_u32();
    // The floor: the same loop, the same windows, empty calls.
    timed::timed(&mut Null, &clock, steps, &mut null_slots, k, &mut alloc, &mut free);
    let mut floor = KVVec::with_capacity(alloc.len + free.len, GFP_KERNEL)?;
    floor.extend_from_slice(alloc.taken(), GFP_KERNEL)?;
    floor.extend_from_slice(free.taken(), GFP_KERNEL)?;
    crate::platform::sort::sort_sleepable(&mut floor);
    w.floor_ticks = timed::percentile(&floor, 1, 2);
    let (mut alloc, mut free) = (Samples::new(cap)?, Samples::new(cap)?);
    let warm = steps.get(..w.warmup as usize).unwrap_or(steps);
    timed::untimed(a, warm, &mut slots);
    let pass = timed::timed(a, &clock, steps, &mut slots, k, &mut alloc, &mut free);
    timed::free_all(a, &mut slots);
    drop(pin);
    w.ops = pass.ops;
    w.failed = pass.failed;
    w.elapsed_ticks = pass.elapsed;
    w.zone_allocs = pass.zones;
    w.peak_live = seq.peak_live;
    w.clock_khz = clock.khz;
    w.kconfig = timed::kconfig();
    w.alloc_samples = alloc.len as u32;
    w.free_samples = free.len as u32;
    if w.samples_ptr != 0 {
        let bytes = |s: &[u64]| core::mem::size_of_val(s);
        let len = bytes(alloc.taken()) + bytes(free.taken());
        let mut out = UserSlice::new(UserPtr::from_addr(w.samples_ptr as usize), len).writer();
        for part in [alloc.taken(), free.taken()] {
            for s in part {
                out.write(s)?;
            }
        }
    }
    // Medians and p99 per operation, floor subtracted.
    for (s, median, p99) in [
        (&mut alloc, &mut w.alloc_median_ps, &mut w.alloc_p99_ps),
        (&mut free, &mut w.free_median_ps, &mut w.free_p99_ps),
    ] {
        let n = s.len;
        let v = s.ticks.get_mut(..n).unwrap_or(&mut []);
        crate::platform::sort::sort_sleepable(v);
        let net = |t: u64| clock.ps(t.saturating_sub(w.floor_ticks), k);
        *median = net(timed::percentile(v, 1, 2));
        *p99 = net(timed::percentile(v, 99, 100));
    }
    Ok(())
}

/// Whether every output field of `w` is zero, as it must come in.
pub(crate) fn outputs_clear(w: &uapi::MemlabWorkload) -> bool {
    let inputs = uapi::MemlabWorkload {
        backend: w.backend,
        family: w.family,
        pattern: w.pattern,
        count: w.count,
        size: w.size,
        order: w.order,
        seed: w.seed,
        ops_per_sample: w.ops_per_sample,
        warmup: w.warmup,
        samples_ptr: w.samples_ptr,
        samples_cap: w.samples_cap,
        flags: w.flags,
        ..Default::default()
    };
    inputs == *w
}

/// Validates `w` and returns the most bytes it will hold at once (objects
/// and its own sample and live vectors), which the caller reserves against
/// its caps for the run.
pub(crate) fn charge(w: &uapi::MemlabWorkload) -> Result<usize> {
    if w.backend > uapi::MEMLAB_BACKEND_MIRROR
        || w.pattern >= uapi::MEMLAB_NR_PATTERNS
        || w.count == 0
        || w.count > uapi::MEMLAB_WORKLOAD_MAX_COUNT
        || w.order > bindings::MAX_PAGE_ORDER
        || w.ops_per_sample == 0
        || w.ops_per_sample > uapi::MEMLAB_WORKLOAD_MAX_K
        || w.warmup > w.count
        || w.flags != 0
    {
        return Err(EINVAL);
    }
    // The raw samples: all of them fit, or none are asked for.
    let samples = u64::from(w.count.div_ceil(w.ops_per_sample));
    if u64::from(w.samples_cap) > 2 * u64::from(uapi::MEMLAB_WORKLOAD_MAX_COUNT) {
        return Err(E2BIG);
    }
    if (w.samples_ptr == 0) != (w.samples_cap == 0) || (w.samples_ptr != 0 && u64::from(w.samples_cap) < 2 * samples) {
        return Err(EINVAL);
    }
    let per_obj = match w.family {
        uapi::MEMLAB_FAMILY_PAGES => (bindings::PAGE_SIZE as u64) << w.order,
        uapi::MEMLAB_FAMILY_KMALLOC
        | uapi::MEMLAB_FAMILY_KMEM_CACHE
        | uapi::MEMLAB_FAMILY_VMALLOC
            if w.size >= 8 =>
        {
            w.size
        }
        _ => return Err(EINVAL),
    };
    if per_obj > KMALLOC_MAX_SIZE as u64 {
        return Err(E2BIG);
    }
    // What an object holds is its size class (96 and 192 are below the next
    // power of two; above 8 KiB whole pages of the next order): charge that.
    let per_obj = per_obj.next_power_of_two();
    if w.family != uapi::MEMLAB_FAMILY_PAGES && w.order != 0 {
        return Err(EINVAL);
    }
    // The most objects the pattern holds at once, for the memory cap.
    let max_live = u64::from(steps::max_live(w.pattern, w.count));
    // The run's own vectors: two steps of 8 bytes per count, a slot (and,
    // for RANDOM, two list entries) per live object, and four sample
    // vectors (alloc and free, for the floor and the pass) plus the floor's
    // sorted copy.
    let vectors = u64::from(w.count) * 16 + max_live * (24 + 8) + samples * 8 * 6;
    usize::try_from(per_obj.saturating_mul(max_live).saturating_add(vectors)).map_err(|_| E2BIG)
}

/// Runs `w`, validated by [`charge`], on the backend it names.
pub(crate) fn run_workload(mirror: &Arc<Mirror>, w: &mut uapi::MemlabWorkload) -> Result {
    charge(w)?;
    let meta = if w.backend == uapi::MEMLAB_BACKEND_REAL {
        core::mem::size_of::<bindings::page>()
    } else {
        core::mem::size_of::<crate::buddy::PageMeta>()
    };
    w.page_meta_bytes = meta as u32;
    let size = w.size as usize;
    match (w.backend, w.family) {
        (uapi::MEMLAB_BACKEND_REAL, uapi::MEMLAB_FAMILY_KMALLOC) => run(&mut RealKmalloc, w),
        (uapi::MEMLAB_BACKEND_REAL, uapi::MEMLAB_FAMILY_PAGES) => run(&mut RealPages, w),
        (uapi::MEMLAB_BACKEND_REAL, uapi::MEMLAB_FAMILY_VMALLOC) => run(&mut RealVmalloc, w),
        (_, uapi::MEMLAB_FAMILY_VMALLOC) => run(&mut MirrorVmap(mirror), w),
        (uapi::MEMLAB_BACKEND_REAL, _) => run(
            &mut RealCache(kmem_cache::Cache::new_unmerged(size)?),
            w,
        ),
        (_, uapi::MEMLAB_FAMILY_KMALLOC) => run(&mut MirrorKmalloc(mirror), w),
        (_, uapi::MEMLAB_FAMILY_PAGES) => run(&mut MirrorPages(mirror), w),
        _ => {
            let cache = SlabCache::new("memlab-workload", size, 0, SlabFlags::NONE, None)
                .map_err(|_| EINVAL)?;
            let mut a = MirrorCache {
                mirror,
                cache,
                objs: Stack::EMPTY,
            };
            let r = run(&mut a, w);
            // Every object was freed: the cached ones go back, then the
            // slabs to the buddy.
            mirror.cache_flush(&mut a.cache, &mut a.objs, MAG_SIZE);
            mirror.cache_destroy(&mut a.cache)?;
            r
        }
    }
}
