// SPDX-License-Identifier: GPL-2.0

//! Per-frame metadata, the mirror's `struct page`: what the allocator knows
//! about a frame, kept outside the frame.

use super::NIL;

/// What a frame's metadata says about it.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PageState {
    /// Not the head of a block.
    Tail = 0,
    /// Head of a free block, on the free list of its order.
    Free = 1,
    /// Head of an allocated block.
    Allocated = 2,
}

/// Per-frame metadata, the mirror's `struct page`.
///
/// Meaning of the fields depends on the state:
/// - free head: `next`/`prev` link the free list (metadata indices),
///   `word`/`pfn_hi` hold the block's PFN (so a block popped off a list knows
///   its frame number without a reverse lookup);
/// - allocated head: `word` is the owner tag;
/// - tail: nothing is meaningful.
///
/// `owner` belongs to the owner of an allocated block, in its head frame's
/// metadata: the buddy clears it when it hands the block out and never reads
/// it. A slab keeps its descriptor there (`struct slab` overlays `struct
/// page` in the kernel's memmap the same way), so no byte of a slab is
/// spent on bookkeeping.
// Aligned to a cache line so that no entry straddles two.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug)]
pub struct PageMeta {
    pub(super) next: u32,
    pub(super) prev: u32,
    pub(super) word: u32,
    pub(super) pfn_hi: u16,
    pub(super) order: u8,
    pub(super) state: PageState,
    pub(super) owner: OwnerArea,
}

/// The block owner's words in a head frame's [`PageMeta`] (see there).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug)]
pub struct OwnerArea(pub [u64; 6]);

impl OwnerArea {
    /// Cleared.
    pub const ZERO: OwnerArea = OwnerArea([0; 6]);
}

// 16 bytes of buddy state and 48 of owner area, one cache line (the
// kernel's struct page is 64 bytes too).
const _: () = assert!(core::mem::size_of::<PageMeta>() == 64);

impl PageMeta {
    /// Initial value for metadata storage; [`Buddy::add_region`] overwrites
    /// it.
    ///
    /// [`Buddy::add_region`]: super::Buddy::add_region
    pub const INIT: PageMeta = PageMeta {
        next: NIL,
        prev: NIL,
        word: 0,
        pfn_hi: 0,
        order: 0,
        state: PageState::Tail,
        owner: OwnerArea::ZERO,
    };

    pub(super) const fn free_head(pfn: u64, order: u32) -> PageMeta {
        PageMeta {
            next: NIL,
            prev: NIL,
            word: pfn as u32,
            pfn_hi: (pfn >> 32) as u16,
            order: order as u8,
            state: PageState::Free,
            owner: OwnerArea::ZERO,
        }
    }

    pub(super) const fn allocated_head(order: u32, tag: u32) -> PageMeta {
        PageMeta {
            next: NIL,
            prev: NIL,
            word: tag,
            pfn_hi: 0,
            order: order as u8,
            state: PageState::Allocated,
            owner: OwnerArea::ZERO,
        }
    }

    pub(super) fn stored_pfn(&self) -> u64 {
        (u64::from(self.pfn_hi) << 32) | u64::from(self.word)
    }
}

impl Default for PageMeta {
    fn default() -> Self {
        Self::INIT
    }
}
