// SPDX-License-Identifier: GPL-2.0

//! `kmem_cache_alloc`/`kmem_cache_free`/`kmem_cache_destroy` on a mirror
//! [`SlabCache`], with its slabs from the mirror's zones. The caller owns
//! the cache (a handle, or a workload) and passes it `&mut`, so the cache
//! needs no lock of its own; its slabs move under `Mirror::state`.

use super::percpu::Stack;
use super::zone::zonelist;
use super::Mirror;
use crate::request::{Gfp, Zone};
use crate::slab::SlabCache;
use core::ptr::NonNull;
use kernel::prelude::*;

/// The mask and zones a cache's slabs are taken with: `gfp` without its
/// zone bits, and the cache's zone if it has one.
fn slab_zones(gfp: Gfp, zone: Option<Zone>) -> (Gfp, &'static [Zone]) {
    let gfp = gfp.without_zone();
    match zone {
        Some(Zone::Dma) => (gfp, &[Zone::Dma]),
        _ => (gfp, zonelist(gfp)),
    }
}

impl Mirror {
    /// `kmem_cache_alloc(cache, gfp)` for a cache whose slabs come from
    /// `zone` (`SLAB_CACHE_DMA`), or from the zonelist of `gfp` without its
    /// zone bits: as in SLUB, the mask of one allocation never moves a
    /// cache's objects between zones.
    pub(crate) fn cache_alloc(
        &self,
        cache: &mut SlabCache,
        gfp: Gfp,
        zone: Option<Zone>,
    ) -> Result<NonNull<u8>> {
        let (gfp, zones) = slab_zones(gfp, zone);
        self.with_reclaim(gfp, || {
            self.with_src_over(gfp, zones, |_, src| cache.alloc(src).ok())
        })
    }

    /// Fills `stack` with up to `n` objects of `cache` under one lock: the
    /// refill of a per-CPU object cache (`___slab_alloc`'s batch).
    pub(crate) fn cache_refill<const N: usize>(
        &self,
        cache: &mut SlabCache,
        stack: &mut Stack<N>,
        n: usize,
        gfp: Gfp,
        zone: Option<Zone>,
    ) {
        let (gfp, zones) = slab_zones(gfp, zone);
        self.with_src_over(gfp, zones, |_, src| {
            for _ in 0..n {
                let Ok(p) = cache.alloc(src) else {
                    break;
                };
                if let Err(p) = stack.push(p) {
                    let _ = cache.free(src, p.as_ptr());
                    break;
                }
            }
        });
    }

    /// Gives up to `n` objects of `stack` back to `cache`, each checked by
    /// the slab, under one lock.
    pub(crate) fn cache_flush<const N: usize>(
        &self,
        cache: &mut SlabCache,
        stack: &mut Stack<N>,
        n: usize,
    ) {
        self.flush(stack, n, |_, src, p| cache.free(src, p.as_ptr()).is_ok());
    }

    /// `kmem_cache_free(cache, ptr)`: EINVAL if the slab refuses `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` came from `cache_alloc(cache, _)` (or a refill of `cache`) and
    /// has not been freed since. The slab checks what it can, but an object
    /// parked in a CPU-style stack of the caller reads as allocated, so a
    /// stale pointer to one would get two owners.
    pub(crate) unsafe fn cache_free(&self, cache: &mut SlabCache, ptr: NonNull<u8>) -> Result {
        self.with_src(Gfp::KERNEL, |_, src| cache.free(src, ptr.as_ptr()))
            .map_err(|_| EINVAL)
    }

    /// `kmem_cache_destroy(cache)`: EBUSY while objects are live.
    pub(crate) fn cache_destroy(&self, cache: &mut SlabCache) -> Result {
        self.with_src(Gfp::KERNEL, |_, src| cache.destroy(src))
            .map_err(|_| EBUSY)
    }
}
