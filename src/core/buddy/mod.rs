// SPDX-License-Identifier: GPL-2.0

//! Buddy page allocator for one zone: memlab's mirror of `mm/page_alloc.c`.
//!
//! This file is plain `core` Rust: the kernel module and the host test crate
//! compile the very same source.
//!
//! # Layout
//!
//! A [`Buddy`] manages the page frames (PFNs) of one zone. The frames come in
//! one or more [`Region`]s, half-open PFN ranges `[start, end)` that must not
//! overlap. Every frame has a 16-byte [`PageMeta`] kept *outside* the frame,
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
//! The API takes `&mut self`: the module wraps each zone's `Buddy` (DMA,
//! DMA32, Normal) in its own spinlock. Slab caches call in through
//! [`crate::slab::PageSource`] with their cache lock held, so the lock order
//! is: cache lock, then zone lock.

use core::fmt;
use core::ops::DerefMut;

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

/// What a frame's metadata says about it.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PageState {
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
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PageMeta {
    next: u32,
    prev: u32,
    word: u32,
    pfn_hi: u16,
    order: u8,
    state: PageState,
}

const _: () = assert!(core::mem::size_of::<PageMeta>() <= 16);

impl PageMeta {
    /// Initial value for metadata storage; [`Buddy::add_region`] overwrites it.
    pub const INIT: PageMeta = PageMeta {
        next: NIL,
        prev: NIL,
        word: 0,
        pfn_hi: 0,
        order: 0,
        state: PageState::Tail,
    };

    const fn free_head(pfn: u64, order: u32) -> PageMeta {
        PageMeta {
            next: NIL,
            prev: NIL,
            word: pfn as u32,
            pfn_hi: (pfn >> 32) as u16,
            order: order as u8,
            state: PageState::Free,
        }
    }

    const fn allocated_head(order: u32, tag: u32) -> PageMeta {
        PageMeta {
            next: NIL,
            prev: NIL,
            word: tag,
            pfn_hi: 0,
            order: order as u8,
            state: PageState::Allocated,
        }
    }

    fn stored_pfn(&self) -> u64 {
        (u64::from(self.pfn_hi) << 32) | u64::from(self.word)
    }
}

impl Default for PageMeta {
    fn default() -> Self {
        Self::INIT
    }
}

/// A range of page frames managed by a [`Buddy`], with its metadata slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    start_pfn: u64,
    nr_pages: u64,
    meta_base: usize,
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

    fn contains(&self, pfn: u64) -> bool {
        pfn >= self.start_pfn && pfn - self.start_pfn < self.nr_pages
    }

    /// Metadata index of `pfn`, which must be in the region.
    fn meta_index(&self, pfn: u64) -> u32 {
        // Fits: the region's metadata lies below u32::MAX (add_region).
        (self.meta_base as u64 + (pfn - self.start_pfn)) as u32
    }
}

impl Default for Region {
    fn default() -> Self {
        Self::EMPTY
    }
}

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

/// Free list and counter of one order, the mirror's `struct free_area`.
#[derive(Clone, Copy, Debug)]
struct FreeArea {
    head: u32,
    nr_free: u64,
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

    /// Adds the frames `[start_pfn, start_pfn + nr_pages)` to the zone and
    /// frees them into the buddy lists.
    pub fn add_region(&mut self, start_pfn: u64, nr_pages: u64) -> Result<(), BuddyError> {
        if nr_pages == 0 {
            return Err(BuddyError::EmptyRegion);
        }
        let end_pfn = start_pfn
            .checked_add(nr_pages)
            .filter(|&end| end <= MAX_PFN)
            .ok_or(BuddyError::RegionTooHigh)?;
        let n = usize::try_from(nr_pages).map_err(|_| BuddyError::NoMetaSpace)?;
        let meta_base = self.meta_used;
        let meta_end = meta_base
            .checked_add(n)
            .filter(|&end| end <= self.meta.len() && end < NIL as usize)
            .ok_or(BuddyError::NoMetaSpace)?;

        // Where the region goes in the sorted table, and whether it overlaps.
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
        for m in self
            .meta
            .get_mut(meta_base..meta_end)
            .ok_or(BuddyError::NoMetaSpace)?
        {
            *m = PageMeta::INIT;
        }
        self.meta_used = meta_end;
        self.managed_pages += nr_pages;

        // Hand the frames over in maximal aligned blocks, as memblock does.
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

    /// Verifies every invariant listed in the module documentation. Costs
    /// O(frames + regions); meant for tests and debug builds.
    pub fn check_invariants(&self) -> Result<(), InvariantError> {
        let regs = self.regions();
        if self.nr_regions > self.regions.len() || self.meta_used > self.meta.len() {
            return Err(InvariantError::Totals);
        }
        let mut counted = [0u64; NR_PAGE_ORDERS];
        let mut managed = 0u64;
        let mut free = 0u64;
        for (i, r) in regs.iter().enumerate() {
            if r.nr_pages == 0 || r.end_pfn() > MAX_PFN {
                return Err(InvariantError::RegionOrder(i));
            }
            if i > 0 && regs[i - 1].end_pfn() > r.start_pfn {
                return Err(InvariantError::RegionOrder(i));
            }
            let meta_end = r.meta_base + r.nr_pages as usize;
            if meta_end > self.meta_used
                || regs.iter().enumerate().any(|(j, o)| {
                    j != i
                        && o.meta_base < meta_end
                        && r.meta_base < o.meta_base + o.nr_pages as usize
                })
            {
                return Err(InvariantError::RegionMeta(i));
            }
            managed += r.nr_pages;
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
                    if m.stored_pfn() != pfn {
                        return Err(InvariantError::StoredPfn(pfn));
                    }
                    counted[order as usize] += 1;
                    free += size;
                    let buddy = pfn ^ size;
                    if order < MAX_PAGE_ORDER && r.contains(buddy) && r.contains(buddy + size - 1) {
                        let b = &self.meta[r.meta_index(buddy) as usize];
                        if b.state == PageState::Free && u32::from(b.order) == order {
                            return Err(InvariantError::NotCoalesced(pfn));
                        }
                    }
                }
                pfn += size;
            }
        }
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
        if managed != self.managed_pages || free != self.free_pages {
            return Err(InvariantError::Totals);
        }
        Ok(())
    }

    /// Region containing `pfn`, by binary search.
    fn region_of(&self, pfn: u64) -> Option<(usize, &Region)> {
        let regs = self.regions();
        let i = regs
            .partition_point(|r| r.start_pfn <= pfn)
            .checked_sub(1)?;
        let r = regs.get(i)?;
        r.contains(pfn).then_some((i, r))
    }

    /// Frees a validated block (`meta[idx]` is its head, it lies in `region`)
    /// and merges it with its buddies (__free_one_page() in the kernel).
    fn free_pages_validated(&mut self, region: &Region, mut pfn: u64, mut idx: u32, order: u32) {
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

    /// Pushes the free head `idx` on the free list of `order`.
    fn list_add(&mut self, order: u32, idx: u32) {
        let area = &mut self.free_area[order as usize];
        let old = area.head;
        area.head = idx;
        area.nr_free += 1;
        if old != NIL {
            self.meta[old as usize].prev = idx;
        }
        let m = &mut self.meta[idx as usize];
        m.next = old;
        m.prev = NIL;
    }

    /// Unlinks the free head `idx` from the free list of `order`.
    fn list_del(&mut self, order: u32, idx: u32) {
        let PageMeta { next, prev, .. } = self.meta[idx as usize];
        if prev == NIL {
            self.free_area[order as usize].head = next;
        } else {
            self.meta[prev as usize].next = next;
        }
        if next != NIL {
            self.meta[next as usize].prev = prev;
        }
        self.free_area[order as usize].nr_free -= 1;
        let m = &mut self.meta[idx as usize];
        m.next = NIL;
        m.prev = NIL;
    }
}
