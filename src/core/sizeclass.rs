// SPDX-License-Identifier: GPL-2.0

//! kmalloc size classes: memlab's mirror of `kmalloc()`/`kfree()`/`ksize()`.
//!
//! This file is plain `core` Rust: the kernel module and the host test crate
//! compile the very same source.
//!
//! Requests up to [`KMALLOC_MAX_CACHE_SIZE`] are rounded up to one of the
//! kernel's size classes (8, 16, 32, 64, 96, 128, 192, 256, 512, 1k, 2k, 4k,
//! 8k; `__kmalloc_index()` in include/linux/slab.h) and served by that class's
//! [`SlabCache`]; each class is aligned to the largest power of two dividing
//! its size, as `create_boot_cache()` does for kmalloc caches. Larger requests
//! up to [`KMALLOC_MAX_SIZE`] take a whole block of `get_order(size)` straight
//! from the page source, tagged with the [`Kmalloc`]'s own large-block tag
//! ([`Kmalloc::large_tag`]), a protected tag like a cache's, so no public buddy
//! call and no other kmalloc mirror can forge, retag or free such a block.
//! [`Kmalloc::kfree`] tells the two apart from the page metadata of the
//! pointer's block, like the kernel's `kfree()` looks at the folio.

use core::ptr::NonNull;

use crate::buddy::{BuddyError, MAX_PAGE_ORDER, PAGE_SHIFT, PAGE_SIZE};
use crate::slab::{
    Block, OwnerTag, PageSource, SlabCache, SlabError, SlabFlags, SlabInvariantError,
    DEFAULT_NR_CPUS,
};

/// Smallest size class (`KMALLOC_MIN_SIZE`).
pub const KMALLOC_MIN_SIZE: usize = 8;
/// Largest size served by a slab cache (`KMALLOC_MAX_CACHE_SIZE`).
pub const KMALLOC_MAX_CACHE_SIZE: usize = 8192;
/// Largest size kmalloc serves (`KMALLOC_MAX_SIZE`): one block of the highest
/// order.
pub const KMALLOC_MAX_SIZE: usize = PAGE_SIZE << MAX_PAGE_ORDER;
/// Number of size classes.
pub const NR_KMALLOC_CLASSES: usize = 13;
/// What `kmalloc(0)` returns and `kfree` accepts as a no-op
/// (`ZERO_SIZE_PTR`).
pub const ZERO_SIZE_PTR: *mut u8 = core::ptr::without_provenance_mut(16);

/// Object size of every class, smallest first.
const CLASS_SIZES: [usize; NR_KMALLOC_CLASSES] = [
    8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192,
];
/// Cache names of every class, as the kernel names them (`kmalloc_info[]`):
/// the normal set and the GFP_DMA set (`dma-kmalloc-*`).
const CLASS_NAMES: [[&str; 2]; NR_KMALLOC_CLASSES] = [
    ["kmalloc-8", "dma-kmalloc-8"],
    ["kmalloc-16", "dma-kmalloc-16"],
    ["kmalloc-32", "dma-kmalloc-32"],
    ["kmalloc-64", "dma-kmalloc-64"],
    ["kmalloc-96", "dma-kmalloc-96"],
    ["kmalloc-128", "dma-kmalloc-128"],
    ["kmalloc-192", "dma-kmalloc-192"],
    ["kmalloc-256", "dma-kmalloc-256"],
    ["kmalloc-512", "dma-kmalloc-512"],
    ["kmalloc-1k", "dma-kmalloc-1k"],
    ["kmalloc-2k", "dma-kmalloc-2k"],
    ["kmalloc-4k", "dma-kmalloc-4k"],
    ["kmalloc-8k", "dma-kmalloc-8k"],
];

/// One kmalloc size class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SizeClass(u8);

impl SizeClass {
    /// Every class, smallest first.
    pub const ALL: [SizeClass; NR_KMALLOC_CLASSES] = {
        let mut all = [SizeClass(0); NR_KMALLOC_CLASSES];
        let mut i = 0;
        while i < NR_KMALLOC_CLASSES {
            all[i] = SizeClass(i as u8);
            i += 1;
        }
        all
    };

    /// The class serving a request of `size` bytes, or `None` for 0 and for
    /// sizes above [`KMALLOC_MAX_CACHE_SIZE`].
    pub const fn for_size(size: usize) -> Option<SizeClass> {
        let index = match size {
            0 => return None,
            1..=8 => 0,
            9..=16 => 1,
            17..=32 => 2,
            33..=64 => 3,
            65..=96 => 4,
            97..=128 => 5,
            129..=192 => 6,
            193..=256 => 7,
            257..=512 => 8,
            513..=1024 => 9,
            1025..=2048 => 10,
            2049..=4096 => 11,
            4097..=8192 => 12,
            _ => return None,
        };
        Some(SizeClass(index))
    }

    /// Position of the class in [`SizeClass::ALL`].
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// Object size of the class.
    pub const fn size(self) -> usize {
        CLASS_SIZES[self.0 as usize]
    }

    /// Cache name of the class (`kmalloc-96`, `kmalloc-4k`, ...).
    pub const fn name(self) -> &'static str {
        CLASS_NAMES[self.0 as usize][0]
    }

    /// Object alignment of the class: the largest power of two dividing its
    /// size.
    pub const fn align(self) -> usize {
        1 << self.size().trailing_zeros()
    }
}

/// The smallest order whose block holds `size` bytes (the kernel's
/// `get_order()`; 0 for 0 bytes).
pub const fn get_order(size: usize) -> u32 {
    let pages = size.saturating_sub(1) >> PAGE_SHIFT;
    usize::BITS - pages.leading_zeros()
}

/// The usable size of a `kmalloc(size)`, without allocating: the class size,
/// or the whole block for large requests; `None` above [`KMALLOC_MAX_SIZE`].
pub const fn kmalloc_size_roundup(size: usize) -> Option<usize> {
    if size == 0 {
        return Some(0);
    }
    match SizeClass::for_size(size) {
        Some(class) => Some(class.size()),
        None if size <= KMALLOC_MAX_SIZE => Some(PAGE_SIZE << get_order(size)),
        None => None,
    }
}

/// Errors of the kmalloc mirror. The state is unchanged when one is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KmallocError {
    /// The request is above [`KMALLOC_MAX_SIZE`].
    TooLarge(usize),
    /// The page source has no block for it.
    OutOfMemory,
    /// The pointer is neither a kmalloc object nor a large kmalloc block.
    ForeignPointer,
    /// The pointer is inside a large kmalloc block, not at its start.
    NotBlockHead,
    /// A size-class cache reported an error.
    Slab(SlabError),
    /// The page source reported an error.
    Page(BuddyError),
}

impl From<SlabError> for KmallocError {
    fn from(e: SlabError) -> Self {
        match e {
            SlabError::OutOfMemory => KmallocError::OutOfMemory,
            SlabError::ForeignPointer => KmallocError::ForeignPointer,
            e => KmallocError::Slab(e),
        }
    }
}

impl core::fmt::Display for KmallocError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooLarge(size) => write!(f, "{size} bytes is above KMALLOC_MAX_SIZE"),
            Self::OutOfMemory => f.write_str("out of memory"),
            Self::ForeignPointer => f.write_str("pointer not from kmalloc"),
            Self::NotBlockHead => f.write_str("pointer inside a large kmalloc block"),
            Self::Slab(e) => write!(f, "slab: {e}"),
            Self::Page(e) => write!(f, "page source: {e}"),
        }
    }
}

/// The kmalloc mirror: one [`SlabCache`] per size class over a page source.
pub struct Kmalloc {
    caches: [SlabCache; NR_KMALLOC_CLASSES],
    /// Protected owner tag of this mirror's large blocks (unique).
    large_tag: OwnerTag,
    large_blocks: u64,
    large_pages: u64,
}

impl Kmalloc {
    /// Creates the size-class caches (no memory is taken until used), with
    /// slabs sized as SLUB sizes them on [`DEFAULT_NR_CPUS`] CPUs.
    pub fn new() -> Result<Kmalloc, SlabError> {
        Self::new_for_cpus(false, DEFAULT_NR_CPUS)
    }

    /// The GFP_DMA set of size classes (`dma-kmalloc-*`), kept apart from
    /// the others as the kernel keeps it, so its slabs hold only the pages
    /// they were filled from.
    pub fn new_dma() -> Result<Kmalloc, SlabError> {
        Self::new_for_cpus(true, DEFAULT_NR_CPUS)
    }

    /// The size classes (`dma-kmalloc-*` if `dma`) with slabs sized as SLUB
    /// sizes them on `nr_cpus` CPUs.
    pub fn new_for_cpus(dma: bool, nr_cpus: u32) -> Result<Kmalloc, SlabError> {
        let mut k = core::mem::MaybeUninit::<Kmalloc>::uninit();
        // SAFETY: `k` is valid for writes and aligned; it is initialised
        // exactly when `init_at_for_cpus` returns `Ok`.
        unsafe {
            Self::init_at_for_cpus(k.as_mut_ptr(), dma, nr_cpus)?;
            Ok(k.assume_init())
        }
    }

    /// Builds a `Kmalloc` in place at `slot`, one cache at a time, so that no
    /// stack frame ever holds all of them (a `Kmalloc` is over 2 KiB and a
    /// kernel stack 16 KiB). `dma` picks the `dma-kmalloc-*` names. If it
    /// fails, the caches already written are simply abandoned: a `SlabCache`
    /// owns no memory until it allocates.
    ///
    /// # Safety
    ///
    /// `slot` must be valid for writes and aligned for a `Kmalloc`. It is
    /// initialised if and only if this returns `Ok`.
    pub unsafe fn init_at(slot: *mut Kmalloc, dma: bool) -> Result<(), SlabError> {
        // SAFETY: Forwarded.
        unsafe { Self::init_at_for_cpus(slot, dma, DEFAULT_NR_CPUS) }
    }

    /// [`Kmalloc::init_at`] with slabs sized for `nr_cpus` CPUs.
    ///
    /// # Safety
    ///
    /// As for [`Kmalloc::init_at`].
    pub unsafe fn init_at_for_cpus(
        slot: *mut Kmalloc,
        dma: bool,
        nr_cpus: u32,
    ) -> Result<(), SlabError> {
        let names = CLASS_NAMES.map(|n| n[usize::from(dma)]);
        let large_tag = crate::slab::new_owner_tag()?;
        // SAFETY: `slot` is valid for writes (caller); this only computes the
        // address of its `caches` field.
        let caches = unsafe { core::ptr::addr_of_mut!((*slot).caches) }.cast::<SlabCache>();
        for (i, (class, name)) in SizeClass::ALL.iter().zip(names).enumerate() {
            let (size, align) = (class.size(), class.align());
            let cache = SlabCache::new_for_cpus(name, size, align, SlabFlags::NONE, None, nr_cpus)?;
            // SAFETY: `i < NR_KMALLOC_CLASSES`: element `i` of the `caches`
            // array inside `*slot`, valid for writes.
            unsafe { caches.add(i).write(cache) };
        }
        // SAFETY: the remaining fields of `*slot`, valid for writes.
        unsafe {
            core::ptr::addr_of_mut!((*slot).large_tag).write(large_tag);
            core::ptr::addr_of_mut!((*slot).large_blocks).write(0);
            core::ptr::addr_of_mut!((*slot).large_pages).write(0);
        }
        Ok(())
    }

    /// The size-class caches, smallest first (for slabinfo).
    pub fn caches(&self) -> &[SlabCache] {
        &self.caches
    }

    /// The cache of one size class.
    pub fn cache(&self, class: SizeClass) -> &SlabCache {
        &self.caches[class.index()]
    }

    /// The cache of one size class, for its bulk calls.
    pub fn cache_mut(&mut self, class: SizeClass) -> &mut SlabCache {
        &mut self.caches[class.index()]
    }

    /// Owner tag of this mirror's large (page-sized) blocks in the page
    /// metadata; unique, and refused by the buddy's public calls.
    pub fn large_tag(&self) -> u32 {
        self.large_tag.get()
    }

    /// Large (page-sized) allocations currently live.
    pub fn large_blocks(&self) -> u64 {
        self.large_blocks
    }

    /// Pages held by large allocations.
    pub fn large_pages(&self) -> u64 {
        self.large_pages
    }

    /// Allocates `size` bytes (`kmalloc()`); `kmalloc(0)` returns
    /// [`ZERO_SIZE_PTR`].
    pub fn kmalloc<P: PageSource>(
        &mut self,
        src: &mut P,
        size: usize,
    ) -> Result<NonNull<u8>, KmallocError> {
        if size == 0 {
            return NonNull::new(ZERO_SIZE_PTR).ok_or(KmallocError::OutOfMemory);
        }
        if let Some(class) = SizeClass::for_size(size) {
            return Ok(self.caches[class.index()].alloc(src)?);
        }
        if size > KMALLOC_MAX_SIZE {
            return Err(KmallocError::TooLarge(size));
        }
        let order = get_order(size);
        let block = src
            .alloc_block(order, &self.large_tag)
            .ok_or(KmallocError::OutOfMemory)?;
        self.large_blocks += 1;
        self.large_pages += 1 << order;
        Ok(block)
    }

    /// Frees what [`Kmalloc::kmalloc`] returned (`kfree()`); null and
    /// [`ZERO_SIZE_PTR`] are accepted and ignored, as in the kernel.
    pub fn kfree<P: PageSource>(&mut self, src: &mut P, ptr: *mut u8) -> Result<(), KmallocError> {
        if ptr.is_null() || ptr == ZERO_SIZE_PTR {
            return Ok(());
        }
        let block = src.block_of(ptr).ok_or(KmallocError::ForeignPointer)?;
        if block.tag == self.large_tag.get() {
            if block.head.as_ptr() != ptr {
                return Err(KmallocError::NotBlockHead);
            }
            src.free_block(block.head, block.order, &self.large_tag)
                .map_err(KmallocError::Page)?;
            // Saturating: a block forged with this tag through the safe
            // `PageSource::alloc_block` must not underflow (panic) here.
            self.large_blocks = self.large_blocks.saturating_sub(1);
            self.large_pages = self.large_pages.saturating_sub(1 << block.order);
            return Ok(());
        }
        let cache = self.cache_of(&block)?;
        Ok(self.caches[cache].free_in_block(src, block, ptr)?)
    }

    /// The usable size of the allocation at `ptr` (`ksize()`): its class
    /// size, or the whole block for large allocations; 0 for
    /// [`ZERO_SIZE_PTR`].
    pub fn ksize<P: PageSource>(&self, src: &P, ptr: *const u8) -> Result<usize, KmallocError> {
        if ptr == ZERO_SIZE_PTR.cast_const() {
            return Ok(0);
        }
        let block = src.block_of(ptr).ok_or(KmallocError::ForeignPointer)?;
        if block.tag == self.large_tag.get() {
            if block.head.as_ptr().cast_const() != ptr {
                return Err(KmallocError::NotBlockHead);
            }
            return Ok(PAGE_SIZE << block.order);
        }
        let cache = &self.caches[self.cache_of(&block)?];
        if !cache.owns(src, ptr) {
            return Err(KmallocError::Slab(SlabError::NotAnObject));
        }
        Ok(cache.object_size())
    }

    /// Releases the empty slabs of every class; returns how many.
    pub fn shrink<P: PageSource>(&mut self, src: &mut P) -> Result<u64, KmallocError> {
        let mut released = 0;
        for cache in &mut self.caches {
            released += cache.shrink(src)?;
        }
        Ok(released)
    }

    /// Releases every slab if nothing is allocated; otherwise reports the
    /// first busy class's count.
    pub fn destroy<P: PageSource>(&mut self, src: &mut P) -> Result<(), KmallocError> {
        if self.large_blocks != 0 {
            return Err(KmallocError::Slab(SlabError::Busy(self.large_blocks)));
        }
        if let Some(busy) = self.caches.iter().find(|c| c.active_objs() != 0) {
            return Err(KmallocError::Slab(SlabError::Busy(busy.active_objs())));
        }
        self.shrink(src).map(|_| ())
    }

    /// Checks every size-class cache's invariants.
    pub fn check_invariants<P: PageSource>(&self, src: &P) -> Result<(), SlabInvariantError> {
        self.caches
            .iter()
            .try_for_each(|cache| cache.check_invariants(src))
    }

    /// Index of the size-class cache owning `block`.
    fn cache_of(&self, block: &Block) -> Result<usize, KmallocError> {
        self.caches
            .iter()
            .position(|c| c.tag() == block.tag)
            .ok_or(KmallocError::ForeignPointer)
    }
}
