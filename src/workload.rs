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

#[path = "workload/kept.rs"]
mod kept;
#[path = "workload/limits.rs"]
mod limits;
#[path = "workload/pass.rs"]
mod pass;
#[path = "workload/steps.rs"]
mod steps;

pub(crate) use kept::Kept;
pub(crate) use limits::charge;
#[path = "workload/timed.rs"]
mod timed;

use crate::mirror::percpu::{Stack, MAG_BATCH, MAG_SIZE};
use crate::mirror::Mirror;
use crate::mirror::vmalloc::MirrorVmalloc;
use crate::real::{kmalloc::Kmalloc, kmem_cache, pages::Pages, vmalloc::Vmalloc};
use crate::slab::{SlabCache, SlabFlags};
use crate::uapi;
use crate::request::Gfp;
use core::{ffi::c_void, ptr::NonNull};
use kernel::{bindings, prelude::*, sync::Arc};
use timed::{linear_pfn, Placed};

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

struct MirrorKmalloc(Arc<Mirror>);

impl ObjectAllocator for MirrorKmalloc {
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

struct MirrorPages(Arc<Mirror>);

impl ObjectAllocator for MirrorPages {
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

/// Runs `w` on `a`: the sequence, then [`pass::run_steps`], then frees
/// what is left.
fn run<A: ObjectAllocator>(a: &mut A, w: &mut uapi::MemlabWorkload) -> Result {
    let seq = steps::generate(w)?;
    let mut slots = pass::slots::<A>(seq.slots)?;
    let r = pass::run_steps(a, w, &seq.steps, &mut slots, seq.peak_live);
    timed::free_all(a, &mut slots);
    r
}

/// KEEP: runs the allocations of `w` (validated by [`charge`]) and
/// returns the objects, for a FREE_KEPT run to free.
pub(crate) fn keep_workload(
    mirror: &Arc<Mirror>,
    w: &mut uapi::MemlabWorkload,
) -> Result<KBox<dyn kept::KeptObjects>> {
    limits::charge(w)?;
    w.page_meta_bytes = page_meta_bytes(w.backend);
    match (w.backend, w.family) {
        (uapi::MEMLAB_BACKEND_REAL, uapi::MEMLAB_FAMILY_KMALLOC) => kept::keep(RealKmalloc, w),
        (uapi::MEMLAB_BACKEND_REAL, uapi::MEMLAB_FAMILY_PAGES) => kept::keep(RealPages, w),
        (_, uapi::MEMLAB_FAMILY_KMALLOC) => kept::keep(MirrorKmalloc(mirror.clone()), w),
        (_, uapi::MEMLAB_FAMILY_PAGES) => kept::keep(MirrorPages(mirror.clone()), w),
        _ => Err(EINVAL),
    }
}

/// Bytes of page metadata `backend` keeps per page.
fn page_meta_bytes(backend: u32) -> u32 {
    let bytes = if backend == uapi::MEMLAB_BACKEND_REAL {
        core::mem::size_of::<bindings::page>()
    } else {
        core::mem::size_of::<crate::buddy::PageMeta>()
    };
    bytes as u32
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

/// Runs `w`, validated by [`charge`], on the backend it names.
pub(crate) fn run_workload(mirror: &Arc<Mirror>, w: &mut uapi::MemlabWorkload) -> Result {
    limits::charge(w)?;
    w.page_meta_bytes = page_meta_bytes(w.backend);
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
        (_, uapi::MEMLAB_FAMILY_KMALLOC) => run(&mut MirrorKmalloc(mirror.clone()), w),
        (_, uapi::MEMLAB_FAMILY_PAGES) => run(&mut MirrorPages(mirror.clone()), w),
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
