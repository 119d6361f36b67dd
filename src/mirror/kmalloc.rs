// SPDX-License-Identifier: GPL-2.0

//! `kmalloc`/`kfree`/`ksize` on the mirror's size classes
//! (`src/core/sizeclass.rs`): small GFP_KERNEL-like requests through the
//! CPU's object cache of their class first, as SLUB's per-CPU sheaves are;
//! GFP_DMA from the `dma-kmalloc-*` classes; above KMALLOC_MAX_CACHE_SIZE
//! whole buddy blocks.

use super::percpu::{CpuCache, MAG_BATCH};
use super::zone::zonelist;
use super::Mirror;
use crate::request::{Gfp, GfpSel, Zone};
use crate::sizeclass::{SizeClass, KMALLOC_MAX_SIZE};
use core::ptr::NonNull;
use kernel::prelude::*;

/// Whether `gfp` may use the per-CPU caches: those hold memory from the
/// Normal-first zonelist, so GFP_DMA and GFP_DMA32 requests bypass them.
pub(crate) fn cpu_cacheable(gfp: Gfp) -> bool {
    zonelist(gfp).first() == Some(&Zone::Normal)
}

impl Mirror {
    /// `kmalloc(size, gfp)`. ENOMEM at once above KMALLOC_MAX_SIZE, like
    /// the real one (no reclaim can help such a request).
    pub(crate) fn kmalloc(&self, size: usize, gfp: Gfp) -> Result<NonNull<u8>> {
        if size > KMALLOC_MAX_SIZE {
            self.state.lock().failed += 1;
            return Err(ENOMEM);
        }
        self.with_reclaim(gfp, || {
            if let (Some(class), Some(c), true) =
                (SizeClass::for_size(size), self.cpu(), cpu_cacheable(gfp))
            {
                let mut cc = c.lock();
                let CpuCache { mags, counters, .. } = &mut *cc;
                let mag = mags.get_mut(class.index())?;
                if let Some(p) = mag.pop() {
                    counters.obj_hit += 1;
                    return Some(p);
                }
                counters.obj_refill += 1;
                self.with_src(gfp, |km, src| {
                    for _ in 0..MAG_BATCH {
                        let Ok(p) = km.kmalloc(src, class.size()) else {
                            break;
                        };
                        if let Err(p) = mag.push(p) {
                            // Not reached (the magazine was empty); do not
                            // lose the object.
                            let _ = km.kfree(src, p.as_ptr());
                            break;
                        }
                    }
                });
                return mag.pop();
            }
            self.with_src(gfp, |km, src| km.kmalloc(src, size).ok())
        })
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

    /// `kfree` of an object from `kmalloc(size, gfp)`, through the CPU's
    /// cache of its size class when `gfp` went through one.
    ///
    /// # Safety
    ///
    /// `ptr` came from `kmalloc(size, gfp)` of this mirror and has not been
    /// freed since: an object parked in a CPU cache still reads as allocated
    /// in its slab, so the slab cannot tell a second free of it, and this
    /// function does not try.
    pub(crate) unsafe fn kfree(&self, ptr: NonNull<u8>, size: usize, gfp: Gfp) -> Result {
        if let (Some(class), Some(c), true) =
            (SizeClass::for_size(size), self.cpu(), cpu_cacheable(gfp))
        {
            let mut cc = c.lock();
            let CpuCache { mags, counters, .. } = &mut *cc;
            if let Some(mag) = mags.get_mut(class.index()) {
                counters.obj_free += 1;
                let flushes = &mut counters.obj_flush;
                let parked = self.park(mag, ptr, MAG_BATCH, flushes, |km, src, p| {
                    km.kfree(src, p.as_ptr()).is_ok()
                });
                if parked.is_ok() {
                    return Ok(());
                }
            }
        }
        self.kfree_checked(ptr)
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
