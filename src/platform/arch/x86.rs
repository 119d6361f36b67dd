// SPDX-License-Identifier: GPL-2.0

//! x86-64 (QEMU, TCG or KVM): see [`super`] for what each item is.

use crate::request::Zone;
use core::ffi::c_void;
use kernel::{bindings, page::PAGE_SHIFT, prelude::*};

/// memlab's zone for each kernel zone index (`enum zone_type`), ZONE_DEVICE
/// left out where the kernel has it (a distribution's: see `phys`).
pub(crate) const KERNEL_ZONES: [Zone; 4] = [Zone::Dma, Zone::Dma32, Zone::Normal, Zone::Movable];
const _: () = assert!(bindings::zone_type_ZONE_MOVABLE == 3);
const _: () = assert!(Zone::Normal as u32 == bindings::zone_type_ZONE_NORMAL);
const _: () = assert!(Zone::Dma32 as u32 == bindings::zone_type_ZONE_DMA32);

/// Nothing to do at load: the kernel calibrated the TSC.
pub(crate) fn init() -> Result {
    Ok(())
}

/// The TSC frequency in kHz, 0 if the kernel could not calibrate it.
pub(crate) fn tsc_khz() -> u64 {
    // SAFETY: `tsc_khz` is a plain `unsigned int` the kernel may rewrite at
    // any time (the delayed TSC calibration work refines it after boot).
    // Taking its address reads nothing, and a volatile read of an aligned
    // word is what `READ_ONCE` does in C: one untorn load, never cached.
    u64::from(unsafe { core::ptr::read_volatile(&raw const bindings::tsc_khz) })
}

extern "C" {
    // Per-CPU variables of the kernel (`arch/x86`), both exported; only
    // their `%gs`-relative addresses are used, never these statics.
    static __preempt_count: i32;
    static cpu_number: i32;
}

/// Preemption off on this CPU while it lives (`preempt_disable`), with no
/// call and no atomic: the kernel's own `%gs`-relative increment.
pub(crate) struct NoPreempt(());

impl NoPreempt {
    #[inline(always)]
    pub(crate) fn new() -> Self {
        // SAFETY: increments this CPU's preempt count, as `preempt_disable`
        // does (`__preempt_count_inc`); the asm is a compiler barrier (no
        // `nomem`), so nothing below is moved above it.
        unsafe {
            core::arch::asm!(
                "incl %gs:{pc}(%rip)",
                pc = sym __preempt_count,
                options(att_syntax, nostack)
            )
        };
        NoPreempt(())
    }

    /// The CPU this runs on (`smp_processor_id`): stable while `self` lives.
    #[inline(always)]
    pub(crate) fn cpu(&self) -> usize {
        let id: u32;
        // SAFETY: reads this CPU's `cpu_number`, as `raw_smp_processor_id`
        // does; with preemption off it is the CPU until `self` drops.
        unsafe {
            core::arch::asm!(
                "movl %gs:{cn}(%rip), {id:e}",
                cn = sym cpu_number,
                id = out(reg) id,
                options(att_syntax, nostack, preserves_flags)
            )
        };
        id as usize
    }
}

impl Drop for NoPreempt {
    #[inline(always)]
    fn drop(&mut self) {
        let resched: u8;
        // SAFETY: undoes `new`'s increment (`__preempt_count_dec_and_test`):
        // the count, with x86's inverted need-resched bit folded in, reads
        // zero only when preemption is back on and a reschedule is due.
        unsafe {
            core::arch::asm!(
                "decl %gs:{pc}(%rip)",
                "sete {r}",
                pc = sym __preempt_count,
                r = out(reg_byte) resched,
                options(att_syntax, nostack)
            )
        };
        if resched != 0 {
            preempt_schedule();
        }
    }
}

#[cold]
#[inline(never)]
fn preempt_schedule() {
    // SAFETY: called with preemption enabled again, as `preempt_enable`
    // calls it.
    unsafe { bindings::preempt_schedule() };
}

/// CPU hotplug held off (`cpus_read_lock`) while it lives.
pub(crate) struct CpusReadLock(());

impl CpusReadLock {
    pub(crate) fn new() -> Self {
        // SAFETY: may sleep; callers are in process context.
        unsafe { bindings::cpus_read_lock() };
        CpusReadLock(())
    }
}

impl Drop for CpusReadLock {
    fn drop(&mut self) {
        // SAFETY: pairs with the lock taken in `new`.
        unsafe { bindings::cpus_read_unlock() };
    }
}

// The memory model: the direct map starts at `page_offset_base` and
// `struct page` lives in the virtual memmap at `vmemmap_base`
// (SPARSEMEM_VMEMMAP), so linear address, PFN and `struct page` convert by
// arithmetic, as the C macros `__pa`, `pfn_to_page` and `page_to_pfn` do.

/// The PFN of `page`, like `page_to_pfn`.
pub(crate) fn page_to_pfn(page: *const bindings::page) -> u64 {
    // SAFETY: `vmemmap_base` is set once during early boot and never changes.
    let base = unsafe { bindings::vmemmap_base };
    ((page as usize).wrapping_sub(base) / core::mem::size_of::<bindings::page>()) as u64
}

/// The `struct page` of `pfn`, like `pfn_to_page` (a pointer, not dereferenced).
pub(crate) fn pfn_to_page(pfn: u64) -> *mut bindings::page {
    // SAFETY: `vmemmap_base` is set once during early boot and never changes.
    let base = unsafe { bindings::vmemmap_base };
    (base + pfn as usize * core::mem::size_of::<bindings::page>()) as *mut bindings::page
}

/// Physical address of a direct-map (kmalloc, page allocator) address, like `__pa`.
pub(crate) fn linear_phys(addr: *const c_void) -> u64 {
    // SAFETY: `page_offset_base` is set once during early boot and never changes.
    let base = unsafe { bindings::page_offset_base } as u64;
    (addr as u64).wrapping_sub(base)
}

/// The direct-map address of `pfn`, like `page_address` without highmem.
pub(crate) fn pfn_to_virt(pfn: u64) -> *mut u8 {
    // SAFETY: `page_offset_base` is set once during early boot and never changes.
    let base = unsafe { bindings::page_offset_base } as u64;
    (base + (pfn << PAGE_SHIFT)) as *mut u8
}
