// SPDX-License-Identifier: GPL-2.0

//! The regions of a zone: the PFN ranges it manages, and how frames are
//! added to it (memblock handing memory to the buddy at boot).

use core::ops::DerefMut;

use super::{Buddy, BuddyError, PageMeta, MAX_PAGE_ORDER, MAX_PFN, NIL, TAG_NONE};

/// A range of page frames managed by a [`Buddy`], with its metadata slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub(super) start_pfn: u64,
    pub(super) nr_pages: u64,
    pub(super) meta_base: usize,
}

impl Region {
    /// Initial value for region table storage.
    pub const EMPTY: Region = Region {
        start_pfn: 0,
        nr_pages: 0,
        meta_base: 0,
    };

    /// First frame of the region.
    pub fn start_pfn(&self) -> u64 {
        self.start_pfn
    }

    /// One past the last frame of the region.
    pub fn end_pfn(&self) -> u64 {
        // Cannot overflow: checked against MAX_PFN when the region was added.
        self.start_pfn + self.nr_pages
    }

    /// Number of frames in the region.
    pub fn nr_pages(&self) -> u64 {
        self.nr_pages
    }

    /// Index of the region's first frame in the metadata storage.
    pub fn meta_base(&self) -> usize {
        self.meta_base
    }

    pub(super) fn contains(&self, pfn: u64) -> bool {
        pfn >= self.start_pfn && pfn - self.start_pfn < self.nr_pages
    }

    /// Metadata index of `pfn`, which must be in the region.
    pub(super) fn meta_index(&self, pfn: u64) -> u32 {
        // Fits: the region's metadata lies below u32::MAX (add_region).
        (self.meta_base as u64 + (pfn - self.start_pfn)) as u32
    }
}

impl Default for Region {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl<M, R> Buddy<M, R>
where
    M: DerefMut<Target = [PageMeta]>,
    R: DerefMut<Target = [Region]>,
{
    /// Adds the frames `[start_pfn, start_pfn + nr_pages)` to the zone and
    /// frees them into the buddy lists.
    pub fn add_region(&mut self, start_pfn: u64, nr_pages: u64) -> Result<(), BuddyError> {
        // Every refusal comes before the first change to the zone.
        let (end_pfn, meta_base, meta_end) = self.region_bounds(start_pfn, nr_pages)?;
        let (pos, extend) = self.region_slot(start_pfn, end_pfn, meta_base)?;
        self.record_region(pos, extend, start_pfn, nr_pages, meta_base)?;
        for m in self
            .meta
            .get_mut(meta_base..meta_end)
            .ok_or(BuddyError::NoMetaSpace)?
        {
            *m = PageMeta::INIT;
        }
        self.meta_used = meta_end;
        self.managed_pages += nr_pages;
        self.hand_over(start_pfn, end_pfn)
    }

    /// The region's end PFN and its metadata slice `[meta_base, meta_end)`,
    /// checked before anything changes so a refused region leaves no trace.
    fn region_bounds(
        &self,
        start_pfn: u64,
        nr_pages: u64,
    ) -> Result<(u64, usize, usize), BuddyError> {
        if nr_pages == 0 {
            return Err(BuddyError::EmptyRegion);
        }
        let end_pfn = start_pfn
            .checked_add(nr_pages)
            .filter(|&end| end <= MAX_PFN)
            .ok_or(BuddyError::RegionTooHigh)?;
        let n = usize::try_from(nr_pages).map_err(|_| BuddyError::NoMetaSpace)?;
        let meta_base = self.meta_used;
        // Below NIL: indices are stored as u32 links, NIL ending a list.
        let meta_end = meta_base
            .checked_add(n)
            .filter(|&end| end <= self.meta.len() && end < NIL as usize)
            .ok_or(BuddyError::NoMetaSpace)?;
        Ok((end_pfn, meta_base, meta_end))
    }

    /// Where the region goes in the sorted table, refusing an overlap with
    /// either neighbour, and the index of the previous region if the new one
    /// simply extends it (contiguous in both PFNs and metadata), so that its
    /// blocks can coalesce across the old boundary.
    fn region_slot(
        &self,
        start_pfn: u64,
        end_pfn: u64,
        meta_base: usize,
    ) -> Result<(usize, Option<usize>), BuddyError> {
        let regs = self.regions();
        let pos = regs.partition_point(|r| r.start_pfn < start_pfn);
        if let Some(next) = regs.get(pos) {
            if next.start_pfn < end_pfn {
                return Err(BuddyError::RegionOverlap {
                    start_pfn: next.start_pfn,
                    end_pfn: next.end_pfn(),
                });
            }
        }
        let mut extend = None;
        if let Some(prev) = pos.checked_sub(1).and_then(|i| regs.get(i)) {
            if prev.end_pfn() > start_pfn {
                return Err(BuddyError::RegionOverlap {
                    start_pfn: prev.start_pfn,
                    end_pfn: prev.end_pfn(),
                });
            }
            if prev.end_pfn() == start_pfn && prev.meta_base + prev.nr_pages as usize == meta_base {
                extend = Some(pos - 1);
            }
        }
        Ok((pos, extend))
    }

    /// Enters the region in the table: grows region `extend` if given, else
    /// inserts a new entry at `pos`, shifting the later ones up to keep the
    /// table sorted for [`Buddy::region_of`]'s binary search.
    fn record_region(
        &mut self,
        pos: usize,
        extend: Option<usize>,
        start_pfn: u64,
        nr_pages: u64,
        meta_base: usize,
    ) -> Result<(), BuddyError> {
        match extend {
            Some(i) => {
                let r = self
                    .regions
                    .get_mut(i)
                    .ok_or(BuddyError::Inconsistent(start_pfn))?;
                r.nr_pages += nr_pages;
            }
            None => {
                if self.nr_regions >= self.regions.len() {
                    return Err(BuddyError::NoRegionSlot);
                }
                let table = self
                    .regions
                    .get_mut(pos..=self.nr_regions)
                    .ok_or(BuddyError::NoRegionSlot)?;
                table.rotate_right(1);
                table[0] = Region {
                    start_pfn,
                    nr_pages,
                    meta_base,
                };
                self.nr_regions += 1;
            }
        }
        Ok(())
    }

    /// Frees `[start_pfn, end_pfn)`, now in the table with fresh metadata,
    /// into the buddy lists in maximal aligned blocks, as memblock does, so
    /// the lists start out fully coalesced.
    fn hand_over(&mut self, start_pfn: u64, end_pfn: u64) -> Result<(), BuddyError> {
        // The whole region, which may be an extended one, for meta_index.
        let region = *self
            .region_of(start_pfn)
            .ok_or(BuddyError::Inconsistent(start_pfn))?
            .1;
        let mut pfn = start_pfn;
        while pfn < end_pfn {
            let mut order = MAX_PAGE_ORDER;
            while order > 0 && (pfn & ((1 << order) - 1) != 0 || end_pfn - pfn < 1 << order) {
                order -= 1;
            }
            let idx = region.meta_index(pfn);
            self.meta[idx as usize] = PageMeta::allocated_head(order, TAG_NONE);
            self.free_pages_validated(&region, pfn, idx, order);
            pfn += 1 << order;
        }
        Ok(())
    }

    /// Region containing `pfn`, by binary search.
    pub(super) fn region_of(&self, pfn: u64) -> Option<(usize, &Region)> {
        let regs = self.regions();
        let i = regs
            .partition_point(|r| r.start_pfn <= pfn)
            .checked_sub(1)?;
        let r = regs.get(i)?;
        r.contains(pfn).then_some((i, r))
    }
}
