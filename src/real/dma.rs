// SPDX-License-Identifier: GPL-2.0

//! DMA: `dma_alloc_coherent`/`dma_free_coherent` and a streaming
//! `dma_map_single`/`dma_unmap_single` of a kmalloc buffer, on memlab's own
//! devices.
//!
//! The DMA API needs a bound device with a DMA mask. memlab registers a
//! platform driver `memlab-dma` and three platform devices of that name,
//! `memlab-dma.24`, `.32` and `.64`, whose masks (24, 32 and 64 bits, set
//! through `platform_device_info::dma_mask` as C board code does) make the
//! DMA layer pick ZONE_DMA, ZONE_DMA32 or any memory. The platform bus
//! matches them by name, so they bind as soon as they are registered.
//!
//! A `&Device<Bound>` is only formed while the device lock is held and
//! `device_is_bound()` says so: unbinding takes the same lock, so the device
//! stays bound while it is used. Coherent buffers handed to user space live
//! in a [`Devres`], so a forced unbind through sysfs frees them with the
//! binding instead of leaving them dangling.

use super::phys;
use core::ptr::NonNull;
use kernel::{
    bindings,
    device::{self, Bound, Core},
    devres::Devres,
    dma::{attrs, Coherent, DmaAddress},
    error::from_err_ptr,
    platform,
    prelude::*,
};

/// Name of the driver and of its devices.
pub(crate) const NAME: &CStr = c"memlab-dma";

/// The DMA masks memlab's devices are registered with, in bits.
pub(crate) const MASKS: [u32; 3] = [24, 32, 64];

/// The mask width, in bits, of the device the DMA family uses for a
/// `MEMLAB_GFP_*` selector (the low byte of `gfp`): GFP_DMA 24, GFP_DMA32
/// 32, anything else 64. Shared by the real and the mirror DMA families.
pub(crate) fn mask_bits_for(gfp: u32) -> u32 {
    match gfp & 0xff {
        crate::uapi::MEMLAB_GFP_DMA => 24,
        crate::uapi::MEMLAB_GFP_DMA32 => 32,
        _ => 64,
    }
}

impl super::Real {
    /// The registered device [`mask_bits_for`] names for `gfp`; ENODEV if
    /// it is missing.
    pub(crate) fn dma_device_for(&self, gfp: u32) -> Result<&DmaDevice> {
        self.dma_device(mask_bits_for(gfp))
    }
}

/// The platform driver: binding is all it does; the devices are driven from
/// [`Dma`] under the device lock.
pub(crate) struct DmaDriver;

impl platform::Driver for DmaDriver {
    type IdInfo = ();
    type Data<'bound> = ();

    fn probe<'bound>(
        pdev: &'bound platform::Device<Core<'_>>,
        _info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        dev_info!(pdev.as_ref(), "bound for memlab's DMA exercises\n");
        Ok(())
    }
}

/// One registered platform device; unregistered on drop.
///
/// # Invariants
///
/// `pdev` was returned by `platform_device_register_full` and is
/// unregistered only in `Drop`, so its `struct device` stays valid and
/// referenced meanwhile.
pub(crate) struct DmaDevice {
    pdev: NonNull<bindings::platform_device>,
    mask_bits: u32,
}

// SAFETY: the driver core's device API is thread-safe.
unsafe impl Send for DmaDevice {}
// SAFETY: as above; all access to the device goes through the device lock.
unsafe impl Sync for DmaDevice {}

impl DmaDevice {
    /// Registers `memlab-dma.<bits>` with a `bits`-bit DMA mask.
    pub(crate) fn register(bits: u32) -> Result<Self> {
        let mask = if bits >= 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        let info = bindings::platform_device_info {
            name: NAME.as_char_ptr(),
            id: bits as i32,
            dma_mask: mask,
            ..Default::default()
        };
        // SAFETY: `info` is initialised; the name is copied by the callee.
        let pdev = from_err_ptr(unsafe { bindings::platform_device_register_full(&info) })?;
        // INVARIANT: a non-error return is a registered device.
        Ok(DmaDevice {
            pdev: NonNull::new(pdev).ok_or(ENODEV)?,
            mask_bits: bits,
        })
    }

    /// The DMA mask width in bits.
    pub(crate) fn mask_bits(&self) -> u32 {
        self.mask_bits
    }

    fn raw(&self) -> *mut bindings::device {
        // SAFETY: `pdev` is valid (type invariant); this takes a field address.
        unsafe { &raw mut (*self.pdev.as_ptr()).dev }
    }

    /// Locks the device and checks it is bound; `ENODEV` if it is not.
    pub(crate) fn lock_bound(&self) -> Result<BoundGuard<'_>> {
        let dev = self.raw();
        // SAFETY: `dev` is valid (type invariant); `mutex` is the device lock.
        unsafe { bindings::mutex_lock(&raw mut (*dev).mutex) };
        let guard = BoundGuard { owner: self };
        // SAFETY: `dev` is valid; `device_is_bound` reads the binding state,
        // stable while the device lock is held.
        if unsafe { bindings::device_is_bound(dev) } {
            Ok(guard)
        } else {
            Err(ENODEV)
        }
    }
}

impl Drop for DmaDevice {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant), unregistered only here; this
        // unbinds it, which revokes every `Devres` of it.
        unsafe { bindings::platform_device_unregister(self.pdev.as_ptr()) };
    }
}

/// The device lock of a bound [`DmaDevice`]; unlocked on drop.
///
/// # Invariants
///
/// The device lock of `owner` is held by this guard.
pub(crate) struct BoundGuard<'a> {
    owner: &'a DmaDevice,
}

impl BoundGuard<'_> {
    /// The bound device, valid while the guard lives.
    pub(crate) fn device(&self) -> &device::Device<Bound> {
        // SAFETY: the device is valid and referenced (invariant of
        // `DmaDevice`) for as long as `self.owner` is borrowed.
        let dev: &device::Device = unsafe { device::Device::from_raw(self.owner.raw()) };
        // SAFETY: the guard holds the device lock and the device was found
        // bound under it; unbinding takes the same lock, so it stays bound
        // for the guard's lifetime, which bounds the returned reference.
        unsafe { dev.as_bound() }
    }

    /// The DMA mask width of the device.
    pub(crate) fn mask_bits(&self) -> u32 {
        self.owner.mask_bits
    }

    fn raw(&self) -> *mut bindings::device {
        self.owner.raw()
    }

    /// The raw `struct device`, for DMA API calls the `kernel` crate does
    /// not wrap (the mirror's streaming mapping, which outlives the guard
    /// inside a `Devres` of [`BoundGuard::device`]).
    pub(crate) fn as_raw(&self) -> *mut bindings::device {
        self.raw()
    }
}

impl Drop for BoundGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: the lock is held by this guard (type invariant).
        unsafe { bindings::mutex_unlock(&raw mut (*self.owner.raw()).mutex) };
    }
}

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
        dma_addr: c.dma_handle(),
        phys,
        pages,
        zeroed: bytes.iter().all(|b| *b == 0),
    }
}

/// A coherent buffer handed to user space, revoked if the device unbinds.
pub(crate) struct DmaBlock {
    _buf: Devres<Coherent<[u8]>>,
    size: usize,
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
        Ok((DmaBlock { _buf: buf, size }, f))
    }
}

impl DmaBlock {
    /// Bytes requested.
    pub(crate) fn size(&self) -> usize {
        self.size
    }
}

/// A streaming mapping (`dma_map_single`) of a kmalloc buffer, unmapped on drop.
///
/// # Invariants
///
/// `addr` maps `size` bytes on the device `bound` holds locked and bound.
pub(crate) struct Streaming<'a, 'b> {
    bound: &'a BoundGuard<'b>,
    addr: DmaAddress,
    size: usize,
}

impl<'a, 'b> Streaming<'a, 'b> {
    /// Maps `buf` bidirectionally; ENOMEM on a mapping error.
    pub(crate) fn map(bound: &'a BoundGuard<'b>, buf: &super::kmalloc::Kmalloc) -> Result<Self> {
        let phys = buf.phys();
        let page = phys::pfn_to_page(phys >> kernel::page::PAGE_SHIFT);
        let offset = (phys as usize) & (kernel::page::PAGE_SIZE - 1);
        // SAFETY: the device is bound (guard); `page`/`offset` locate the
        // live kmalloc buffer, which outlives the mapping (borrowed by the
        // caller for longer); `dma_map_single` is this call on its page.
        let addr = unsafe {
            bindings::dma_map_page_attrs(
                bound.raw(),
                page,
                offset,
                buf.size(),
                bindings::dma_data_direction_DMA_BIDIRECTIONAL,
                0,
            )
        };
        if addr == DmaAddress::MAX {
            // DMA_MAPPING_ERROR.
            return Err(ENOMEM);
        }
        // INVARIANT: mapped above.
        Ok(Streaming {
            bound,
            addr,
            size: buf.size(),
        })
    }

    /// The bus address.
    pub(crate) fn addr(&self) -> DmaAddress {
        self.addr
    }
}

impl Drop for Streaming<'_, '_> {
    fn drop(&mut self) {
        // SAFETY: `addr` maps `size` bytes on the still-bound device (type invariant).
        unsafe {
            bindings::dma_unmap_page_attrs(
                self.bound.raw(),
                self.addr,
                self.size,
                bindings::dma_data_direction_DMA_BIDIRECTIONAL,
                0,
            )
        };
    }
}
