// SPDX-License-Identifier: GPL-2.0

//! The mirror's DMA family: one physically contiguous block from the
//! mirror's buddy, given to memlab's DMA device through a streaming mapping
//! (`dma_map_page`, `DMA_BIDIRECTIONAL`), which is how a driver hands the
//! device memory it got from the page allocator.
//!
//! The block is `alloc_pages(get_order(size), gfp)` on the mirror, so its zone
//! comes from the mirror's zonelist for the selector (GFP_DMA: ZONE_DMA only,
//! GFP_DMA32: DMA32 then DMA, else Normal, DMA32, DMA). The device is the one
//! the real DMA family picks for the selector (GFP_DMA: the 24-bit mask,
//! GFP_DMA32: 32, else 64; [`crate::real::dma::mask_bits_for`]), so the
//! zonelist always satisfies the mask and the mapping needs no bounce buffer.
//!
//! Locking and lifetime, as `src/real/dma.rs`: the device is used only
//! through its device lock while it is bound ([`BoundGuard`]), and only to
//! map; the mirror's page allocation happens before that lock is taken, so
//! the mirror's spinlocks never nest inside it. The mapping lives in a
//! [`Devres`], so it is unmapped either when the handle is dropped or when
//! the device unbinds (rmmod, or a forced unbind through sysfs), whichever
//! comes first; `Devres` makes each wait for the other, so the unmap always
//! runs while the device is still bound. The pages go back to the mirror
//! only after the `Devres` is gone (field order of [`MirrorDma`]), and the
//! handle's `Arc<Mirror>` keeps the pool alive until then.

use super::Mirror;
use crate::real::{
    dma::{mask_bits_for, BoundGuard, DmaDevice},
    phys,
};
use crate::uapi;
use core::ptr::NonNull;
use kernel::{
    bindings,
    devres::Devres,
    dma::DmaAddress,
    page::{PAGE_SHIFT, PAGE_SIZE},
    prelude::*,
    sync::Arc,
};

/// A block of pages from a mirror, given back on drop.
///
/// # Invariants
///
/// `head` came from `mirror.alloc_pages(order, _)` and is not freed yet.
struct PageBlock {
    mirror: Arc<Mirror>,
    head: NonNull<u8>,
    order: u32,
}

impl PageBlock {
    fn phys(&self) -> u64 {
        phys::linear_phys(self.head.as_ptr().cast())
    }

    fn bytes(&self) -> usize {
        PAGE_SIZE << self.order
    }
}

impl Drop for PageBlock {
    fn drop(&mut self) {
        // SAFETY: `head` came from `alloc_pages(order, _)` of this mirror and
        // is freed only here (type invariant).
        if unsafe { self.mirror.free_pages(self.head, self.order) }.is_err() {
            // Cannot happen for a block the mirror handed out; if it does,
            // the pages still go back to the kernel with the pool.
            pr_err!(
                "mirror: dma: block of order {} not taken back\n",
                self.order
            );
        }
    }
}

/// A streaming DMA mapping, unmapped on drop. Lives only inside a
/// [`Devres`] of `dev`, which drops it before the device finishes unbinding.
///
/// # Invariants
///
/// `addr` maps `size` bytes, bidirectionally, on `dev`; `dev` is the device
/// of the `Devres` holding this value (which keeps a reference to it).
struct StreamingMap {
    dev: *mut bindings::device,
    addr: DmaAddress,
    size: usize,
}

// SAFETY: the DMA API may be called from any thread; `dev` is only used to
// unmap, while the holding `Devres` keeps the device alive and bound.
unsafe impl Send for StreamingMap {}

impl Drop for StreamingMap {
    fn drop(&mut self) {
        // SAFETY: `addr` maps `size` bytes on `dev` (type invariant). This
        // runs either from `Devres::drop` before the device's devres are
        // released, or from that release during unbind: either way the
        // device is referenced and still bound (the other side waits).
        unsafe {
            bindings::dma_unmap_page_attrs(
                self.dev,
                self.addr,
                self.size,
                bindings::dma_data_direction_DMA_BIDIRECTIONAL,
                0,
            )
        };
    }
}

/// One mirror DMA handle: a block from the mirror's buddy, mapped for
/// memlab's DMA device. Dropping it unmaps, then gives the pages back.
pub(crate) struct MirrorDma {
    // Field order is drop order: the mapping goes before the pages it maps.
    _map: Devres<StreamingMap>,
    block: PageBlock,
    dma_addr: DmaAddress,
    zeroed: bool,
}

// SAFETY: the block is owned by this handle and freed through the mirror's
// locks; the mapping is in a `Devres` (Send). Any thread in process context
// may drop it.
unsafe impl Send for MirrorDma {}
// SAFETY: `&MirrorDma` only reads addresses and flags, never the memory.
unsafe impl Sync for MirrorDma {}

/// `get_order(size)` for `size > 0`; `None` if no order could hold it.
fn get_order(size: usize) -> Option<u32> {
    let pages = size.div_ceil(PAGE_SIZE).checked_next_power_of_two()?;
    Some(pages.trailing_zeros())
}

/// Maps `block` bidirectionally on the locked, bound device; returns the
/// mapping and its bus address.
fn map(bound: &BoundGuard<'_>, block: &PageBlock) -> Result<(Devres<StreamingMap>, DmaAddress)> {
    let dev = bound.as_raw();
    let page = phys::pfn_to_page(block.phys() >> PAGE_SHIFT);
    // SAFETY: the device is bound and locked (guard); `page` is the first of
    // the `bytes()` bytes of `block`, live pages owned by the caller that
    // stay allocated until the returned mapping is dropped (field order of
    // `MirrorDma`, drop order of locals in `Mirror::dma`).
    let addr = unsafe {
        bindings::dma_map_page_attrs(
            dev,
            page,
            0,
            block.bytes(),
            bindings::dma_data_direction_DMA_BIDIRECTIONAL,
            0,
        )
    };
    if addr == DmaAddress::MAX {
        // DMA_MAPPING_ERROR.
        return Err(ENOMEM);
    }
    // INVARIANT: mapped on `dev` above; the `Devres` is created on the same
    // device. If `Devres::new` fails, the value is dropped (unmapped) while
    // the caller still holds the device lock.
    let m = StreamingMap {
        dev,
        addr,
        size: block.bytes(),
    };
    Ok((Devres::new(bound.device(), m)?, addr))
}

impl Mirror {
    /// A DMA buffer from the mirror: `alloc_pages(get_order(size), gfp)` on
    /// the mirror's buddy, zeroed and checked through the direct map with
    /// `MEMLAB_GFP_ZERO` (before the device owns it), then mapped with
    /// `dma_map_page(DMA_BIDIRECTIONAL)` on `dev`, which must be the device
    /// [`mask_bits_for`] names for `gfp` (EINVAL otherwise). EINVAL for size
    /// 0; ENOMEM above MAX_PAGE_ORDER, when the mirror has no block, or on a
    /// mapping error; ENODEV if the device is not bound. Every selector is
    /// accepted (GFP_ATOMIC may use the zone reserves), as on the real DMA
    /// family; like it, this takes the device lock and so must be called in
    /// process context.
    pub(crate) fn dma(
        self: &Arc<Self>,
        dev: &DmaDevice,
        size: usize,
        gfp: u32,
    ) -> Result<MirrorDma> {
        if size == 0 || dev.mask_bits() != mask_bits_for(gfp) {
            return Err(EINVAL);
        }
        let order = get_order(size)
            .filter(|&o| o <= bindings::MAX_PAGE_ORDER)
            .ok_or(ENOMEM)?;
        let head = self.alloc_pages(order, gfp)?;
        // INVARIANT: just allocated with `order`.
        let block = PageBlock {
            mirror: self.clone(),
            head,
            order,
        };
        let zeroed = gfp & uapi::MEMLAB_GFP_ZERO != 0 && {
            // SAFETY: the block's `bytes()` bytes at `head` are in the direct
            // map and owned by this function; nothing else reaches them.
            let bytes = unsafe { core::slice::from_raw_parts_mut(head.as_ptr(), block.bytes()) };
            bytes.fill(0);
            bytes.iter().all(|b| *b == 0)
        };
        let bound = dev.lock_bound()?;
        let (map, dma_addr) = map(&bound, &block)?;
        drop(bound);
        Ok(MirrorDma {
            _map: map,
            block,
            dma_addr,
            zeroed,
        })
    }
}

impl MirrorDma {
    /// Bytes this block pins (counted against `max_pinned_mb`): the whole
    /// power-of-two block.
    pub(crate) fn pinned_bytes(&self) -> usize {
        self.block.bytes()
    }

    /// What INSPECT reports: zone, first PFN, pages of the block, one run,
    /// the bus address, usable bytes (the whole block), alignment and
    /// whether `MEMLAB_GFP_ZERO` was asked for and the block read zero.
    /// `handle` and `alloc_ns` are left 0 for the caller.
    pub(crate) fn info(&self, req: &uapi::MemlabAlloc) -> uapi::MemlabBlockInfo {
        let phys = self.block.phys();
        let pfn = phys >> PAGE_SHIFT;
        uapi::MemlabBlockInfo {
            family: req.family,
            gfp: req.gfp,
            size: req.size,
            zone: phys::zone_of_pfn(pfn),
            usable: self.pinned_bytes() as u64,
            first_pfn: pfn,
            nr_pages: 1 << self.block.order,
            phys_runs: 1,
            dma_addr: self.dma_addr,
            align_log2: phys::align_log2(phys),
            zeroed: u32::from(self.zeroed),
            ..Default::default()
        }
    }
}
