// SPDX-License-Identifier: GPL-2.0

//! `vmalloc`/`vfree`, with the PFN of every page (`vmalloc_to_pfn`).
//!
//! Goes through `vrealloc_node_align` with no old pointer, which is how
//! `kernel::alloc::Vmalloc` reaches vmalloc too, but with any `gfp_t` (the
//! Rust allocator cannot express GFP_NOIO and friends). Freeing is a
//! `vrealloc` to size 0, i.e. `vfree`.

use core::{ffi::c_void, ptr::NonNull};
use kernel::{bindings, page::PAGE_SIZE, prelude::*};

const NUMA_NO_NODE: i32 = -1;

/// One vmalloc area; `vfree`d on drop (which may sleep).
///
/// # Invariants
///
/// `ptr` was returned by vmalloc for `size` bytes and is not freed yet.
pub(crate) struct Vmalloc {
    ptr: NonNull<c_void>,
    size: usize,
}

// SAFETY: a vmalloc area may be freed from any thread in process context.
unsafe impl Send for Vmalloc {}
// SAFETY: `&Vmalloc` only reads the area's page tables and contents.
unsafe impl Sync for Vmalloc {}

impl Vmalloc {
    /// `__vmalloc(size, flags)`; ENOMEM when it returns NULL.
    pub(crate) fn new(size: usize, flags: bindings::gfp_t) -> Result<Self> {
        // SAFETY: a NULL old pointer makes `vrealloc` a plain vmalloc.
        let ptr = unsafe {
            bindings::vrealloc_node_align(core::ptr::null(), size, 1, flags, NUMA_NO_NODE)
        };
        // INVARIANT: non-NULL is a live area of `size` bytes.
        Ok(Vmalloc {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
            size,
        })
    }

    /// Pages backing the area.
    pub(crate) fn nr_pages(&self) -> usize {
        self.size.div_ceil(PAGE_SIZE)
    }

    /// PFN of page `i` (below [`Vmalloc::nr_pages`]).
    pub(crate) fn pfn(&self, i: usize) -> u64 {
        let addr = self.ptr.as_ptr().wrapping_byte_add(i * PAGE_SIZE);
        // SAFETY: `addr` lies inside the live area for `i < nr_pages()`.
        unsafe { bindings::vmalloc_to_pfn(addr) as u64 }
    }

    /// Whether the requested bytes all read zero.
    pub(crate) fn is_zero(&self) -> bool {
        // SAFETY: the area is mapped for `size` bytes and owned by `self`.
        let bytes =
            unsafe { core::slice::from_raw_parts(self.ptr.as_ptr().cast::<u8>(), self.size) };
        bytes.iter().all(|b| *b == 0)
    }
}

impl Drop for Vmalloc {
    fn drop(&mut self) {
        // SAFETY: `ptr` is live (type invariant); size 0 frees it (`vfree`)
        // and returns NULL.
        let _ = unsafe {
            bindings::vrealloc_node_align(
                self.ptr.as_ptr(),
                0,
                1,
                bindings::GFP_KERNEL,
                NUMA_NO_NODE,
            )
        };
    }
}
