// SPDX-License-Identifier: GPL-2.0

//! What differs between the architectures memlab builds for, in one place:
//! x86-64 under QEMU (TCG or KVM) and User-Mode Linux on an x86-64 host
//! (`ARCH=um`, kernel code running as native host instructions). Each file
//! gives the same items:
//!
//! - `tsc_khz()`: the TSC's frequency (the clock of every timed window,
//!   [`super::clock`]); x86 reads the kernel's calibration, UML calibrates
//!   against `ktime_get` once at load ([`init`]);
//! - `NoPreempt`: preemption off and the current CPU, for the mirror's
//!   CPU-local sections ([`super::percpu`]);
//! - `CpusReadLock`: CPU hotplug held off;
//! - `page_to_pfn`, `pfn_to_page`, `linear_phys`, `pfn_to_virt`: the
//!   memory model (x86: SPARSEMEM_VMEMMAP and a direct map at
//!   `page_offset_base`; UML: FLATMEM `mem_map` over `uml_physmem`);
//! - `KERNEL_ZONES`: memlab's zone for each of the kernel's zone indexes
//!   (x86: DMA, DMA32, Normal, Movable, and ZONE_DEVICE where the kernel has
//!   it is not read; UML: Normal, Movable).

#[cfg(all(CONFIG_X86_64, not(CONFIG_UML)))]
#[path = "x86.rs"]
mod imp;

#[cfg(all(CONFIG_X86_64, CONFIG_UML))]
#[path = "um.rs"]
mod imp;

#[cfg(not(CONFIG_X86_64))]
compile_error!("memlab builds for x86-64 and for User-Mode Linux on x86-64 only");

pub(crate) use imp::*;
