// SPDX-License-Identifier: GPL-2.0

//! Where slabs come from: the [`PageSource`] trait and its implementation
//! over a buddy zone, [`BuddyPages`], and the owner tags that tell whose a
//! block is.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::{SlabError, FIRST_CACHE_TAG};
use crate::buddy::{Buddy, BuddyError, OwnerArea, PageMeta, Region, PAGE_SHIFT, PAGE_SIZE};

/// How many protected tags may be live at once. Every live cache holds
/// one, so this bounds the caches alive together, not the caches ever made.
pub const MAX_LIVE_TAGS: usize = 1 << 18;
const TAG_WORDS: usize = MAX_LIVE_TAGS / 64;

/// One bit per protected tag, set while the tag is live. A tag comes back
/// only from a cache dropped with no slab ([`release_owner_tag`]), when no
/// block anywhere carries it: then it may go to a new cache, and two live
/// caches still never share a tag. (A never-reused counter would run out
/// after 2^32 caches and refuse every cache after that.)
static LIVE_TAGS: [AtomicU64; TAG_WORDS] = [const { AtomicU64::new(0) }; TAG_WORDS];
/// The word the last tag was taken from: the next search starts there.
static TAG_HINT: AtomicUsize = AtomicUsize::new(0);

/// The right to allocate and free blocks of a [`PageSource`] under one owner
/// tag.
///
/// Public tags (below [`FIRST_CACHE_TAG`]) anyone may name with
/// [`OwnerTag::public`]. Protected ones are made only by `new_owner_tag`,
/// never to two live owners and never copied: a cache or kmalloc mirror keeps its token
/// private, so no other code can free its slabs or forge one through the
/// safe `PageSource` methods.
///
/// ```compile_fail
/// // A protected tag cannot be made from a number.
/// let forged = memlab_core::slab::OwnerTag(0x100);
/// ```
#[derive(Debug, PartialEq, Eq)]
pub struct OwnerTag(u32);

impl OwnerTag {
    /// A public tag (module-specific owners of raw blocks use 2..=255).
    pub const fn public(tag: u8) -> OwnerTag {
        OwnerTag(tag as u32)
    }

    /// The tag's number, as [`Block::tag`] reports it.
    pub const fn get(&self) -> u32 {
        self.0
    }
}

/// A protected owner tag at or above [`FIRST_CACHE_TAG`] that no live
/// owner holds (for a cache, or for the large blocks of one kmalloc
/// mirror); `TagsExhausted` with [`MAX_LIVE_TAGS`] live.
pub(crate) fn new_owner_tag() -> Result<OwnerTag, SlabError> {
    let start = TAG_HINT.load(Ordering::Relaxed) % TAG_WORDS;
    for i in 0..TAG_WORDS {
        let w = (start + i) % TAG_WORDS;
        let word = &LIVE_TAGS[w];
        let mut cur = word.load(Ordering::Relaxed);
        while cur != u64::MAX {
            let bit = (!cur).trailing_zeros();
            match word.compare_exchange_weak(
                cur,
                cur | 1 << bit,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    TAG_HINT.store(w, Ordering::Relaxed);
                    // `w * 64 + bit < MAX_LIVE_TAGS`, far below `u32::MAX`.
                    return Ok(OwnerTag(FIRST_CACHE_TAG + (w * 64) as u32 + bit));
                }
                Err(seen) => cur = seen,
            }
        }
    }
    Err(SlabError::TagsExhausted)
}

/// Gives a protected tag back for reuse (public tags are not tracked).
///
/// Only for an owner that holds no block under `tag` any more: a block that
/// still carried it would get a second owner once the tag is reused. The
/// token is consumed, so it cannot be used or given back again.
pub(super) fn release_owner_tag(tag: OwnerTag) {
    let Some(i) = tag.0.checked_sub(FIRST_CACHE_TAG) else {
        return;
    };
    let i = i as usize;
    if let Some(word) = LIVE_TAGS.get(i / 64) {
        word.fetch_and(!(1u64 << (i % 64)), Ordering::Release);
    }
}

/// Protected tags live now.
pub fn live_owner_tags() -> usize {
    LIVE_TAGS
        .iter()
        .map(|w| w.load(Ordering::Relaxed).count_ones() as usize)
        .sum()
}

/// A block handed out by a [`PageSource`], as its metadata describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// Address of the block's first byte.
    pub head: NonNull<u8>,
    /// Order of the block (`PAGE_SIZE << order` bytes).
    pub order: u32,
    /// Owner tag given when the block was allocated.
    pub tag: u32,
}

/// A supplier of naturally aligned blocks of pages, with per-page metadata.
///
/// # Safety
///
/// Implementors guarantee that:
/// - a block returned by [`PageSource::alloc_block`] is `PAGE_SIZE << order`
///   bytes, aligned to that size, valid for reads and writes and used by
///   nobody else until it is passed back to [`PageSource::free_block`];
/// - [`PageSource::block_of`] returns, for any address, the allocated block
///   containing it with the order and tag it was allocated with, or `None`,
///   without ever accessing the memory at that address;
/// - `free_block` rejects (with an error, changing nothing) a head that is
///   not the head of an allocated block of that order and tag;
/// - [`PageSource::head_of`] and [`PageSource::head_of_mut`] return, for the
///   exact first byte of an allocated block, that block and the owner area
///   of its head frame's metadata, or `None`, without accessing the memory
///   at `head`; the area is the same storage on every call until the block
///   is freed, accessed by nothing but the owner of the block's tag through
///   these pointers, and valid for reads (and, from `head_of_mut`, writes)
///   of an [`OwnerArea`] while the block is allocated.
pub unsafe trait PageSource {
    /// Allocates a block of `1 << order` pages owned by `tag`.
    fn alloc_block(&mut self, order: u32, tag: &OwnerTag) -> Option<NonNull<u8>>;
    /// Frees the block whose first byte is at `head`, allocated with `order`
    /// and `tag`.
    fn free_block(
        &mut self,
        head: NonNull<u8>,
        order: u32,
        tag: &OwnerTag,
    ) -> Result<(), BuddyError>;
    /// The allocated block containing `addr`, if any, from metadata alone.
    fn block_of(&self, addr: *const u8) -> Option<Block>;
    /// The allocated block whose first byte is exactly `head`, and its
    /// owner area, to read (the kernel's `virt_to_slab()`).
    fn head_of(&self, head: *const u8) -> Option<(Block, NonNull<OwnerArea>)>;
    /// [`PageSource::head_of`] with the owner area writable.
    fn head_of_mut(&mut self, head: *const u8) -> Option<(Block, NonNull<OwnerArea>)>;
}

/// Translation between page frame numbers and addresses.
pub trait AddrMap {
    /// Address of the first byte of frame `pfn`.
    fn pfn_to_ptr(&self, pfn: u64) -> Option<NonNull<u8>>;
    /// Frame holding the byte at `addr`.
    fn ptr_to_pfn(&self, addr: *const u8) -> Option<u64>;
}

/// A linear mapping: frame `pfn` is at `base + ((pfn - base_pfn) << PAGE_SHIFT)`
/// (the kernel's direct map with `base = PAGE_OFFSET, base_pfn = 0`, or a
/// host arena).
#[derive(Clone, Copy, Debug)]
pub struct LinearMap {
    base: *mut u8,
    base_pfn: u64,
}

impl LinearMap {
    /// Maps frame `base_pfn` to `base`; `base` must be aligned to the largest
    /// block size for blocks to be naturally aligned in address space.
    pub const fn new(base: *mut u8, base_pfn: u64) -> Self {
        LinearMap { base, base_pfn }
    }
}

impl AddrMap for LinearMap {
    fn pfn_to_ptr(&self, pfn: u64) -> Option<NonNull<u8>> {
        let pages = pfn.checked_sub(self.base_pfn)?;
        let offset = usize::try_from(pages).ok()?.checked_mul(PAGE_SIZE)?;
        self.base.addr().checked_add(offset)?;
        NonNull::new(self.base.wrapping_add(offset))
    }

    fn ptr_to_pfn(&self, addr: *const u8) -> Option<u64> {
        let offset = addr.addr().checked_sub(self.base.addr())?;
        u64::try_from(offset >> PAGE_SHIFT)
            .ok()?
            .checked_add(self.base_pfn)
    }
}

/// [`PageSource`] over a [`Buddy`] zone and a PFN/address mapping.
pub struct BuddyPages<'a, M, R, A> {
    buddy: &'a mut Buddy<M, R>,
    map: A,
}

impl<'a, M, R, A> BuddyPages<'a, M, R, A>
where
    M: core::ops::DerefMut<Target = [PageMeta]>,
    R: core::ops::DerefMut<Target = [Region]>,
    A: AddrMap,
{
    /// Serves the blocks of `buddy` at the addresses given by `map`.
    ///
    /// # Safety
    ///
    /// For every frame in `buddy`'s regions, `map.pfn_to_ptr(pfn)` must be the
    /// address of `PAGE_SIZE` bytes valid for reads and writes, `map` must be
    /// linear over each region with blocks aligned to their size, and
    /// `ptr_to_pfn` its inverse. The memory of the frames must be accessed
    /// only through blocks allocated from `buddy`, by their owners. Every
    /// `BuddyPages` ever made over `buddy` must use this same mapping (slabs
    /// allocated through one are found again through another).
    pub unsafe fn new(buddy: &'a mut Buddy<M, R>, map: A) -> Self {
        BuddyPages { buddy, map }
    }

    /// The buddy allocator served, read-only: a mutable one could grow it by
    /// regions that `map` does not back (see [`BuddyPages::buddy_mut`]).
    ///
    /// ```compile_fail
    /// # use memlab_core::buddy::{Buddy, PageMeta, Region};
    /// # use memlab_core::slab::{BuddyPages, LinearMap};
    /// # fn f(src: &mut BuddyPages<'_, Vec<PageMeta>, Vec<Region>, LinearMap>) {
    /// src.buddy().add_region(1 << 40, 1024).unwrap();
    /// # }
    /// ```
    pub fn buddy(&self) -> &Buddy<M, R> {
        self.buddy
    }

    /// The buddy allocator served, for allocating and freeing untagged or
    /// publicly tagged blocks directly.
    ///
    /// # Safety
    ///
    /// Regions added through the returned reference must meet the contract of
    /// [`BuddyPages::new`] for this mapping.
    pub unsafe fn buddy_mut(&mut self) -> &mut Buddy<M, R> {
        self.buddy
    }

    /// The mapping used.
    pub fn map(&self) -> &A {
        &self.map
    }
}

// SAFETY: Blocks come from the buddy, which hands each frame out once until it
// is freed; `new`'s contract makes their addresses valid, linear and
// naturally aligned. `block_of` reads buddy metadata only, and `free_block`
// goes through `Buddy::free_owned`, which validates head, order and tag.
// Protected tags (every cache's) are only set and cleared here, and only
// their owner holds the `OwnerTag` to pass in, so a block with a cache's tag
// was allocated for that cache, by that cache, through this trait.
unsafe impl<M, R, A> PageSource for BuddyPages<'_, M, R, A>
where
    M: core::ops::DerefMut<Target = [PageMeta]>,
    R: core::ops::DerefMut<Target = [Region]>,
    A: AddrMap,
{
    fn alloc_block(&mut self, order: u32, tag: &OwnerTag) -> Option<NonNull<u8>> {
        let tag = tag.get();
        let pfn = self.buddy.alloc_owned(order, tag).ok()?;
        match self.map.pfn_to_ptr(pfn) {
            Some(ptr) => Some(ptr),
            None => {
                // Unmappable frame: give it back rather than leak it.
                let _ = self.buddy.free_owned(pfn, order, tag);
                None
            }
        }
    }

    fn free_block(
        &mut self,
        head: NonNull<u8>,
        order: u32,
        tag: &OwnerTag,
    ) -> Result<(), BuddyError> {
        let tag = tag.get();
        let pfn = self
            .map
            .ptr_to_pfn(head.as_ptr())
            .ok_or(BuddyError::OutsideRegions(0))?;
        if self.map.pfn_to_ptr(pfn) != Some(head) {
            return Err(BuddyError::NotBlockHead(pfn));
        }
        self.buddy.free_owned(pfn, order, tag)
    }

    fn block_of(&self, addr: *const u8) -> Option<Block> {
        let pfn = self.map.ptr_to_pfn(addr)?;
        let block = self.buddy.allocated_block(pfn)?;
        Some(Block {
            head: self.map.pfn_to_ptr(block.head_pfn)?,
            order: block.order,
            tag: block.tag,
        })
    }

    fn head_of(&self, head: *const u8) -> Option<(Block, NonNull<OwnerArea>)> {
        let pfn = self.map.ptr_to_pfn(head)?;
        let (block, area) = self.buddy.owner_area(pfn)?;
        Some((exact_block(&self.map, head, block)?, area))
    }

    fn head_of_mut(&mut self, head: *const u8) -> Option<(Block, NonNull<OwnerArea>)> {
        let pfn = self.map.ptr_to_pfn(head)?;
        let (block, area) = self.buddy.owner_area_mut(pfn)?;
        Some((exact_block(&self.map, head, block)?, area))
    }
}

/// `block` as a [`Block`], if `head` is exactly its first byte under `map`
/// (for [`PageSource::head_of`] implementations).
pub fn exact_block<A: AddrMap>(
    map: &A,
    head: *const u8,
    block: crate::buddy::BlockInfo,
) -> Option<Block> {
    let ptr = map.pfn_to_ptr(block.head_pfn)?;
    (ptr.as_ptr().cast_const() == head).then_some(Block {
        head: ptr,
        order: block.order,
        tag: block.tag,
    })
}
