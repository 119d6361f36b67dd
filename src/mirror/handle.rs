// SPDX-License-Identifier: GPL-2.0

//! The mirror behind the [`Backend`] seam: ALLOC of every family, each
//! allocation owned by a value that gives it back to the mirror on drop.

use super::dma::MirrorDma;
use super::kmem_cache::KmemCache;
use super::vmalloc::MirrorVmalloc;
use super::Mirror;
use crate::backend::{Allocation, Backend, Facts};
use crate::platform::{clock::time, phys, phys::Placement, vmap};
use crate::request::{AllocRequest, Family, Gfp};
use crate::slab::{SlabCache, SlabFlags};
use core::ptr::NonNull;
use kernel::{page::PAGE_SIZE, prelude::*, sync::Arc};

/// A block from `alloc_pages`, freed on drop.
///
/// # Invariants
///
/// `head` came from `mirror.alloc_pages(order, _)` and is not freed yet.
pub(crate) struct MirrorPages {
    mirror: Arc<Mirror>,
    head: NonNull<u8>,
    order: u32,
}

impl MirrorPages {
    /// `alloc_pages(order, gfp)` on `mirror`.
    pub(crate) fn new(mirror: &Arc<Mirror>, order: u32, gfp: Gfp) -> Result<Self> {
        let head = mirror.alloc_pages(order, gfp)?;
        // INVARIANT: just allocated with `order`.
        Ok(MirrorPages {
            mirror: mirror.clone(),
            head,
            order,
        })
    }

    /// Physical address of the first page.
    pub(crate) fn phys(&self) -> u64 {
        phys::linear_phys(self.head.as_ptr().cast())
    }

    /// Bytes in the block.
    pub(crate) fn bytes(&self) -> usize {
        PAGE_SIZE << self.order
    }

    /// The block as bytes, for zeroing and checking.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: the block's `bytes()` bytes at `head` are in the direct map
        // and owned by this value (type invariant); `&mut self` makes this
        // the only reference to them.
        unsafe { core::slice::from_raw_parts_mut(self.head.as_ptr(), self.bytes()) }
    }
}

impl Drop for MirrorPages {
    fn drop(&mut self) {
        // SAFETY: `head` came from `alloc_pages(order, _)` of this mirror and
        // is freed only here (type invariant).
        if unsafe { self.mirror.free_pages(self.head, self.order) }.is_err() {
            self.mirror.state.lock().rejected += 1;
        }
    }
}

// SAFETY: the block is owned by this value and freed through the mirror's
// locks, from any thread.
unsafe impl Send for MirrorPages {}
// SAFETY: `&MirrorPages` only reads addresses.
unsafe impl Sync for MirrorPages {}

/// An object from `kmalloc`, freed on drop.
///
/// # Invariants
///
/// `ptr` came from `mirror.kmalloc(size, gfp)` and is not freed yet.
struct MirrorKmalloc {
    mirror: Arc<Mirror>,
    ptr: NonNull<u8>,
    size: usize,
    gfp: Gfp,
}

impl Drop for MirrorKmalloc {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `kmalloc(size, gfp)` of this mirror and is
        // freed only here (type invariant).
        if unsafe { self.mirror.kfree(self.ptr, self.size, self.gfp) }.is_err() {
            self.mirror.state.lock().rejected += 1;
        }
    }
}

// SAFETY: as for `MirrorPages`.
unsafe impl Send for MirrorKmalloc {}
// SAFETY: `&MirrorKmalloc` reads nothing.
unsafe impl Sync for MirrorKmalloc {}

/// One object of a cache of its own; both freed on drop.
///
/// # Invariants
///
/// `ptr` came from `cache.alloc(_)` and is not freed yet.
struct MirrorCacheObject {
    cache: KmemCache<Arc<Mirror>>,
    ptr: NonNull<u8>,
}

impl Drop for MirrorCacheObject {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `cache.alloc` and is freed only here (type
        // invariant). The cache is dropped (destroyed) after this.
        if unsafe { self.cache.free(self.ptr) }.is_err() {
            self.cache.count_refused(1);
        }
    }
}

// SAFETY: as for `MirrorPages`; the cache is owned by this value alone.
unsafe impl Send for MirrorCacheObject {}
// SAFETY: `&MirrorCacheObject` reads nothing.
unsafe impl Sync for MirrorCacheObject {}

/// Zeroes `bytes` and checks they read back zero: the mirror's `__GFP_ZERO`.
pub(crate) fn zero_and_check(bytes: &mut [u8]) -> bool {
    bytes.fill(0);
    bytes.iter().all(|b| *b == 0)
}

/// The facts of a slab object of `usable` bytes at `ptr`, zeroed and
/// checked first if `req` asks for `__GFP_ZERO`.
///
/// # Safety
///
/// `ptr` starts `usable` bytes of the direct map that the caller owns and
/// that nothing else reaches during the call.
unsafe fn object_facts(req: &AllocRequest, ptr: NonNull<u8>, usable: usize) -> Facts {
    // SAFETY: owned, unaliased direct-map bytes (requirement).
    let bytes = unsafe { core::slice::from_raw_parts_mut(ptr.as_ptr(), usable) };
    let phys = phys::linear_phys(ptr.as_ptr().cast());
    Facts::new(req, Placement::linear(phys, usable))
        .usable(usable)
        .zeroed(req.gfp.zero && zero_and_check(bytes))
}

impl Backend for Arc<Mirror> {
    fn alloc(&self, req: &AllocRequest) -> Result<Allocation> {
        let gfp = req.gfp;
        match req.family {
            Family::Pages { order } => {
                let (p, ns) = time(|| MirrorPages::new(self, order, gfp));
                let mut p = p?;
                let f = Facts::new(req, Placement::linear(p.phys(), p.bytes()))
                    .usable(p.bytes())
                    .zeroed(gfp.zero && zero_and_check(p.bytes_mut()))
                    .took(ns);
                Allocation::new(p, f)
            }
            Family::Kmalloc { size } => {
                let (ptr, ns) = time(|| self.kmalloc(size, gfp));
                let ptr = ptr?;
                // INVARIANT: just allocated with `size` and `gfp`.
                let k = MirrorKmalloc {
                    mirror: self.clone(),
                    ptr,
                    size,
                    gfp,
                };
                let usable = self.ksize(ptr).unwrap_or(size);
                // SAFETY: the object's `usable` bytes are owned by `k` and
                // nothing else reaches them yet.
                let f = unsafe { object_facts(req, ptr, usable) }.took(ns);
                Allocation::new(k, f)
            }
            Family::KmemCache { size, align, flags } => {
                let slab_flags = if flags.hwcache_align {
                    SlabFlags::HWCACHE_ALIGN
                } else {
                    SlabFlags::NONE
                };
                let cache = KmemCache::new(self.clone(), size, align, slab_flags, flags.zone())?;
                // As on the real side, creating the cache is not timed.
                // As SLUB does, the slab's zone comes from the cache, not
                // from this allocation's mask.
                let (ptr, ns) = time(|| cache.alloc(gfp));
                let ptr = ptr?;
                let (usable, order) = cache.geometry();
                // The handle's cache holds a whole slab for its one object.
                let held = (PAGE_SIZE << order) + core::mem::size_of::<SlabCache>();
                // INVARIANT: just allocated from `cache`.
                let o = MirrorCacheObject { cache, ptr };
                // SAFETY: as for kmalloc above, `usable` bytes owned by `o`.
                let f = unsafe { object_facts(req, ptr, usable) }.took(ns);
                Ok(Allocation::new(o, f)?.pinning(held))
            }
            Family::Vmalloc { size } => {
                let (v, ns) = time(|| MirrorVmalloc::new(self, size, gfp));
                let v = v?;
                let f = Facts::new(req, Placement::pages(v.pfns()))
                    .usable(v.nr_pages() * PAGE_SIZE)
                    .zeroed(v.zeroed())
                    .took(ns);
                let held = vmap::footprint(v.nr_pages());
                Ok(Allocation::new(v, f)?.pinning(held))
            }
            Family::Dma { size } => {
                let (d, ns) = time(|| MirrorDma::new(self, size, gfp));
                let d = d?;
                let f = Facts::new(req, Placement::linear(d.phys(), d.bytes()))
                    .usable(d.bytes())
                    .dma_addr(d.dma_addr())
                    .zeroed(d.zeroed())
                    .took(ns);
                Allocation::new(d, f)
            }
        }
    }
}
