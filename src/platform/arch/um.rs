// SPDX-License-Identifier: GPL-2.0

//! User-Mode Linux on an x86-64 host: see [`super`] for what each item is.
//!
//! The kernel is an ordinary host process, so `rdtsc` runs natively, but
//! the kernel keeps no `tsc_khz` and its `ktime_get` moves in 256 ns steps
//! (`TIMER_MULTIPLIER`): the TSC is calibrated against `ktime_get` over a
//! 50 ms window once, at load. `%gs` is the host's thread pointer, so the
//! per-CPU asm of x86 cannot work: the kernel is built without
//! `CONFIG_PREEMPTION`, where a task is never switched out except when it
//! sleeps, and CPU-local sections (which must not sleep) need only the
//! CPU's number.

use crate::request::Zone;
use core::{
    ffi::c_void,
    sync::atomic::{compiler_fence, AtomicU64, Ordering},
};
use kernel::{bindings, page::PAGE_SHIFT, prelude::*};

#[cfg(CONFIG_PREEMPTION)]
compile_error!("memlab's CPU-local sections on um rely on a kernel without CONFIG_PREEMPTION");

/// memlab's zone for each kernel zone index: UML has neither ZONE_DMA nor
/// ZONE_DMA32 (it selects NO_DMA).
pub(crate) const KERNEL_ZONES: [Zone; 2] = [Zone::Normal, Zone::Movable];
const _: () = assert!(bindings::zone_type_ZONE_NORMAL == 0);
const _: () = assert!(bindings::zone_type_ZONE_MOVABLE == 1);

/// The TSC's kHz as [`init`] measured it.
static TSC_KHZ: AtomicU64 = AtomicU64::new(0);

/// Window of the TSC calibration, in ms: long against `ktime_get`'s 256 ns
/// steps (an error below 10 ppm), short against insmod.
const CALIBRATION_MS: u32 = 50;

/// Calibrates the TSC against `ktime_get` (the host's monotonic clock).
pub(crate) fn init() -> Result {
    let ktime = || {
        // SAFETY: `ktime_get` may be called from any context once
        // timekeeping is up, as it is by the time a module loads.
        unsafe { bindings::ktime_get() }
    };
    let (t0, c0) = (ktime(), super::super::clock::rdtsc_ordered());
    // SAFETY: process context (module init); sleeps.
    unsafe { bindings::msleep(CALIBRATION_MS) };
    let (t1, c1) = (ktime(), super::super::clock::rdtsc_ordered());
    let ns = u64::try_from(t1 - t0).map_err(|_| EIO)?;
    // Cycles per ms; a TSC that stood still or went back leaves 0, and
    // the clock falls back to `ktime_get`.
    let khz = c1
        .saturating_sub(c0)
        .saturating_mul(1_000_000)
        .checked_div(ns)
        .unwrap_or(0);
    TSC_KHZ.store(khz, Ordering::Relaxed);
    Ok(())
}

/// The TSC frequency in kHz measured at load, 0 if that failed.
pub(crate) fn tsc_khz() -> u64 {
    TSC_KHZ.load(Ordering::Relaxed)
}

/// Preemption off while it lives: on this kernel (no `CONFIG_PREEMPTION`)
/// nothing switches a task that does not sleep, so only the compiler must
/// be kept from moving accesses across the section's ends.
pub(crate) struct NoPreempt(());

impl NoPreempt {
    #[inline(always)]
    pub(crate) fn new() -> Self {
        compiler_fence(Ordering::SeqCst);
        NoPreempt(())
    }

    /// The CPU this runs on: stable while `self` lives (see the type).
    #[inline(always)]
    pub(crate) fn cpu(&self) -> usize {
        // SAFETY: reads the current task's CPU; no requirement.
        (unsafe { bindings::raw_smp_processor_id() }) as usize
    }
}

impl Drop for NoPreempt {
    #[inline(always)]
    fn drop(&mut self) {
        compiler_fence(Ordering::SeqCst);
    }
}

/// CPU hotplug held off: UML has no CPU hotplug, so CPUs never go offline
/// and there is nothing to hold.
pub(crate) struct CpusReadLock(());

impl CpusReadLock {
    pub(crate) fn new() -> Self {
        CpusReadLock(())
    }
}

// The memory model: FLATMEM, `struct page`s in the array `mem_map` (PFN 0
// first), and physical memory mapped at `uml_physmem`, as `__pa`/`__va`
// compute it (`uml_to_phys`, `uml_to_virt`).

/// The PFN of `page`, like `page_to_pfn`.
pub(crate) fn page_to_pfn(page: *const bindings::page) -> u64 {
    // SAFETY: `mem_map` is set once during early boot and never changes.
    let base = unsafe { bindings::mem_map } as usize;
    ((page as usize).wrapping_sub(base) / core::mem::size_of::<bindings::page>()) as u64
}

/// The `struct page` of `pfn`, like `pfn_to_page` (a pointer, not dereferenced).
pub(crate) fn pfn_to_page(pfn: u64) -> *mut bindings::page {
    // SAFETY: `mem_map` is set once during early boot and never changes.
    let base = unsafe { bindings::mem_map } as usize;
    (base + pfn as usize * core::mem::size_of::<bindings::page>()) as *mut bindings::page
}

/// Physical address of a linear (kmalloc, page allocator) address, like `__pa`.
pub(crate) fn linear_phys(addr: *const c_void) -> u64 {
    // SAFETY: `uml_physmem` is set once during early boot and never changes.
    let base = unsafe { bindings::uml_physmem } as u64;
    (addr as u64).wrapping_sub(base)
}

/// The linear address of `pfn`, like `page_address` without highmem.
pub(crate) fn pfn_to_virt(pfn: u64) -> *mut u8 {
    // SAFETY: `uml_physmem` is set once during early boot and never changes.
    let base = unsafe { bindings::uml_physmem } as u64;
    (base + (pfn << PAGE_SHIFT)) as *mut u8
}
