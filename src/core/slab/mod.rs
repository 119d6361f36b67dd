// SPDX-License-Identifier: GPL-2.0

//! Slab caches over a page source: memlab's mirror of `mm/slub.c`/`mm/slab.c`.
//!
//! This file is plain `core` Rust: the kernel module and the host test crate
//! compile the very same source.
//!
//! # Page source
//!
//! Slabs are blocks of `1 << order` pages from a [`PageSource`]: the buddy
//! allocator through [`BuddyPages`] (module and host alike), whose blocks are
//! naturally aligned in virtual address space as they are in physical (the
//! module's pool lives in the direct map, `virt = PAGE_OFFSET + (pfn << 12)`;
//! the host uses an aligned arena). Each block carries an owner *tag* in the
//! page metadata; every cache gets a tag of its own, so the page source
//! answers "which block holds this address, and whose is it" from metadata
//! alone (the kernel's `virt_to_slab()`), and a foreign pointer is rejected
//! without dereferencing it.
//!
//! # Slab layout
//!
//! ```text
//! block head                                              block end
//! | SlabHeader | bitmap | pad | colour | obj 0 | obj 1 | ... | leftover |
//! ```
//!
//! The slab descriptor lives at the start of the slab (on-slab management, as
//! in the old SLAB allocator), followed by one bit per object (set = in use).
//! Objects are never written by the allocator: there is no free pointer inside
//! free objects, so a constructed object keeps its state across free and
//! allocation, and a double free is caught by its clear bit.
//!
//! # Lifecycle of a slab
//!
//! 1. *Grow*: when no slab has a free object, a block of the cache's order is
//!    taken from the page source under the cache's tag, the descriptor is
//!    written, the colour offset of this slab is chosen (offsets cycle in
//!    units of a 64-byte cache line, or the alignment if larger, over as many
//!    units as the leftover space allows), the constructor runs once for every
//!    object, and the slab goes on the *empty* list.
//! 2. *Allocate*: from the first *partial* slab; failing that the first
//!    *empty* slab (which moves to partial); failing that a new slab (1.).
//!    The first clear bit from the slab's search hint is taken. A slab whose
//!    last object goes moves to the *full* list.
//! 3. *Free*: the page source finds the block holding the pointer; it must
//!    carry this cache's tag, the pointer must sit exactly on an object and the
//!    object's bit must be set, otherwise an error is returned and nothing
//!    changes. A full slab becomes partial, a slab whose last object comes
//!    back becomes empty.
//! 4. *Shrink*: more than `empty_limit` empty slabs (SLUB's `min_partial`) and
//!    the surplus goes back to the page source at once; [`SlabCache::shrink`]
//!    releases every empty slab.
//!
//! # Object count and slab order
//!
//! The stride is the object size rounded up to the alignment (at least 8,
//! `ARCH_SLAB_MINALIGN`; with [`SlabFlags::HWCACHE_ALIGN`] the cache line
//! halved while the object fits in half of it). The order follows
//! `calculate_order()` in mm/slub.c: aim for at least [`MIN_OBJECTS`] objects
//! per slab, then take the smallest order from there up to
//! [`SLAB_MAX_ORDER`] (`PAGE_ALLOC_COSTLY_ORDER`) whose wasted space
//! (descriptor, padding and leftover) is at most 1/16 of the slab, relaxing to
//! 1/8, 1/4 and 1/2; objects too large for that get the smallest order that
//! holds one. At most [`MAX_OBJS_PER_SLAB`] objects fit a slab.
//!
//! # Locking
//!
//! `&mut self` everywhere: the module wraps each cache in a lock. A cache
//! calls into the page source with its lock held, so the lock order is: cache
//! lock, then zone lock.

use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU32, Ordering};

use crate::buddy::{Buddy, BuddyError, PageMeta, Region, MAX_PAGE_ORDER, PAGE_SHIFT, PAGE_SIZE};

/// Tags below this are for public owners of blocks (such as
/// [`crate::buddy::TAG_NONE`]); caches (and each kmalloc mirror's large
/// blocks) get tags from here up, which the buddy's public calls refuse
/// ([`crate::buddy::FIRST_PROTECTED_TAG`]).
pub const FIRST_CACHE_TAG: u32 = crate::buddy::FIRST_PROTECTED_TAG;
/// Size of a cache line, the colour unit.
pub const CACHE_LINE_SIZE: usize = 64;
/// Minimum object alignment (`ARCH_SLAB_MINALIGN`).
pub const SLAB_MIN_ALIGN: usize = 8;
/// Largest order chosen for a slab when objects fit in it
/// (`PAGE_ALLOC_COSTLY_ORDER`).
pub const SLAB_MAX_ORDER: u32 = 3;
/// Objects per slab the order choice aims for (SLUB's `4 * (fls(nr_cpus) +
/// 1)` for 2 CPUs).
pub const MIN_OBJECTS: usize = 12;
/// Most objects in one slab.
pub const MAX_OBJS_PER_SLAB: usize = 4096;
/// Longest cache name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 32;

/// Next tag for a new cache; tags are never reused, so two caches can never
/// claim the same slab.
static NEXT_CACHE_TAG: AtomicU32 = AtomicU32::new(FIRST_CACHE_TAG);

/// The right to allocate and free blocks of a [`PageSource`] under one owner
/// tag.
///
/// Public tags (below [`FIRST_CACHE_TAG`]) anyone may name with
/// [`OwnerTag::public`]. Protected ones are made only by `new_owner_tag`,
/// never twice and never copied: a cache or kmalloc mirror keeps its token
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

/// A fresh owner tag at or above [`FIRST_CACHE_TAG`], never given out before
/// (for a cache, or for the large blocks of one kmalloc mirror).
pub(crate) fn new_owner_tag() -> Result<OwnerTag, SlabError> {
    NEXT_CACHE_TAG
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| t.checked_add(1))
        .map(OwnerTag)
        .map_err(|_| SlabError::TagsExhausted)
}

/// Magic number at the start of every slab descriptor.
const SLAB_MAGIC: u32 = 0x51AB_CAFE;

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
///   not the head of an allocated block of that order and tag.
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
}

/// Cache creation flags (a subset of the kernel's `SLAB_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlabFlags(u32);

impl SlabFlags {
    /// No flags.
    pub const NONE: SlabFlags = SlabFlags(0);
    /// Align objects on a cache line, halved while objects fit in half.
    pub const HWCACHE_ALIGN: SlabFlags = SlabFlags(1 << 13);

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: SlabFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets of flags.
    pub const fn union(self, other: SlabFlags) -> SlabFlags {
        SlabFlags(self.0 | other.0)
    }
}

/// Errors of the slab caches. The state is unchanged when one is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlabError {
    /// The name is empty, longer than [`MAX_NAME_LEN`] or contains white space.
    InvalidName,
    /// The object size is zero.
    InvalidSize,
    /// The alignment is not a power of two or larger than the largest block.
    InvalidAlign,
    /// No slab order up to `MAX_PAGE_ORDER` holds one object.
    ObjectTooLarge,
    /// Every cache tag has been used.
    TagsExhausted,
    /// The page source has no block for a new slab.
    OutOfMemory,
    /// A null pointer was freed.
    NullPointer,
    /// The pointer is not in a slab of this cache.
    ForeignPointer,
    /// The pointer is in a slab of this cache but not at the start of an object.
    NotAnObject,
    /// The object is already free.
    DoubleFree,
    /// Objects are still allocated (count given).
    Busy(u64),
    /// The page source refused to take a slab back.
    PageSource(BuddyError),
    /// A slab descriptor is inconsistent (a bug or a scribbled descriptor).
    Corrupt,
}

impl core::fmt::Display for SlabError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::InvalidName => f.write_str("invalid cache name"),
            Self::InvalidSize => f.write_str("invalid object size"),
            Self::InvalidAlign => f.write_str("invalid alignment"),
            Self::ObjectTooLarge => f.write_str("object too large for a slab"),
            Self::TagsExhausted => f.write_str("no cache tag left"),
            Self::OutOfMemory => f.write_str("out of memory"),
            Self::NullPointer => f.write_str("null pointer"),
            Self::ForeignPointer => f.write_str("pointer not in a slab of this cache"),
            Self::NotAnObject => f.write_str("pointer not at the start of an object"),
            Self::DoubleFree => f.write_str("double free"),
            Self::Busy(n) => write!(f, "{n} objects still allocated"),
            Self::PageSource(e) => write!(f, "page source: {e}"),
            Self::Corrupt => f.write_str("slab descriptor corrupt"),
        }
    }
}

/// A violated invariant, found by [`SlabCache::check_invariants`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlabInvariantError {
    /// A list is broken (bad link, wrong length, slab on the wrong list);
    /// the list: 0 partial, 1 full, 2 empty.
    List(u8),
    /// A slab descriptor is bad (magic, tag, colour or object pointer).
    Descriptor,
    /// A slab's bitmap disagrees with its in-use count or list.
    Bitmap,
    /// The page source does not describe a slab as this cache's block.
    PageSource,
    /// The cache's object counter is wrong.
    Totals,
}

/// The numbers /proc/slabinfo prints for a cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlabInfo {
    /// Objects allocated.
    pub active_objs: u64,
    /// Objects in all slabs.
    pub num_objs: u64,
    /// Bytes per object including alignment padding (the kernel's `s->size`).
    pub objsize: u32,
    /// Objects per slab.
    pub objperslab: u32,
    /// Pages per slab.
    pub pagesperslab: u32,
    /// Slabs with at least one object allocated.
    pub active_slabs: u64,
    /// All slabs.
    pub num_slabs: u64,
}

/// Which list a slab is on.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ListKind {
    Partial = 0,
    Full = 1,
    Empty = 2,
}

/// The descriptor at the start of every slab; the in-use bitmap follows it.
#[repr(C)]
struct SlabHeader {
    magic: u32,
    tag: u32,
    next: *mut SlabHeader,
    prev: *mut SlabHeader,
    /// First object (after descriptor, padding and colour).
    objs: *mut u8,
    /// Objects in use.
    inuse: u32,
    /// First bitmap word that may have a clear bit.
    hint: u16,
    /// The [`ListKind`] the slab is on.
    list: u8,
}

const HEADER_SIZE: usize = core::mem::size_of::<SlabHeader>();
const _: () = assert!(HEADER_SIZE.is_multiple_of(8) && core::mem::align_of::<SlabHeader>() <= 8);

/// A doubly linked list of slab descriptors.
#[derive(Clone, Copy, Debug)]
struct SlabList {
    head: *mut SlabHeader,
    len: u64,
}

impl SlabList {
    const EMPTY: SlabList = SlabList {
        head: ptr::null_mut(),
        len: 0,
    };
}

/// A cache name stored inline (no allocation).
#[derive(Clone, Copy)]
struct CacheName {
    bytes: [u8; MAX_NAME_LEN],
    len: u8,
}

/// Slab geometry for one order.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    order: u32,
    objects: usize,
    /// Offset of object 0 of an uncoloured slab.
    first_offset: usize,
    /// Bytes of the slab used by nothing (waste besides the descriptor).
    leftover: usize,
}

/// Round `x` up to `align` (a power of two), or `None` on overflow.
const fn align_up(x: usize, align: usize) -> Option<usize> {
    match x.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

/// Bytes of descriptor plus bitmap for `objects` objects.
const fn header_len(objects: usize) -> usize {
    HEADER_SIZE + objects.div_ceil(64) * 8
}

/// How many objects of `stride` bytes aligned to `align` fit a slab of
/// `order`, with the descriptor in front.
fn geometry(order: u32, stride: usize, align: usize) -> Option<Geometry> {
    let slab_bytes = PAGE_SIZE.checked_shl(order)?;
    let mut objects = MAX_OBJS_PER_SLAB.min(slab_bytes / stride);
    loop {
        let first = align_up(header_len(objects), align)?;
        let fit = slab_bytes.saturating_sub(first) / stride;
        if fit >= objects {
            break;
        }
        objects = fit;
    }
    if objects == 0 {
        return None;
    }
    let first_offset = align_up(header_len(objects), align)?;
    Some(Geometry {
        order,
        objects,
        first_offset,
        leftover: slab_bytes - first_offset - objects * stride,
    })
}

/// The slab order and object count for `stride`, as described in the module
/// documentation (`calculate_order()` in mm/slub.c).
fn calculate_geometry(stride: usize, align: usize) -> Option<Geometry> {
    let max_objects = geometry(SLAB_MAX_ORDER, stride, align).map_or(1, |g| g.objects);
    let min_objects = MIN_OBJECTS.min(max_objects);
    let mut min_order = 0;
    while min_order < SLAB_MAX_ORDER
        && geometry(min_order, stride, align).is_none_or(|g| g.objects < min_objects)
    {
        min_order += 1;
    }
    let mut fraction = 16;
    while fraction > 1 {
        for order in min_order..=SLAB_MAX_ORDER {
            if let Some(g) = geometry(order, stride, align) {
                let slab_bytes = PAGE_SIZE << order;
                if g.first_offset + g.leftover <= slab_bytes / fraction {
                    return Some(g);
                }
            }
        }
        fraction /= 2;
    }
    (0..=MAX_PAGE_ORDER).find_map(|order| geometry(order, stride, align))
}

/// A slab cache, the mirror's `struct kmem_cache`.
///
/// # Invariants
///
/// Every slab on the lists is a block of `order` allocated from the page
/// source the cache is used with, under `tag`, starting with a valid slab
/// descriptor (`SlabHeader`); `lists[k]` holds exactly the slabs whose `list`
/// is `k`; `active_objs` is the sum of the slabs' `inuse`.
pub struct SlabCache {
    name: CacheName,
    tag: OwnerTag,
    object_size: usize,
    size: usize,
    align: usize,
    flags: SlabFlags,
    ctor: Option<fn(*mut u8)>,
    order: u32,
    objects: u32,
    first_offset: usize,
    colour_off: usize,
    colours: u32,
    colour_next: u32,
    bitmap_words: u16,
    lists: [SlabList; 3],
    active_objs: u64,
    empty_limit: u64,
}

// SAFETY: The raw pointers in a cache point into slabs that the cache owns
// exclusively (blocks allocated under its unique tag); nothing is tied to a
// thread, so the cache may move to another thread with its slabs.
unsafe impl Send for SlabCache {}

impl SlabCache {
    /// Creates a cache of objects of `size` bytes aligned to `align` (0 for
    /// the default), like `kmem_cache_create()`. `ctor` runs on every object
    /// of a new slab; objects must be freed in their constructed state.
    pub fn new(
        name: &str,
        size: usize,
        align: usize,
        flags: SlabFlags,
        ctor: Option<fn(*mut u8)>,
    ) -> Result<SlabCache, SlabError> {
        if name.is_empty()
            || name.len() > MAX_NAME_LEN
            || name
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(SlabError::InvalidName);
        }
        if size == 0 {
            return Err(SlabError::InvalidSize);
        }
        if align != 0 && (!align.is_power_of_two() || align > PAGE_SIZE << MAX_PAGE_ORDER) {
            return Err(SlabError::InvalidAlign);
        }
        // calculate_alignment() in mm/slab_common.c.
        let mut align = align.max(SLAB_MIN_ALIGN);
        if flags.contains(SlabFlags::HWCACHE_ALIGN) {
            let mut ralign = CACHE_LINE_SIZE;
            while size <= ralign / 2 {
                ralign /= 2;
            }
            align = align.max(ralign);
        }
        let stride = align_up(size, align).ok_or(SlabError::ObjectTooLarge)?;
        let geo = calculate_geometry(stride, align).ok_or(SlabError::ObjectTooLarge)?;
        let colour_off = CACHE_LINE_SIZE.max(align);
        let tag = new_owner_tag()?;
        let mut bytes = [0; MAX_NAME_LEN];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        // set_min_partial() in mm/slub.c: min(10, max(5, ilog2(size) / 2)).
        let empty_limit = u64::from((size.ilog2() / 2).clamp(5, 10));
        Ok(SlabCache {
            name: CacheName {
                bytes,
                len: name.len() as u8,
            },
            tag,
            object_size: size,
            size: stride,
            align,
            flags,
            ctor,
            order: geo.order,
            objects: geo.objects as u32,
            first_offset: geo.first_offset,
            colour_off,
            colours: (geo.leftover / colour_off) as u32 + 1,
            colour_next: 0,
            bitmap_words: geo.objects.div_ceil(64) as u16,
            lists: [SlabList::EMPTY; 3],
            active_objs: 0,
            empty_limit,
        })
    }

    /// The cache's name.
    pub fn name(&self) -> &str {
        core::str::from_utf8(
            self.name
                .bytes
                .get(..usize::from(self.name.len))
                .unwrap_or(&[]),
        )
        .unwrap_or("")
    }

    /// The owner tag of this cache's slabs in the page metadata.
    pub fn tag(&self) -> u32 {
        self.tag.get()
    }

    /// Object size requested at creation.
    pub fn object_size(&self) -> usize {
        self.object_size
    }

    /// Bytes between objects (object size rounded to the alignment).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Object alignment.
    pub fn align(&self) -> usize {
        self.align
    }

    /// Creation flags.
    pub fn flags(&self) -> SlabFlags {
        self.flags
    }

    /// Order of every slab.
    pub fn order(&self) -> u32 {
        self.order
    }

    /// Objects per slab.
    pub fn objects_per_slab(&self) -> u32 {
        self.objects
    }

    /// Number of distinct colour offsets slabs cycle through.
    pub fn colours(&self) -> u32 {
        self.colours
    }

    /// Most empty slabs kept before the surplus is released.
    pub fn empty_limit(&self) -> u64 {
        self.empty_limit
    }

    /// Sets the number of empty slabs kept (surplus released on later frees).
    pub fn set_empty_limit(&mut self, limit: u64) {
        self.empty_limit = limit;
    }

    /// Objects allocated.
    pub fn active_objs(&self) -> u64 {
        self.active_objs
    }

    /// The numbers /proc/slabinfo prints.
    pub fn info(&self) -> SlabInfo {
        let [partial, full, empty] = self.lists;
        let num_slabs = partial.len + full.len + empty.len;
        SlabInfo {
            active_objs: self.active_objs,
            num_objs: num_slabs.saturating_mul(u64::from(self.objects)),
            objsize: u32::try_from(self.size).unwrap_or(u32::MAX),
            objperslab: self.objects,
            pagesperslab: 1 << self.order,
            active_slabs: partial.len + full.len,
            num_slabs,
        }
    }

    /// Allocates an object (`kmem_cache_alloc()`).
    pub fn alloc<P: PageSource>(&mut self, src: &mut P) -> Result<NonNull<u8>, SlabError> {
        let slab = if !self.lists[ListKind::Partial as usize].head.is_null() {
            self.lists[ListKind::Partial as usize].head
        } else {
            if self.lists[ListKind::Empty as usize].head.is_null() {
                self.grow(src)?;
            }
            let slab = self.lists[ListKind::Empty as usize].head;
            // SAFETY: `slab` heads the empty list (just grown if needed), so
            // per the type invariant it is a live descriptor of this cache.
            unsafe { self.move_slab(slab, ListKind::Partial) };
            slab
        };
        let words = usize::from(self.bitmap_words);
        // SAFETY: `slab` is a live descriptor of this cache with a bitmap of
        // `bitmap_words` words after it, and being on the partial list it has
        // a clear bit. No other reference to the descriptor exists.
        let obj = unsafe {
            let bitmap = bitmap_of(slab);
            let mut w = usize::from((*slab).hint);
            while w < words && *bitmap.add(w) == u64::MAX {
                w += 1;
            }
            if w >= words {
                return Err(SlabError::Corrupt);
            }
            let word = *bitmap.add(w);
            let bit = word.trailing_ones() as usize;
            *bitmap.add(w) = word | (1 << bit);
            (*slab).hint = w as u16;
            (*slab).inuse += 1;
            if (*slab).inuse == self.objects {
                self.move_slab(slab, ListKind::Full);
            }
            (*slab).objs.add((w * 64 + bit) * self.size)
        };
        self.active_objs += 1;
        NonNull::new(obj).ok_or(SlabError::Corrupt)
    }

    /// Frees an object (`kmem_cache_free()`). Pointers that are not
    /// allocated objects of this cache are reported, never dereferenced.
    pub fn free<P: PageSource>(&mut self, src: &mut P, ptr: *mut u8) -> Result<(), SlabError> {
        if ptr.is_null() {
            return Err(SlabError::NullPointer);
        }
        let block = src.block_of(ptr).ok_or(SlabError::ForeignPointer)?;
        self.free_in_block(src, block, ptr)
    }

    /// [`SlabCache::free`] once the page source has described `ptr`'s block.
    pub(crate) fn free_in_block<P: PageSource>(
        &mut self,
        src: &mut P,
        block: Block,
        ptr: *mut u8,
    ) -> Result<(), SlabError> {
        if block.tag != self.tag.get() || block.order != self.order {
            return Err(SlabError::ForeignPointer);
        }
        let slab = block.head.as_ptr().cast::<SlabHeader>();
        // SAFETY: The block carries this cache's tag, and tags are unique, so
        // it is one of this cache's slabs: its descriptor and bitmap are
        // initialised and only this cache (borrowed mutably) accesses them.
        unsafe {
            if (*slab).magic != SLAB_MAGIC || (*slab).tag != self.tag.get() {
                return Err(SlabError::Corrupt);
            }
            let offset = ptr
                .addr()
                .checked_sub((*slab).objs.addr())
                .ok_or(SlabError::NotAnObject)?;
            if offset % self.size != 0 {
                return Err(SlabError::NotAnObject);
            }
            let index = offset / self.size;
            if index >= self.objects as usize {
                return Err(SlabError::NotAnObject);
            }
            let (w, bit) = (index / 64, index % 64);
            let bitmap = bitmap_of(slab);
            let word = *bitmap.add(w);
            if word & (1 << bit) == 0 {
                return Err(SlabError::DoubleFree);
            }
            *bitmap.add(w) = word & !(1 << bit);
            if usize::from((*slab).hint) > w {
                (*slab).hint = w as u16;
            }
            let was_full = (*slab).inuse == self.objects;
            (*slab).inuse -= 1;
            self.active_objs -= 1;
            if (*slab).inuse == 0 {
                self.move_slab(slab, ListKind::Empty);
                if self.lists[ListKind::Empty as usize].len > self.empty_limit {
                    // Best effort: a refusal leaves the slab cached.
                    let _ = self.discard_slab(src, slab);
                }
            } else if was_full {
                self.move_slab(slab, ListKind::Partial);
            }
        }
        Ok(())
    }

    /// Whether `ptr` is an allocated object of this cache.
    pub fn owns<P: PageSource>(&self, src: &P, ptr: *const u8) -> bool {
        let Some(block) = src.block_of(ptr) else {
            return false;
        };
        if block.tag != self.tag.get() || block.order != self.order {
            return false;
        }
        let slab = block.head.as_ptr().cast::<SlabHeader>();
        // SAFETY: As in `free_in_block`: the block is one of this cache's
        // slabs, with an initialised descriptor and bitmap; reads only.
        unsafe {
            let Some(offset) = ptr.addr().checked_sub((*slab).objs.addr()) else {
                return false;
            };
            // Checked: a division the compiler cannot prove nonzero would
            // leave a panic call at the end of this function.
            let (Some(index), Some(0)) =
                (offset.checked_div(self.size), offset.checked_rem(self.size))
            else {
                return false;
            };
            if index >= self.objects as usize {
                return false;
            }
            let bitmap = bitmap_of(slab);
            *bitmap.add(index / 64) & (1 << (index % 64)) != 0
        }
    }

    /// Releases every empty slab to the page source; returns how many.
    pub fn shrink<P: PageSource>(&mut self, src: &mut P) -> Result<u64, SlabError> {
        let mut released = 0;
        loop {
            let slab = self.lists[ListKind::Empty as usize].head;
            if slab.is_null() {
                return Ok(released);
            }
            // SAFETY: `slab` heads the empty list, a live descriptor.
            unsafe { self.discard_slab(src, slab)? };
            released += 1;
        }
    }

    /// Releases every slab if no object is allocated (`kmem_cache_destroy()`);
    /// otherwise reports how many objects are.
    pub fn destroy<P: PageSource>(&mut self, src: &mut P) -> Result<(), SlabError> {
        if self.active_objs != 0 {
            return Err(SlabError::Busy(self.active_objs));
        }
        self.shrink(src).map(|_| ())
    }

    /// Verifies the type invariants against the page source the cache uses.
    /// Costs O(slabs * objects per slab); meant for tests and debug builds.
    pub fn check_invariants<P: PageSource>(&self, src: &P) -> Result<(), SlabInvariantError> {
        let words = usize::from(self.bitmap_words);
        let mut active = 0u64;
        for (k, list) in self.lists.iter().enumerate() {
            let mut prev: *mut SlabHeader = ptr::null_mut();
            let mut slab = list.head;
            for _ in 0..list.len {
                if slab.is_null() {
                    return Err(SlabInvariantError::List(k as u8));
                }
                let block = src
                    .block_of(slab.cast::<u8>())
                    .ok_or(SlabInvariantError::PageSource)?;
                if block.head.as_ptr() != slab.cast::<u8>()
                    || block.tag != self.tag.get()
                    || block.order != self.order
                {
                    return Err(SlabInvariantError::PageSource);
                }
                // SAFETY: The page source says `slab` heads a block of this
                // cache, so it is one of its slabs with a live descriptor.
                unsafe {
                    let h = &*slab;
                    if h.magic != SLAB_MAGIC || h.tag != self.tag.get() {
                        return Err(SlabInvariantError::Descriptor);
                    }
                    if usize::from(h.list) != k || h.prev != prev {
                        return Err(SlabInvariantError::List(k as u8));
                    }
                    let colour = h
                        .objs
                        .addr()
                        .checked_sub(slab.addr() + self.first_offset)
                        .ok_or(SlabInvariantError::Descriptor)?;
                    if colour % self.colour_off != 0
                        || colour / self.colour_off >= self.colours as usize
                    {
                        return Err(SlabInvariantError::Descriptor);
                    }
                    let bitmap = core::slice::from_raw_parts(bitmap_of(slab), words);
                    let mut used = 0u32;
                    for (w, &word) in bitmap.iter().enumerate() {
                        let valid = (self.objects as usize - w * 64).min(64);
                        let pad = if valid == 64 { 0 } else { u64::MAX << valid };
                        if word & pad != pad {
                            return Err(SlabInvariantError::Bitmap);
                        }
                        used += (word & !pad).count_ones();
                        if w < usize::from(h.hint) && word != u64::MAX {
                            return Err(SlabInvariantError::Bitmap);
                        }
                    }
                    let expected_ok = match k {
                        0 => used > 0 && used < self.objects,
                        1 => used == self.objects,
                        _ => used == 0,
                    };
                    if used != h.inuse || !expected_ok {
                        return Err(SlabInvariantError::Bitmap);
                    }
                    active += u64::from(used);
                    prev = slab;
                    slab = h.next;
                }
            }
            if !slab.is_null() {
                return Err(SlabInvariantError::List(k as u8));
            }
        }
        if active != self.active_objs {
            return Err(SlabInvariantError::Totals);
        }
        Ok(())
    }

    /// Allocates, initialises and constructs a new slab on the empty list.
    fn grow<P: PageSource>(&mut self, src: &mut P) -> Result<(), SlabError> {
        let head = src
            .alloc_block(self.order, &self.tag)
            .ok_or(SlabError::OutOfMemory)?;
        let colour = self.colour_next as usize * self.colour_off;
        self.colour_next += 1;
        if self.colour_next >= self.colours {
            self.colour_next = 0;
        }
        let slab = head.as_ptr().cast::<SlabHeader>();
        let words = usize::from(self.bitmap_words);
        // SAFETY: The page source hands us `PAGE_SIZE << order` bytes, aligned
        // to that size and exclusively ours; the geometry computed at creation
        // fits descriptor, bitmap, padding, the largest colour and all objects
        // in that size.
        unsafe {
            let objs = head.as_ptr().add(self.first_offset + colour);
            ptr::write(
                slab,
                SlabHeader {
                    magic: SLAB_MAGIC,
                    tag: self.tag.get(),
                    next: ptr::null_mut(),
                    prev: ptr::null_mut(),
                    objs,
                    inuse: 0,
                    hint: 0,
                    list: ListKind::Empty as u8,
                },
            );
            let bitmap = bitmap_of(slab);
            for w in 0..words {
                let valid = (self.objects as usize - w * 64).min(64);
                let pad = if valid == 64 { 0 } else { u64::MAX << valid };
                bitmap.add(w).write(pad);
            }
            if let Some(ctor) = self.ctor {
                for i in 0..self.objects as usize {
                    ctor(objs.add(i * self.size));
                }
            }
            self.list_add(slab, ListKind::Empty);
        }
        Ok(())
    }

    /// Gives the empty slab `slab` back to the page source.
    ///
    /// # Safety
    ///
    /// `slab` must be a live descriptor of this cache on the empty list.
    unsafe fn discard_slab<P: PageSource>(
        &mut self,
        src: &mut P,
        slab: *mut SlabHeader,
    ) -> Result<(), SlabError> {
        // SAFETY: `slab` is live (caller); unlink before the memory goes.
        unsafe { self.list_del(slab) };
        let head = NonNull::new(slab.cast::<u8>()).ok_or(SlabError::Corrupt)?;
        if let Err(e) = src.free_block(head, self.order, &self.tag) {
            // SAFETY: The block was not freed, so the descriptor is still live.
            unsafe { self.list_add(slab, ListKind::Empty) };
            return Err(SlabError::PageSource(e));
        }
        Ok(())
    }

    /// Moves `slab` from its list to `to`.
    ///
    /// # Safety
    ///
    /// `slab` must be a live descriptor of this cache, on one of its lists.
    unsafe fn move_slab(&mut self, slab: *mut SlabHeader, to: ListKind) {
        // SAFETY: Forwarded from the caller.
        unsafe {
            self.list_del(slab);
            self.list_add(slab, to);
        }
    }

    /// Pushes `slab` on list `to`.
    ///
    /// # Safety
    ///
    /// `slab` must be a live descriptor of this cache, on none of its lists.
    unsafe fn list_add(&mut self, slab: *mut SlabHeader, to: ListKind) {
        let list = &mut self.lists[to as usize];
        // SAFETY: `slab` and the list's head (if any) are live descriptors.
        unsafe {
            (*slab).next = list.head;
            (*slab).prev = ptr::null_mut();
            (*slab).list = to as u8;
            if !list.head.is_null() {
                (*list.head).prev = slab;
            }
        }
        list.head = slab;
        list.len += 1;
    }

    /// Unlinks `slab` from its list.
    ///
    /// # Safety
    ///
    /// `slab` must be a live descriptor of this cache, on one of its lists.
    unsafe fn list_del(&mut self, slab: *mut SlabHeader) {
        // SAFETY: `slab` and its neighbours are live descriptors.
        unsafe {
            let list = &mut self.lists[usize::from((*slab).list)];
            let (next, prev) = ((*slab).next, (*slab).prev);
            if prev.is_null() {
                list.head = next;
            } else {
                (*prev).next = next;
            }
            if !next.is_null() {
                (*next).prev = prev;
            }
            list.len -= 1;
            (*slab).next = ptr::null_mut();
            (*slab).prev = ptr::null_mut();
        }
    }
}

/// The bitmap following the descriptor `slab`.
///
/// # Safety
///
/// `slab` must point to a slab descriptor, which its bitmap follows.
unsafe fn bitmap_of(slab: *mut SlabHeader) -> *mut u64 {
    // SAFETY: The bitmap starts right after the descriptor, in the same slab.
    unsafe { slab.add(1).cast::<u64>() }
}
