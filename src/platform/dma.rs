// SPDX-License-Identifier: GPL-2.0

//! memlab's DMA devices, and the one streaming-mapping type both backends
//! use.
//!
//! The DMA API needs a bound device with a DMA mask. memlab registers three
//! platform devices named `memlab-dma`, `.24`, `.32` and `.64`, whose masks
//! (24, 32 and 64 bits, set through `platform_device_info::dma_mask` as C
//! board code does) make the DMA layer pick ZONE_DMA, ZONE_DMA32 or any
//! memory, and a platform driver of that name. The platform bus matches them
//! by name, so they bind as soon as the driver is registered.
//!
//! A `&Device<Bound>` is only formed while the device lock is held and
//! `device_is_bound()` says so ([`BoundGuard`]): unbinding takes the same
//! lock, so the device stays bound while it is used. A mapping that must
//! outlive the guard lives in a [`Devres`] of the device, which unmaps it
//! before the device finishes unbinding (rmmod, or a forced unbind through
//! sysfs).

use crate::request::{Gfp, GfpSel};
use core::{marker::PhantomData, ptr::NonNull};
use kernel::{
    bindings,
    device::{self, Bound, Core},
    devres::Devres,
    dma::DmaAddress,
    driver,
    error::from_err_ptr,
    platform,
    prelude::*,
};

/// Name of the driver and of its devices.
pub(crate) const NAME: &CStr = c"memlab-dma";

/// The DMA masks memlab's devices are registered with, in bits.
pub(crate) const MASKS: [u32; 3] = [24, 32, 64];

/// The mask width, in bits, of the device the DMA family uses for `gfp`:
/// GFP_DMA 24, GFP_DMA32 32, anything else 64. Both backends pick their
/// device with this, so their buffers obey the same mask.
pub(crate) fn mask_bits_for(gfp: Gfp) -> u32 {
    match gfp.sel {
        GfpSel::Dma => 24,
        GfpSel::Dma32 => 32,
        _ => 64,
    }
}

/// The platform driver: binding is all it does; the devices are driven
/// under their device lock through [`BoundGuard`].
pub(crate) struct DmaDriver;

impl platform::Driver for DmaDriver {
    type IdInfo = ();
    type Data<'bound> = ();

    fn probe<'bound>(
        pdev: &'bound platform::Device<Core<'_>>,
        _info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        dev_info!(pdev.as_ref(), "bound for memlab's DMA families\n");
        Ok(())
    }
}

/// The devices and their driver; everything is unregistered on drop.
#[pin_data]
pub(crate) struct DmaDevices {
    /// Dropped (unregistered) before the driver below.
    devices: KVec<DmaDevice>,
    #[pin]
    _driver: driver::Registration<platform::Adapter<DmaDriver>>,
}

impl DmaDevices {
    /// Registers the devices, then the driver, which binds them. A device
    /// that cannot be registered is reported and left out: only the DMA
    /// family for its mask is then missing (ENODEV).
    pub(crate) fn new(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let mut devices = KVec::new();
        // A kernel without the DMA API (UML selects NO_DMA) gets no
        // devices, so every DMA request answers ENODEV.
        let masks: &[u32] = if cfg!(CONFIG_HAS_DMA) { &MASKS } else { &[] };
        for &bits in masks {
            match DmaDevice::register(bits) {
                Ok(d) => {
                    if devices.push(d, GFP_KERNEL).is_err() {
                        break;
                    }
                }
                Err(e) => pr_warn!("memlab-dma.{bits}: not registered ({e:?})\n"),
            }
        }
        try_pin_init!(DmaDevices {
            devices,
            _driver <- driver::Registration::new(NAME, module),
        }? Error)
    }

    /// The device with a mask of `bits`; ENODEV if it is missing.
    pub(crate) fn by_bits(&self, bits: u32) -> Result<&DmaDevice> {
        self.devices
            .iter()
            .find(|d| d.mask_bits() == bits)
            .ok_or(ENODEV)
    }

    /// The device [`mask_bits_for`] names for `gfp`; ENODEV if it is missing.
    pub(crate) fn for_gfp(&self, gfp: Gfp) -> Result<&DmaDevice> {
        self.by_bits(mask_bits_for(gfp))
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
    fn register(bits: u32) -> Result<Self> {
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
    /// Takes a mutex: process context only.
    pub(crate) fn lock_bound(&self) -> Result<BoundGuard<'_>> {
        let dev = self.raw();
        // SAFETY: `dev` is valid (type invariant); `mutex` is the device lock.
        unsafe { bindings::mutex_lock(&raw mut (*dev).mutex) };
        // INVARIANT: locked just above; unlocked by the guard's drop.
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
}

impl Drop for BoundGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: the lock is held by this guard (type invariant).
        unsafe { bindings::mutex_unlock(&raw mut (*self.owner.raw()).mutex) };
    }
}

/// A streaming DMA mapping (`dma_map_page`, `DMA_BIDIRECTIONAL`) of memory
/// in the direct map, unmapped on drop. Only ever held where the device is
/// known to stay bound: inside a [`Streaming`] (which borrows the device
/// lock) or inside a [`Devres`] of the device (see [`map_devres`]).
///
/// # Invariants
///
/// `addr` maps `len` bytes, bidirectionally, on `dev`, and `dev` stays bound
/// and referenced until this value is dropped.
pub(crate) struct StreamingMap {
    dev: *mut bindings::device,
    addr: DmaAddress,
    len: usize,
}

// SAFETY: the DMA API may be called from any thread; `dev` is only used to
// unmap, while it is bound and referenced (type invariant).
unsafe impl Send for StreamingMap {}
// SAFETY: `&StreamingMap` only reads the bus address.
unsafe impl Sync for StreamingMap {}

impl StreamingMap {
    /// Maps `len` bytes at physical address `phys` on the locked device.
    ///
    /// # Safety
    ///
    /// `phys..phys + len` is memory in the direct map that the caller owns
    /// and keeps allocated until the returned value is dropped, and the
    /// value is dropped while the device is still bound.
    unsafe fn map(bound: &BoundGuard<'_>, phys: u64, len: usize) -> Result<Self> {
        let dev = bound.owner.raw();
        // SAFETY: the device is bound and locked (guard); `phys` locates
        // `len` live bytes the caller owns (safety requirement).
        let addr = unsafe { raw::map(dev, phys, len) }?;
        // INVARIANT: mapped on `dev` just now; the caller keeps it bound.
        Ok(StreamingMap { dev, addr, len })
    }

    /// The bus address the device would use.
    pub(crate) fn addr(&self) -> DmaAddress {
        self.addr
    }
}

impl Drop for StreamingMap {
    fn drop(&mut self) {
        // SAFETY: `addr` maps `len` bytes on the still-bound `dev` (type
        // invariant).
        unsafe { raw::unmap(self.dev, self.addr, self.len) };
    }
}

/// `dma_map_page_attrs`/`dma_unmap_page_attrs`, bidirectional. Kernels
/// without the DMA API (UML selects NO_DMA) have only inline stubs of
/// these, which bindgen does not see; they have no memlab DMA device either
/// ([`DmaDevices::new`]), so there the calls are never reached.
mod raw {
    use super::*;
    #[cfg(CONFIG_HAS_DMA)]
    use kernel::page::{PAGE_SHIFT, PAGE_SIZE};

    /// Maps `len` bytes at physical address `phys` on `dev`.
    ///
    /// # Safety
    ///
    /// `dev` is bound and locked; `phys..phys + len` is live direct-map
    /// memory.
    #[cfg(CONFIG_HAS_DMA)]
    pub(super) unsafe fn map(
        dev: *mut bindings::device,
        phys: u64,
        len: usize,
    ) -> Result<DmaAddress> {
        let page = super::super::phys::pfn_to_page(phys >> PAGE_SHIFT);
        let offset = (phys as usize) & (PAGE_SIZE - 1);
        // SAFETY: requirements of this function.
        let addr = unsafe {
            bindings::dma_map_page_attrs(
                dev,
                page,
                offset,
                len,
                crate::platform::compat::DMA_BIDIRECTIONAL,
                0,
            )
        };
        // DMA_MAPPING_ERROR.
        if addr == DmaAddress::MAX {
            return Err(ENOMEM);
        }
        Ok(addr)
    }

    /// Unmaps what [`map`] mapped.
    ///
    /// # Safety
    ///
    /// `addr` maps `len` bytes on the still-bound `dev`.
    #[cfg(CONFIG_HAS_DMA)]
    pub(super) unsafe fn unmap(dev: *mut bindings::device, addr: DmaAddress, len: usize) {
        // SAFETY: requirements of this function.
        unsafe {
            bindings::dma_unmap_page_attrs(
                dev,
                addr,
                len,
                crate::platform::compat::DMA_BIDIRECTIONAL,
                0,
            )
        };
    }

    /// No DMA API: ENODEV.
    ///
    /// # Safety
    ///
    /// None needed; unsafe to match the DMA kernel's signature.
    #[cfg(not(CONFIG_HAS_DMA))]
    pub(super) unsafe fn map(_: *mut bindings::device, _: u64, _: usize) -> Result<DmaAddress> {
        Err(ENODEV)
    }

    /// Nothing was mapped.
    ///
    /// # Safety
    ///
    /// None needed; unsafe to match the DMA kernel's signature.
    #[cfg(not(CONFIG_HAS_DMA))]
    pub(super) unsafe fn unmap(_: *mut bindings::device, _: DmaAddress, _: usize) {}
}

/// A mapping that lives no longer than the device lock `'a` it was made
/// under, and so no longer than the buffer the caller borrows for `'a`.
pub(crate) struct Streaming<'a> {
    map: StreamingMap,
    _lock: PhantomData<&'a BoundGuard<'a>>,
}

impl<'a> Streaming<'a> {
    /// Maps `len` bytes at `phys` for as long as `bound` is held.
    ///
    /// # Safety
    ///
    /// `phys..phys + len` is direct-map memory that stays allocated for `'a`.
    pub(crate) unsafe fn map(bound: &'a BoundGuard<'_>, phys: u64, len: usize) -> Result<Self> {
        // SAFETY: the memory outlives `'a` (requirement); the returned value
        // cannot outlive the guard, so it is dropped while the device is bound.
        let map = unsafe { StreamingMap::map(bound, phys, len) }?;
        Ok(Streaming {
            map,
            _lock: PhantomData,
        })
    }

    /// The bus address.
    pub(crate) fn addr(&self) -> DmaAddress {
        self.map.addr()
    }
}

/// Maps `len` bytes at `phys` for as long as the returned `Devres` lives or
/// the device stays bound, whichever ends first; `Devres` makes the two
/// wait for each other, so the unmap always runs while the device is bound.
///
/// # Safety
///
/// `phys..phys + len` is direct-map memory that the caller keeps allocated
/// until the returned `Devres` is dropped.
pub(crate) unsafe fn map_devres(
    bound: &BoundGuard<'_>,
    phys: u64,
    len: usize,
) -> Result<Devres<StreamingMap>> {
    // SAFETY: the memory outlives the `Devres` (requirement), which drops
    // the mapping before the device finishes unbinding. If `Devres::new`
    // fails, the mapping is dropped here, with the device lock still held.
    let map = unsafe { StreamingMap::map(bound, phys, len) }?;
    Devres::new(bound.device(), map)
}
