// SPDX-License-Identifier: GPL-2.0

//! DMA, real side: `dma_alloc_coherent`/`dma_free_coherent`, and a
//! streaming `dma_map_single` of a kmalloc buffer, on memlab's devices
//! (`platform::dma`, which also explains the device lock and `Devres`).
//!
//! Coherent buffers handed to user space live in a [`Devres`], so a forced
//! unbind through sysfs frees them with the binding instead of leaving them
//! dangling.

use super::kmalloc::Kmalloc;
use crate::platform::{
    dma::{BoundGuard, Streaming},
    phys,
};
use kernel::{
    devres::Devres,
    dma::{attrs, Coherent, DmaAddress},
    prelude::*,
};

/// The kernel mask for coherent allocations: GFP_KERNEL, or GFP_ATOMIC /
/// GFP_NOWAIT, never warning; the zone comes from the device's mask.
fn coherent_flags(atomic: bool) -> kernel::alloc::Flags {
    if atomic {
        GFP_ATOMIC | __GFP_NOWARN
    } else {
        GFP_KERNEL | __GFP_NOWARN
    }
}

/// What a coherent buffer looks like physically.
pub(crate) struct CoherentFacts {
    /// Bus address the device would use.
    pub(crate) dma_addr: DmaAddress,
    /// CPU physical address.
    pub(crate) phys: u64,
    /// Zone and runs of its pages.
    pub(crate) pages: phys::PfnSummary,
    /// Whether it read all zero.
    pub(crate) zeroed: bool,
}

/// Allocates a coherent buffer of `size` bytes on the locked device.
pub(crate) fn coherent(
    bound: &BoundGuard<'_>,
    size: usize,
    atomic: bool,
) -> Result<Coherent<[u8]>> {
    Coherent::<u8>::zeroed_slice_with_attrs(
        bound.device(),
        size,
        coherent_flags(atomic),
        attrs::DMA_ATTR_NO_WARN,
    )
}

/// Physical facts of a coherent buffer.
pub(crate) fn facts(c: &Coherent<[u8]>) -> CoherentFacts {
    let start = c.as_ptr().cast::<core::ffi::c_void>();
    let mut pages = phys::PfnSummary::new();
    let nr = c.size().div_ceil(kernel::page::PAGE_SIZE);
    for i in 0..nr {
        // SAFETY: the buffer is live and `i` pages into it is inside it.
        let p = unsafe { phys::virt_to_phys(start.wrapping_byte_add(i * kernel::page::PAGE_SIZE)) };
        pages.add(p >> kernel::page::PAGE_SHIFT);
    }
    // SAFETY: as above, for the first byte.
    let phys = unsafe { phys::virt_to_phys(start) };
    // SAFETY: no device DMAs into memlab's buffers; the CPU is the only
    // accessor and nothing writes it concurrently.
    let bytes = unsafe { c.as_ref() };
    CoherentFacts {
        dma_addr: crate::platform::compat::coherent_dma_address(c),
        phys,
        pages,
        zeroed: bytes.iter().all(|b| *b == 0),
    }
}

/// A coherent buffer handed to user space, revoked if the device unbinds.
pub(crate) struct DmaBlock {
    _buf: Devres<Coherent<[u8]>>,
}

impl DmaBlock {
    /// Allocates on the locked device; returns the block and its facts.
    pub(crate) fn new(
        bound: &BoundGuard<'_>,
        size: usize,
        atomic: bool,
    ) -> Result<(Self, CoherentFacts)> {
        let c = coherent(bound, size, atomic)?;
        let f = facts(&c);
        let buf = Devres::new(bound.device(), c)?;
        Ok((DmaBlock { _buf: buf }, f))
    }
}

/// `dma_map_single(buf, DMA_BIDIRECTIONAL)` for as long as both the device
/// lock and the buffer are borrowed.
pub(crate) fn map_single<'a>(bound: &'a BoundGuard<'_>, buf: &'a Kmalloc) -> Result<Streaming<'a>> {
    // SAFETY: a kmalloc buffer is direct-map memory at `buf.phys()`, and
    // `buf` is borrowed for as long as the mapping lives.
    unsafe { Streaming::map(bound, buf.phys(), buf.size()) }
}
