// SPDX-License-Identifier: GPL-2.0

//! Buddy page allocator for one zone: memlab's mirror of `mm/page_alloc.c`.
//!
//! Plain `core` Rust, like all of src/core/: the kernel module and the host
//! test crate compile the very same source.
//!
//! # Layout
//!
//! A [`Buddy`] manages the page frames (PFNs) of one zone. The frames come in
//! one or more [`Region`]s, half-open PFN ranges `[start, end)` that must not
//! overlap. Every frame has a 64-byte [`PageMeta`] kept *outside* the frame,
//! like `struct page` in the memmap: the allocator never reads or writes the
//! memory it manages, so it works on PFNs alone and a foreign or stale PFN is
//! rejected from metadata without touching memory. The metadata array and the
//! region table are storage the caller provides (a `Vec` on the host, a
//! `KVec`/`VVec` in the module), handed over at [`Buddy::new`].
//!
//! # Blocks
//!
//! At any time every frame of every region belongs to exactly one *block*: a
//! naturally aligned run of `1 << order` frames (`order <= MAX_PAGE_ORDER`)
//! inside a single region. Only the first frame of a block, its *head*, says
//! so in its metadata (free or allocated, order, owner tag); every other frame
//! is a *tail*. Tails are never updated when blocks split or merge, so both
//! are O(1). The block containing any frame is found by probing the at most
//! `NR_PAGE_ORDERS` candidate heads `pfn & !((1 << o) - 1)` for the first one
//! that is a head ([`Buddy::block_of`]).
//!
//! # Lifecycle of a block
//!
//! 1. [`Buddy::add_region`] cuts the new frames into maximal aligned blocks
//!    and frees each one, exactly like memblock handing memory to the buddy
//!    at boot. A region that directly extends the previously added one (and
//!    whose metadata follows on) is merged into it, so its blocks coalesce
//!    across the old boundary.
//! 2. Free blocks of order `o` sit on the doubly linked free list
//!    `free_area[o]` (intrusive, through the head's metadata), newest first.
//! 3. [`Buddy::alloc`] takes the first block of the smallest non-empty order
//!    `>= order` and, while it is larger than asked, splits it in halves,
//!    putting the upper half back on the free list one order down (`expand()`
//!    in the kernel).
//! 4. [`Buddy::free`] validates the request against the metadata (frame in a
//!    region, aligned, the head of an allocated block of exactly that order
//!    and owner tag),
//!    then merges with the buddy `pfn ^ (1 << order)` as long as the buddy is
//!    a free block of the same order in the same region, one order up each
//!    time, and puts the result on its free list.
//!
//! Invariants (checked by [`Buddy::check_invariants`]): blocks tile every
//! region exactly, free lists hold exactly the free heads of their order, the
//! free counters match, and no free block has a free buddy of the same order
//! (free memory is always fully coalesced).
//!
//! # Misuse
//!
//! Every entry point validates its arguments against the metadata and
//! returns a [`BuddyError`] for a double free, a frame outside every region,
//! a misaligned frame, a wrong order or owner or an overlapping region, leaving the
//! state untouched. Nothing here panics on bad input.
//!
//! # Locking
//!
//! The core takes no locks: every call that changes a zone takes `&mut self`,
//! so callers serialise by construction. The module keeps all its zones (DMA,
//! DMA32, Normal) and kmalloc caches under one spinlock, `Mirror::state`, and
//! slab caches call in through [`crate::slab::PageSource`] only under that
//! same lock. The module's own locks do nest: a mirror kmem_cache takes its
//! barn, then its slab cache's spinlock, then `Mirror::state`
//! (src/mirror/kmem_cache.rs); the whole order is in rust_memlab.rs.

// The types are declared here, the code is in the submodules: per-frame
// metadata, regions, the free lists, allocating and freeing blocks, and the
// invariant checker.
mod block;
mod check;
mod free_area;
mod meta;
mod owner;
mod region;

pub use block::BlockInfo;
pub use check::InvariantError;
pub use meta::{OwnerArea, PageMeta};
pub use region::Region;

use core::fmt;
use core::ops::DerefMut;

use free_area::FreeArea;

/// log2 of the page size.
pub const PAGE_SHIFT: u32 = 12;
/// Size of one page frame in bytes.
pub const PAGE_SIZE: usize = 1 << PAGE_SHIFT;
/// Largest block order: blocks hold 1 to `1 << MAX_PAGE_ORDER` pages.
pub const MAX_PAGE_ORDER: u32 = 10;
/// Number of block orders, `0..=MAX_PAGE_ORDER`.
pub const NR_PAGE_ORDERS: usize = MAX_PAGE_ORDER as usize + 1;
/// Pages in a block of the largest order.
pub const MAX_ORDER_NR_PAGES: u64 = 1 << MAX_PAGE_ORDER;
/// Exclusive upper bound for PFNs the allocator accepts (48-bit PFNs, i.e.
/// 60-bit physical addresses, well above x86-64's 52).
pub const MAX_PFN: u64 = 1 << 48;
/// Owner tag of blocks allocated with [`Buddy::alloc`] (no owner).
pub const TAG_NONE: u32 = 0;
/// Owner tags from here up belong to slab caches and are given out only
/// through [`crate::slab::PageSource`]: the public tagged calls refuse them, so
/// no caller can forge a slab or free one behind its cache's back.
pub const FIRST_PROTECTED_TAG: u32 = 0x100;

/// End of a free list.
const NIL: u32 = u32::MAX;

/// Errors of the buddy allocator. The state is unchanged when one is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuddyError {
    /// The order is above [`MAX_PAGE_ORDER`].
    InvalidOrder(u32),
    /// No free block of the requested order or larger.
    OutOfMemory,
    /// The frame is in no region of this zone.
    OutsideRegions(u64),
    /// The frame is not aligned to the order given.
    Misaligned {
        /// The frame.
        pfn: u64,
        /// The order given.
        order: u32,
    },
    /// The frame lies inside an allocated block but is not its head.
    NotBlockHead(u64),
    /// The frame is (in) a block that is already free.
    DoubleFree(u64),
    /// The block at the frame was allocated with another order.
    WrongOrder {
        /// The frame.
        pfn: u64,
        /// Order the block was allocated with.
        allocated: u32,
        /// Order given.
        given: u32,
    },
    /// The block at the frame belongs to another owner.
    WrongOwner {
        /// The frame.
        pfn: u64,
        /// Owner tag of the block.
        owner: u32,
        /// Owner tag given.
        given: u32,
    },
    /// A tag at or above [`FIRST_PROTECTED_TAG`] passed to a public call.
    ProtectedTag(u32),
    /// A region with no frames.
    EmptyRegion,
    /// A region reaching [`MAX_PFN`] or beyond.
    RegionTooHigh,
    /// A region overlapping an existing one.
    RegionOverlap {
        /// Start of the existing region.
        start_pfn: u64,
        /// End of the existing region.
        end_pfn: u64,
    },
    /// The region table storage is full.
    NoRegionSlot,
    /// The metadata storage has no room for the region's frames.
    NoMetaSpace,
    /// The metadata is inconsistent (a bug; see [`Buddy::check_invariants`]).
    Inconsistent(u64),
}

impl fmt::Display for BuddyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::InvalidOrder(o) => write!(f, "invalid order {o}"),
            Self::OutOfMemory => f.write_str("out of memory"),
            Self::OutsideRegions(p) => write!(f, "pfn {p:#x} outside every region"),
            Self::Misaligned { pfn, order } => {
                write!(f, "pfn {pfn:#x} not aligned to order {order}")
            }
            Self::NotBlockHead(p) => write!(f, "pfn {p:#x} is not the head of a block"),
            Self::DoubleFree(p) => write!(f, "double free of pfn {p:#x}"),
            Self::WrongOrder {
                pfn,
                allocated,
                given,
            } => write!(
                f,
                "pfn {pfn:#x} allocated with order {allocated}, freed with order {given}"
            ),
            Self::WrongOwner { pfn, owner, given } => write!(
                f,
                "pfn {pfn:#x} belongs to owner {owner:#x}, freed by owner {given:#x}"
            ),
            Self::ProtectedTag(t) => write!(f, "owner tag {t:#x} is reserved for slab caches"),
            Self::EmptyRegion => f.write_str("empty region"),
            Self::RegionTooHigh => f.write_str("region beyond the highest pfn"),
            Self::RegionOverlap { start_pfn, end_pfn } => write!(
                f,
                "region overlaps existing region [{start_pfn:#x}, {end_pfn:#x})"
            ),
            Self::NoRegionSlot => f.write_str("region table full"),
            Self::NoMetaSpace => f.write_str("page metadata storage full"),
            Self::Inconsistent(p) => write!(f, "inconsistent metadata at pfn {p:#x}"),
        }
    }
}

/// Buddy allocator of one zone.
///
/// `M` is the per-frame metadata storage, `R` the region table storage; both
/// are provided by the caller (see the module documentation) and sized for
/// the frames and regions the zone will ever have.
///
/// # Invariants
///
/// See the module documentation; [`Buddy::check_invariants`] verifies them.
pub struct Buddy<M, R> {
    meta: M,
    regions: R,
    nr_regions: usize,
    meta_used: usize,
    free_area: [FreeArea; NR_PAGE_ORDERS],
    managed_pages: u64,
    free_pages: u64,
}

impl<M, R> Buddy<M, R>
where
    M: DerefMut<Target = [PageMeta]>,
    R: DerefMut<Target = [Region]>,
{
    /// Creates an empty zone over caller-provided storage: `meta` must have
    /// one entry per frame the zone will manage, `regions` one per region.
    pub fn new(meta: M, regions: R) -> Self {
        Buddy {
            meta,
            regions,
            nr_regions: 0,
            meta_used: 0,
            free_area: [FreeArea {
                head: NIL,
                nr_free: 0,
            }; NR_PAGE_ORDERS],
            managed_pages: 0,
            free_pages: 0,
        }
    }

    /// The regions, sorted by PFN.
    pub fn regions(&self) -> &[Region] {
        self.regions.get(..self.nr_regions).unwrap_or(&[])
    }

    /// Frames managed by the zone (sum of the region sizes).
    pub fn managed_pages(&self) -> u64 {
        self.managed_pages
    }

    /// Frames currently free.
    pub fn free_pages(&self) -> u64 {
        self.free_pages
    }

    /// Free blocks of `order` (0 for an order above the maximum).
    pub fn nr_free(&self, order: u32) -> u64 {
        self.free_area
            .get(order as usize)
            .map_or(0, |area| area.nr_free)
    }

    /// Free blocks of every order, as /proc/buddyinfo prints them.
    pub fn free_counts(&self) -> [u64; NR_PAGE_ORDERS] {
        let mut counts = [0; NR_PAGE_ORDERS];
        for (count, area) in counts.iter_mut().zip(self.free_area.iter()) {
            *count = area.nr_free;
        }
        counts
    }

    /// Metadata entries still available for new regions.
    pub fn meta_capacity_left(&self) -> usize {
        self.meta.len().saturating_sub(self.meta_used)
    }
}
