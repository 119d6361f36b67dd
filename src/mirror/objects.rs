// SPDX-License-Identifier: GPL-2.0

//! The mirror object by object: one [`ObjectAllocator`] per family, over
//! the mirror's calls of this directory, for the workloads and the
//! in-kernel replay. Named apart from the owners of `handle.rs`, which
//! serve ALLOC.

use super::{vmalloc::MirrorVmalloc, KmemCache, Mirror};
use crate::backend::{ObjectAllocator, Placed};
use crate::request::Gfp;
use crate::slab::SlabFlags;
use core::ptr::NonNull;
use kernel::{prelude::*, sync::Arc};

impl Placed for MirrorVmalloc {
    fn pfn(&self) -> u64 {
        self.pfns().next().unwrap_or(0)
    }
}

/// The mirror's vmalloc: order-0 pages from its buddy, `vm_map_ram`.
pub(crate) struct MirrorVmap<'a>(pub(crate) &'a Arc<Mirror>);

impl ObjectAllocator for MirrorVmap<'_> {
    type Obj = MirrorVmalloc;
    fn alloc(&mut self, size: usize, _order: u32, gfp: Gfp) -> Result<MirrorVmalloc> {
        MirrorVmalloc::new(self.0, size, gfp)
    }
    fn free(&mut self, obj: MirrorVmalloc) {
        drop(obj);
    }
}

/// The mirror's `kmalloc(size, gfp)` / `kfree`, told the size.
pub(crate) struct MirrorKmallocObjects(pub(crate) Arc<Mirror>);

impl ObjectAllocator for MirrorKmallocObjects {
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

/// The mirror's `alloc_pages(order, gfp)` / `free_pages`.
pub(crate) struct MirrorPageBlocks(pub(crate) Arc<Mirror>);

impl ObjectAllocator for MirrorPageBlocks {
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

/// A replay session's cache: named as the real side names its own, and
/// listed in the mirror's debugfs views (`mirror/slabinfo`) while it lives,
/// as the kernel lists a cache in /proc/slabinfo. Dropping it takes it out
/// of the views, gives the cached objects back and destroys the cache.
pub(crate) struct MirrorSessionCache(Arc<KmemCache<Arc<Mirror>>>);

impl MirrorSessionCache {
    /// A cache named `name` of `size`-byte objects aligned to `align` (0:
    /// the default), on `mirror`.
    pub(crate) fn new(mirror: &Arc<Mirror>, name: &str, size: usize, align: usize) -> Result<Self> {
        let cache = KmemCache::new_named(mirror.clone(), name, size, align, SlabFlags::NONE, None)?;
        let cache = Arc::new(cache, GFP_KERNEL)?;
        mirror.register(cache.clone())?;
        Ok(MirrorSessionCache(cache))
    }
}

impl Drop for MirrorSessionCache {
    fn drop(&mut self) {
        // The last reference goes with `self`: the cache is destroyed then.
        self.0.mirror().unregister(&self.0);
    }
}

impl ObjectAllocator for MirrorSessionCache {
    type Obj = NonNull<u8>;
    fn alloc(&mut self, _size: usize, _order: u32, gfp: Gfp) -> Result<NonNull<u8>> {
        self.0.alloc(gfp)
    }
    fn free(&mut self, obj: NonNull<u8>) {
        // SAFETY: `obj` came from this cache and the session frees each
        // object once.
        let _ = unsafe { self.0.free(obj) };
    }
}
