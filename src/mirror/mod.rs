// SPDX-License-Identifier: GPL-2.0

//! The mirror: memlab's own buddy and slab allocators (src/buddy.rs,
//! src/slab.rs, src/sizeclass.rs) running inside the module on a pool of
//! real pages it owns.
//!
//! # Zones and GFP
//!
//! Pool blocks keep the zone the real allocator took them from, and each
//! zone gets its own [`Buddy`]. A request walks a zonelist like the
//! kernel's: GFP_DMA only ZONE_DMA; GFP_DMA32 DMA32 then DMA; everything else
//! Normal, DMA32, DMA. Each zone keeps a reserve of 1/32 of its pages (its
//! "min watermark"): GFP_ATOMIC may dip into it, every other selector may
//! not. Selectors that may reclaim (all but ATOMIC and NOWAIT) first drain
//! every CPU's cache and shrink the kmalloc caches' empty slabs, then try
//! once more, before they fail.
//!
//! # Per-CPU caches
//!
//! Order-0 pages and kmalloc objects of GFP_KERNEL-like requests go through
//! a per-CPU cache first ([`percpu`]), refilled and flushed in batches, as
//! the kernel's pcp lists and per-CPU slabs are. Reading `mirror/check`
//! drains them, so the figures read after it are exact.
//!
//! # Locking
//!
//! Lock order: a CPU cache's lock (`Mirror::cpus[i]`), then the shared lock
//! (`Mirror::state`), which covers the zones and the kmalloc caches (slab
//! code calls into the buddy with the cache held, one lock makes that order
//! trivially safe). No two CPU cache locks are ever held at once. Nothing
//! under either lock sleeps: pool memory is in the direct map and debugfs
//! renders into seq_file's buffer. A kmem_cache handle owns its own
//! `SlabCache` and takes the shared lock to reach the pages.
//!
//! # Lifetime
//!
//! `Mirror` is dropped at unload: the state (buddy metadata, caches) first,
//! then the pool, whose blocks go back to the real page allocator whatever
//! the mirror still had handed out. Handles hold an `Arc<Mirror>`, so that
//! happens only after the last open file is closed.

pub(crate) mod dma;
pub(crate) mod percpu;
pub(crate) mod pool;
pub(crate) mod vmalloc;

use crate::buddy::{Buddy, PageMeta, Region, NR_PAGE_ORDERS};
use crate::real::phys;
use crate::render;
use crate::sizeclass::{Kmalloc, SizeClass};
use crate::slab::{Block, BuddyPages, LinearMap, OwnerTag, PageSource, SlabCache, SlabFlags};
use crate::uapi;
use core::fmt;
use core::ptr::NonNull;
use kernel::{
    bindings,
    cpu::{nr_cpu_ids, CpuId},
    new_spinlock,
    prelude::*,
    sync::{Arc, SpinLock},
};
use percpu::{CpuCache, Stack, MAG_BATCH, PCP_BATCH};
use pool::Pool;

/// Zones the mirror models, indexed by `MEMLAB_ZONE_*`.
const NR_MIRROR_ZONES: usize = 3;

/// A zone's buddy allocator, its storage in kernel vectors.
type ZoneBuddy = Buddy<KVVec<PageMeta>, KVec<Region>>;

/// Everything behind the mirror's lock.
pub(crate) struct MirrorState {
    zones: [Option<ZoneBuddy>; NR_MIRROR_ZONES],
    /// Pages each zone keeps back from all but GFP_ATOMIC.
    reserve: [u64; NR_MIRROR_ZONES],
    /// Allocations that failed (ENOMEM) and reclaims run, for `mirror/counters`.
    failed: u64,
    reclaims: u64,
    kmalloc: Kmalloc,
    /// The GFP_DMA size classes (`dma-kmalloc-*`), filled from ZONE_DMA only.
    kmalloc_dma: Kmalloc,
}

/// The zonelist a GFP selector walks, most preferred first.
fn zonelist(gfp: u32) -> &'static [usize] {
    match gfp & 0xff {
        uapi::MEMLAB_GFP_DMA => &[0],
        uapi::MEMLAB_GFP_DMA32 => &[1, 0],
        _ => &[2, 1, 0],
    }
}

/// The direct map: frame `pfn` is at `page_offset_base + (pfn << PAGE_SHIFT)`.
fn direct_map() -> LinearMap {
    LinearMap::new(phys::pfn_to_virt(0), 0)
}

/// [`PageSource`] over all zones of the mirror, for one request.
struct ZonedPages<'a> {
    zones: &'a mut [Option<ZoneBuddy>; NR_MIRROR_ZONES],
    reserve: [u64; NR_MIRROR_ZONES],
    order: &'static [usize],
    atomic: bool,
}

impl ZonedPages<'_> {
    fn zone_of(&self, addr: *const u8) -> Option<usize> {
        let pfn = crate::slab::AddrMap::ptr_to_pfn(&direct_map(), addr)?;
        (0..NR_MIRROR_ZONES).find(|&z| {
            self.zones[z]
                .as_ref()
                .is_some_and(|b| b.allocated_block(pfn).is_some())
        })
    }
}

// SAFETY: every block comes from a zone's buddy through `BuddyPages`, whose
// contract holds: the pool's frames are in the direct map, owned by the pool
// for the mirror's lifetime, and reached only through blocks handed out
// here. `block_of` reads metadata only; `free_block` goes to the zone that
// has the block allocated, whose buddy validates head, order and tag.
unsafe impl PageSource for ZonedPages<'_> {
    fn alloc_block(&mut self, order: u32, tag: &OwnerTag) -> Option<NonNull<u8>> {
        for &z in self.order {
            let reserve = if self.atomic { 0 } else { self.reserve[z] };
            let Some(buddy) = self.zones[z].as_mut() else {
                continue;
            };
            if buddy.free_pages() < reserve + (1u64 << order) {
                continue;
            }
            // SAFETY: see the impl's safety comment.
            let mut src = unsafe { BuddyPages::new(buddy, direct_map()) };
            if let Some(p) = src.alloc_block(order, tag) {
                return Some(p);
            }
        }
        None
    }

    fn free_block(
        &mut self,
        head: NonNull<u8>,
        order: u32,
        tag: &OwnerTag,
    ) -> core::result::Result<(), crate::buddy::BuddyError> {
        let z = self
            .zone_of(head.as_ptr())
            .ok_or(crate::buddy::BuddyError::OutsideRegions(0))?;
        let buddy = self.zones[z]
            .as_mut()
            .ok_or(crate::buddy::BuddyError::OutsideRegions(0))?;
        // SAFETY: see the impl's safety comment.
        unsafe { BuddyPages::new(buddy, direct_map()) }.free_block(head, order, tag)
    }

    fn block_of(&self, addr: *const u8) -> Option<Block> {
        let map = direct_map();
        let pfn = crate::slab::AddrMap::ptr_to_pfn(&map, addr)?;
        self.zones.iter().flatten().find_map(|b| {
            let blk = b.allocated_block(pfn)?;
            Some(Block {
                head: crate::slab::AddrMap::pfn_to_ptr(&map, blk.head_pfn)?,
                order: blk.order,
                tag: blk.tag,
            })
        })
    }
}

/// One-zone zonelists, for refilling a CPU's list of one zone.
const SINGLE_ZONE: [[usize; 1]; NR_MIRROR_ZONES] = [[0], [1], [2]];

impl<'a> ZonedPages<'a> {
    /// A page source for zone `z` alone, with `gfp`'s watermark rule.
    fn for_zone(
        zones: &'a mut [Option<ZoneBuddy>; NR_MIRROR_ZONES],
        reserve: [u64; NR_MIRROR_ZONES],
        z: usize,
        gfp: u32,
    ) -> Self {
        ZonedPages {
            zones,
            reserve,
            order: SINGLE_ZONE.get(z).map_or(&[], |l| &l[..]),
            atomic: gfp & 0xff == uapi::MEMLAB_GFP_ATOMIC,
        }
    }

    fn new(
        zones: &'a mut [Option<ZoneBuddy>; NR_MIRROR_ZONES],
        reserve: [u64; NR_MIRROR_ZONES],
        gfp: u32,
    ) -> Self {
        ZonedPages {
            zones,
            reserve,
            order: zonelist(gfp),
            atomic: gfp & 0xff == uapi::MEMLAB_GFP_ATOMIC,
        }
    }
}

/// Selectors that may reclaim: all but GFP_ATOMIC and GFP_NOWAIT.
fn may_reclaim(gfp: u32) -> bool {
    !matches!(
        gfp & 0xff,
        uapi::MEMLAB_GFP_ATOMIC | uapi::MEMLAB_GFP_NOWAIT
    )
}

impl MirrorState {
    fn free_counts(&self) -> [Option<[u64; NR_PAGE_ORDERS]>; NR_MIRROR_ZONES] {
        let mut out = [None; NR_MIRROR_ZONES];
        for (o, z) in out.iter_mut().zip(&self.zones) {
            *o = z.as_ref().map(Buddy::free_counts);
        }
        out
    }
}

/// memlab's allocators on the module's own pool.
#[pin_data(PinnedDrop)]
pub(crate) struct Mirror {
    /// One cache per possible CPU, indexed by CPU number.
    cpus: KVec<Pin<KBox<SpinLock<CpuCache>>>>,
    #[pin]
    state: SpinLock<KBox<MirrorState>>,
    /// Dropped after `state`: the frames go back to the kernel last.
    pool: Pool,
}

impl Mirror {
    /// Takes `pool_pages` pages from the real allocator and builds the zones.
    pub(crate) fn new(pool_pages: u64) -> Result<Arc<Self>> {
        let pool = Pool::take(pool_pages)?;
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
        if pool
            .blocks
            .iter()
            .any(|b| b.zone as usize >= NR_MIRROR_ZONES)
        {
            // Only DMA, DMA32 and Normal are modelled; GFP_KERNEL never
            // takes from ZONE_MOVABLE, so this is a kernel we do not know.
            return Err(EINVAL);
        }
        // The state (two kmalloc sets of 13 caches) and the CPU caches are
        // kilobytes each: they are built where they live, on the heap, never
        // as values on the 16 KiB kernel stack.
        let mut state = KBox::<MirrorState>::new_uninit(GFP_KERNEL)?;
        let p = state.as_mut_ptr();
        // SAFETY: `p` points to a fresh, aligned allocation for a
        // `MirrorState`; every field is written before `assume_init`, the
        // fallible ones first so a failure leaves nothing that needs a drop
        // (a `Kmalloc` owns no memory until it allocates).
        let state = unsafe {
            Kmalloc::init_at(core::ptr::addr_of_mut!((*p).kmalloc), false).map_err(|_| ENOMEM)?;
            Kmalloc::init_at(core::ptr::addr_of_mut!((*p).kmalloc_dma), true)
                .map_err(|_| ENOMEM)?;
            core::ptr::addr_of_mut!((*p).zones).write(zones);
            core::ptr::addr_of_mut!((*p).reserve).write(reserve);
            core::ptr::addr_of_mut!((*p).failed).write(0);
            core::ptr::addr_of_mut!((*p).reclaims).write(0);
            state.assume_init()
        };
        let mut cpus = KVec::new();
        for _ in 0..nr_cpu_ids().max(1) {
            cpus.push(
                KBox::pin_init(
                    new_spinlock!(pin_init::zeroed::<CpuCache>(), "memlab_mirror_cpu"),
                    GFP_KERNEL,
                )?,
                GFP_KERNEL,
            )?;
        }
        Arc::pin_init(
            pin_init!(Mirror {
                cpus,
                state <- new_spinlock!(state, "memlab_mirror"),
                pool,
            }),
            GFP_KERNEL,
        )
    }

    /// Pages in the pool.
    pub(crate) fn pool_pages(&self) -> u64 {
        self.pool.nr_pages()
    }

    /// Writes `mirror/buddyinfo`: the layout of /proc/buddyinfo.
    pub(crate) fn buddyinfo(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.per_zone(f, |w, n, z, c| render::buddyinfo(w, n, z, c))
    }

    /// Writes `mirror/extfrag_index` (layout of debugfs extfrag/extfrag_index).
    pub(crate) fn extfrag_index(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.per_zone(f, |w, n, z, c| render::extfrag_index(w, n, z, c))
    }

    /// Writes `mirror/unusable_index` (layout of debugfs extfrag/unusable_index).
    pub(crate) fn unusable_index(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.per_zone(f, |w, n, z, c| render::unusable_index(w, n, z, c))
    }

    fn per_zone(
        &self,
        f: &mut fmt::Formatter<'_>,
        line: impl Fn(&mut fmt::Formatter<'_>, i32, &str, &[u64; NR_PAGE_ORDERS]) -> fmt::Result,
    ) -> fmt::Result {
        // Copy under the lock, format outside it.
        let counts = self.state.lock().free_counts();
        for (z, c) in counts.iter().enumerate() {
            if let Some(c) = c {
                line(f, 0, phys::zone_name(z as u32), c)?;
            }
        }
        Ok(())
    }

    /// Writes `mirror/slabinfo`: "slabinfo - version: 2.1" as /proc/slabinfo.
    pub(crate) fn slabinfo(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.lock();
        // Rendering into seq_file's buffer does not sleep.
        render::slabinfo(
            f,
            Iterator::chain(st.kmalloc.caches().iter(), st.kmalloc_dma.caches()),
        )
    }

    /// Writes `mirror/check`: "ok" if every zone's buddy and every kmalloc
    /// cache passes its invariant checker, else what failed.
    pub(crate) fn check(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Per-CPU caches go back first: the checkers then see every page and
        // object in the buddy or the slabs, and so do later reads.
        self.drain_cpus();
        let dma_ok = self.with_src(uapi::MEMLAB_GFP_DMA, |km, src| km.check_invariants(src));
        self.with_src(0, |km, src| {
            let mut bad = false;
            for (name, b) in phys::ZONE_NAMES.iter().zip(src.zones.iter()) {
                if let Some(Err(e)) = b.as_ref().map(Buddy::check_invariants) {
                    writeln!(f, "zone {name}: {e:?}")?;
                    bad = true;
                }
            }
            if let Err(e) = km.check_invariants(src) {
                writeln!(f, "kmalloc: {e:?}")?;
                bad = true;
            }
            if let Err(e) = dma_ok {
                writeln!(f, "dma-kmalloc: {e:?}")?;
                bad = true;
            }
            if !bad {
                writeln!(f, "ok")?;
            }
            Ok(())
        })
    }

    /// Writes `mirror/counters`: one `name value` line per event, summed
    /// over CPUs, like /proc/vmstat.
    pub(crate) fn counters(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sum = self
            .cpus
            .iter()
            .fold(percpu::Counters::default(), |acc, c| {
                acc.sum(&c.lock().counters)
            });
        for (name, v) in sum.fields() {
            writeln!(f, "{name} {v}")?;
        }
        let st = self.state.lock();
        let (failed, reclaims) = (st.failed, st.reclaims);
        drop(st);
        writeln!(f, "alloc_failed {failed}")?;
        writeln!(f, "reclaim {reclaims}")
    }

    /// Writes `mirror/pool`: where the pool's frames came from.
    pub(crate) fn pool_report(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "pool: {} pages in {} blocks",
            self.pool_pages(),
            self.pool.blocks.len()
        )?;
        writeln!(
            f,
            "{:<8} {:>12} {:>12} {:>6}",
            "zone", "start_pfn", "end_pfn", "order"
        )?;
        for b in self.pool.blocks.iter() {
            writeln!(
                f,
                "{:<8} {:>#12x} {:>#12x} {:>6}",
                phys::zone_name(b.zone),
                b.pfn,
                b.pfn + b.nr_pages,
                b.nr_pages.trailing_zeros()
            )?;
        }
        let (pages, objs) = self.cpus.iter().fold((0, 0), |(p, o), c| {
            let (cp, co) = c.lock().held();
            (p + cp, o + co)
        });
        writeln!(f, "per-CPU caches: {pages} pages, {objs} kmalloc objects")?;
        let st = self.state.lock();
        for (z, buddy) in st.zones.iter().enumerate() {
            if let Some(b) = buddy {
                writeln!(
                    f,
                    "zone {:<6} managed {:>8} free {:>8} reserve {:>6}",
                    phys::zone_name(z as u32),
                    b.managed_pages(),
                    b.free_pages(),
                    st.reserve[z]
                )?;
            }
        }
        Ok(())
    }
}

#[pinned_drop]
impl PinnedDrop for Mirror {
    fn drop(self: Pin<&mut Self>) {
        self.drain_cpus();
        // The kmalloc caches keep empty slabs, as the kernel's do; give them
        // back first, so what is still allocated afterwards is a real leak.
        // (Busy caches keep their slabs and show up in the count below.)
        self.with_src(uapi::MEMLAB_GFP_DMA, |km, src| {
            let _ = km.destroy(src);
        });
        let (managed, free) = self.with_src(0, |km, src| {
            let _ = km.destroy(src);
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

/// Owner tag of raw page blocks handed out through the pages family.
const TAG_MIRROR_PAGES: OwnerTag = OwnerTag::public(2);

/// Whether `gfp` may use the per-CPU caches: those hold memory from the
/// Normal-first zonelist, so GFP_DMA and GFP_DMA32 requests bypass them.
fn cpu_cacheable(gfp: u32) -> bool {
    zonelist(gfp).first() == Some(&2)
}

/// The mirror's allocator calls. The safe ones validate what they are given
/// against the mirror's metadata (a pointer the mirror did not hand out is
/// refused with EINVAL); the per-CPU free fast paths cannot, and are unsafe.
impl Mirror {
    /// Runs `f` with the kmalloc caches and a page source for `gfp`.
    fn with_src<T>(&self, gfp: u32, f: impl FnOnce(&mut Kmalloc, &mut ZonedPages<'_>) -> T) -> T {
        let mut guard = self.state.lock();
        let MirrorState {
            zones,
            reserve,
            kmalloc,
            kmalloc_dma,
            ..
        } = &mut **guard;
        // GFP_DMA objects come from their own size classes, as in the kernel.
        let km = if gfp & 0xff == uapi::MEMLAB_GFP_DMA {
            kmalloc_dma
        } else {
            kmalloc
        };
        f(km, &mut ZonedPages::new(zones, *reserve, gfp))
    }

    /// This CPU's cache (or, after a migration, another CPU's: still correct).
    fn cpu(&self) -> Option<&SpinLock<CpuCache>> {
        let id = CpuId::current().as_u32() as usize;
        let i = id.checked_rem(self.cpus.len())?;
        self.cpus.get(i).map(|c| &**c)
    }

    /// Gives every CPU's cached pages and objects back to the buddy and the
    /// slabs, then shrinks the kmalloc caches' empty slabs: the mirror's
    /// direct reclaim.
    pub(crate) fn drain_cpus(&self) {
        for c in self.cpus.iter() {
            let mut cc = c.lock();
            let CpuCache { pcp, mags, .. } = &mut *cc;
            self.with_src(0, |km, src| {
                for list in pcp.iter_mut() {
                    while let Some(p) = list.pop() {
                        let _ = src.free_block(p, 0, &TAG_MIRROR_PAGES);
                    }
                }
                for mag in mags.iter_mut() {
                    while let Some(p) = mag.pop() {
                        let _ = km.kfree(src, p.as_ptr());
                    }
                }
            });
        }
        for gfp in [uapi::MEMLAB_GFP_KERNEL, uapi::MEMLAB_GFP_DMA] {
            self.with_src(gfp, |km, src| {
                let _ = km.shrink(src);
            });
        }
        self.state.lock().reclaims += 1;
    }

    /// Runs `attempt`; if it finds nothing and `gfp` may reclaim, reclaims
    /// and runs it once more.
    fn with_reclaim<T>(&self, gfp: u32, mut attempt: impl FnMut() -> Option<T>) -> Result<T> {
        if let Some(v) = attempt() {
            return Ok(v);
        }
        if may_reclaim(gfp) {
            self.drain_cpus();
            if let Some(v) = attempt() {
                return Ok(v);
            }
        }
        self.state.lock().failed += 1;
        Err(ENOMEM)
    }

    /// `alloc_pages(gfp, order)` on the mirror's buddy; order 0 through the
    /// CPU's page lists.
    pub(crate) fn alloc_pages(&self, order: u32, gfp: u32) -> Result<NonNull<u8>> {
        self.with_reclaim(gfp, || {
            if order == 0 {
                if let Some(c) = self.cpu() {
                    return self.alloc_page_pcp(c, gfp);
                }
            }
            self.with_src(gfp, |_, src| src.alloc_block(order, &TAG_MIRROR_PAGES))
        })
    }

    /// `rmqueue_pcplist`: a page from this CPU's list of the first zone of
    /// the zonelist that has one, refilling a batch from that zone's buddy
    /// (watermark rules apply there) when the list is empty.
    fn alloc_page_pcp(&self, c: &SpinLock<CpuCache>, gfp: u32) -> Option<NonNull<u8>> {
        let mut cc = c.lock();
        let CpuCache { pcp, counters, .. } = &mut *cc;
        for &z in zonelist(gfp) {
            let list = pcp.get_mut(z)?;
            if let Some(p) = list.pop() {
                counters.pcp_hit += 1;
                return Some(p);
            }
            counters.pcp_refill += 1;
            let mut guard = self.state.lock();
            let MirrorState { zones, reserve, .. } = &mut **guard;
            let mut src = ZonedPages::for_zone(zones, *reserve, z, gfp);
            for _ in 0..PCP_BATCH {
                match src.alloc_block(0, &TAG_MIRROR_PAGES) {
                    Some(p) => {
                        let _ = list.push(p);
                    }
                    None => break,
                }
            }
            drop(guard);
            if let Some(p) = list.pop() {
                return Some(p);
            }
        }
        None
    }

    /// `__free_pages` of a block from [`Mirror::alloc_pages`]; order 0 goes
    /// to the CPU's list of its zone, a batch back to the buddy when full.
    ///
    /// # Safety
    ///
    /// `head` came from `alloc_pages(order, _)` of this mirror and has not
    /// been freed since (an order-0 page is cached without being checked).
    pub(crate) unsafe fn free_pages(&self, head: NonNull<u8>, order: u32) -> Result {
        let z = phys::zone_of_pfn(phys::linear_phys(head.as_ptr().cast()) >> bindings::PAGE_SHIFT);
        if let (0, Some(c)) = (order, self.cpu()) {
            let mut cc = c.lock();
            let CpuCache { pcp, counters, .. } = &mut *cc;
            if let Some(list) = pcp.get_mut(z as usize) {
                counters.pcp_free += 1;
                if list.is_full() {
                    counters.pcp_flush += 1;
                    self.flush(list, PCP_BATCH, |_, src, p| {
                        let _ = src.free_block(p, 0, &TAG_MIRROR_PAGES);
                    });
                }
                if list.push(head).is_ok() {
                    return Ok(());
                }
            }
        }
        self.with_src(0, |_, src| src.free_block(head, order, &TAG_MIRROR_PAGES))
            .map_err(|_| EINVAL)
    }

    /// Gives `n` items of `stack` back under the shared lock, one `free` each.
    fn flush<const N: usize>(
        &self,
        stack: &mut Stack<N>,
        n: usize,
        mut free: impl FnMut(&mut Kmalloc, &mut ZonedPages<'_>, NonNull<u8>),
    ) {
        self.with_src(0, |km, src| {
            for _ in 0..n {
                match stack.pop() {
                    Some(p) => free(km, src, p),
                    None => break,
                }
            }
        });
    }

    /// `kmalloc(size, gfp)` on the mirror's size classes (ENOMEM above
    /// KMALLOC_MAX_SIZE, like the real one); small GFP_KERNEL-like requests
    /// through the CPU's cache of their size class.
    pub(crate) fn kmalloc(&self, size: usize, gfp: u32) -> Result<NonNull<u8>> {
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
                        match km.kmalloc(src, class.size()) {
                            Ok(p) => {
                                let _ = mag.push(p);
                            }
                            Err(_) => break,
                        }
                    }
                });
                return mag.pop();
            }
            self.with_src(gfp, |km, src| km.kmalloc(src, size).ok())
        })
    }

    /// `kfree` of an object from [`Mirror::kmalloc`], checked against the
    /// slabs (the slow path).
    pub(crate) fn kfree(&self, ptr: NonNull<u8>) -> Result {
        self.with_src(0, |km, src| km.kfree(src, ptr.as_ptr()))
            .or_else(|_| self.with_src(uapi::MEMLAB_GFP_DMA, |km, src| km.kfree(src, ptr.as_ptr())))
            .map_err(|_| EINVAL)
    }

    /// `kfree` of an object from `kmalloc(size, gfp)`, through the CPU's
    /// cache of its size class when `gfp` went through one.
    ///
    /// # Safety
    ///
    /// `ptr` came from `kmalloc(size, gfp)` of this mirror and has not been
    /// freed since (it is cached without being checked).
    pub(crate) unsafe fn kfree_sized(&self, ptr: NonNull<u8>, size: usize, gfp: u32) -> Result {
        if let (Some(class), Some(c), true) =
            (SizeClass::for_size(size), self.cpu(), cpu_cacheable(gfp))
        {
            let mut cc = c.lock();
            let CpuCache { mags, counters, .. } = &mut *cc;
            if let Some(mag) = mags.get_mut(class.index()) {
                counters.obj_free += 1;
                if mag.is_full() {
                    counters.obj_flush += 1;
                    self.flush(mag, MAG_BATCH, |km, src, p| {
                        let _ = km.kfree(src, p.as_ptr());
                    });
                }
                if mag.push(ptr).is_ok() {
                    return Ok(());
                }
            }
        }
        self.kfree(ptr)
    }

    /// `ksize` of an object from [`Mirror::kmalloc`].
    pub(crate) fn ksize(&self, ptr: NonNull<u8>) -> Result<usize> {
        self.with_src(0, |km, src| km.ksize(src, ptr.as_ptr()))
            .or_else(|_| self.with_src(uapi::MEMLAB_GFP_DMA, |km, src| km.ksize(src, ptr.as_ptr())))
            .map_err(|_| EINVAL)
    }

    /// `kmem_cache_alloc(cache, gfp)` with pages from the mirror.
    pub(crate) fn cache_alloc(&self, cache: &mut SlabCache, gfp: u32) -> Result<NonNull<u8>> {
        self.with_reclaim(gfp, || self.with_src(gfp, |_, src| cache.alloc(src).ok()))
    }

    /// Fills `stack` with up to `n` objects of `cache` under one lock: the
    /// refill of a per-CPU object cache (`___slab_alloc`'s batch).
    pub(crate) fn cache_refill<const N: usize>(
        &self,
        cache: &mut SlabCache,
        stack: &mut Stack<N>,
        n: usize,
        gfp: u32,
    ) {
        self.with_src(gfp, |_, src| {
            for _ in 0..n {
                match cache.alloc(src) {
                    Ok(p) => {
                        if let Err(p) = stack.push(p) {
                            let _ = cache.free(src, p.as_ptr());
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        });
    }

    /// Gives up to `n` objects of `stack` back to `cache`, checked, under
    /// one lock.
    pub(crate) fn cache_flush<const N: usize>(
        &self,
        cache: &mut SlabCache,
        stack: &mut Stack<N>,
        n: usize,
    ) {
        self.flush(stack, n, |_, src, p| {
            let _ = cache.free(src, p.as_ptr());
        });
    }

    /// `kmem_cache_free(cache, ptr)`.
    pub(crate) fn cache_free(&self, cache: &mut SlabCache, ptr: NonNull<u8>) -> Result {
        self.with_src(0, |_, src| cache.free(src, ptr.as_ptr()))
            .map_err(|_| EINVAL)
    }

    /// `kmem_cache_destroy(cache)`: EBUSY while objects are live.
    pub(crate) fn cache_destroy(&self, cache: &mut SlabCache) -> Result {
        self.with_src(0, |_, src| cache.destroy(src))
            .map_err(|_| EBUSY)
    }
}

/// What a mirror handle holds.
enum Held {
    Pages { head: NonNull<u8>, order: u32 },
    Kmalloc { ptr: NonNull<u8> },
    Cache { cache: SlabCache, ptr: NonNull<u8> },
    Vmalloc { _area: vmalloc::MirrorVmalloc },
    Dma { _buf: dma::MirrorDma },
}

/// One live allocation from the mirror; dropping it frees it there.
pub(crate) struct MirrorBlock {
    mirror: Arc<Mirror>,
    held: Held,
    info: uapi::MemlabBlockInfo,
}

// SAFETY: the pointers name mirror memory owned by this handle; freeing it
// goes through the mirror's lock from whichever thread drops the handle.
unsafe impl Send for MirrorBlock {}
// SAFETY: `&MirrorBlock` only reads `info`.
unsafe impl Sync for MirrorBlock {}

impl MirrorBlock {
    /// What the mirror handed out (the caller fills in `handle`).
    pub(crate) fn info(&self) -> uapi::MemlabBlockInfo {
        self.info
    }

    /// Bytes this allocation pins (counted against `max_pinned_mb`).
    pub(crate) fn pinned_bytes(&self) -> usize {
        self.info.usable as usize
    }
}

impl Drop for MirrorBlock {
    fn drop(&mut self) {
        let m = &self.mirror;
        let r = match &mut self.held {
            // SAFETY: the handle got `head` from `alloc_pages(order)` of this
            // mirror and frees it once, here.
            Held::Pages { head, order } => unsafe { m.free_pages(*head, *order) },
            // SAFETY: the handle got `ptr` from `kmalloc(info.size)` of this
            // mirror and frees it once, here.
            Held::Kmalloc { ptr } => unsafe {
                m.kfree_sized(*ptr, self.info.size as usize, self.info.gfp)
            },
            Held::Cache { cache, ptr } => m
                .cache_free(cache, *ptr)
                .and_then(|()| m.cache_destroy(cache)),
            Held::Vmalloc { .. } | Held::Dma { .. } => Ok(()),
        };
        if r.is_err() {
            // Cannot happen for a handle the mirror itself handed out; if it
            // does, the pages still go back to the kernel with the pool.
            pr_err!(
                "mirror: freeing a family {} handle failed\n",
                self.info.family
            );
        }
    }
}

/// Pages that `[ptr, ptr + len)` touches.
fn pages_spanned(ptr: NonNull<u8>, len: u64) -> u64 {
    let start = ptr.as_ptr() as u64 >> bindings::PAGE_SHIFT;
    let end = (ptr.as_ptr() as u64 + len.max(1) - 1) >> bindings::PAGE_SHIFT;
    end - start + 1
}

impl Mirror {
    /// Allocates what `req` names from the mirror. The caller validated the
    /// request's shape (family, selector, order, size, alignment).
    pub(crate) fn alloc(
        self: &Arc<Self>,
        req: &uapi::MemlabAlloc,
        real: &crate::real::Real,
    ) -> Result<MirrorBlock> {
        let size = usize::try_from(req.size).map_err(|_| E2BIG)?;
        let t0 = crate::real::now_ns();
        let other = match req.family {
            uapi::MEMLAB_FAMILY_VMALLOC => {
                let v = self.vmalloc(size, req.gfp)?;
                Some((v.info(req), Held::Vmalloc { _area: v }))
            }
            uapi::MEMLAB_FAMILY_DMA => {
                let d = self.dma(real.dma_device_for(req.gfp)?, size, req.gfp)?;
                Some((d.info(req), Held::Dma { _buf: d }))
            }
            _ => None,
        };
        if let Some((mut info, held)) = other {
            info.alloc_ns = crate::real::now_ns().saturating_sub(t0);
            return Ok(MirrorBlock {
                mirror: self.clone(),
                held,
                info,
            });
        }
        let (held, usable) = match req.family {
            uapi::MEMLAB_FAMILY_PAGES => {
                let head = self.alloc_pages(req.order, req.gfp)?;
                let bytes = (bindings::PAGE_SIZE as u64) << req.order;
                (
                    Held::Pages {
                        head,
                        order: req.order,
                    },
                    bytes,
                )
            }
            uapi::MEMLAB_FAMILY_KMALLOC => {
                let ptr = self.kmalloc(size, req.gfp)?;
                (
                    Held::Kmalloc { ptr },
                    self.ksize(ptr).unwrap_or(size) as u64,
                )
            }
            uapi::MEMLAB_FAMILY_KMEM_CACHE => {
                let mut cache = SlabCache::new(
                    "memlab-mirror",
                    size,
                    req.align as usize,
                    SlabFlags::NONE,
                    None,
                )
                .map_err(|_| EINVAL)?;
                let ptr = self.cache_alloc(&mut cache, req.gfp)?;
                let usable = cache.object_size() as u64;
                (Held::Cache { cache, ptr }, usable)
            }
            // vmalloc and DMA returned above; chardev validated the family.
            _ => return Err(EINVAL),
        };
        let alloc_ns = crate::real::now_ns().saturating_sub(t0);
        let head = match &held {
            Held::Pages { head, .. } => *head,
            Held::Kmalloc { ptr } | Held::Cache { ptr, .. } => *ptr,
            Held::Vmalloc { .. } | Held::Dma { .. } => return Err(EINVAL),
        };
        let phys = phys::linear_phys(head.as_ptr().cast());
        let mut block = MirrorBlock {
            mirror: self.clone(),
            held,
            info: uapi::MemlabBlockInfo {
                family: req.family,
                gfp: req.gfp,
                zone: phys::zone_of_pfn(phys >> bindings::PAGE_SHIFT),
                size: req.size,
                usable,
                first_pfn: phys >> bindings::PAGE_SHIFT,
                nr_pages: pages_spanned(head, usable),
                phys_runs: 1,
                alloc_ns,
                align_log2: phys::align_log2(phys),
                ..Default::default()
            },
        };
        if req.gfp & uapi::MEMLAB_GFP_ZERO != 0 {
            // SAFETY: the handle owns `usable` bytes at `head` in the direct map.
            let bytes = unsafe { core::slice::from_raw_parts_mut(head.as_ptr(), usable as usize) };
            bytes.fill(0);
            block.info.zeroed = u32::from(bytes.iter().all(|b| *b == 0));
        }
        Ok(block)
    }
}
