// SPDX-License-Identifier: GPL-2.0

//! Blocks: allocating (splitting, `expand()`), freeing (merging,
//! `__free_one_page()`) and finding the block that holds a frame.

use core::ops::DerefMut;

use super::meta::PageState;
use super::{
    Buddy, BuddyError, PageMeta, Region, FIRST_PROTECTED_TAG, MAX_PAGE_ORDER, NIL, TAG_NONE,
};

/// A block as seen from its metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockInfo {
    /// First frame of the block.
    pub head_pfn: u64,
    /// Order of the block (`1 << order` frames).
    pub order: u32,
    /// Whether the block is free.
    pub free: bool,
    /// Owner tag given at allocation; [`TAG_NONE`] for free blocks.
    pub tag: u32,
}

impl<M, R> Buddy<M, R>
where
    M: DerefMut<Target = [PageMeta]>,
    R: DerefMut<Target = [Region]>,
{
    /// Allocates a block of `1 << order` frames; returns its first PFN.
    pub fn alloc(&mut self, order: u32) -> Result<u64, BuddyError> {
        self.alloc_tagged(order, TAG_NONE)
    }

    /// Allocates a block of `1 << order` frames and records `tag` (below
    /// [`FIRST_PROTECTED_TAG`]) as its owner, read back by
    /// [`Buddy::block_of`]; returns its first PFN.
    pub fn alloc_tagged(&mut self, order: u32, tag: u32) -> Result<u64, BuddyError> {
        if tag >= FIRST_PROTECTED_TAG {
            return Err(BuddyError::ProtectedTag(tag));
        }
        self.alloc_owned(order, tag)
    }

    /// [`Buddy::alloc_tagged`] for any tag, protected ones included (for
    /// [`crate::slab::BuddyPages`]).
    pub(crate) fn alloc_owned(&mut self, order: u32, tag: u32) -> Result<u64, BuddyError> {
        if order > MAX_PAGE_ORDER {
            return Err(BuddyError::InvalidOrder(order));
        }
        let mut current = order;
        while self.free_area[current as usize].head == NIL {
            current += 1;
            if current > MAX_PAGE_ORDER {
                return Err(BuddyError::OutOfMemory);
            }
        }
        let idx = self.free_area[current as usize].head;
        let pfn = self.meta[idx as usize].stored_pfn();
        self.list_del(current, idx);
        // Split, giving the upper halves back (expand() in mm/page_alloc.c).
        while current > order {
            current -= 1;
            let half = 1u32 << current;
            let buddy_idx = idx + half;
            self.meta[buddy_idx as usize] = PageMeta::free_head(pfn + u64::from(half), current);
            self.list_add(current, buddy_idx);
        }
        self.meta[idx as usize] = PageMeta::allocated_head(order, tag);
        self.free_pages -= 1 << order;
        Ok(pfn)
    }

    /// Frees the untagged block of `1 << order` frames at `pfn`, which must be
    /// the head of a block allocated by [`Buddy::alloc`] with that order.
    pub fn free(&mut self, pfn: u64, order: u32) -> Result<(), BuddyError> {
        self.free_tagged(pfn, order, TAG_NONE)
    }

    /// Frees the block of `1 << order` frames at `pfn`, which must be the head
    /// of a block allocated with exactly that order and owner `tag` (below
    /// [`FIRST_PROTECTED_TAG`]).
    pub fn free_tagged(&mut self, pfn: u64, order: u32, tag: u32) -> Result<(), BuddyError> {
        if tag >= FIRST_PROTECTED_TAG {
            return Err(BuddyError::ProtectedTag(tag));
        }
        self.free_owned(pfn, order, tag)
    }

    /// [`Buddy::free_tagged`] for any tag, protected ones included (for
    /// [`crate::slab::BuddyPages`]).
    pub(crate) fn free_owned(&mut self, pfn: u64, order: u32, tag: u32) -> Result<(), BuddyError> {
        if order > MAX_PAGE_ORDER {
            return Err(BuddyError::InvalidOrder(order));
        }
        let (_, region) = self.region_of(pfn).ok_or(BuddyError::OutsideRegions(pfn))?;
        let region = *region;
        if pfn & ((1 << order) - 1) != 0 {
            return Err(BuddyError::Misaligned { pfn, order });
        }
        let idx = region.meta_index(pfn);
        let m = self.meta[idx as usize];
        match m.state {
            PageState::Allocated if u32::from(m.order) != order => {
                return Err(BuddyError::WrongOrder {
                    pfn,
                    allocated: u32::from(m.order),
                    given: order,
                })
            }
            PageState::Allocated if m.word != tag => {
                return Err(BuddyError::WrongOwner {
                    pfn,
                    owner: m.word,
                    given: tag,
                })
            }
            PageState::Allocated => {}
            PageState::Free => return Err(BuddyError::DoubleFree(pfn)),
            PageState::Tail => {
                return Err(match self.block_of(pfn) {
                    Ok(b) if b.free => BuddyError::DoubleFree(pfn),
                    _ => BuddyError::NotBlockHead(pfn),
                })
            }
        }
        self.free_pages_validated(&region, pfn, idx, order);
        Ok(())
    }

    /// The block (free or allocated) containing `pfn`. Reads metadata only.
    pub fn block_of(&self, pfn: u64) -> Result<BlockInfo, BuddyError> {
        let (_, region) = self.region_of(pfn).ok_or(BuddyError::OutsideRegions(pfn))?;
        let idx = region.meta_index(pfn);
        for order in 0..=MAX_PAGE_ORDER {
            let head = pfn & !((1u64 << order) - 1);
            if head < region.start_pfn {
                break;
            }
            // In bounds: head is in the region, so is its metadata.
            let m = &self.meta[(idx - (pfn - head) as u32) as usize];
            match m.state {
                PageState::Tail => continue,
                PageState::Free | PageState::Allocated => {
                    let order = u32::from(m.order);
                    if order > MAX_PAGE_ORDER || pfn - head >= 1 << order {
                        break;
                    }
                    let free = m.state == PageState::Free;
                    return Ok(BlockInfo {
                        head_pfn: head,
                        order,
                        free,
                        tag: if free { TAG_NONE } else { m.word },
                    });
                }
            }
        }
        Err(BuddyError::Inconsistent(pfn))
    }

    /// The allocated block containing `pfn`, if any. Reads metadata only.
    pub fn allocated_block(&self, pfn: u64) -> Option<BlockInfo> {
        self.block_of(pfn).ok().filter(|b| !b.free)
    }

    /// Changes the owner tag of the allocated block whose head is `pfn`;
    /// neither the old nor the new tag may be protected.
    pub fn set_tag(&mut self, pfn: u64, tag: u32) -> Result<(), BuddyError> {
        if tag >= FIRST_PROTECTED_TAG {
            return Err(BuddyError::ProtectedTag(tag));
        }
        let block = self.block_of(pfn)?;
        if block.tag >= FIRST_PROTECTED_TAG {
            return Err(BuddyError::ProtectedTag(block.tag));
        }
        if block.free {
            return Err(BuddyError::DoubleFree(pfn));
        }
        if block.head_pfn != pfn {
            return Err(BuddyError::NotBlockHead(pfn));
        }
        let (_, region) = self.region_of(pfn).ok_or(BuddyError::OutsideRegions(pfn))?;
        let idx = region.meta_index(pfn) as usize;
        self.meta[idx].word = tag;
        Ok(())
    }

    /// Frees a validated block (`meta[idx]` is its head, it lies in `region`)
    /// and merges it with its buddies (__free_one_page() in the kernel).
    pub(super) fn free_pages_validated(
        &mut self,
        region: &Region,
        mut pfn: u64,
        mut idx: u32,
        order: u32,
    ) {
        self.free_pages += 1 << order;
        let mut order = order;
        while order < MAX_PAGE_ORDER {
            let size = 1u64 << order;
            let buddy = pfn ^ size;
            // The whole buddy block must lie in the same region.
            if !region.contains(buddy) || !region.contains(buddy + size - 1) {
                break;
            }
            let buddy_idx = region.meta_index(buddy);
            let b = &self.meta[buddy_idx as usize];
            if b.state != PageState::Free || u32::from(b.order) != order {
                break;
            }
            self.list_del(order, buddy_idx);
            let upper = idx.max(buddy_idx);
            self.meta[upper as usize].state = PageState::Tail;
            if buddy < pfn {
                pfn = buddy;
                idx = buddy_idx;
            }
            order += 1;
        }
        self.meta[idx as usize] = PageMeta::free_head(pfn, order);
        self.list_add(order, idx);
    }
}
