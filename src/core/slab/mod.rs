// SPDX-License-Identifier: GPL-2.0

//! Slab caches over a page source: memlab's mirror of `mm/slub.c`/`mm/slab.c`.
//!
//! Plain `core` Rust, like all of src/core/: the kernel module and the host
//! test crate compile the very same source.
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
//! block head                                         block end
//! | colour | obj 0 | obj 1 | ... | obj n-1 | leftover |
//! ```
//!
//! As in SLUB, nothing but objects lives in the slab: the slab descriptor
//! (`SlabMeta`: list links, freelist head, counters) is kept in the owner
//! area of the head frame's page metadata, outside the pages, as the
//! kernel's `struct slab` overlays `struct page`. The page source finds it
//! from the slab's first byte ([`PageSource::head_of`]), and a slab's first
//! byte is any object's address aligned down to the slab size, since blocks
//! are naturally aligned. So a slab of order `o` holds `(PAGE_SIZE << o) /
//! size` objects, exactly what /proc/slabinfo shows for SLUB.
//!
//! A slab of at most 128 objects (32 bytes and up, for the kmalloc
//! caches) keeps one in-use bit per object in its descriptor, and the
//! allocator never touches its objects. A slab of more objects links its
//! free objects as SLUB does, through a free pointer inside each of them,
//! at SLUB's offset: in the middle of the object (`ALIGN_DOWN(object_size /
//! 2, 8)`), or just after it for caches with a constructor, whose objects
//! must keep their constructed state across free (that word then adds 8
//! bytes to the stride, as in SLUB). The pointer is stored XOR a cookie of
//! the object's address, so a free of a live object is recognised from one
//! load, and a double free is always caught: a valid-looking word is
//! confirmed by walking the freelist.
//!
//! # Lifecycle of a slab
//!
//! 1. *Grow*: when no slab has a free object, a block of the cache's order is
//!    taken from the page source under the cache's tag, the descriptor is
//!    written in its page metadata, the colour offset of this slab is chosen
//!    (offsets cycle in units of a 64-byte cache line, or the alignment if
//!    larger, over as many units as the leftover space allows, as the old
//!    SLAB did; SLUB does not colour, and its leftover stays unused), the
//!    constructor runs once for every object, and the slab goes on the
//!    *empty* list.
//! 2. *Allocate*: from the first *partial* slab; failing that the first
//!    *empty* slab (which moves to partial); failing that a new slab (1.).
//!    The freelist's head is taken (the most recently freed object), or else
//!    the lowest object never handed out. A slab whose last object goes
//!    moves to the *full* list.
//! 3. *Free*: the pointer is aligned down to the slab size and the page
//!    source gives that block's metadata: it must be a slab of this cache
//!    (tag and order), the pointer must sit exactly on an object (index by a
//!    reciprocal multiply, `obj_to_index()`) and the object must be in use,
//!    otherwise an error is returned and nothing changes. A full slab becomes
//!    partial, at the tail of the partial list (SLUB's `ADD_TO_TAIL`: the
//!    older partial slabs fill up first); a slab whose last object comes
//!    back becomes empty.
//! 4. *Shrink*: a slab that becomes empty goes back to the page source at
//!    once when `empty_limit` (SLUB's `min_partial`) slabs have free objects,
//!    empty ones counted, as SLUB's `n->nr_partial >= s->min_partial` counts
//!    its partial list; [`SlabCache::shrink`] releases every empty slab.
//!
//! [`SlabCache::alloc_bulk`] and [`SlabCache::free_bulk`] do the same for
//! many objects at O(1) each (`kmem_cache_alloc_bulk()`/`_free_bulk()`).
//!
//! # Object count and slab order
//!
//! The stride is the object size rounded up to the alignment (at least 8,
//! `ARCH_SLAB_MINALIGN`; with [`SlabFlags::HWCACHE_ALIGN`] the cache line
//! halved while the object fits in half of it). The order is SLUB's
//! `calculate_order()` ([`calculate_order`]) for the number of CPUs the
//! cache is made for: aim for `4 * (fls(nr_cpus) + 1)` objects per slab,
//! then take the smallest order from there up to [`SLAB_MAX_ORDER`]
//! (`PAGE_ALLOC_COSTLY_ORDER`) whose leftover is at most 1/16 of the slab,
//! relaxing to 1/8, 1/4 and 1/2; objects too large for that get the
//! smallest order that holds one.
//!
//! # Locking
//!
//! The core takes no locks: every call that changes a cache takes `&mut
//! self` (and the page source `&mut`), so callers serialise by construction.
//! The module holds one spinlock, `Mirror::state`, over all its zones and
//! kmalloc caches, and a kmem_cache handle's own `SlabCache` reaches its
//! pages only under that same lock; see src/mirror/mod.rs.

// The types are declared here, the code is in the submodules: where slabs
// come from, how a slab is laid out, the cache's operations, its slab lists
// and the invariant checker.
mod bulk;
mod cache;
mod check;
mod layout;
mod list;
mod object;
pub mod order;
mod page_source;

pub use bulk::BulkFreeError;
pub use check::SlabInvariantError;
pub use layout::Reciprocal;
pub use order::calculate_order;
pub use page_source::exact_block;
pub(crate) use page_source::new_owner_tag;
pub use page_source::{live_owner_tags, MAX_LIVE_TAGS};
pub use page_source::{AddrMap, Block, BuddyPages, LinearMap, OwnerTag, PageSource};

use crate::buddy::BuddyError;
use list::SlabList;

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
/// CPUs [`SlabCache::new`] computes the slab order for (the in-VM default).
pub const DEFAULT_NR_CPUS: u32 = 2;
/// Objects per slab the order choice aims for with [`DEFAULT_NR_CPUS`]
/// (SLUB's `4 * (fls(nr_cpus) + 1)`).
pub const MIN_OBJECTS: usize = order::slub_min_objects(DEFAULT_NR_CPUS);
/// Most objects in one slab.
pub const MAX_OBJS_PER_SLAB: usize = 4096;
/// Longest cache name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 32;

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
    /// A slab descriptor or freelist is inconsistent (a bug, or a write
    /// into a free object).
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
            Self::Corrupt => f.write_str("slab descriptor or freelist corrupt"),
        }
    }
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

/// A cache's numbers as SLUB's sysfs attributes of the same names give them
/// (`/sys/kernel/slab/<cache>/`, `mm/slub.c` in 7.2). Objects parked in
/// per-CPU sheaves or a barn are allocated as far as the slabs know, and
/// count in `objects`, as in SLUB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlabStat {
    /// Bytes asked for per object (`object_size`).
    pub object_size: u64,
    /// Bytes per object slot, alignment included (`slab_size`, `s->size`).
    pub slab_size: u64,
    /// Objects per slab (`objs_per_slab`).
    pub objs_per_slab: u64,
    /// Slab order (`order`).
    pub order: u32,
    /// Objects allocated (`objects`).
    pub objects: u64,
    /// Objects in all slabs (`total_objects`).
    pub total_objects: u64,
    /// Slabs (`slabs`).
    pub slabs: u64,
    /// Slabs with a free object (`partial`): SLUB keeps empty slabs on its
    /// partial list too, up to `min_partial`, so empty ones count here.
    pub partial: u64,
    /// Objects allocated in those slabs (`objects_partial`).
    pub objects_partial: u64,
    /// Empty slabs kept before the surplus is freed (`min_partial`).
    pub min_partial: u64,
}

/// A cache name stored inline (no allocation).
#[derive(Clone, Copy)]
struct CacheName {
    bytes: [u8; MAX_NAME_LEN],
    len: u8,
}

/// A slab cache, the mirror's `struct kmem_cache`.
///
/// # Invariants
///
/// Every slab on the lists is a block of `order` allocated from the page
/// source the cache is used with, under `tag`, whose descriptor
/// (`SlabMeta`) is the owner area of its head frame's metadata; `lists[k]`
/// holds exactly the slabs whose `list` is `k`; `active_objs` is the sum of
/// the slabs' `inuse`; the free objects of a slab below its `fresh` are
/// exactly those on its freelist.
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
    /// `reciprocal_value(size)`, for `obj_to_index()`.
    recip: Reciprocal,
    fp: layout::FreePtr,
    colour_off: usize,
    colours: u32,
    colour_next: u32,
    lists: [SlabList; 3],
    active_objs: u64,
    empty_limit: u64,
}

// SAFETY: The raw pointers in a cache point into slabs that the cache owns
// exclusively (blocks allocated under its unique tag) and into their page
// metadata, which only the owner of the tag accesses; nothing is tied to a
// thread, so the cache may move to another thread with its slabs.
unsafe impl Send for SlabCache {}

impl Drop for SlabCache {
    fn drop(&mut self) {
        // Only a cache that holds no slab gives its tag back: a slab still
        // tagged with it would otherwise get a second owner when the tag is
        // reused. A cache dropped holding slabs keeps its tag for good.
        if self.lists.iter().all(|l| l.len == 0) {
            let tag = core::mem::replace(&mut self.tag, OwnerTag::public(0));
            page_source::release_owner_tag(tag);
        }
    }
}
