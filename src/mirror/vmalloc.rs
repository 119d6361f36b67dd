// SPDX-License-Identifier: GPL-2.0

//! The mirror's vmalloc: order-0 pages from the mirror's buddy, mapped
//! virtually contiguous with `vm_map_ram` (`platform::vmap`), as
//! `__vmalloc_area_node` maps the pages it gets from the page allocator.
//!
//! The pages come one at a time through [`Mirror::alloc_pages`] (so from the
//! zonelist of the request's GFP mask and through the CPU's page lists).
//! Dropping the area unmaps it before the pages go back to the mirror.
//!
//! GFP_ATOMIC and GFP_NOWAIT are refused with EINVAL: `vm_map_ram` takes its
//! vmap area and page tables with GFP_KERNEL and may sleep, so the mirror
//! cannot honour a non-blocking request. (The real vmalloc accepts them: the
//! kernel's vmalloc does support non-blocking masks; memlab calls it in
//! process context, outside its atomic spinlock, either way.)

use super::Mirror;
use crate::platform::{phys, vmap::VmMapping};
use crate::request::Gfp;
use core::ptr::NonNull;
use kernel::{bindings, page::PAGE_SHIFT, page::PAGE_SIZE, prelude::*, sync::Arc};

/// Order-0 pages taken from a mirror, given back on drop.
///
/// # Invariants
///
/// Every entry of `heads` came from `mirror.alloc_pages(0, _)`, has not been
/// freed, and appears once.
struct PageList {
    mirror: Arc<Mirror>,
    heads: KVVec<NonNull<u8>>,
}

impl Drop for PageList {
    fn drop(&mut self) {
        for &head in self.heads.iter() {
            // SAFETY: `head` starts a page of the direct map owned by this
            // list (type invariant), no longer mapped elsewhere (the mapping
            // is dropped first) and reached by nothing else.
            super::handle::poison(unsafe {
                core::slice::from_raw_parts_mut(head.as_ptr(), PAGE_SIZE)
            });
            // SAFETY: `head` came from `alloc_pages(0, _)` of this mirror and
            // is freed only here, once (type invariant).
            if unsafe { self.mirror.free_pages(head, 0) }.is_err() {
                self.mirror.state.lock().rejected += 1;
            }
        }
    }
}

/// One mirror vmalloc area: pages from the mirror, mapped contiguously.
pub(crate) struct MirrorVmalloc {
    // Field order is drop order: the mapping goes before the pages it maps.
    map: VmMapping,
    pages: PageList,
    zeroed: bool,
}

// SAFETY: the area and its pages are owned by this value; unmapping and
// freeing may happen from any thread in process context.
unsafe impl Send for MirrorVmalloc {}
// SAFETY: `&MirrorVmalloc` only reads PFNs and flags, never the memory.
unsafe impl Sync for MirrorVmalloc {}

impl MirrorVmalloc {
    /// `vmalloc(size)` on `mirror`: `ceil(size / PAGE_SIZE)` order-0 pages
    /// from the zonelist of `gfp`, mapped with `vm_map_ram`; with
    /// `__GFP_ZERO` the whole area is zeroed through the mapping and
    /// checked. EINVAL for size 0 and for GFP_ATOMIC/GFP_NOWAIT (the mapping
    /// may sleep); ENOMEM if the pool is too small or runs out. Process
    /// context, no spinlock held.
    pub(crate) fn new(mirror: &Arc<Mirror>, size: usize, gfp: Gfp) -> Result<Self> {
        if size == 0 || gfp.atomic() {
            return Err(EINVAL);
        }
        let count = size.div_ceil(PAGE_SIZE);
        // More pages than the pool has can never succeed; the pool is at
        // most 2 GiB (`pool_mb` 1..=2048), 524288 pages, so this also
        // bounds `count` for `vm_map_ram`'s `unsigned int`.
        if count as u64 > mirror.pool_pages() {
            return Err(ENOMEM);
        }
        // INVARIANT: empty, then filled only with fresh order-0 pages.
        let mut pages = PageList {
            mirror: mirror.clone(),
            heads: KVVec::with_capacity(count, GFP_KERNEL)?,
        };
        let mut structs: KVVec<*mut bindings::page> = KVVec::with_capacity(count, GFP_KERNEL)?;
        for _ in 0..count {
            let head = mirror.alloc_pages(0, gfp)?;
            if let Err(head) = pages.heads.push_within_capacity(head) {
                // Not reached (capacity reserved above); do not leak `head`.
                // SAFETY: `head` came from `alloc_pages(0, _)` just now and
                // is not in `pages`.
                let _ = unsafe { mirror.free_pages(head.0, 0) };
                return Err(ENOMEM);
            }
            let pfn = phys::linear_phys(head.as_ptr().cast()) >> PAGE_SHIFT;
            structs
                .push_within_capacity(phys::pfn_to_page(pfn))
                .map_err(|_| ENOMEM)?;
        }
        // SAFETY: `structs` holds the `struct page`s of live pages owned by
        // `pages`, which is dropped after the mapping (field order).
        let mut map = unsafe { VmMapping::new(&mut structs) }?;
        drop(structs);
        let zeroed = super::handle::zero_and_check(gfp, map.bytes_mut());
        Ok(MirrorVmalloc { map, pages, zeroed })
    }

    /// Pages backing the area.
    pub(crate) fn nr_pages(&self) -> usize {
        self.map.count()
    }

    /// The frames of the backing pages, in mapping order.
    pub(crate) fn pfns(&self) -> impl Iterator<Item = u64> + '_ {
        self.pages
            .heads
            .iter()
            .map(|h| phys::linear_phys(h.as_ptr().cast()) >> PAGE_SHIFT)
    }

    /// Whether `__GFP_ZERO` was asked for and the area read zero.
    pub(crate) fn zeroed(&self) -> bool {
        self.zeroed
    }
}
