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
#[path = "workload/pass.rs"]
mod pass;
#[path = "workload/steps.rs"]
mod steps;
#[path = "workload/timed.rs"]
mod timed;

pub(crate) use kept::Kept;

pub(crate) use crate::backend::{ObjectAllocator, OnAllocator, Placed};
use crate::mirror::vmalloc::MirrorVmalloc;
use crate::mirror::{KmemCache, Mirror};
use crate::real::{gfp::GfpFlags, kmalloc::Kmalloc, kmem_cache, pages::Pages, vmalloc::Vmalloc};
use crate::request::{BackendId, Gfp, WorkloadFamily, WorkloadRequest};
use crate::slab::SlabFlags;
use crate::uapi;
use core::{ffi::c_void, ptr::NonNull};
use kernel::{bindings, prelude::*, sync::Arc};
use timed::linear_pfn;

pub(crate) struct RealKmalloc;

impl ObjectAllocator for RealKmalloc {
    type Obj = Kmalloc;
    fn alloc(&mut self, size: usize, _order: u32, gfp: Gfp) -> Result<Kmalloc> {
        Kmalloc::new(size, gfp.flags())
    }
    fn free(&mut self, obj: Kmalloc) {
        drop(obj);
    }
    fn usable(&self, obj: &Kmalloc, _size: usize) -> usize {
        obj.ksize()
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

impl<T, U, V> Placed for (NonNull<T>, U, V) {
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
    fn alloc(&mut self, size: usize, _order: u32, gfp: Gfp) -> Result<Vmalloc> {
        Vmalloc::new(size, gfp.flags())
    }
    fn free(&mut self, obj: Vmalloc) {
        drop(obj);
    }
}

/// The mirror's vmalloc: order-0 pages from its buddy, `vm_map_ram`.
struct MirrorVmap<'a>(&'a Arc<Mirror>);

impl ObjectAllocator for MirrorVmap<'_> {
    type Obj = MirrorVmalloc;
    fn alloc(&mut self, size: usize, _order: u32, gfp: Gfp) -> Result<MirrorVmalloc> {
        MirrorVmalloc::new(self.0, size, gfp)
    }
    fn free(&mut self, obj: MirrorVmalloc) {
        drop(obj);
    }
}

pub(crate) struct RealPages;

impl ObjectAllocator for RealPages {
    type Obj = Pages;
    fn alloc(&mut self, _size: usize, order: u32, gfp: Gfp) -> Result<Pages> {
        Pages::new(order, gfp.flags())
    }
    fn free(&mut self, obj: Pages) {
        drop(obj);
    }
}

pub(crate) struct RealCache(Arc<kmem_cache::Cache>);

impl RealCache {
    /// A cache of `size`-byte objects for one run.
    pub(crate) fn new(size: usize) -> Result<Self> {
        // SLAB_NO_MERGE: its own slabs, not kmalloc-N's, like the mirror's.
        Ok(RealCache(kmem_cache::Cache::new_unmerged(size)?))
    }
}

impl ObjectAllocator for RealCache {
    type Obj = NonNull<c_void>;
    fn alloc(&mut self, _size: usize, _order: u32, gfp: Gfp) -> Result<NonNull<c_void>> {
        self.0.alloc_raw(gfp.flags()).ok_or(ENOMEM)
    }
    fn free(&mut self, obj: NonNull<c_void>) {
        // SAFETY: `obj` came from `alloc_raw` on this cache, and the
        // workload frees each object once, before the cache is dropped.
        unsafe { self.0.free_raw(obj) };
    }
}

pub(crate) struct MirrorKmalloc(pub(crate) Arc<Mirror>);

impl ObjectAllocator for MirrorKmalloc {
    type Obj = (NonNull<u8>, usize, Gfp);
    fn alloc(&mut self, size: usize, _order: u32, gfp: Gfp) -> Result<(NonNull<u8>, usize, Gfp)> {
        Ok((self.0.kmalloc(size, gfp)?, size, gfp))
    }
    fn free(&mut self, (ptr, size, gfp): (NonNull<u8>, usize, Gfp)) {
        // SAFETY: `ptr` came from `kmalloc(size, gfp)` above and is freed
        // once: the workload gives each object back exactly once.
        let _ = unsafe { self.0.kfree(ptr, size, gfp) };
    }
    fn usable(&self, obj: &(NonNull<u8>, usize, Gfp), size: usize) -> usize {
        self.0.ksize(obj.0).unwrap_or(size)
    }
}

pub(crate) struct MirrorPages(pub(crate) Arc<Mirror>);

impl ObjectAllocator for MirrorPages {
    type Obj = (NonNull<u8>, u32);
    fn alloc(&mut self, _size: usize, order: u32, gfp: Gfp) -> Result<(NonNull<u8>, u32)> {
        Ok((self.0.alloc_pages(order, gfp)?, order))
    }
    fn free(&mut self, (head, order): (NonNull<u8>, u32)) {
        // SAFETY: `head` came from `alloc_pages(order)` above and is freed
        // once.
        let _ = unsafe { self.0.free_pages(head, order) };
    }
}

/// A mirror kmem_cache, through its per-CPU sheaves and barn as SLUB's
/// caches are (`src/mirror/kmem_cache.rs`). Dropping it gives the cached
/// objects back and destroys the cache.
pub(crate) struct MirrorCache<'a>(KmemCache<&'a Mirror>);

impl<'a> MirrorCache<'a> {
    /// A cache of `size`-byte objects for one run.
    pub(crate) fn new(mirror: &'a Mirror, size: usize) -> Result<Self> {
        Ok(MirrorCache(KmemCache::new(
            mirror,
            size,
            0,
            SlabFlags::NONE,
            None,
        )?))
    }

    /// Bytes in the cache's slabs.
    pub(crate) fn slab_bytes(&self) -> u64 {
        self.0.slab_bytes()
    }

    /// Once every object was freed: the cached ones go back, then the
    /// slabs to the buddy; EBUSY if an object is still live.
    pub(crate) fn destroy(self) -> Result {
        self.0.destroy()
    }
}

impl ObjectAllocator for MirrorCache<'_> {
    type Obj = NonNull<u8>;
    fn alloc(&mut self, _size: usize, _order: u32, gfp: Gfp) -> Result<NonNull<u8>> {
        self.0.alloc(gfp)
    }
    fn free(&mut self, obj: NonNull<u8>) {
        // SAFETY: `obj` came from this cache and the workload frees each
        // object once.
        let _ = unsafe { self.0.free(obj) };
    }
}

/// Runs `req` on `a`: the sequence, then [`pass::run_steps`], then frees
/// what is left; the figures go to `out`.
fn run<A: ObjectAllocator>(
    a: &mut A,
    req: &WorkloadRequest,
    out: &mut uapi::MemlabWorkload,
) -> Result {
    let seq = steps::generate(req)?;
    let mut slots = pass::slots::<A>(seq.slots)?;
    let r = pass::run_steps(a, req, out, &seq.steps, &mut slots, seq.peak_live);
    timed::free_all(a, &mut slots);
    r
}

/// KEEP: runs the allocations of `req` and returns the objects, for a
/// FREE_KEPT run to free.
pub(crate) fn keep_workload(
    mirror: &Arc<Mirror>,
    req: &WorkloadRequest,
    out: &mut uapi::MemlabWorkload,
) -> Result<KBox<dyn kept::KeptObjects>> {
    out.page_meta_bytes = page_meta_bytes(req.backend);
    match (req.backend, req.family) {
        (BackendId::Real, WorkloadFamily::Kmalloc { .. }) => kept::keep(RealKmalloc, req, out),
        (BackendId::Real, WorkloadFamily::Pages { .. }) => kept::keep(RealPages, req, out),
        (BackendId::Mirror, WorkloadFamily::Kmalloc { .. }) => {
            kept::keep(MirrorKmalloc(mirror.clone()), req, out)
        }
        (BackendId::Mirror, WorkloadFamily::Pages { .. }) => {
            kept::keep(MirrorPages(mirror.clone()), req, out)
        }
        // `WorkloadRequest::try_from` keeps only kmalloc and pages.
        (_, WorkloadFamily::KmemCache { .. } | WorkloadFamily::Vmalloc { .. }) => Err(EINVAL),
    }
}

/// Bytes of page metadata `backend` keeps per page.
fn page_meta_bytes(backend: BackendId) -> u32 {
    let bytes = match backend {
        BackendId::Real => core::mem::size_of::<bindings::page>(),
        BackendId::Mirror => core::mem::size_of::<crate::buddy::PageMeta>(),
    };
    bytes as u32
}

/// Runs `f` on the allocator of `family` on `backend`: the one dispatch
/// from a typed request to an [`ObjectAllocator`]. A kmem_cache is made
/// for the call and destroyed after it.
pub(crate) fn with_allocator<F: OnAllocator>(
    mirror: &Arc<Mirror>,
    backend: BackendId,
    family: WorkloadFamily,
    f: F,
) -> Result<F::Out> {
    match (backend, family) {
        (BackendId::Real, WorkloadFamily::Kmalloc { .. }) => f.run(&mut RealKmalloc),
        (BackendId::Real, WorkloadFamily::Pages { .. }) => f.run(&mut RealPages),
        (BackendId::Real, WorkloadFamily::Vmalloc { .. }) => f.run(&mut RealVmalloc),
        (BackendId::Real, WorkloadFamily::KmemCache { size }) => {
            f.run(&mut RealCache::new(size as usize)?)
        }
        (BackendId::Mirror, WorkloadFamily::Kmalloc { .. }) => {
            f.run(&mut MirrorKmalloc(mirror.clone()))
        }
        (BackendId::Mirror, WorkloadFamily::Pages { .. }) => {
            f.run(&mut MirrorPages(mirror.clone()))
        }
        (BackendId::Mirror, WorkloadFamily::Vmalloc { .. }) => f.run(&mut MirrorVmap(mirror)),
        (BackendId::Mirror, WorkloadFamily::KmemCache { size }) => {
            let mut a = MirrorCache::new(mirror, size as usize)?;
            let r = f.run(&mut a);
            a.destroy()?;
            r
        }
    }
}

/// A timed or THROUGHPUT run of a request, figures into `out`.
struct Timed<'a> {
    req: &'a WorkloadRequest,
    out: &'a mut uapi::MemlabWorkload,
}

impl OnAllocator for Timed<'_> {
    type Out = ();
    fn run<A: ObjectAllocator>(self, a: &mut A) -> Result {
        run(a, self.req, self.out)
    }
}

/// Runs `req` (timed or THROUGHPUT) on the backend it names; the figures
/// go to `out`.
pub(crate) fn run_workload(
    mirror: &Arc<Mirror>,
    req: &WorkloadRequest,
    out: &mut uapi::MemlabWorkload,
) -> Result {
    out.page_meta_bytes = page_meta_bytes(req.backend);
    with_allocator(mirror, req.backend, req.family, Timed { req, out })
}
