// SPDX-License-Identifier: GPL-2.0

//! The page allocator: `alloc_pages`/`__free_pages` of any order, and
//! `__get_free_pages`/`free_pages`.
//!
//! `kernel::page::Page` only holds order-0 pages, so higher orders are
//! wrapped here, once.

use crate::platform::phys;
use core::ptr::NonNull;
use kernel::{bindings, page::PAGE_SIZE, prelude::*};

/// `get_order(bytes)`: the smallest order whose block holds `bytes` (at
/// least 1); `None` if no order could.
pub(crate) fn order_for(bytes: usize) -> Option<u32> {
    let pages = bytes
        .max(1)
        .div_ceil(PAGE_SIZE)
        .checked_next_power_of_two()?;
    Some(pages.trailing_zeros())
}

/// A block of `1 << order` physically contiguous pages; freed on drop.
///
/// # Invariants
///
/// `page` heads a block from `alloc_pages(.., order)` not freed yet.
pub(crate) struct Pages {
    page: NonNull<bindings::page>,
    order: u32,
}

// SAFETY: pages may be freed from any thread.
unsafe impl Send for Pages {}
// SAFETY: `&Pages` only reads the block's PFN and contents.
unsafe impl Sync for Pages {}

impl Pages {
    /// `alloc_pages(flags, order)`; ENOMEM when it returns NULL (order above
    /// MAX_PAGE_ORDER included: with `__GFP_NOWARN` the allocator fails it
    /// quietly).
    pub(crate) fn new(order: u32, flags: bindings::gfp_t) -> Result<Self> {
        // SAFETY: any mask and order may be passed; too-large orders fail.
        let page = unsafe { bindings::alloc_pages(flags, order) };
        // INVARIANT: non-NULL heads a block of `1 << order` pages.
        Ok(Pages {
            page: NonNull::new(page).ok_or(ENOMEM)?,
            order,
        })
    }

    /// PFN of the first page.
    pub(crate) fn pfn(&self) -> u64 {
        phys::page_to_pfn(self.page.as_ptr())
    }

    /// Pages in the block.
    pub(crate) fn nr_pages(&self) -> usize {
        1 << self.order
    }

    /// Whether every byte reads zero (through the direct map).
    pub(crate) fn is_zero(&self) -> bool {
        let start = phys::pfn_to_virt(self.pfn());
        // SAFETY: the block is owned by `self` and mapped by the direct map
        // (no highmem on x86-64) for `nr_pages()` pages.
        let bytes = unsafe { core::slice::from_raw_parts(start, self.nr_pages() * PAGE_SIZE) };
        bytes.iter().all(|b| *b == 0)
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        // SAFETY: `page` heads a live block of this order (type invariant).
        unsafe { bindings::__free_pages(self.page.as_ptr(), self.order) };
    }
}

/// `__get_free_pages`: the same blocks, known by direct-map address.
///
/// # Invariants
///
/// `addr` came from `__get_free_pages(.., order)` and is not freed yet.
pub(crate) struct FreePages {
    addr: usize,
    order: u32,
}

impl FreePages {
    /// `__get_free_pages(flags, order)`; ENOMEM on 0.
    pub(crate) fn new(order: u32, flags: bindings::gfp_t) -> Result<Self> {
        // SAFETY: any mask and order may be passed; too-large orders fail.
        let addr = unsafe { bindings::get_free_pages_noprof(flags, order) } as usize;
        if addr == 0 {
            return Err(ENOMEM);
        }
        // INVARIANT: a non-zero return is a live block.
        Ok(FreePages { addr, order })
    }

    /// PFN of the first page.
    pub(crate) fn pfn(&self) -> u64 {
        phys::linear_phys(self.addr as *const core::ffi::c_void) >> kernel::page::PAGE_SHIFT
    }
}

impl Drop for FreePages {
    fn drop(&mut self) {
        // SAFETY: `addr` is a live block of this order (type invariant).
        unsafe { bindings::free_pages(self.addr, self.order) };
    }
}
