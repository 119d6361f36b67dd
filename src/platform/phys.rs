// SPDX-License-Identifier: GPL-2.0

//! Physical facts about memory the real allocators handed out: page frame
//! numbers, zones, alignment, contiguity, and the page allocator's own free
//! lists (what `/proc/buddyinfo` prints).
//!
//! The memory model (how a linear address, a PFN and a `struct page`
//! convert) and the kernel's zones differ by architecture: those live in
//! [`super::arch`], and everything here is written once on top of them.
//! The node is node 0: `contig_page_data` on kernels built without NUMA
//! (memlab's own), `NODE_DATA(0)` on NUMA ones (a distribution's), where
//! [`check_nodes`] refuses to load when more than one node is online.

use super::arch;
use crate::request::{Gfp, Zone};
use crate::uapi;
pub(crate) use arch::{linear_phys, page_to_pfn, pfn_to_page, pfn_to_virt};
use core::ffi::c_void;
use kernel::{bindings, page::PAGE_SHIFT};

/// Highest order the page allocator serves.
pub(crate) const MAX_ORDER: usize = bindings::MAX_PAGE_ORDER as usize;
/// memlab's zones (`MEMLAB_ZONE_*`): every zone either architecture has.
pub(crate) const NR_ZONES: usize = Zone::ALL.len();

/// Whether this kernel has `ZONE_DMA` and `ZONE_DMA32`. Where it has not
/// (UML), `gfp_zone` sends GFP_DMA and GFP_DMA32 to `ZONE_NORMAL`, and so
/// does the mirror's zonelist.
pub(crate) const HAS_ZONE_DMA: bool = cfg!(CONFIG_ZONE_DMA);
pub(crate) const HAS_ZONE_DMA32: bool = cfg!(CONFIG_ZONE_DMA32);

/// The highest zone `gfp` may take pages from on this kernel, as
/// `gfp_zone` decides; `None` for no limit (ZONE_NORMAL and above).
pub(crate) fn zone_limit(gfp: Gfp) -> Option<Zone> {
    match gfp.zone_limit() {
        Some(Zone::Dma) if !HAS_ZONE_DMA => None,
        Some(Zone::Dma32) if !HAS_ZONE_DMA32 => None,
        z => z,
    }
}

// The core (src/core) and the request rules are built for this kernel's
// page geometry; a kernel that differs must not build.
const _: () = assert!(crate::buddy::MAX_PAGE_ORDER == bindings::MAX_PAGE_ORDER);
const _: () = assert!(crate::buddy::PAGE_SHIFT == PAGE_SHIFT as u32);
const _: () = assert!(crate::sizeclass::KMALLOC_MAX_SIZE == bindings::KMALLOC_MAX_SIZE as usize);

// The zones memlab reads are the kernel's first ones; the only zone it
// may leave out is ZONE_DEVICE (device memory: never on a free list,
// never handed out by the page allocator).
const _: () = assert!(arch::KERNEL_ZONES.len() <= bindings::MAX_NR_ZONES as usize);
#[cfg(CONFIG_ZONE_DEVICE)]
const _: () = assert!(
    arch::KERNEL_ZONES.len() == bindings::zone_type_ZONE_DEVICE as usize
        && bindings::MAX_NR_ZONES == bindings::zone_type_ZONE_DEVICE + 1
);
#[cfg(not(CONFIG_ZONE_DEVICE))]
const _: () = assert!(arch::KERNEL_ZONES.len() == bindings::MAX_NR_ZONES as usize);

/// The kernel's node descriptor of node 0, the only node.
#[cfg(not(CONFIG_NUMA))]
fn node() -> *const bindings::pglist_data {
    // `contig_page_data` is a static that lives as long as the kernel;
    // taking its address reads nothing.
    &raw const bindings::contig_page_data
}

/// The kernel's node descriptor of node 0 (`NODE_DATA(0)`), the only
/// online node ([`check_nodes`]).
#[cfg(CONFIG_NUMA)]
fn node() -> *const bindings::pglist_data {
    // SAFETY: `node_data` is the kernel's array of node descriptors
    // (declared with no length); its entry for node 0, which is always
    // online, is set at boot before any module loads and never changed or
    // freed afterwards. One aligned pointer read.
    unsafe {
        (&raw const bindings::node_data)
            .cast::<*mut bindings::pglist_data>()
            .read()
    }
}

/// Refuses a kernel with more than one online node: memlab reads node 0's
/// zones only, so its zone spans and free lists would miss the others.
/// Without NUMA there is one node and nothing to check.
pub(crate) fn check_nodes() -> kernel::error::Result {
    #[cfg(CONFIG_NUMA)]
    {
        // SAFETY: a word the kernel updates when a node comes online; one
        // read, as `num_online_nodes()` does.
        let nodes = unsafe { core::ptr::read_volatile(&raw const bindings::nr_online_nodes) };
        if nodes != 1 {
            kernel::pr_err!(
                "{nodes} NUMA nodes online: memlab reads node 0 only and needs a single node\n"
            );
            return Err(kernel::error::code::ENODEV);
        }
    }
    Ok(())
}

/// Physical address of any kernel address memlab allocated: vmalloc ones
/// through the page tables, linear ones by arithmetic.
///
/// # Safety
///
/// `addr` must point into a live allocation.
pub(crate) unsafe fn virt_to_phys(addr: *const c_void) -> u64 {
    // SAFETY: `is_vmalloc_addr` only compares the address with the vmalloc range.
    if unsafe { bindings::is_vmalloc_addr(addr) } {
        let offset = (addr as u64) & ((1 << PAGE_SHIFT) - 1);
        // SAFETY: by the safety requirement `addr` is mapped by a live vmalloc area.
        ((unsafe { bindings::vmalloc_to_pfn(addr) } as u64) << PAGE_SHIFT) | offset
    } else {
        linear_phys(addr)
    }
}

/// `MEMLAB_ZONE_*` of the zone whose span holds `pfn` (the spans of one node
/// do not overlap); `MEMLAB_ZONE_MIXED` if none does.
pub(crate) fn zone_of_pfn(pfn: u64) -> u32 {
    let node = node();
    for (z, ours) in arch::KERNEL_ZONES.iter().enumerate() {
        // SAFETY: `node` is valid (see `node`) and `z` is in bounds; a zone's
        // span is fixed at boot (no memory hotplug in these kernels).
        let (start, spanned) = unsafe {
            let zone = &raw const (*node).node_zones[z];
            ((*zone).zone_start_pfn as u64, (*zone).spanned_pages as u64)
        };
        if spanned != 0 && pfn >= start && pfn < start + spanned {
            return *ours as u32;
        }
    }
    uapi::MEMLAB_ZONE_MIXED
}

/// log2 of the largest power of two dividing `phys` (64 for 0).
pub(crate) fn align_log2(phys: u64) -> u32 {
    phys.trailing_zeros()
}

/// Where an allocation sits physically: what INSPECT and the exercise
/// reports say about every block, computed here once for both backends.
#[derive(Clone, Copy, Default)]
pub(crate) struct Placement {
    /// `MEMLAB_ZONE_*`, or `MEMLAB_ZONE_MIXED` when the pages span zones.
    pub(crate) zone: u32,
    /// First page frame number.
    pub(crate) first_pfn: u64,
    /// Pages spanned.
    pub(crate) nr_pages: u64,
    /// Physically contiguous runs among them (1 = contiguous).
    pub(crate) runs: u64,
    /// log2 of the largest power of two dividing the physical address.
    pub(crate) align_log2: u32,
}

impl Placement {
    /// `len` bytes of the direct map at physical address `phys`: one run,
    /// the pages it touches, the alignment of `phys`.
    pub(crate) fn linear(phys: u64, len: usize) -> Self {
        let first = phys >> PAGE_SHIFT;
        let last = (phys + len.max(1) as u64 - 1) >> PAGE_SHIFT;
        Placement {
            zone: zone_of_pfn(first),
            first_pfn: first,
            nr_pages: last - first + 1,
            runs: 1,
            align_log2: align_log2(phys),
        }
    }

    /// Whole pages by PFN, in mapping order.
    pub(crate) fn pages(pfns: impl IntoIterator<Item = u64>) -> Self {
        let mut s = PfnSummary::new();
        for pfn in pfns {
            s.add(pfn);
        }
        Self::of(&s)
    }

    /// Whole pages already summarised.
    pub(crate) fn of(s: &PfnSummary) -> Self {
        Placement {
            zone: s.zone,
            first_pfn: s.first,
            nr_pages: s.pages,
            runs: s.runs,
            align_log2: align_log2(s.first << PAGE_SHIFT),
        }
    }
}

/// Summary of a list of PFNs in allocation order: zone (or mixed) and the
/// number of physically contiguous runs.
pub(crate) struct PfnSummary {
    /// `MEMLAB_ZONE_*`, or `MEMLAB_ZONE_MIXED` when the pages span zones.
    pub(crate) zone: u32,
    /// Runs of consecutive PFNs (1 = physically contiguous).
    pub(crate) runs: u64,
    /// Pages seen.
    pub(crate) pages: u64,
    /// First PFN.
    pub(crate) first: u64,
    last: u64,
}

impl PfnSummary {
    /// An empty summary; feed it with [`PfnSummary::add`].
    pub(crate) fn new() -> Self {
        PfnSummary {
            zone: uapi::MEMLAB_ZONE_MIXED,
            runs: 0,
            pages: 0,
            first: 0,
            last: 0,
        }
    }

    /// Adds the next page's PFN.
    pub(crate) fn add(&mut self, pfn: u64) {
        let zone = zone_of_pfn(pfn);
        if self.pages == 0 {
            self.first = pfn;
            self.zone = zone;
            self.runs = 1;
        } else {
            if pfn != self.last.wrapping_add(1) {
                self.runs += 1;
            }
            if zone != self.zone {
                self.zone = uapi::MEMLAB_ZONE_MIXED;
            }
        }
        self.last = pfn;
        self.pages += 1;
    }
}

/// A snapshot of the page allocator's free lists: `nr_free` per zone and
/// order, the numbers `/proc/buddyinfo` prints.
#[derive(Clone, Copy, Default, kernel::prelude::Zeroable)]
pub(crate) struct BuddyInfo {
    /// Whether the zone has pages (only those are printed, like the kernel).
    pub(crate) populated: [bool; NR_ZONES],
    /// Free blocks per zone and order.
    pub(crate) nr_free: [[u64; MAX_ORDER + 1]; NR_ZONES],
}

impl BuddyInfo {
    /// Reads the free lists now, into `self` (it is hundreds of bytes: kept
    /// where it lives, not returned by value). Unlocked, like a racy
    /// `/proc/buddyinfo`: each counter is one word read once, consistent per
    /// counter only.
    pub(crate) fn read(&mut self) {
        let node = node();
        let info = self;
        for (z, ours) in arch::KERNEL_ZONES.iter().enumerate() {
            let i = ours.index();
            // SAFETY: `node` is valid and `z` in bounds; `present_pages` is
            // fixed at boot. `nr_free` is a word updated under `zone->lock`;
            // a volatile read of it is what `READ_ONCE` does in C.
            unsafe {
                let zone = &raw const (*node).node_zones[z];
                info.populated[i] = (*zone).present_pages != 0;
                for o in 0..=MAX_ORDER {
                    let nr = &raw const (*zone).free_area[o].nr_free;
                    info.nr_free[i][o] = core::ptr::read_volatile(nr) as u64;
                }
            }
        }
    }

    /// Writes the snapshot in the layout of `/proc/buddyinfo`.
    pub(crate) fn write_text(
        &self,
        f: &mut impl core::fmt::Write,
        prefix: &str,
    ) -> core::fmt::Result {
        for z in Zone::ALL {
            if !self.populated[z.index()] {
                continue;
            }
            write!(f, "{prefix}Node 0, zone {:>8} ", z.name())?;
            for n in self.nr_free[z.index()] {
                write!(f, "{n:>6} ")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }

    /// Writes the snapshot as a JSON object `{"DMA":[..],..}`.
    pub(crate) fn write_json(&self, f: &mut impl core::fmt::Write) -> core::fmt::Result {
        write!(f, "{{")?;
        let mut first = true;
        for z in Zone::ALL {
            if !self.populated[z.index()] {
                continue;
            }
            if !first {
                write!(f, ",")?;
            }
            first = false;
            write!(f, "\"{}\":[", z.name())?;
            for (o, n) in self.nr_free[z.index()].iter().enumerate() {
                write!(f, "{}{n}", if o == 0 { "" } else { "," })?;
            }
            write!(f, "]")?;
        }
        write!(f, "}}")
    }
}
