// SPDX-License-Identifier: GPL-2.0

//! The mirror: memlab's own buddy and slab allocators (`src/core/`) running
//! inside the module on a pool of real pages it owns ([`pool`]), split as
//! mm/ is:
//!
//! - [`zone`] - a buddy per zone, zonelists, reserves (`page_alloc.c`'s
//!   zone walk and watermarks);
//! - [`page_alloc`] - `alloc_pages`/`__free_pages`, per-CPU page lists;
//! - [`kmalloc`] - `kmalloc`/`kfree`/`ksize` on the size classes;
//! - [`kmem_cache`] - `kmem_cache_alloc`/`free`/`destroy`;
//! - [`vmalloc`] - `vm_map_ram` over mirror pages;
//! - [`dma`] - a mirror block streaming-mapped on memlab's device;
//! - [`percpu`] - what each CPU caches, in a [`PerCpu`] slot reached
//!   without locks or atomics, kmalloc objects on [`sheaf`]s;
//! - [`views`] - the debugfs files, and [`pagemap`] - what every pool page is;
//! - [`handle`] - the mirror behind the `Backend` seam.
//!
//! This file keeps [`Mirror`], its construction and teardown, and reclaim.
//!
//! # GFP
//!
//! A request walks its zonelist ([`zone::zonelist`]); only GFP_ATOMIC may
//! dip into a zone's reserve. Masks that may reclaim (all but ATOMIC and
//! NOWAIT) first drain every CPU's cache and shrink the kmalloc caches'
//! empty slabs, then try once more, before they fail.
//!
//! # Locks
//!
//! A CPU's cache is reached with preemption off and a per-CPU busy mark
//! ([`PerCpu`], SLUB's `local_trylock`), never from another CPU: a drain
//! runs on the owning CPU in an IPI. Under that, a size class's barn
//! (spinlock), then `state` (spinlock: the zones, their reserves and the
//! kmalloc caches: slab code calls into the buddy with a cache held, so one
//! lock makes that order trivially safe). Nothing under them sleeps: pool
//! memory is in the direct map, and debugfs renders into seq_file's buffer.
//! A drain sleeps (`drain_spare`, a mutex, then `cpus_read_lock`) and is
//! never run under any of them. A kmem_cache has its own per-CPU sheaves,
//! barn and slab lock (taken before `state`). The whole module's order is in
//! `rust_memlab.rs`.
//!
//! # Lifetime
//!
//! Every allocation holds an `Arc<Mirror>`, so the mirror is dropped only
//! after the last one is freed: at unload, the per-CPU caches are drained,
//! the kmalloc caches destroyed, then the state, then the pool, whose blocks
//! go back to the real page allocator.

pub(crate) mod dma;
mod handle;
mod kmalloc;
mod kmem_cache;
pub(crate) mod objects;
mod page_alloc;
mod pagemap;
pub(crate) mod percpu;
pub(crate) mod pool;
mod sheaf;
mod views;
pub(crate) mod vmalloc;
pub(crate) mod zone;

use crate::buddy::{Buddy, PageMeta, Region};
use crate::platform::{dma::DmaDevices, percpu::PerCpu, phys};
use crate::request::{Gfp, GfpSel, Zone};
use crate::sizeclass::{Kmalloc, SizeClass, NR_KMALLOC_CLASSES};
use crate::slab::{OwnerTag, PageSource};
use kernel::{
    cpu::nr_cpu_ids,
    new_mutex, new_spinlock,
    prelude::*,
    sync::{Arc, Mutex, SpinLock},
};
pub(crate) use kmem_cache::KmemCache;
use percpu::{Counters, CpuCache, PcpParams, Stock};
use pool::Pool;
use sheaf::{drain_bulk, Barn, Sheaf};
use zone::{MirrorState, ZoneBuddy, ZonedPages, NR_MIRROR_ZONES};

/// Owner tag of raw page blocks handed out through the pages family.
const TAG_MIRROR_PAGES: OwnerTag = OwnerTag::public(2);

/// memlab's allocators on the module's own pool.
#[pin_data(PinnedDrop)]
pub(crate) struct Mirror {
    /// One cache per possible CPU.
    cpus: PerCpu<CpuCache>,
    /// One barn per kmalloc size class.
    barns: KVec<Pin<KBox<SpinLock<Barn>>>>,
    /// Per-CPU list sizes per zone.
    pcp: [PcpParams; NR_MIRROR_ZONES],
    /// What a drain swaps into each CPU in turn, to empty what it took out.
    #[pin]
    drain_spare: Mutex<Stock>,
    #[pin]
    state: SpinLock<KBox<MirrorState>>,
    /// The caches of replay sessions while they live, for the debugfs
    /// views (`mirror/slabinfo`). A session's cache holds an `Arc<Mirror>`
    /// and this list an `Arc` of the cache: the session takes its caches
    /// out before it drops them ([`objects::MirrorSessionCache`]), which
    /// breaks the cycle; every file, so every session, is closed before
    /// the module unloads.
    #[pin]
    named: Mutex<KVec<Arc<KmemCache<Arc<Mirror>>>>>,
    /// memlab's DMA devices, for the DMA family.
    dma: Arc<DmaDevices>,
    /// Dropped after `state`: the frames go back to the kernel last.
    pool: Pool,
}

impl Mirror {
    /// Takes `pool_pages` pages from the real allocator and builds the zones.
    pub(crate) fn new(pool_pages: u64, dma: Arc<DmaDevices>) -> Result<Arc<Self>> {
        let pool = Pool::take(pool_pages)?;
        if pool
            .blocks
            .iter()
            .any(|b| b.zone as usize >= NR_MIRROR_ZONES)
        {
            // Only DMA, DMA32 and Normal are modelled; GFP_KERNEL never
            // takes from ZONE_MOVABLE, so this is a kernel we do not know.
            return Err(EINVAL);
        }
        let (zones, reserve) = build_zones(&pool)?;
        let state = new_state(zones, reserve)?;
        let pcp = pcp_params(&state, reserve);
        let barns = new_barns()?;
        let cpus = PerCpu::new(|| {
            Ok(CpuCache {
                stock: Stock::new(&pcp)?,
                counters: Counters::default(),
            })
        })?;
        let spare = Stock::new(&pcp)?;
        Arc::pin_init(
            pin_init!(Mirror {
                cpus,
                barns,
                pcp,
                drain_spare <- new_mutex!(spare, "memlab_mirror_drain"),
                state <- new_spinlock!(state, "memlab_mirror"),
                named <- new_mutex!(KVec::new(), "memlab_mirror_named"),
                dma,
                pool,
            }),
            GFP_KERNEL,
        )
    }

    /// Lists `cache` in the debugfs views until [`Mirror::unregister`].
    fn register(&self, cache: Arc<KmemCache<Arc<Mirror>>>) -> Result {
        Ok(self.named.lock().push(cache, GFP_KERNEL)?)
    }

    /// Takes `cache` out of the views.
    fn unregister(&self, cache: &Arc<KmemCache<Arc<Mirror>>>) {
        self.named.lock().retain(|c| !Arc::ptr_eq(c, cache));
    }

    /// Pages in the pool.
    pub(crate) fn pool_pages(&self) -> u64 {
        self.pool.nr_pages()
    }

    /// Runs `f` with the kmalloc caches for `gfp` (GFP_DMA objects come from
    /// their own size classes, as in the kernel) and a page source walking
    /// `gfp`'s zonelist, under the shared lock.
    fn with_src<T>(&self, gfp: Gfp, f: impl FnOnce(&mut Kmalloc, &mut ZonedPages<'_>) -> T) -> T {
        self.with_src_over(gfp, zone::zonelist(gfp), f)
    }

    /// As [`Mirror::with_src`], with the page source walking `zones`.
    fn with_src_over<T>(
        &self,
        gfp: Gfp,
        zones: &[Zone],
        f: impl FnOnce(&mut Kmalloc, &mut ZonedPages<'_>) -> T,
    ) -> T {
        let mut guard = self.state.lock();
        let MirrorState {
            zones: zones_,
            reserve,
            kmalloc,
            kmalloc_dma,
            ..
        } = &mut **guard;
        // Without ZONE_DMA the kernel has no dma-kmalloc caches either.
        let km = if gfp.sel == GfpSel::Dma && phys::HAS_ZONE_DMA {
            kmalloc_dma
        } else {
            kmalloc
        };
        f(km, &mut ZonedPages::over(zones_, *reserve, zones, gfp))
    }

    /// Counts frees the buddy or a slab refused (for `mirror/check`).
    fn count_refused(&self, refused: u64) {
        if refused != 0 {
            self.state.lock().rejected += refused;
        }
    }

    /// Gives every object on `sheaf`, one of `class`, back to its slab in
    /// one bulk free; what the slab refuses counts for `mirror/check`.
    fn flush_objs(&self, class: SizeClass, sheaf: &mut Sheaf) {
        let refused = self.with_src(Gfp::KERNEL, |km, src| {
            let cache = km.cache_mut(class);
            drain_bulk(sheaf, |objs| cache.free_bulk(src, objs))
        });
        self.count_refused(refused);
    }

    /// Gives everything on `stock` back to the slabs and the buddy.
    fn release(&self, stock: &mut Stock) {
        for (s, class) in stock.objs.iter_mut().zip(SizeClass::ALL) {
            for sheaf in s.both() {
                if !sheaf.is_empty() {
                    self.flush_objs(class, sheaf);
                }
            }
        }
        let refused = self.with_src(Gfp::KERNEL, |_, src| {
            let mut refused = 0;
            for pcp in stock.pcp.iter_mut() {
                for (order, list) in (0u32..).zip(pcp.lists.iter_mut()) {
                    for p in list.drain_all() {
                        let r = src.free_block(p, order, &TAG_MIRROR_PAGES);
                        refused += u64::from(r.is_err());
                    }
                }
                pcp.count = 0;
                pcp.alloc_factor = 0;
                pcp.free_count = 0;
            }
            refused
        });
        self.count_refused(refused);
    }

    /// Gives every CPU's cached pages and objects, and the barns' full
    /// sheaves, back to the buddy and the slabs, then shrinks the kmalloc
    /// caches' empty slabs: the mirror's direct reclaim. Sleeps.
    pub(crate) fn drain_cpus(&self) {
        {
            let mut spare = self.drain_spare.lock();
            for cpu in 0..self.cpus.len() {
                // On that CPU, with nothing else there: an O(1) swap.
                self.cpus
                    .on(cpu, &mut |cc| core::mem::swap(&mut cc.stock, &mut *spare));
                self.release(&mut spare);
            }
        }
        for (barn, class) in self.barns.iter().zip(SizeClass::ALL) {
            Barn::flush_all(barn, |sheaf| self.flush_objs(class, sheaf));
        }
        for gfp in [Gfp::KERNEL, Gfp::new(GfpSel::Dma, false)] {
            // Shrinking only frees empty slabs; there is nothing to refuse.
            self.with_src(gfp, |km, src| {
                let _ = km.shrink(src);
            });
        }
        self.state.lock().reclaims += 1;
    }

    /// Runs `attempt`; if it finds nothing and `gfp` may reclaim, reclaims
    /// and runs it once more. ENOMEM (counted) if both find nothing.
    #[cold]
    #[inline(never)]
    fn with_reclaim<T>(&self, gfp: Gfp, mut attempt: impl FnMut() -> Option<T>) -> Result<T> {
        if let Some(v) = attempt() {
            return Ok(v);
        }
        if gfp.may_reclaim() {
            self.drain_cpus();
            if let Some(v) = attempt() {
                return Ok(v);
            }
        }
        self.state.lock().failed += 1;
        Err(ENOMEM)
    }
}

/// A buddy for each zone the pool has pages in, over that zone's pool
/// blocks, and the reserve each keeps back (1/32 of its pages, as the module
/// documentation of [`zone`] says).
fn build_zones(
    pool: &Pool,
) -> Result<([Option<ZoneBuddy>; NR_MIRROR_ZONES], [u64; NR_MIRROR_ZONES])> {
    let mut zones: [Option<ZoneBuddy>; NR_MIRROR_ZONES] = [None, None, None];
    let mut reserve = [0; NR_MIRROR_ZONES];
    for (z, slot) in zones.iter_mut().enumerate() {
        let blocks = || pool.blocks.iter().filter(|b| b.zone as usize == z);
        let pages: u64 = blocks().map(|b| b.nr_pages).sum();
        if pages == 0 {
            continue;
        }
        let meta = KVVec::from_elem(PageMeta::INIT, pages as usize, GFP_KERNEL)?;
        let regions = KVec::from_elem(Region::EMPTY, blocks().count(), GFP_KERNEL)?;
        let mut buddy = Buddy::new(meta, regions);
        for b in blocks() {
            buddy.add_region(b.pfn, b.nr_pages).map_err(|_| EINVAL)?;
        }
        reserve[z] = pages / 32;
        *slot = Some(buddy);
    }
    Ok((zones, reserve))
}

/// The mirror's shared state over `zones`, with empty kmalloc caches.
fn new_state(
    zones: [Option<ZoneBuddy>; NR_MIRROR_ZONES],
    reserve: [u64; NR_MIRROR_ZONES],
) -> Result<KBox<MirrorState>> {
    // The state (two kmalloc sets of 13 caches) is kilobytes, as is each
    // CPU cache: it is built where it lives, on the heap, never as a value
    // on the 16 KiB kernel stack.
    let mut state = KBox::<MirrorState>::new_uninit(GFP_KERNEL)?;
    let p = state.as_mut_ptr();
    // SAFETY: `p` points to a fresh, aligned allocation for a
    // `MirrorState`; every field is written before `assume_init`, the
    // fallible ones first so a failure leaves nothing that needs a drop
    // (a `Kmalloc` owns no memory until it allocates).
    let state = unsafe {
        // Slabs sized as SLUB sized the kernel's at boot (its CPU count).
        let cpus = nr_cpu_ids();
        Kmalloc::init_at_for_cpus(core::ptr::addr_of_mut!((*p).kmalloc), false, cpus)
            .map_err(|_| ENOMEM)?;
        Kmalloc::init_at_for_cpus(core::ptr::addr_of_mut!((*p).kmalloc_dma), true, cpus)
            .map_err(|_| ENOMEM)?;
        core::ptr::addr_of_mut!((*p).zones).write(zones);
        core::ptr::addr_of_mut!((*p).reserve).write(reserve);
        core::ptr::addr_of_mut!((*p).failed).write(0);
        core::ptr::addr_of_mut!((*p).reclaims).write(0);
        core::ptr::addr_of_mut!((*p).rejected).write(0);
        state.assume_init()
    };
    Ok(state)
}

/// Per-CPU list sizes for each zone, from its managed pages, its reserve
/// and the number of possible CPUs.
fn pcp_params(
    state: &MirrorState,
    reserve: [u64; NR_MIRROR_ZONES],
) -> [PcpParams; NR_MIRROR_ZONES] {
    let cpus = u64::from(nr_cpu_ids().max(1));
    let mut pcp = [PcpParams::default(); NR_MIRROR_ZONES];
    for ((p, z), min) in pcp.iter_mut().zip(&state.zones).zip(reserve) {
        let managed = z.as_ref().map_or(0, Buddy::managed_pages);
        *p = PcpParams::for_zone(managed, min, cpus);
    }
    pcp
}

/// One barn per kmalloc size class, each holding sheaves sized for its
/// class (`pcp::sheaf_capacity`).
fn new_barns() -> Result<KVec<Pin<KBox<SpinLock<Barn>>>>> {
    let mut barns = KVec::with_capacity(NR_KMALLOC_CLASSES, GFP_KERNEL)?;
    for class in SizeClass::ALL {
        let cap = crate::pcp::sheaf_capacity(class.size());
        barns.push(Barn::new(cap)?, GFP_KERNEL)?;
    }
    Ok(barns)
}

#[pinned_drop]
impl PinnedDrop for Mirror {
    fn drop(self: Pin<&mut Self>) {
        self.drain_cpus();
        // The kmalloc caches keep empty slabs, as the kernel's do; give them
        // back first, so what is still allocated afterwards is a real leak.
        // (A busy cache keeps its slabs and shows up in the count below.)
        for gfp in [Gfp::new(GfpSel::Dma, false), Gfp::KERNEL] {
            self.with_src(gfp, |km, src| {
                let _ = km.destroy(src);
            });
        }
        let (managed, free) = self.with_src(Gfp::KERNEL, |_, src| {
            src.zones.iter().flatten().fold((0, 0), |(m, f), b| {
                (m + b.managed_pages(), f + b.free_pages())
            })
        });
        pr_info!(
            "mirror: returning {} pool pages to the kernel ({} were still allocated in the mirror)\n",
            self.pool.nr_pages(),
            managed - free
        );
    }
}
