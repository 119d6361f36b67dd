// SPDX-License-Identifier: GPL-2.0

//! The mirror's vmalloc: order-0 pages from the mirror's buddy, mapped
//! virtually contiguous with `vm_map_ram`, as `__vmalloc_area_node` maps the
//! pages it gets from the page allocator.
//!
//! The pages come one at a time through [`Mirror::alloc_pages`] (so from the
//! zonelist of the request's GFP selector and, for order 0, through the
//! mirror's per-CPU lists), their `struct page`s go into an array and
//! `vm_map_ram` maps that array with `PAGE_KERNEL`. Dropping the handle
//! unmaps (`vm_unmap_ram`) before the pages go back to the mirror.
//!
//! GFP_ATOMIC and GFP_NOWAIT are refused with EINVAL: `vm_map_ram` takes its
//! vmap area and page tables with GFP_KERNEL and may sleep, so the mirror
//! cannot honour a non-blocking request. (The real vmalloc accepts them: the
//! kernel's vmalloc does support non-blocking masks; memlab calls it in
//! process context, outside its atomic spinlock, either way.)

use super::Mirror;
use crate::real::phys::{self, PfnSummary};
use crate::uapi;
use core::ptr::NonNull;
use kernel::{
    bindings, ffi,
    page::{PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
    sync::Arc,
};

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
        let mut failed = 0usize;
        for &head in self.heads.iter() {
            // SAFETY: `head` came from `alloc_pages(0, _)` of this mirror and
            // is freed only here, once (type invariant).
            if unsafe { self.mirror.free_pages(head, 0) }.is_err() {
                failed += 1;
            }
        }
        if failed != 0 {
            // Cannot happen for pages the mirror handed out; if it does, they
            // still go back to the kernel with the pool.
            pr_err!("mirror: vmalloc: {failed} pages not taken back\n");
        }
    }
}

/// A live `vm_map_ram` mapping; unmapped on drop (which may sleep).
///
/// # Invariants
///
/// `addr` was returned by `vm_map_ram` for `count` pages and is not unmapped.
struct Mapping {
    addr: NonNull<u8>,
    count: u32,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `addr`/`count` are exactly what `vm_map_ram` returned and
        // was given, and the mapping is live (type invariant).
        unsafe { vm_unmap_ram(self.addr.as_ptr().cast(), self.count) };
    }
}

/// One mirror vmalloc area: pages from the mirror, mapped contiguously.
/// Dropping it unmaps the area, then gives the pages back.
pub(crate) struct MirrorVmalloc {
    // Field order is drop order: the mapping goes before the pages it maps.
    map: Mapping,
    pages: PageList,
    zeroed: bool,
}

// SAFETY: the area and its pages are owned by this handle; unmapping and
// freeing may happen from any thread in process context.
unsafe impl Send for MirrorVmalloc {}
// SAFETY: `&MirrorVmalloc` only reads PFNs and flags, never the memory.
unsafe impl Sync for MirrorVmalloc {}

impl Mirror {
    /// `vmalloc(size)` on the mirror: `ceil(size / PAGE_SIZE)` order-0 pages
    /// from the zonelist of `gfp`, mapped with `vm_map_ram`; with
    /// `MEMLAB_GFP_ZERO` the whole area is zeroed through the mapping and
    /// checked. EINVAL for size 0 and for GFP_ATOMIC/GFP_NOWAIT (the mapping
    /// may sleep); ENOMEM if the pool is too small or runs out. Must be
    /// called in process context without spinlocks held.
    pub(crate) fn vmalloc(self: &Arc<Self>, size: usize, gfp: u32) -> Result<MirrorVmalloc> {
        if size == 0
            || matches!(
                gfp & 0xff,
                uapi::MEMLAB_GFP_ATOMIC | uapi::MEMLAB_GFP_NOWAIT
            )
        {
            return Err(EINVAL);
        }
        let count = size.div_ceil(PAGE_SIZE);
        // More pages than the pool has can never succeed; the pool is at
        // most 1 GiB, so this also bounds `count` for `vm_map_ram`.
        if count as u64 > self.pool_pages() {
            return Err(ENOMEM);
        }
        let count32 = u32::try_from(count).map_err(|_| ENOMEM)?;
        // INVARIANT: empty, then filled only with fresh order-0 pages.
        let mut pages = PageList {
            mirror: self.clone(),
            heads: KVVec::with_capacity(count, GFP_KERNEL)?,
        };
        let mut structs: KVVec<*mut bindings::page> = KVVec::with_capacity(count, GFP_KERNEL)?;
        for _ in 0..count {
            let head = self.alloc_pages(0, gfp)?;
            if pages.heads.push_within_capacity(head).is_err() {
                // Not reached (capacity reserved above); do not leak `head`.
                // SAFETY: `head` came from `alloc_pages(0, _)` just now and
                // is not in `pages`.
                let _ = unsafe { self.free_pages(head, 0) };
                return Err(ENOMEM);
            }
            let pfn = phys::linear_phys(head.as_ptr().cast()) >> PAGE_SHIFT;
            structs
                .push_within_capacity(phys::pfn_to_page(pfn))
                .map_err(|_| ENOMEM)?;
        }
        // SAFETY: `structs` holds `count32` pointers to the `struct page`s of
        // live pages this function owns (in `pages`), which stay allocated
        // until the mapping is gone (field order of `MirrorVmalloc`);
        // `vm_map_ram` only reads the array. Process context, no locks held.
        let addr = unsafe { vm_map_ram(structs.as_mut_ptr(), count32, bindings::NUMA_NO_NODE) };
        drop(structs);
        // INVARIANT: non-NULL is a live mapping of `count32` pages.
        let map = Mapping {
            addr: NonNull::new(addr.cast::<u8>()).ok_or(ENOMEM)?,
            count: count32,
        };
        let zeroed = gfp & uapi::MEMLAB_GFP_ZERO != 0 && {
            // SAFETY: the mapping covers `count * PAGE_SIZE` bytes of pages
            // owned by this handle, reached through no other pointer now.
            let bytes =
                unsafe { core::slice::from_raw_parts_mut(map.addr.as_ptr(), count * PAGE_SIZE) };
            bytes.fill(0);
            bytes.iter().all(|b| *b == 0)
        };
        Ok(MirrorVmalloc { map, pages, zeroed })
    }
}

impl MirrorVmalloc {
    /// Pages backing the area.
    pub(crate) fn nr_pages(&self) -> usize {
        self.map.count as usize
    }

    /// Bytes this area pins (counted against `max_pinned_mb`).
    pub(crate) fn pinned_bytes(&self) -> usize {
        self.nr_pages() * PAGE_SIZE
    }

    /// Zone (or mixed), first PFN and runs of the backing pages, in
    /// mapping order.
    pub(crate) fn summary(&self) -> PfnSummary {
        let mut s = PfnSummary::new();
        for head in self.pages.heads.iter() {
            s.add(phys::linear_phys(head.as_ptr().cast()) >> PAGE_SHIFT);
        }
        s
    }

    /// What INSPECT reports, as the real vmalloc reports it: zone (or
    /// `MEMLAB_ZONE_MIXED`), first PFN, pages, physically contiguous runs,
    /// usable bytes (whole pages), alignment of the first page, and whether
    /// `MEMLAB_GFP_ZERO` was asked for and the area read zero. `handle` and
    /// `alloc_ns` are left 0 for the caller.
    pub(crate) fn info(&self, req: &uapi::MemlabAlloc) -> uapi::MemlabBlockInfo {
        let s = self.summary();
        uapi::MemlabBlockInfo {
            family: req.family,
            gfp: req.gfp,
            size: req.size,
            zone: s.zone,
            usable: self.pinned_bytes() as u64,
            first_pfn: s.first,
            nr_pages: s.pages,
            phys_runs: s.runs,
            align_log2: phys::align_log2(s.first << PAGE_SHIFT),
            zeroed: u32::from(self.zeroed),
            ..Default::default()
        }
    }
}
