// SPDX-License-Identifier: GPL-2.0

//! The mirror's DMA family: one physically contiguous block from the
//! mirror's buddy, given to memlab's DMA device through a streaming mapping
//! (`dma_map_page`, `DMA_BIDIRECTIONAL`; `platform::dma`), which is how a
//! driver hands the device memory it got from the page allocator.
//!
//! The block is `alloc_pages(get_order(size), gfp)` on the mirror, so its
//! zone comes from the mirror's zonelist for the mask. The device is the one
//! the real DMA family picks for the mask ([`mask_bits_for`]), so the
//! zonelist always satisfies the mask and the mapping needs no bounce
//! buffer.
//!
//! The mirror's page allocation happens before the device lock is taken, so
//! the mirror's spinlocks never nest inside it. The mapping lives in a
//! `Devres`: it is unmapped when the handle is dropped or when the device
//! unbinds, whichever comes first. The pages go back to the mirror only
//! after the mapping is gone (field order of [`MirrorDma`]).

use super::handle::{zero_and_check, MirrorPages};
use super::Mirror;
use crate::platform::dma::{map_devres, mask_bits_for, StreamingMap};
use crate::platform::pages::order_for;
use crate::request::Gfp;
use kernel::{bindings, devres::Devres, dma::DmaAddress, prelude::*, sync::Arc};

/// One mirror DMA buffer: a block from the mirror's buddy, mapped for
/// memlab's DMA device. Dropping it unmaps, then gives the pages back.
pub(crate) struct MirrorDma {
    // Field order is drop order: the mapping goes before the pages it maps.
    _map: Devres<StreamingMap>,
    block: MirrorPages,
    dma_addr: DmaAddress,
    zeroed: bool,
}

impl MirrorDma {
    /// A DMA buffer from `mirror`: `alloc_pages(get_order(size), gfp)`,
    /// zeroed and checked through the direct map with `__GFP_ZERO` (before
    /// the device owns it), then mapped on the device [`mask_bits_for`]
    /// names for `gfp`. EINVAL for size 0; ENOMEM above MAX_PAGE_ORDER,
    /// when the mirror has no block, or on a mapping error; ENODEV if the
    /// device is missing or not bound. Every mask is accepted (GFP_ATOMIC
    /// may use the zone reserves), as on the real DMA family; like it, this
    /// takes the device lock, so process context only.
    pub(crate) fn new(mirror: &Arc<Mirror>, size: usize, gfp: Gfp) -> Result<Self> {
        if size == 0 {
            return Err(EINVAL);
        }
        let dev = mirror.dma.by_bits(mask_bits_for(gfp))?;
        let order = order_for(size)
            .filter(|&o| o <= bindings::MAX_PAGE_ORDER)
            .ok_or(ENOMEM)?;
        let mut block = MirrorPages::new(mirror, order, gfp)?;
        let zeroed = zero_and_check(gfp, block.bytes_mut());
        let bound = dev.lock_bound()?;
        // SAFETY: `block` is direct-map memory owned by the returned value,
        // which drops the mapping before the block (field order).
        let map = unsafe { map_devres(&bound, block.phys(), block.bytes()) }?;
        let dma_addr = map.access(bound.device())?.addr();
        drop(bound);
        Ok(MirrorDma {
            _map: map,
            block,
            dma_addr,
            zeroed,
        })
    }

    /// Physical address of the block.
    pub(crate) fn phys(&self) -> u64 {
        self.block.phys()
    }

    /// Bytes in the block (the whole power-of-two block is held).
    pub(crate) fn bytes(&self) -> usize {
        self.block.bytes()
    }

    /// The bus address the device would use.
    pub(crate) fn dma_addr(&self) -> DmaAddress {
        self.dma_addr
    }

    /// Whether `__GFP_ZERO` was asked for and the block read zero.
    pub(crate) fn zeroed(&self) -> bool {
        self.zeroed
    }
}
