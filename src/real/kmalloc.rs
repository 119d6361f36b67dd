// SPDX-License-Identifier: GPL-2.0

//! `kmalloc`/`kfree`, with `ksize`.
//!
//! `kernel::alloc::Kmalloc` cannot take an arbitrary `gfp_t` (GFP_NOIO,
//! GFP_DMA, ...), so this wraps `__kmalloc_noprof` directly, once.

use crate::platform::phys;
use core::{ffi::c_void, ptr::NonNull};
use kernel::{bindings, prelude::*};

/// Largest size kmalloc serves.
pub(crate) const KMALLOC_MAX_SIZE: usize = bindings::KMALLOC_MAX_SIZE as usize;

/// One kmalloc object; `kfree`d on drop.
///
/// # Invariants
///
/// `ptr` was returned by `__kmalloc_noprof(size, ..)` and is not freed yet.
pub(crate) struct Kmalloc {
    ptr: NonNull<c_void>,
    size: usize,
}

// SAFETY: a kmalloc object may be freed from any thread.
unsafe impl Send for Kmalloc {}
// SAFETY: `&Kmalloc` only reads the object's metadata and contents.
unsafe impl Sync for Kmalloc {}

impl Kmalloc {
    /// `kmalloc(size, flags)`; ENOMEM when the allocator returns NULL.
    pub(crate) fn new(size: usize, flags: bindings::gfp_t) -> Result<Self> {
        // SAFETY: any size and mask may be passed; the slab-bug bits are
        // filtered by the caller (`Gfp::slab_ok`).
        let ptr = unsafe { bindings::__kmalloc_noprof(size, flags) };
        // INVARIANT: a non-NULL return is a live object of `size` bytes.
        Ok(Kmalloc {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
            size,
        })
    }

    /// Bytes usable, the size class (`ksize`).
    pub(crate) fn ksize(&self) -> usize {
        // SAFETY: `ptr` is a live kmalloc object (type invariant).
        unsafe { bindings::ksize(self.ptr.as_ptr()) }
    }

    /// Physical address of the first byte.
    pub(crate) fn phys(&self) -> u64 {
        phys::linear_phys(self.ptr.as_ptr())
    }

    /// Bytes requested.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Whether the requested bytes all read zero (KASAN poisons the slack
    /// beyond `size`, so only those are read).
    pub(crate) fn is_zero(&self) -> bool {
        // SAFETY: `ptr` is valid for `size` bytes and owned by `self`.
        let bytes =
            unsafe { core::slice::from_raw_parts(self.ptr.as_ptr().cast::<u8>(), self.size) };
        bytes.iter().all(|b| *b == 0)
    }
}

impl Drop for Kmalloc {
    fn drop(&mut self) {
        // SAFETY: `ptr` is live (type invariant) and freed only here.
        unsafe { bindings::kfree(self.ptr.as_ptr()) };
    }
}
