// SPDX-License-Identifier: GPL-2.0

//! `kmem_cache_create`/`alloc`/`free`/`destroy` on the mirror: a
//! [`KmemCache`] is a [`SlabCache`] (slabs from the mirror's zones) with
//! SLUB's per-CPU sheaves and a barn in front, as every cache has in 7.2.
//! Handles (one object of a cache of its own) and the kmem_cache workload
//! both go through it.
//!
//! Locks: a CPU's sheaves (no lock: [`PerCpu::local`]), then the barn, then
//! the slab cache's spinlock, then `Mirror::state`.

use super::sheaf::{drain_bulk, fill_bulk, Barn, Sheaf, Sheaves};
use super::zone::zonelist;
use super::Mirror;
use crate::pcp::sheaf_capacity;
use crate::platform::{percpu::PerCpu, phys};
use crate::request::{Gfp, Zone};
use crate::slab::{SlabCache, SlabFlags};
use core::ops::Deref;
use core::ptr::NonNull;
use kernel::{cpu::nr_cpu_ids, new_spinlock, prelude::*, sync::SpinLock};

/// The mask and zones a cache's slabs are taken with: `gfp` without its
/// zone bits, and the cache's zone if it has one. As in SLUB, the mask of
/// one allocation never moves a cache's objects between zones.
fn slab_zones(gfp: Gfp, zone: Option<Zone>) -> (Gfp, &'static [Zone]) {
    let gfp = gfp.without_zone();
    match zone {
        Some(Zone::Dma) if phys::HAS_ZONE_DMA => (gfp, &[Zone::Dma]),
        _ => (gfp, zonelist(gfp)),
    }
}

/// A mirror kmem_cache, on the mirror `M` (an `Arc<Mirror>` or a
/// `&Mirror`). Dropping it gives every cached object back and destroys the
/// cache; a cache with live objects then counts as a refused free in
/// `mirror/check`.
pub(crate) struct KmemCache<M: Deref<Target = Mirror>> {
    mirror: M,
    cpus: PerCpu<Sheaves>,
    barn: Pin<KBox<SpinLock<Barn>>>,
    slab: Pin<KBox<SpinLock<SlabCache>>>,
    /// The cache's zone (`SLAB_CACHE_DMA`), if any.
    zone: Option<Zone>,
}

impl<M: Deref<Target = Mirror>> KmemCache<M> {
    /// `kmem_cache_create`: EINVAL for a size or alignment the slab
    /// allocator refuses.
    pub(crate) fn new(
        mirror: M,
        size: usize,
        align: usize,
        flags: SlabFlags,
        zone: Option<Zone>,
    ) -> Result<Self> {
        Self::new_named(mirror, "memlab-mirror", size, align, flags, zone)
    }

    /// [`KmemCache::new`] with a name (what `mirror/slabinfo`-style reports
    /// call it): EINVAL also for a name the slab allocator refuses.
    pub(crate) fn new_named(
        mirror: M,
        name: &str,
        size: usize,
        align: usize,
        flags: SlabFlags,
        zone: Option<Zone>,
    ) -> Result<Self> {
        // Slabs sized for the CPU count, as the kmalloc caches' are.
        let cpus = nr_cpu_ids();
        let slab =
            SlabCache::new_for_cpus(name, size, align, flags, None, cpus).map_err(|_| EINVAL)?;
        let cap = sheaf_capacity(slab.size());
        Ok(KmemCache {
            mirror,
            cpus: PerCpu::new(|| Sheaves::new(cap))?,
            barn: Barn::new(cap)?,
            slab: KBox::pin_init(new_spinlock!(slab, "memlab_mirror_cache"), GFP_KERNEL)?,
            zone,
        })
    }

    /// The mirror the cache's slabs come from.
    pub(crate) fn mirror(&self) -> &Mirror {
        &self.mirror
    }

    /// Writes the cache's /proc/slabinfo line.
    pub(crate) fn slabinfo_line(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        crate::render::slabinfo_cache(f, &self.slab.lock())
    }

    /// Writes the cache's `mirror/slabstat` line: its sheaves counted on
    /// each CPU (an IPI, which sleeps: before any lock), its barn under
    /// its lock, its slabs under theirs.
    pub(crate) fn slabstat_line(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut fill = 0u64;
        self.cpus.each(&mut |s| fill += s.len() as u64);
        let (full, empty) = self.barn.lock().counts();
        let slab = self.slab.lock();
        let sheaves = crate::render::SheafStat {
            capacity: sheaf_capacity(slab.size()) as u64,
            fill,
            barn_full: full as u64,
            barn_empty: empty as u64,
        };
        crate::render::slabstat_line(f, slab.name(), &slab.stat(), &sheaves)
    }

    /// Counts `n` refused frees on the cache's mirror.
    pub(crate) fn count_refused(&self, n: u64) {
        self.mirror.count_refused(n);
    }

    /// Bytes in the cache's slabs.
    pub(crate) fn slab_bytes(&self) -> u64 {
        let i = self.slab.lock().info();
        i.num_slabs * u64::from(i.pagesperslab) * kernel::page::PAGE_SIZE as u64
    }

    /// `kmem_cache_destroy`: gives the cached objects back, then the slabs;
    /// EBUSY while an object is live.
    pub(crate) fn destroy(mut self) -> Result {
        // Dropping `self` afterwards finds nothing left to do.
        self.release()
    }

    /// Gives every cached object back to the slabs and destroys them.
    fn release(&mut self) -> Result {
        let m = &*self.mirror;
        // `&mut self`: no CPU is in a section of this cache.
        for s in self.cpus.get_mut() {
            for sheaf in s.both().into_iter().filter(|s| !s.is_empty()) {
                flush(m, &self.slab, sheaf);
            }
        }
        Barn::flush_all(&self.barn, |sheaf| flush(m, &self.slab, sheaf));
        let mut slab = self.slab.lock();
        m.with_src(Gfp::KERNEL, |_, src| slab.destroy(src))
            .map_err(|_| EBUSY)
    }

    /// Bytes per object and the slab order.
    pub(crate) fn geometry(&self) -> (usize, u32) {
        let s = self.slab.lock();
        (s.object_size(), s.order())
    }

    /// `kmem_cache_alloc(cache, gfp)`: from this CPU's sheaf with no lock
    /// and no atomic, else the barn, then the slabs.
    // Out of line, as the kernel's exported entry is: a caller pays one
    // call on both sides of every comparison (equal work in a timed window).
    #[inline(never)]
    pub(crate) fn alloc(&self, gfp: Gfp) -> Result<NonNull<u8>> {
        if let Some(Some(p)) = self.cpus.local(|s| s.alloc()) {
            return Ok(p);
        }
        self.alloc_slow(gfp)
    }

    #[cold]
    #[inline(never)]
    fn alloc_slow(&self, gfp: Gfp) -> Result<NonNull<u8>> {
        let (gfp, zones) = slab_zones(gfp, self.zone);
        let m = &*self.mirror;
        m.with_reclaim(gfp, || {
            let got = self.cpus.local(|s| {
                s.alloc().or_else(|| {
                    s.refill(&self.barn, |sheaf: &mut Sheaf, cap| {
                        let mut slab = self.slab.lock();
                        m.with_src_over(gfp, zones, |_, src| {
                            // SAFETY: `SlabCache::alloc_bulk` writes an
                            // object, an address inside one of its slabs
                            // (never null), into each place it counts.
                            unsafe { fill_bulk(sheaf, cap, |out| slab.alloc_bulk(src, out)) };
                        })
                    })
                    .0
                })
            });
            match got {
                Some(p) => p,
                // This CPU's sheaves were busy: straight from the slabs.
                None => {
                    let mut slab = self.slab.lock();
                    m.with_src_over(gfp, zones, |_, src| slab.alloc(src).ok())
                }
            }
        })
    }

    /// `kmem_cache_free(cache, ptr)`: onto this CPU's sheaf; EINVAL if it
    /// went to the slab, which refused it.
    ///
    /// # Safety
    ///
    /// `ptr` came from [`KmemCache::alloc`] of this cache and has not been
    /// freed since: a parked object reads as allocated in its slab, so a
    /// second free of it would give it two owners.
    // Out of line, as the kernel's exported entry is: a caller pays one
    // call on both sides of every comparison (equal work in a timed window).
    #[inline(never)]
    pub(crate) unsafe fn free(&self, ptr: NonNull<u8>) -> Result {
        let parked = self.cpus.local(|s| match s.free(ptr) {
            Ok(()) => true,
            Err(p) => {
                let flush = |sheaf: &mut Sheaf| flush(&self.mirror, &self.slab, sheaf);
                s.make_room(&self.barn, p, flush).0.is_ok()
            }
        });
        if parked == Some(true) {
            return Ok(());
        }
        let mut slab = self.slab.lock();
        self.mirror
            .with_src(Gfp::KERNEL, |_, src| slab.free(src, ptr.as_ptr()))
            .map_err(|_| EINVAL)
    }
}

/// Gives every object on `sheaf` back to `slab` in one bulk free,
/// counting refusals.
fn flush(m: &Mirror, slab: &SpinLock<SlabCache>, sheaf: &mut Sheaf) {
    let mut slab = slab.lock();
    let refused = m.with_src(Gfp::KERNEL, |_, src| {
        drain_bulk(sheaf, |objs| slab.free_bulk(src, objs))
    });
    drop(slab);
    m.count_refused(refused);
}

impl<M: Deref<Target = Mirror>> Drop for KmemCache<M> {
    fn drop(&mut self) {
        // Live objects (EBUSY) mean an owner leaked one: a mirror bug.
        if self.release().is_err() {
            self.mirror.count_refused(1);
        }
    }
}
