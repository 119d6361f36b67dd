// SPDX-License-Identifier: GPL-2.0

//! `kmem_cache_alloc`/`kmem_cache_free`/`kmem_cache_destroy` on a mirror
//! [`SlabCache`], with its slabs from the mirror's zones. The caller owns
//! the cache (a handle, or a workload) and passes it `&mut`, so the cache
//! needs no lock of its own; its slabs move under `Mirror::state`.

use super::percpu::Stack;
use super::Mirror;
use crate::request::Gfp;
use crate::slab::SlabCache;
use core::ptr::NonNull;
use kernel::prelude::*;

impl Mirror {
    /// `kmem_cache_alloc(cache, gfp)`.
    pub(crate) fn cache_alloc(&self, cache: &mut SlabCache, gfp: Gfp) -> Result<NonNull<u8>> {
        self.with_reclaim(gfp, || self.with_src(gfp, |_, src| cache.alloc(src).ok()))
    }

    /// Fills `stack` with up to `n` objects of `cache` under one lock: the
    /// refill of a per-CPU object cache (`___slab_alloc`'s batch).
    pub(crate) fn cache_refill<const N: usize>(
        &self,
        cache: &mut SlabCache,
        stack: &mut Stack<N>,
        n: usize,
        gfp: Gfp,
    ) {
        self.with_src(gfp, |_, src| {
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
