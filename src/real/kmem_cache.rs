// SPDX-License-Identifier: GPL-2.0

//! `kmem_cache_create`/`alloc`/`free`/`destroy`, with a counting constructor.
//!
//! In 7.2 `kmem_cache_create` is a macro over `__kmem_cache_create_args`,
//! which is what is wrapped here. The name is copied by the kernel
//! (`kstrdup_const`), so it need not outlive the call; it must be unique
//! among live caches (SLUB names its sysfs directory after it), hence the
//! sequence number. A cache with a constructor is never merged with another.

use crate::platform::{pages::order_for, phys};
use core::{
    ffi::c_void,
    ptr::NonNull,
    sync::atomic::{AtomicU64, Ordering},
};
use kernel::{bindings, page::PAGE_SIZE, prelude::*, str::CString, sync::Arc};

/// Constructor calls of every memlab cache since load (the constructor gets
/// no cache pointer, so the count is global; exercises take differences).
static CTOR_CALLS: AtomicU64 = AtomicU64::new(0);
/// Sequence number for unique cache names. 64 bits cannot wrap: at one
/// cache a nanosecond that takes 584 years (a duplicate name would WARN).
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

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

/// An upper bound of what a cache of its own holds for one object of `size`
/// bytes aligned to `align`: one slab, and a page for the cache's own
/// metadata (`struct kmem_cache`, its per-node and per-CPU parts). SLUB's
/// `calculate_order` picks at most `slub_max_order` (3), or the order that
/// holds a single object when that is larger; the true order is private to
/// mm/ (`struct kmem_cache` is not in the public headers), so this charges
/// the larger of the two.
pub(crate) fn footprint(size: usize, align: usize) -> usize {
    let stride = size.next_multiple_of(align.max(8));
    let order = order_for(stride).unwrap_or(bindings::MAX_PAGE_ORDER).max(3);
    (PAGE_SIZE << order) + PAGE_SIZE
}

/// A slab cache; destroyed when the last [`Object`] and owner drop it.
///
/// # Invariants
///
/// `ptr` is a live cache created by `__kmem_cache_create_args`, destroyed
/// only in `Drop`; every object from it holds an `Arc<Cache>`, so none
/// outlives it.
pub(crate) struct Cache {
    ptr: NonNull<bindings::kmem_cache>,
    size: usize,
}

// SAFETY: the slab API is thread-safe; destroying from any thread is fine.
unsafe impl Send for Cache {}
// SAFETY: as above, `kmem_cache_alloc`/`free` may run concurrently.
unsafe impl Sync for Cache {}

impl Cache {
    /// `kmem_cache_create("memlab_<n>", size, align, 0, ctor)`.
    pub(crate) fn new(size: usize, align: usize, ctor: bool) -> Result<Arc<Self>> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let name = CString::try_from_fmt(fmt!("memlab_{id}"))?;
        let mut args = bindings::kmem_cache_args {
            align: u32::try_from(align).map_err(|_| EINVAL)?,
            ctor: if ctor { Some(count_ctor) } else { None },
            ..Default::default()
        };
        let object_size = u32::try_from(size).map_err(|_| EINVAL)?;
        // SAFETY: `name` is a valid C string (copied by the callee), `args`
        // is initialised and lives across the call.
        let ptr = unsafe {
            bindings::__kmem_cache_create_args(name.as_char_ptr(), object_size, &mut args, 0)
        };
        // INVARIANT: non-NULL is a live cache.
        let ptr = NonNull::new(ptr).ok_or(ENOMEM)?;
        Ok(Arc::new(Cache { ptr, size }, GFP_KERNEL)?)
    }

    /// Object size.
    pub(crate) fn size(&self) -> usize {
        self.size
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
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
