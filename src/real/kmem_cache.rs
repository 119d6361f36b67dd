// SPDX-License-Identifier: GPL-2.0

//! `kmem_cache_create`/`alloc`/`free`/`destroy`, with a counting constructor.
//!
//! In 7.2 `kmem_cache_create` is a macro over `__kmem_cache_create_args`,
//! which is what is wrapped here. The name is copied by the kernel
//! (`kstrdup_const`), so it need not outlive the call; it must be unique
//! among live caches (SLUB names its sysfs directory after it), hence the
//! sequence number. A cache with a constructor is never merged with another.
//!
//! A mergeable cache that merges with no other gets a sysfs directory named
//! after its geometry (`create_unique_id`: `:d-0000512` for a 512 B
//! SLAB_CACHE_DMA cache), not after its name. `kmem_cache_destroy` (7.2)
//! removes that directory only after it drops `slab_mutex`, so a create of
//! the same geometry in between finds no cache to merge with and makes a
//! directory of the same name: the kernel dumps "cannot create duplicate
//! filename" and the cache has no sysfs files. Memlab creates and destroys
//! its mergeable caches under one mutex of its own, [`MERGEABLE`], so none
//! of its creates lands in that window of one of its destroys.

use crate::platform::{pages::order_for, phys};
use crate::request::CacheFlags;
use crate::sizeclass::KMALLOC_MAX_SIZE;
use core::{
    ffi::c_void,
    ptr::NonNull,
    sync::atomic::{AtomicU64, Ordering},
};
use kernel::{
    bindings,
    page::PAGE_SIZE,
    prelude::*,
    str::{CStr, CString},
    sync::Arc,
};

/// Constructor calls of every memlab cache since load (the constructor gets
/// no cache pointer, so the count is global; exercises take differences).
static CTOR_CALLS: AtomicU64 = AtomicU64::new(0);
kernel::sync::global_lock! {
    // SAFETY: `init` runs once, from the module's init, before any cache
    // is made.
    unsafe(uninit) static MERGEABLE: Mutex<()> = ();
}

/// Sets up [`MERGEABLE`].
///
/// # Safety
///
/// Called once, from the module's init, before any [`Cache`] is made.
pub(crate) unsafe fn init() {
    // SAFETY: called once, before any use (requirement).
    unsafe { MERGEABLE.init() };
}

/// Sequence number for unique cache names. 64 bits cannot wrap: at one
/// cache a nanosecond that takes 584 years (a duplicate name would WARN).
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A name no live memlab cache has: `memlab_<n>`.
fn next_name() -> Result<CString> {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    CString::try_from_fmt(fmt!("memlab_{id}"))
}

/// Constructor run by the slab allocator on every object of a new slab.
///
/// # Safety
///
/// Called by the slab allocator with a pointer to a new object; it only
/// counts and does not touch the object.
unsafe extern "C" fn count_ctor(_obj: *mut c_void) {
    CTOR_CALLS.fetch_add(1, Ordering::Relaxed);
}

/// Constructor calls so far (all memlab caches).
pub(crate) fn ctor_calls() -> u64 {
    CTOR_CALLS.load(Ordering::Relaxed)
}

/// An upper bound of the bytes a cache of its own holds after its first
/// `kmem_cache_alloc` of one object of `size` bytes aligned to `align`.
///
/// SLUB (7.2) allocates through per-CPU sheaves: the first allocation
/// refills a whole sheaf, `calculate_sheaf_capacity()` objects (4 for
/// objects of a page or more, 12 from 1 KiB, 28 from 256 B, else 60), so
/// one handle pins that many objects, each in a slot of the object rounded
/// up to its alignment after KASAN's per-object metadata and redzone, plus
/// the slack of the last slab (at most `max(slub_max_order, get_order(slot))`)
/// and a page for the cache's own metadata. The real sizes are private to
/// mm/ (`struct kmem_cache` is not in the public headers), so this is
/// computed from the rules, erring high. A 4 MiB-aligned cache thus holds
/// 4 slabs of 4 MiB for one object (measured: MemFree fell 16 MiB a handle).
pub(crate) fn footprint(size: usize, align: usize, flags: CacheFlags) -> usize {
    let line = if flags.hwcache_align { 64 } else { 8 };
    let align = align.max(line);
    // KASAN generic: alloc/free metadata (32 B) and `optimal_redzone()`.
    let redzone = match size {
        0..=64 => 16,
        65..=128 => 32,
        129..=512 => 64,
        513..=4096 => 128,
        4097..=16384 => 256,
        16385..=32768 => 512,
        32769..=65536 => 1024,
        _ => 2048,
    };
    let with_meta = size + 32 + redzone;
    // KASAN drops its metadata rather than pass KMALLOC_MAX_SIZE.
    let raw = if with_meta > KMALLOC_MAX_SIZE {
        size
    } else {
        with_meta
    };
    let slot = raw.next_multiple_of(align);
    let sheaf = match slot {
        s if s >= PAGE_SIZE => 4,
        s if s >= 1024 => 12,
        s if s >= 256 => 28,
        _ => 60,
    };
    // Capacity is computed from SLUB's size of the slot, which is at least
    // `stride`: the larger capacity of the two bounds it.
    let stride = size.next_multiple_of(align);
    let sheaf = sheaf.max(match stride {
        s if s >= PAGE_SIZE => 4,
        s if s >= 1024 => 12,
        s if s >= 256 => 28,
        _ => 60,
    });
    let order = order_for(slot).unwrap_or(bindings::MAX_PAGE_ORDER).max(3);
    (sheaf + 1) * slot + (PAGE_SIZE << order) + PAGE_SIZE
}

/// A slab cache; destroyed when the last [`Object`] and owner drop it.
///
/// # Invariants
///
/// `ptr` is a live cache created by `__kmem_cache_create_args`, destroyed
/// only in `Drop`; every [`Object`] from it holds an `Arc<Cache>`, and the
/// callers of [`Cache::alloc_raw`] free their objects while they hold one,
/// so none outlives it.
pub(crate) struct Cache {
    ptr: NonNull<bindings::kmem_cache>,
    size: usize,
    /// Whether SLUB may merge it (no constructor, no SLAB_NO_MERGE): then
    /// it is created and destroyed under [`MERGEABLE`].
    mergeable: bool,
}

// SAFETY: the slab API is thread-safe; destroying from any thread is fine.
unsafe impl Send for Cache {}
// SAFETY: as above, `kmem_cache_alloc`/`free` may run concurrently.
unsafe impl Sync for Cache {}

impl Cache {
    /// `kmem_cache_create("memlab_<n>", size, align, flags, ctor)`.
    pub(crate) fn new(
        size: usize,
        align: usize,
        flags: CacheFlags,
        ctor: bool,
    ) -> Result<Arc<Self>> {
        Self::create(&next_name()?, size, align, flags, ctor, false)
    }

    /// A cache of `size`-byte objects that SLUB may not merge with another
    /// (`SLAB_NO_MERGE`): the benchmarks time this cache's own slabs and
    /// sheaves, not those of the kmalloc cache of the same size.
    pub(crate) fn new_unmerged(size: usize) -> Result<Arc<Self>> {
        Self::create(&next_name()?, size, 0, CacheFlags::default(), false, true)
    }

    /// An unmerged cache named `name` (a replay session's: user space
    /// reads its counters in `/sys/kernel/slab/<name>/`), its objects
    /// aligned to `align` (0: the default). The caller keeps names unique.
    pub(crate) fn new_named(name: &CStr, size: usize, align: usize) -> Result<Arc<Self>> {
        Self::create(name, size, align, CacheFlags::default(), false, true)
    }

    fn create(
        name: &CStr,
        size: usize,
        align: usize,
        flags: CacheFlags,
        ctor: bool,
        no_merge: bool,
    ) -> Result<Arc<Self>> {
        let mut args = bindings::kmem_cache_args {
            align: u32::try_from(align).map_err(|_| EINVAL)?,
            ctor: if ctor { Some(count_ctor) } else { None },
            ..Default::default()
        };
        let object_size = u32::try_from(size).map_err(|_| EINVAL)?;
        let bit = |b: bindings::_slab_flag_bits| -> bindings::slab_flags_t { 1 << b };
        let mut slab_flags = 0;
        if flags.dma {
            slab_flags |= bit(bindings::_slab_flag_bits__SLAB_CACHE_DMA);
        }
        if flags.hwcache_align {
            slab_flags |= bit(bindings::_slab_flag_bits__SLAB_HWCACHE_ALIGN);
        }
        if no_merge {
            slab_flags |= bit(bindings::_slab_flag_bits__SLAB_NO_MERGE);
        }
        let mergeable = !ctor && !no_merge;
        let guard = mergeable.then(|| MERGEABLE.lock());
        // SAFETY: `name` is a valid C string (copied by the callee), `args`
        // is initialised and lives across the call.
        let ptr = unsafe {
            bindings::__kmem_cache_create_args(
                name.as_char_ptr(),
                object_size,
                &mut args,
                slab_flags,
            )
        };
        drop(guard);
        // INVARIANT: non-NULL is a live cache.
        let ptr = NonNull::new(ptr).ok_or(ENOMEM)?;
        Ok(Arc::new(
            Cache {
                ptr,
                size,
                mergeable,
            },
            GFP_KERNEL,
        )?)
    }

    /// Object size.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// `kmem_cache_alloc(cache, flags)` with no owner and no reference
    /// count: the benchmarks time the allocator call and nothing else.
    /// The caller frees the object with [`Cache::free_raw`] before it drops
    /// its last reference to the cache.
    #[inline]
    pub(crate) fn alloc_raw(&self, flags: bindings::gfp_t) -> Option<NonNull<c_void>> {
        // SAFETY: the cache is live (type invariant).
        NonNull::new(unsafe { bindings::kmem_cache_alloc_noprof(self.ptr.as_ptr(), flags) })
    }

    /// `kmem_cache_free(cache, ptr)`.
    ///
    /// # Safety
    ///
    /// `ptr` came from [`Cache::alloc_raw`] on this cache and is not freed
    /// yet.
    #[inline]
    pub(crate) unsafe fn free_raw(&self, ptr: NonNull<c_void>) {
        // SAFETY: a live object of this live cache (requirement, invariant).
        unsafe { bindings::kmem_cache_free(self.ptr.as_ptr(), ptr.as_ptr()) };
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        // Held until the cache's sysfs directory is gone (see the module
        // documentation).
        let _guard = self.mergeable.then(|| MERGEABLE.lock());
        // SAFETY: live cache (type invariant), no objects left (each holds an Arc).
        unsafe { bindings::kmem_cache_destroy(self.ptr.as_ptr()) };
    }
}

/// One object of a [`Cache`]; freed on drop.
///
/// # Invariants
///
/// `ptr` came from `kmem_cache_alloc(cache)` and is not freed yet.
pub(crate) struct Object {
    cache: Arc<Cache>,
    ptr: NonNull<c_void>,
}

// SAFETY: an object may be freed from any thread.
unsafe impl Send for Object {}
// SAFETY: `&Object` only reads metadata and contents.
unsafe impl Sync for Object {}

impl Object {
    /// `kmem_cache_alloc(cache, flags)`; ENOMEM on NULL.
    pub(crate) fn new(cache: &Arc<Cache>, flags: bindings::gfp_t) -> Result<Self> {
        // SAFETY: the cache is live (it is borrowed through an Arc).
        let ptr = unsafe { bindings::kmem_cache_alloc_noprof(cache.ptr.as_ptr(), flags) };
        // INVARIANT: non-NULL is a live object of this cache.
        Ok(Object {
            cache: cache.clone(),
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
        })
    }

    /// Virtual address as a number, for alignment checks only (never reported).
    pub(crate) fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// Physical address.
    pub(crate) fn phys(&self) -> u64 {
        phys::linear_phys(self.ptr.as_ptr())
    }

    /// The cache the object belongs to.
    pub(crate) fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Whether the object's bytes all read zero.
    pub(crate) fn is_zero(&self) -> bool {
        // SAFETY: the object is live, owned by `self` and `size` bytes long.
        let bytes =
            unsafe { core::slice::from_raw_parts(self.ptr.as_ptr().cast::<u8>(), self.cache.size) };
        bytes.iter().all(|b| *b == 0)
    }
}

impl Drop for Object {
    fn drop(&mut self) {
        // SAFETY: live object of this live cache (type invariants).
        unsafe { bindings::kmem_cache_free(self.cache.ptr.as_ptr(), self.ptr.as_ptr()) };
    }
}
