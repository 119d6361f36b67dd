// SPDX-License-Identifier: GPL-2.0

//! The invariant checker of the buddy allocator, for tests and debug builds.

use core::ops::DerefMut;

use super::meta::PageState;
use super::{Buddy, PageMeta, Region, MAX_PAGE_ORDER, MAX_PFN, NIL, NR_PAGE_ORDERS};

/// A violated invariant, found by [`Buddy::check_invariants`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvariantError {
    /// Regions are not sorted by PFN or overlap (index of the later one).
    RegionOrder(usize),
    /// A region's metadata is outside the storage or overlaps another's.
    RegionMeta(usize),
    /// A frame where a block head was expected is a tail.
    MissingHead(u64),
    /// A block head with an order above the maximum.
    BadOrder(u64),
    /// A block that is misaligned or runs past its region's end.
    BadBlock(u64),
    /// A frame inside a block that is marked as a head.
    HeadInsideBlock(u64),
    /// A free head whose stored PFN is wrong.
    StoredPfn(u64),
    /// A free list is broken (cycle, bad link, wrong entry) at this order.
    FreeList(u32),
    /// The counter of free blocks of this order is wrong.
    FreeCount(u32),
    /// A free block whose buddy is free with the same order.
    NotCoalesced(u64),
    /// The free page or managed page totals are wrong.
    Totals,
}

impl<M, R> Buddy<M, R>
where
    M: DerefMut<Target = [PageMeta]>,
    R: DerefMut<Target = [Region]>,
{
    /// Verifies every invariant listed in the documentation of
    /// [`crate::buddy`]. Costs O(frames + regions); meant for tests and debug
    /// builds.
    pub fn check_invariants(&self) -> Result<(), InvariantError> {
        let regs = self.regions();
        if self.nr_regions > self.regions.len() || self.meta_used > self.meta.len() {
            return Err(InvariantError::Totals);
        }
        // Tallied over the blocks, to be compared with the free lists' counts
        // and the zone's totals once every region has been walked.
        let mut counted = [0u64; NR_PAGE_ORDERS];
        let mut managed = 0u64;
        let mut free = 0u64;
        for (i, r) in regs.iter().enumerate() {
            self.check_region(regs, i, r)?;
            managed += r.nr_pages;
            free += self.check_blocks(r, &mut counted)?;
        }
        self.check_free_lists(&counted)?;
        if managed != self.managed_pages || free != self.free_pages {
            return Err(InvariantError::Totals);
        }
        Ok(())
    }

    /// Region `i` (`r`) is non-empty, below MAX_PFN, after its predecessor,
    /// and its metadata lies in the used part and overlaps no other's.
    fn check_region(&self, regs: &[Region], i: usize, r: &Region) -> Result<(), InvariantError> {
        if r.nr_pages == 0 || r.end_pfn() > MAX_PFN {
            return Err(InvariantError::RegionOrder(i));
        }
        if i > 0 && regs[i - 1].end_pfn() > r.start_pfn {
            return Err(InvariantError::RegionOrder(i));
        }
        let meta_end = r.meta_base + r.nr_pages as usize;
        if meta_end > self.meta_used
            || regs.iter().enumerate().any(|(j, o)| {
                j != i && o.meta_base < meta_end && r.meta_base < o.meta_base + o.nr_pages as usize
            })
        {
            return Err(InvariantError::RegionMeta(i));
        }
        Ok(())
    }

    /// Walks `r` block by block, from head to head, checking each block and
    /// counting its free blocks per order into `counted`. Returns the free
    /// pages found in `r`.
    fn check_blocks(
        &self,
        r: &Region,
        counted: &mut [u64; NR_PAGE_ORDERS],
    ) -> Result<u64, InvariantError> {
        let mut free = 0u64;
        let mut pfn = r.start_pfn;
        while pfn < r.end_pfn() {
            let m = &self.meta[r.meta_index(pfn) as usize];
            if m.state == PageState::Tail {
                return Err(InvariantError::MissingHead(pfn));
            }
            let order = u32::from(m.order);
            if order > MAX_PAGE_ORDER {
                return Err(InvariantError::BadOrder(pfn));
            }
            let size = 1u64 << order;
            if pfn & (size - 1) != 0 || r.end_pfn() - pfn < size {
                return Err(InvariantError::BadBlock(pfn));
            }
            for tail in pfn + 1..pfn + size {
                if self.meta[r.meta_index(tail) as usize].state != PageState::Tail {
                    return Err(InvariantError::HeadInsideBlock(tail));
                }
            }
            if m.state == PageState::Free {
                self.check_free_block(r, pfn, m, order)?;
                counted[order as usize] += 1;
                free += size;
            }
            pfn += size;
        }
        Ok(free)
    }

    /// The free block of `order` at `pfn` (head `m`) knows its PFN, and is
    /// not left beside a free buddy of the same order it should have merged
    /// with.
    fn check_free_block(
        &self,
        r: &Region,
        pfn: u64,
        m: &PageMeta,
        order: u32,
    ) -> Result<(), InvariantError> {
        if m.stored_pfn() != pfn {
            return Err(InvariantError::StoredPfn(pfn));
        }
        let size = 1u64 << order;
        let buddy = pfn ^ size;
        if order < MAX_PAGE_ORDER && r.contains(buddy) && r.contains(buddy + size - 1) {
            let b = &self.meta[r.meta_index(buddy) as usize];
            if b.state == PageState::Free && u32::from(b.order) == order {
                return Err(InvariantError::NotCoalesced(pfn));
            }
        }
        Ok(())
    }

    /// Each order's free list holds exactly the `counted` free blocks of that
    /// order, correctly linked both ways.
    fn check_free_lists(&self, counted: &[u64; NR_PAGE_ORDERS]) -> Result<(), InvariantError> {
        for order in 0..=MAX_PAGE_ORDER {
            let area = &self.free_area[order as usize];
            if area.nr_free != counted[order as usize] {
                return Err(InvariantError::FreeCount(order));
            }
            // Walk at most nr_free entries: the list must end exactly there.
            let mut prev = NIL;
            let mut cur = area.head;
            for _ in 0..area.nr_free {
                let m = self
                    .meta
                    .get(cur as usize)
                    .filter(|_| (cur as usize) < self.meta_used)
                    .ok_or(InvariantError::FreeList(order))?;
                if m.state != PageState::Free || u32::from(m.order) != order || m.prev != prev {
                    return Err(InvariantError::FreeList(order));
                }
                prev = cur;
                cur = m.next;
            }
            if cur != NIL {
                return Err(InvariantError::FreeList(order));
            }
        }
        Ok(())
    }
}
