// SPDX-License-Identifier: GPL-2.0

//! What differs between the kernel releases memlab supports, in one place.
//!
//! `Kbuild` sets `memlab_kver_ge_7_3` from the kernel's `VERSION` and
//! `PATCHLEVEL` (7.3 and later); each item below is the one spelling the
//! rest of memlab uses, with the release each arm is for. The supported
//! range is `KERNEL_MIN_VERSION`..=`KERNEL_MAX_VERSION` in scripts/lib.sh,
//! which refuses other trees before building; a release added there gets
//! its arms here.
//!
//! 7.2 to 7.3, in the kernel crate and the generated bindings:
//! - `enum dma_data_direction`: a plain integer type with prefixed
//!   constants in 7.2, a bindgen newtype with associated constants in 7.3;
//! - `smp_call_function_single`'s `wait`: `c_int` in 7.2, `bool` in 7.3;
//! - `ModuleParamAccess::value`: `&T` in 7.2, `T` (by copy) in 7.3;
//! - `dma::Coherent`'s device address: `dma_handle()` in 7.2,
//!   `dma_address()` in 7.3.
//!
//! mm's structures memlab mirrors (SLUB's sheaf capacity rule and barn
//! limits, `MAX_PAGE_ORDER`, `KMALLOC_MAX_SIZE`, the kmalloc size classes)
//! are the same in 7.2 and 7.3; the module asserts the last three equal to
//! the kernel's at build time (`platform::phys`).

use kernel::{dma::DmaAddress, module_param::ModuleParamAccess};

/// `DMA_BIDIRECTIONAL`, for the streaming mappings of memlab's device.
#[cfg(CONFIG_HAS_DMA)]
#[cfg(not(memlab_kver_ge_7_3))]
pub(crate) const DMA_BIDIRECTIONAL: kernel::bindings::dma_data_direction =
    kernel::bindings::dma_data_direction_DMA_BIDIRECTIONAL;
/// `DMA_BIDIRECTIONAL`, for the streaming mappings of memlab's device.
#[cfg(CONFIG_HAS_DMA)]
#[cfg(memlab_kver_ge_7_3)]
pub(crate) const DMA_BIDIRECTIONAL: kernel::bindings::dma_data_direction =
    kernel::bindings::dma_data_direction::DMA_BIDIRECTIONAL;

/// `smp_call_function_single(..., wait)`: return only after the function
/// ran on the target CPU.
#[cfg(not(memlab_kver_ge_7_3))]
pub(crate) const SMP_CALL_WAIT: core::ffi::c_int = 1;
/// `smp_call_function_single(..., wait)`: return only after the function
/// ran on the target CPU.
#[cfg(memlab_kver_ge_7_3)]
pub(crate) const SMP_CALL_WAIT: bool = true;

/// A `u32` module parameter's value.
pub(crate) fn param_u32(p: &ModuleParamAccess<u32>) -> u32 {
    #[cfg(not(memlab_kver_ge_7_3))]
    let v = *p.value();
    #[cfg(memlab_kver_ge_7_3)]
    let v = p.value();
    v
}

/// The device address of a coherent DMA buffer.
pub(crate) fn coherent_dma_address(c: &kernel::dma::Coherent<[u8]>) -> DmaAddress {
    #[cfg(not(memlab_kver_ge_7_3))]
    let a = c.dma_handle();
    #[cfg(memlab_kver_ge_7_3)]
    let a = c.dma_address();
    a
}
