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
        poison(self.bytes_mut());
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
    /// `ksize`: the object's bytes, all owned by this value.
    usable: usize,
    gfp: Gfp,
}

impl Drop for MirrorKmalloc {
    fn drop(&mut self) {
        // SAFETY: the object's `usable` bytes are owned by this value (type
        // invariant) and nothing else reaches them; `&mut self` is unique.
        poison(unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.usable) });
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
    /// The object's bytes, all owned by this value.
    usable: usize,
}

impl Drop for MirrorCacheObject {
    fn drop(&mut self) {
        // SAFETY: as for `MirrorKmalloc`, the object's `usable` bytes.
        poison(unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.usable) });
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

/// What every block a handle held is filled with as it is freed:
/// `PAGE_POISON` of include/linux/poison.h, what page poisoning writes. A
/// later `__GFP_ZERO` allocation of the block then starts from dirty memory,
/// so [`reads_zero`] can tell whether [`gfp_zero`] did its work.
const FREE_POISON: u8 = 0xaa;

/// Fills a block that is about to be freed with [`FREE_POISON`].
pub(crate) fn poison(bytes: &mut [u8]) {
    bytes.fill(FREE_POISON);
}

/// The mirror's `__GFP_ZERO`: zeroes the block handed out.
fn gfp_zero(bytes: &mut [u8]) {
    bytes.fill(0);
}

/// Whether every byte of `bytes` reads zero from memory. The reads are
/// volatile, so the compiler cannot answer from what [`gfp_zero`] just
/// stored: this checks the memory, apart from the code that zeroes it.
fn reads_zero(bytes: &[u8]) -> bool {
    // SAFETY: `u64` has no invalid bit patterns; `align_to` splits the
    // slice at aligned boundaries.
    let (head, words, tail) = unsafe { bytes.align_to::<u64>() };
    all_read_zero(head) && all_read_zero(words) && all_read_zero(tail)
}

/// Whether every item of `items` reads zero, each read volatile.
fn all_read_zero<T: Copy + PartialEq + Default>(items: &[T]) -> bool {
    for item in items {
        // SAFETY: `item` is a reference into `items`: valid, aligned and
        // initialized for the read.
        if unsafe { core::ptr::read_volatile(item) } != T::default() {
            return false;
        }
    }
    true
}

/// With `__GFP_ZERO` in `gfp`: zeroes `bytes`, then whether they read zero.
/// Without: false, and the bytes stay as the last owner left them.
pub(crate) fn zero_and_check(gfp: Gfp, bytes: &mut [u8]) -> bool {
    if !gfp.zero {
        return false;
    }
    gfp_zero(bytes);
    reads_zero(bytes)
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
        .zeroed(zero_and_check(req.gfp, bytes))
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
                    .zeroed(zero_and_check(gfp, p.bytes_mut()))
                    .took(ns);
                Allocation::new(p, f)
            }
            Family::Kmalloc { size } => {
                let (ptr, ns) = time(|| self.kmalloc(size, gfp));
                let ptr = ptr?;
                // INVARIANT: just allocated with `size` and `gfp`.
                let usable = self.ksize(ptr).unwrap_or(size);
                let k = MirrorKmalloc {
                    mirror: self.clone(),
                    ptr,
                    size,
                    usable,
                    gfp,
                };
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
                let o = MirrorCacheObject { cache, ptr, usable };
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
