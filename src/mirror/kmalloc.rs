// SPDX-License-Identifier: GPL-2.0

//! `kmalloc`/`kfree`/`ksize` on the mirror's size classes
//! (`src/core/sizeclass.rs`): small GFP_KERNEL-like requests through the
//! CPU's sheaves of their class first (`slab_alloc_node` with sheaves:
//! `alloc_from_pcs`, `free_to_pcs`), then the class's barn, then its slabs;
//! GFP_DMA from the `dma-kmalloc-*` classes; above KMALLOC_MAX_CACHE_SIZE
//! whole buddy blocks.

use super::percpu::{bump, CpuCache};
use super::sheaf::{fill_bulk, Sheaf, Slow};
use super::zone::zonelist;
use super::Mirror;
use crate::pcp::kmalloc_index;
use crate::request::{Gfp, GfpSel, Zone};
use crate::sizeclass::{SizeClass, KMALLOC_MAX_SIZE};
use core::ptr::NonNull;
use kernel::prelude::*;

/// Whether `gfp` may use the per-CPU caches: those hold memory from the
/// Normal-first zonelist, so GFP_DMA and GFP_DMA32 requests bypass them.
#[inline(always)]
pub(crate) fn cpu_cacheable(gfp: Gfp) -> bool {
    zonelist(gfp).first() == Some(&Zone::Normal)
}

impl Mirror {
    /// `kmalloc(size, gfp)`: from this CPU's sheaf of the size class with
    /// no lock and no atomic, else [`Mirror::kmalloc_slow`].
    // Out of line, as the kernel's exported entry is: a caller pays one
    // call on both sides of every comparison (equal work in a timed window).
    #[inline(never)]
    pub(crate) fn kmalloc(&self, size: usize, gfp: Gfp) -> Result<NonNull<u8>> {
        if let (Some(class), true) = (kmalloc_index(size), cpu_cacheable(gfp)) {
            let hit = self.cpus.local(|cc| {
                let CpuCache { stock, counters } = cc;
                let p = stock.objs.get_mut(class)?.alloc()?;
                bump(&mut counters.obj_hit);
                Some(p)
            });
            if let Some(Some(p)) = hit {
                return Ok(p);
            }
        }
        self.kmalloc_slow(size, gfp)
    }

    /// Both sheaves empty, a request the sheaves do not serve, or this
    /// CPU's cache in use: the barn, the slabs, reclaim.
    #[cold]
    #[inline(never)]
    fn kmalloc_slow(&self, size: usize, gfp: Gfp) -> Result<NonNull<u8>> {
        if size > KMALLOC_MAX_SIZE {
            // No reclaim can help such a request, as in the kernel.
            self.state.lock().failed += 1;
            return Err(ENOMEM);
        }
        self.with_reclaim(gfp, || {
            if let (Some(class), true) = (SizeClass::for_size(size), cpu_cacheable(gfp)) {
                let got = self.cpus.local(|cc| self.sheaf_refill(cc, class, gfp));
                if let Some(p) = got {
                    return p;
                }
            }
            self.with_src(gfp, |km, src| km.kmalloc(src, size).ok())
        })
    }

    /// Refills this CPU's sheaves of `class` from the barn or the slabs,
    /// and takes one object.
    fn sheaf_refill(&self, cc: &mut CpuCache, class: SizeClass, gfp: Gfp) -> Option<NonNull<u8>> {
        let CpuCache { stock, counters } = cc;
        let sheaves = stock.objs.get_mut(class.index())?;
        if let Some(p) = sheaves.alloc() {
            return Some(p);
        }
        let barn = self.barns.get(class.index())?;
        let (p, how) = sheaves.refill(barn, |sheaf: &mut Sheaf, cap| {
            self.with_src(gfp, |km, src| {
                let cache = km.cache_mut(class);
                // SAFETY: `SlabCache::alloc_bulk` writes an object, an
                // address inside one of its slabs (never null), into each
                // place it counts.
                unsafe { fill_bulk(sheaf, cap, |out| cache.alloc_bulk(src, out)) };
            })
        });
        bump(match how {
            Slow::Barn => &mut counters.obj_barn,
            Slow::Slabs => &mut counters.obj_refill,
        });
        p
    }

    /// `kfree` of an object from `kmalloc(size, gfp)`: onto this CPU's
    /// sheaf of its size class when `gfp` went through one.
    ///
    /// # Safety
    ///
    /// `ptr` came from `kmalloc(size, gfp)` of this mirror and has not been
    /// freed since: an object parked on a sheaf still reads as allocated in
    /// its slab, so the slab cannot tell a second free of it, and this
    /// function does not try.
    // Out of line, as the kernel's exported entry is: a caller pays one
    // call on both sides of every comparison (equal work in a timed window).
    #[inline(never)]
    pub(crate) unsafe fn kfree(&self, ptr: NonNull<u8>, size: usize, gfp: Gfp) -> Result {
        if let (Some(class), true) = (kmalloc_index(size), cpu_cacheable(gfp)) {
            let parked = self.cpus.local(|cc| {
                let CpuCache { stock, counters } = cc;
                let Some(sheaves) = stock.objs.get_mut(class) else {
                    return false;
                };
                bump(&mut counters.obj_free);
                match sheaves.free(ptr) {
                    Ok(()) => true,
                    Err(p) => self.sheaf_make_room(sheaves, counters, class, p),
                }
            });
            if parked == Some(true) {
                return Ok(());
            }
        }
        self.kfree_checked(ptr)
    }

    /// Both sheaves of `class` full: trade with the barn or flush, then
    /// park `p`.
    #[cold]
    #[inline(never)]
    fn sheaf_make_room(
        &self,
        sheaves: &mut super::sheaf::Sheaves,
        counters: &mut super::percpu::Counters,
        class: usize,
        p: NonNull<u8>,
    ) -> bool {
        let (Some(barn), Some(&class)) = (self.barns.get(class), SizeClass::ALL.get(class)) else {
            return false;
        };
        let (r, how) = sheaves.make_room(barn, p, |sheaf| self.flush_objs(class, sheaf));
        bump(match how {
            Slow::Barn => &mut counters.obj_barn,
            Slow::Slabs => &mut counters.obj_flush,
        });
        r.is_ok()
    }

    /// `kfree` checked against the slabs: EINVAL for a pointer that is not
    /// a live kmalloc object of this mirror.
    fn kfree_checked(&self, ptr: NonNull<u8>) -> Result {
        self.with_src(Gfp::KERNEL, |km, src| km.kfree(src, ptr.as_ptr()))
            .or_else(|_| {
                self.with_src(Gfp::new(GfpSel::Dma, false), |km, src| {
                    km.kfree(src, ptr.as_ptr())
                })
            })
            .map_err(|_| EINVAL)
    }

    /// `ksize` of an object from [`Mirror::kmalloc`].
    pub(crate) fn ksize(&self, ptr: NonNull<u8>) -> Result<usize> {
        self.with_src(Gfp::KERNEL, |km, src| km.ksize(src, ptr.as_ptr()))
            .or_else(|_| {
                self.with_src(Gfp::new(GfpSel::Dma, false), |km, src| {
                    km.ksize(src, ptr.as_ptr())
                })
            })
            .map_err(|_| EINVAL)
    }
}
