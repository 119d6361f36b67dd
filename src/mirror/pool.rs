// SPDX-License-Identifier: GPL-2.0

//! The mirror's pool: page blocks taken from the real page allocator at load
//! and given back at unload.
//!
//! memlab's buddy runs on these frames as the kernel's runs on memblock's:
//! each block becomes a region of the zone the real allocator took it from.
//! Blocks are taken at MAX_PAGE_ORDER where possible, with
//! `__GFP_NOWARN | __GFP_NORETRY`, so a fragmented machine falls back to
//! smaller orders instead of warning or reclaiming hard.

use crate::platform::{pages::Pages, phys};
use kernel::{bindings, prelude::*};

/// One block of real pages, returned to the page allocator when dropped.
pub(crate) struct PoolBlock {
    _pages: Pages,
    /// First page frame number.
    pub(crate) pfn: u64,
    /// Pages in the block.
    pub(crate) nr_pages: u64,
    /// `MEMLAB_ZONE_*` the real allocator took it from.
    pub(crate) zone: u32,
}

/// Blocks are ordered by their first frame (they never overlap).
impl Ord for PoolBlock {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.pfn.cmp(&other.pfn)
    }
}

impl PartialOrd for PoolBlock {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PoolBlock {
    fn eq(&self, other: &Self) -> bool {
        self.pfn == other.pfn
    }
}

impl Eq for PoolBlock {}

/// All blocks of the pool, sorted by PFN.
pub(crate) struct Pool {
    pub(crate) blocks: KVec<PoolBlock>,
}

/// Where a share of the pool comes from: the zone modifier and the share.
const SOURCES: [(bindings::gfp_t, u64); 3] = [
    // ZONE_DMA is 16 MiB in all; take a little so GFP_DMA has somewhere to go.
    (1 << bindings::___GFP_DMA_BIT, 1),
    (1 << bindings::___GFP_DMA32_BIT, 8),
    (0, 0),
];

impl Pool {
    /// Takes `pages` pages: 1/16 from ZONE_DMA, 1/2 from ZONE_DMA32, the rest
    /// wherever GFP_KERNEL finds it; largest blocks first. ENOMEM (giving
    /// back what it took) if not even single pages are left.
    pub(crate) fn take(pages: u64) -> Result<Self> {
        let mut pool = Pool {
            blocks: KVec::new(),
        };
        let mut got = 0u64;
        for (i, &(zone_gfp, sixteenths)) in SOURCES.iter().enumerate() {
            let want = if i + 1 == SOURCES.len() {
                pages - got
            } else {
                pages * sixteenths / 16
            };
            got += pool.take_from(want, zone_gfp, i + 1 == SOURCES.len())?;
        }
        crate::platform::sort::sort_sleepable(&mut pool.blocks);
        Ok(pool)
    }

    /// Takes up to `want` pages with `zone_gfp`; only the last source must
    /// deliver all of its share.
    fn take_from(&mut self, want: u64, zone_gfp: bindings::gfp_t, must: bool) -> Result<u64> {
        let gfp = bindings::GFP_KERNEL
            | zone_gfp
            | bindings::__GFP_NOWARN
            | (1 << bindings::___GFP_NORETRY_BIT);
        let mut got = 0u64;
        let mut order = bindings::MAX_PAGE_ORDER;
        while got < want {
            // Never overshoot: the pool is exactly the size asked for.
            while order > 0 && (1u64 << order) > want - got {
                order -= 1;
            }
            match Pages::new(order, gfp) {
                Ok(p) => {
                    let pfn = p.pfn();
                    let nr_pages = p.nr_pages() as u64;
                    got += nr_pages;
                    let zone = phys::zone_of_pfn(pfn);
                    self.blocks.push(
                        PoolBlock {
                            _pages: p,
                            pfn,
                            nr_pages,
                            zone,
                        },
                        GFP_KERNEL,
                    )?;
                }
                Err(_) if order > 0 => order -= 1,
                Err(_) if !must => break,
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    }

    /// Pages in the pool.
    pub(crate) fn nr_pages(&self) -> u64 {
        self.blocks.iter().map(|b| b.nr_pages).sum()
    }
}
