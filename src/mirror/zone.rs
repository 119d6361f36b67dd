// SPDX-License-Identifier: GPL-2.0

//! The mirror's zones: one buddy allocator per zone of the pool, the
//! zonelist a GFP mask walks, and the reserve each zone keeps back (its
//! "min watermark"), as `mm/page_alloc.c`'s `get_page_from_freelist` walks
//! `zonelist` and checks `zone_watermark_ok`.
//!
//! GFP_DMA takes only ZONE_DMA; GFP_DMA32 DMA32 then DMA; everything else
//! Normal, DMA32, DMA. GFP_ATOMIC (`__GFP_HIGH`) may dip into a zone's
//! reserve of 1/32 of its pages; every other mask may not.

use crate::buddy::{Buddy, BuddyError, OwnerArea, PageMeta, Region, NR_PAGE_ORDERS};
use crate::platform::phys;
use crate::request::{Gfp, Zone};
use crate::sizeclass::Kmalloc;
use crate::slab::{exact_block, AddrMap, Block, BuddyPages, LinearMap, OwnerTag, PageSource};
use core::ptr::NonNull;
use kernel::prelude::*;

/// Zones the mirror models: DMA, DMA32, Normal (GFP_KERNEL never takes
/// from ZONE_MOVABLE).
pub(crate) const NR_MIRROR_ZONES: usize = 3;

/// A zone's buddy allocator, its storage in kernel vectors.
pub(crate) type ZoneBuddy = Buddy<KVVec<PageMeta>, KVec<Region>>;

/// Everything behind the mirror's shared lock (`Mirror::state`).
pub(crate) struct MirrorState {
    /// One buddy per zone that has pool pages, indexed by [`Zone::index`].
    pub(crate) zones: [Option<ZoneBuddy>; NR_MIRROR_ZONES],
    /// Pages each zone keeps back from all but GFP_ATOMIC.
    pub(crate) reserve: [u64; NR_MIRROR_ZONES],
    /// Allocations that failed (ENOMEM), for `mirror/counters`.
    pub(crate) failed: u64,
    /// Reclaims run, for `mirror/counters`.
    pub(crate) reclaims: u64,
    /// Frees the buddy or a slab refused although the mirror itself handed
    /// the memory out: a mirror bug, reported by `mirror/check`.
    pub(crate) rejected: u64,
    /// The kmalloc size classes.
    pub(crate) kmalloc: Kmalloc,
    /// The GFP_DMA size classes (`dma-kmalloc-*`), filled from ZONE_DMA only.
    pub(crate) kmalloc_dma: Kmalloc,
}

impl MirrorState {
    /// Free blocks per order of each zone, as buddyinfo prints them.
    pub(crate) fn free_counts(&self) -> [Option<[u64; NR_PAGE_ORDERS]>; NR_MIRROR_ZONES] {
        let mut out = [None; NR_MIRROR_ZONES];
        for (o, z) in out.iter_mut().zip(&self.zones) {
            *o = z.as_ref().map(Buddy::free_counts);
        }
        out
    }
}

/// The zonelist `gfp` walks, most preferred first. On a kernel without
/// ZONE_DMA or ZONE_DMA32 (UML), `gfp_zone` sends those masks to
/// ZONE_NORMAL, and so does this.
pub(crate) fn zonelist(gfp: Gfp) -> &'static [Zone] {
    match phys::zone_limit(gfp) {
        Some(Zone::Dma) => &[Zone::Dma],
        Some(Zone::Dma32) => &[Zone::Dma32, Zone::Dma],
        _ => &[Zone::Normal, Zone::Dma32, Zone::Dma],
    }
}

/// The linear map: frame `pfn` is at `phys::pfn_to_virt(pfn)`.
pub(crate) fn direct_map() -> LinearMap {
    LinearMap::new(phys::pfn_to_virt(0), 0)
}

/// The zone of the pool that holds the mirror address `addr`, by its frame.
pub(crate) fn zone_of(addr: NonNull<u8>) -> Option<Zone> {
    let pfn = phys::linear_phys(addr.as_ptr().cast()) >> kernel::page::PAGE_SHIFT;
    Zone::from_uapi(phys::zone_of_pfn(pfn))
}

/// [`PageSource`] over the zones of the mirror, for one request: blocks
/// come from the zones of `order`, in turn, above their reserve unless
/// `high`.
pub(crate) struct ZonedPages<'a> {
    pub(crate) zones: &'a mut [Option<ZoneBuddy>; NR_MIRROR_ZONES],
    reserve: [u64; NR_MIRROR_ZONES],
    order: &'a [Zone],
    high: bool,
}

impl<'a> ZonedPages<'a> {
    /// A page source over the zones in `order`, in turn (a zonelist, or one
    /// zone to refill a CPU's list of that zone), with `gfp`'s watermark
    /// rule.
    pub(crate) fn over(
        zones: &'a mut [Option<ZoneBuddy>; NR_MIRROR_ZONES],
        reserve: [u64; NR_MIRROR_ZONES],
        order: &'a [Zone],
        gfp: Gfp,
    ) -> Self {
        ZonedPages {
            zones,
            reserve,
            order,
            high: gfp.high(),
        }
    }

    /// `rmqueue_bulk`: up to `n` blocks of `order` from zone `z` onto
    /// `out` (as far as its capacity goes), the watermark checked once for
    /// the whole batch. Returns how many.
    pub(crate) fn alloc_bulk(
        &mut self,
        z: Zone,
        order: u32,
        n: usize,
        tag: &OwnerTag,
        out: &mut KVec<NonNull<u8>>,
    ) -> usize {
        let reserve = if self.high {
            0
        } else {
            self.reserve[z.index()]
        };
        let Some(buddy) = self.zones.get_mut(z.index()).and_then(Option::as_mut) else {
            return 0;
        };
        let above = buddy.free_pages().saturating_sub(reserve) >> order;
        let room = out.capacity() - out.len();
        let n = n
            .min(room)
            .min(usize::try_from(above).unwrap_or(usize::MAX));
        // SAFETY: see the `PageSource` impl's safety comment.
        let mut src = unsafe { BuddyPages::new(buddy, direct_map()) };
        let mut got = 0;
        while got < n {
            let Some(p) = src.alloc_block(order, tag) else {
                break;
            };
            if let Err(e) = out.push_within_capacity(p) {
                // Not reached (`n` fits); give the block back.
                let _ = src.free_block(e.0, order, tag);
                break;
            }
            got += 1;
        }
        got
    }

    fn holder(&mut self, addr: *const u8) -> Option<&mut ZoneBuddy> {
        let pfn = direct_map().ptr_to_pfn(addr)?;
        self.zones
            .iter_mut()
            .flatten()
            .find(|b| b.allocated_block(pfn).is_some())
    }
}

// SAFETY: every block comes from a zone's buddy through `BuddyPages`, whose
// contract holds: the pool's frames are in the direct map, owned by the pool
// for the mirror's lifetime, and reached only through blocks handed out
// here. `block_of` and `head_of` read metadata only (`head_of` hands out
// the owner area of the one zone that has the block allocated, stable in
// its never-moved metadata vector); `free_block` goes to the zone that
// has the block allocated, whose buddy validates head, order and tag.
unsafe impl PageSource for ZonedPages<'_> {
    fn alloc_block(&mut self, order: u32, tag: &OwnerTag) -> Option<NonNull<u8>> {
        for &z in self.order {
            let reserve = if self.high {
                0
            } else {
                self.reserve[z.index()]
            };
            let Some(buddy) = self.zones.get_mut(z.index()).and_then(Option::as_mut) else {
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
    ) -> core::result::Result<(), BuddyError> {
        let buddy = self
            .holder(head.as_ptr())
            .ok_or(BuddyError::OutsideRegions(0))?;
        // SAFETY: see the impl's safety comment.
        unsafe { BuddyPages::new(buddy, direct_map()) }.free_block(head, order, tag)
    }

    fn block_of(&self, addr: *const u8) -> Option<Block> {
        let map = direct_map();
        let pfn = map.ptr_to_pfn(addr)?;
        self.zones.iter().flatten().find_map(|b| {
            let blk = b.allocated_block(pfn)?;
            Some(Block {
                head: map.pfn_to_ptr(blk.head_pfn)?,
                order: blk.order,
                tag: blk.tag,
            })
        })
    }

    fn head_of(&self, head: *const u8) -> Option<(Block, NonNull<OwnerArea>)> {
        let map = direct_map();
        let pfn = map.ptr_to_pfn(head)?;
        let (blk, area) = self
            .zones
            .iter()
            .flatten()
            .find_map(|b| b.owner_area(pfn))?;
        Some((exact_block(&map, head, blk)?, area))
    }

    fn head_of_mut(&mut self, head: *const u8) -> Option<(Block, NonNull<OwnerArea>)> {
        let map = direct_map();
        let pfn = map.ptr_to_pfn(head)?;
        let (blk, area) = self
            .zones
            .iter_mut()
            .flatten()
            .find_map(|b| b.owner_area_mut(pfn))?;
        Some((exact_block(&map, head, blk)?, area))
    }
}
