// SPDX-License-Identifier: GPL-2.0

//! The real backend object by object: one [`ObjectAllocator`] per family,
//! over the owner types of this directory (each frees in `Drop`), for the
//! workloads and the in-kernel replay.

use super::{kmalloc::Kmalloc, kmem_cache, pages::Pages, vmalloc::Vmalloc};
use crate::backend::{ObjectAllocator, Placed};
use crate::real::gfp::GfpFlags;
use crate::request::Gfp;
use core::{ffi::c_void, ptr::NonNull};
use kernel::{prelude::*, str::CStr, sync::Arc};

/// `kmalloc(size)` / `kfree`.
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

impl Placed for Vmalloc {
    fn pfn(&self) -> u64 {
        Vmalloc::pfn(self, 0)
    }
}

/// `__vmalloc(size)` / `vfree`: pages and the mapping, both in the window.
pub(crate) struct RealVmalloc;

impl ObjectAllocator for RealVmalloc {
    type Obj = Vmalloc;
    fn alloc(&mut self, size: usize, _order: u32, gfp: Gfp) -> Result<Vmalloc> {
        Vmalloc::new(size, gfp.flags())
    }
    fn free(&mut self, obj: Vmalloc) {
        drop(obj);
    }
}

/// `alloc_pages(order)` / `__free_pages`.
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

/// One run's kmem_cache: `kmem_cache_alloc` / `kmem_cache_free`.
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

/// A replay session's `alloc_pages(order)` / `__free_pages`, with
/// `__GFP_NORETRY` (see [`GfpFlags::flags_noretry`]).
pub(crate) struct RealSessionPages;

impl ObjectAllocator for RealSessionPages {
    type Obj = Pages;
    fn alloc(&mut self, _size: usize, order: u32, gfp: Gfp) -> Result<Pages> {
        Pages::new(order, gfp.flags_noretry())
    }
    fn free(&mut self, obj: Pages) {
        drop(obj);
    }
}

/// A replay session's cache: unmerged, named for user space, allocating
/// with `__GFP_NORETRY`.
pub(crate) struct RealSessionCache(Arc<kmem_cache::Cache>);

impl RealSessionCache {
    /// `kmem_cache_create(name, size, align, SLAB_NO_MERGE)`.
    pub(crate) fn new(name: &CStr, size: usize, align: usize) -> Result<Self> {
        Ok(RealSessionCache(kmem_cache::Cache::new_named(
            name, size, align,
        )?))
    }
}

impl ObjectAllocator for RealSessionCache {
    type Obj = NonNull<c_void>;
    fn alloc(&mut self, _size: usize, _order: u32, gfp: Gfp) -> Result<NonNull<c_void>> {
        self.0.alloc_raw(gfp.flags_noretry()).ok_or(ENOMEM)
    }
    fn free(&mut self, obj: NonNull<c_void>) {
        // SAFETY: `obj` came from `alloc_raw` on this cache, and the
        // session frees each object once, before the cache is dropped.
        unsafe { self.0.free_raw(obj) };
    }
}
