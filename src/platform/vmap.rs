// SPDX-License-Identifier: GPL-2.0

//! `vm_map_ram`: a virtually contiguous kernel mapping of pages the caller
//! owns, as `__vmalloc_area_node` maps what the page allocator gave it.

use core::ptr::NonNull;
use kernel::{bindings, ffi, page::PAGE_SIZE, prelude::*};

// `linux/vmalloc.h` is not among the headers the `kernel` crate's bindings
// are generated from; both functions are EXPORT_SYMBOL in mm/vmalloc.c.
// `struct page` is opaque here as in the generated bindings, which allow the
// same lint for it.
#[allow(improper_ctypes)]
unsafe extern "C" {
    fn vm_map_ram(
        pages: *mut *mut bindings::page,
        count: ffi::c_uint,
        node: ffi::c_int,
    ) -> *mut ffi::c_void;
    fn vm_unmap_ram(mem: *const ffi::c_void, count: ffi::c_uint);
}

/// An upper bound of what a virtually contiguous mapping of `pages` pages
/// holds in all: the pages, the array of their `struct page` pointers, and
/// the page tables (a PTE page per 512 pages, plus one at each end and one
/// upper level).
pub(crate) fn footprint(pages: usize) -> usize {
    let array = (pages * core::mem::size_of::<usize>()).div_ceil(PAGE_SIZE);
    let tables = pages.div_ceil(512) + 2;
    (pages + array + tables) * PAGE_SIZE
}

/// A live `vm_map_ram` mapping; unmapped on drop (which may sleep).
///
/// # Invariants
///
/// `addr` was returned by `vm_map_ram` for `count` pages and is not unmapped.
pub(crate) struct VmMapping {
    addr: NonNull<u8>,
    count: u32,
}

// SAFETY: a kernel mapping may be used and unmapped from any thread in
// process context.
unsafe impl Send for VmMapping {}
// SAFETY: `&VmMapping` only reads the address and the count.
unsafe impl Sync for VmMapping {}

impl VmMapping {
    /// Maps `pages` contiguously with `PAGE_KERNEL`. ENOMEM if the kernel
    /// has no room; EINVAL for no pages. May sleep: process context, no
    /// spinlock held.
    ///
    /// # Safety
    ///
    /// Every entry is the `struct page` of a live page the caller owns and
    /// keeps allocated until the returned mapping is dropped.
    pub(crate) unsafe fn new(pages: &mut [*mut bindings::page]) -> Result<Self> {
        let count = u32::try_from(pages.len()).map_err(|_| ENOMEM)?;
        if count == 0 {
            return Err(EINVAL);
        }
        // SAFETY: `pages` holds `count` pointers to live pages that outlive
        // the mapping (requirement); `vm_map_ram` only reads the array.
        let addr = unsafe { vm_map_ram(pages.as_mut_ptr(), count, bindings::NUMA_NO_NODE) };
        // INVARIANT: non-NULL is a live mapping of `count` pages.
        Ok(VmMapping {
            addr: NonNull::new(addr.cast::<u8>()).ok_or(ENOMEM)?,
            count,
        })
    }

    /// Pages mapped.
    pub(crate) fn count(&self) -> usize {
        self.count as usize
    }

    /// The mapping as bytes, for zeroing and checking.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: the mapping covers `count` whole pages of memory the owner
        // keeps allocated (type invariant and `new`'s requirement); `&mut
        // self` makes this the only reference to it.
        unsafe {
            core::slice::from_raw_parts_mut(self.addr.as_ptr(), self.count as usize * PAGE_SIZE)
        }
    }
}

impl Drop for VmMapping {
    fn drop(&mut self) {
        // SAFETY: `addr`/`count` are exactly what `vm_map_ram` returned and
        // was given, and the mapping is live (type invariant).
        unsafe { vm_unmap_ram(self.addr.as_ptr().cast(), self.count) };
    }
}
