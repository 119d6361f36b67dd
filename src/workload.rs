// SPDX-License-Identifier: GPL-2.0

//! Workloads written once against [`ObjectAllocator`] and run on either
//! backend, timed in the kernel with the same clock, so real and mirror are
//! compared like for like in one VM run.
//!
//! Patterns (`MEMLAB_PATTERN_*`): PAIRS (alloc then free at once; a sample
//! is the pair), BATCH (all allocs, then all frees; a sample is one call),
//! RANDOM (a seeded mix of allocs of random size or order and frees of
//! random live objects; a sample is one call). Latencies are kept in a
//! vector sized up front, then sorted for the median and 99th percentile.

use crate::mirror::{KmemCache, Mirror};
use crate::platform::clock::now_ns;
use crate::real::{gfp::GfpFlags, kmalloc::Kmalloc, kmem_cache, pages::Pages};
use crate::request::{CacheFlags, Gfp};
use crate::sizeclass::KMALLOC_MAX_SIZE;
use crate::slab::SlabFlags;
use crate::uapi;
use core::ptr::NonNull;
use kernel::{bindings, prelude::*, sync::Arc};

/// One allocator family on one backend, as the workloads and the
/// in-kernel replay (`src/replay.rs`) see it.
pub(crate) trait ObjectAllocator {
    /// A live allocation.
    type Obj;
    /// Allocates `size` bytes, or `1 << order` pages for the pages family,
    /// with `gfp` (quietly: a failed allocation is a figure, not a splat).
    fn alloc(&mut self, size: usize, order: u32, gfp: Gfp) -> Result<Self::Obj>;
    /// Frees `obj`.
    fn free(&mut self, obj: Self::Obj);
    /// Bytes `obj`, asked for as `size`, may use (ksize for kmalloc).
    fn usable(&self, _obj: &Self::Obj, size: usize) -> usize {
        size
    }
}

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
        Ok(RealCache(kmem_cache::Cache::new(
            size,
            0,
            CacheFlags::default(),
            false,
        )?))
    }
}

impl ObjectAllocator for RealCache {
    type Obj = kmem_cache::Object;
    fn alloc(&mut self, _size: usize, _order: u32, gfp: Gfp) -> Result<kmem_cache::Object> {
        kmem_cache::Object::new(&self.0, gfp.flags())
    }
    fn free(&mut self, obj: kmem_cache::Object) {
        drop(obj);
    }
}

pub(crate) struct MirrorKmalloc<'a>(pub(crate) &'a Mirror);

impl ObjectAllocator for MirrorKmalloc<'_> {
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

pub(crate) struct MirrorPages<'a>(pub(crate) &'a Mirror);

impl ObjectAllocator for MirrorPages<'_> {
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

/// xorshift32: cheap, seeded, the same sequence on both backends.
struct Rng(u32);

impl Rng {
    fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u32) -> u32 {
        self.next() % n.max(1)
    }
}

/// Runs `w`'s pattern on `a`, filling in its results.
fn run<A: ObjectAllocator>(a: &mut A, w: &mut uapi::MemlabWorkload) -> Result {
    let count = w.count as usize;
    let size = usize::try_from(w.size).map_err(|_| EINVAL)?;
    let mut samples: KVVec<u64> = KVVec::with_capacity(2 * count, GFP_KERNEL)?;
    let mut live: KVVec<A::Obj> = KVVec::with_capacity(count, GFP_KERNEL)?;
    let mut failed = 0u64;
    match w.pattern {
        uapi::MEMLAB_PATTERN_PAIRS => {
            for _ in 0..count {
                let t0 = now_ns();
                match a.alloc(size, w.order, Gfp::KERNEL) {
                    Ok(o) => a.free(o),
                    Err(_) => failed += 1,
                }
                samples.push(now_ns().saturating_sub(t0), GFP_KERNEL)?;
            }
        }
        uapi::MEMLAB_PATTERN_BATCH => {
            for _ in 0..count {
                let t0 = now_ns();
                let r = a.alloc(size, w.order, Gfp::KERNEL);
                samples.push(now_ns().saturating_sub(t0), GFP_KERNEL)?;
                match r {
                    Ok(o) => live.push(o, GFP_KERNEL)?,
                    Err(_) => failed += 1,
                }
            }
            for o in live.drain_all() {
                let t0 = now_ns();
                a.free(o);
                samples.push(now_ns().saturating_sub(t0), GFP_KERNEL)?;
            }
        }
        _ => {
            let mut rng = Rng(w.seed | 1);
            let max_live = (count / 2).max(1);
            for _ in 0..count {
                let do_alloc = live.is_empty() || (live.len() < max_live && rng.below(2) == 0);
                let t0 = now_ns();
                if do_alloc {
                    let sz = 8 + rng
                        .below(u32::try_from(size.saturating_sub(8)).unwrap_or(u32::MAX))
                        as usize;
                    let order = rng.below(w.order + 1);
                    let r = a.alloc(sz, order, Gfp::KERNEL);
                    samples.push(now_ns().saturating_sub(t0), GFP_KERNEL)?;
                    match r {
                        Ok(o) => live.push(o, GFP_KERNEL)?,
                        Err(_) => failed += 1,
                    }
                } else {
                    let i = rng.below(live.len() as u32) as usize;
                    let last = live.len() - 1;
                    live.as_mut_slice().swap(i, last);
                    let o = live.pop().ok_or(EINVAL)?;
                    a.free(o);
                    samples.push(now_ns().saturating_sub(t0), GFP_KERNEL)?;
                }
            }
            for o in live.drain_all() {
                a.free(o);
            }
        }
    }
    crate::platform::sort::sort_sleepable(&mut samples);
    w.ops = samples.len() as u64;
    w.failed = failed;
    w.median_ns = samples.get(samples.len() / 2).copied().unwrap_or(0);
    w.p99_ns = samples.get(samples.len() * 99 / 100).copied().unwrap_or(0);
    Ok(())
}

/// Validates `w` and returns the most bytes it will hold at once (objects
/// and its own sample and live vectors), which the caller reserves against
/// its caps for the run.
pub(crate) fn charge(w: &uapi::MemlabWorkload) -> Result<usize> {
    if w.backend > uapi::MEMLAB_BACKEND_MIRROR
        || w.pattern >= uapi::MEMLAB_NR_PATTERNS
        || w.count == 0
        || w.count > uapi::MEMLAB_WORKLOAD_MAX_COUNT
        || w.order > bindings::MAX_PAGE_ORDER
    {
        return Err(EINVAL);
    }
    let per_obj = match w.family {
        uapi::MEMLAB_FAMILY_PAGES => (bindings::PAGE_SIZE as u64) << w.order,
        uapi::MEMLAB_FAMILY_KMALLOC | uapi::MEMLAB_FAMILY_KMEM_CACHE if w.size >= 8 => w.size,
        _ => return Err(EINVAL),
    };
    if per_obj > KMALLOC_MAX_SIZE as u64 {
        return Err(E2BIG);
    }
    // What an object holds is its size class (96 and 192 are below the next
    // power of two; above 8 KiB whole pages of the next order): charge that.
    let per_obj = per_obj.next_power_of_two();
    if w.family != uapi::MEMLAB_FAMILY_PAGES && w.order != 0 {
        return Err(EINVAL);
    }
    // The most objects the pattern holds at once, for the memory cap.
    let max_live = match w.pattern {
        uapi::MEMLAB_PATTERN_PAIRS => 1,
        uapi::MEMLAB_PATTERN_BATCH => u64::from(w.count),
        _ => u64::from(w.count / 2).max(1),
    };
    // The run's own vectors: a latency sample per step (two for BATCH)
    // and a slot per live object.
    let vectors = u64::from(w.count) * (2 * 8 + 16);
    usize::try_from(per_obj.saturating_mul(max_live).saturating_add(vectors)).map_err(|_| E2BIG)
}

/// Runs `w`, validated by [`charge`], on the backend it names.
pub(crate) fn run_workload(mirror: &Mirror, w: &mut uapi::MemlabWorkload) -> Result {
    charge(w)?;
    let size = w.size as usize;
    match (w.backend, w.family) {
        (uapi::MEMLAB_BACKEND_REAL, uapi::MEMLAB_FAMILY_KMALLOC) => run(&mut RealKmalloc, w),
        (uapi::MEMLAB_BACKEND_REAL, uapi::MEMLAB_FAMILY_PAGES) => run(&mut RealPages, w),
        (uapi::MEMLAB_BACKEND_REAL, _) => run(&mut RealCache::new(size)?, w),
        (_, uapi::MEMLAB_FAMILY_KMALLOC) => run(&mut MirrorKmalloc(mirror), w),
        (_, uapi::MEMLAB_FAMILY_PAGES) => run(&mut MirrorPages(mirror), w),
        _ => {
            let mut a = MirrorCache::new(mirror, size)?;
            let r = run(&mut a, w);
            a.destroy()?;
            r
        }
    }
}
