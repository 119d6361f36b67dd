// SPDX-License-Identifier: GPL-2.0

//! memlab's GFP selectors (`MEMLAB_GFP_*`) as the kernel's `gfp_t`.
//!
//! The composite masks (`GFP_NOIO`, `GFP_USER`, ...) are macros bindgen does
//! not export, so they are rebuilt here from the `___GFP_*_BIT` numbers,
//! exactly as `include/linux/gfp_types.h` composes them; the ones bindgen
//! does export are checked against at compile time.

use crate::uapi;
use kernel::bindings::{self, gfp_t};

const fn bit(b: u32) -> gfp_t {
    1 << b
}

const DMA: gfp_t = bit(bindings::___GFP_DMA_BIT);
const HIGHMEM: gfp_t = bit(bindings::___GFP_HIGHMEM_BIT);
const DMA32: gfp_t = bit(bindings::___GFP_DMA32_BIT);
const HIGH: gfp_t = bit(bindings::___GFP_HIGH_BIT);
const IO: gfp_t = bit(bindings::___GFP_IO_BIT);
const FS: gfp_t = bit(bindings::___GFP_FS_BIT);
const ZERO: gfp_t = bit(bindings::___GFP_ZERO_BIT);
const DIRECT_RECLAIM: gfp_t = bit(bindings::___GFP_DIRECT_RECLAIM_BIT);
const KSWAPD_RECLAIM: gfp_t = bit(bindings::___GFP_KSWAPD_RECLAIM_BIT);
const NOWARN: gfp_t = bit(bindings::___GFP_NOWARN_BIT);
const HARDWALL: gfp_t = bit(bindings::___GFP_HARDWALL_BIT);
const RECLAIM: gfp_t = DIRECT_RECLAIM | KSWAPD_RECLAIM;

const KERNEL: gfp_t = RECLAIM | IO | FS;
const ATOMIC: gfp_t = HIGH | KSWAPD_RECLAIM;
const NOWAIT: gfp_t = KSWAPD_RECLAIM | NOWARN;
const USER: gfp_t = RECLAIM | IO | FS | HARDWALL;

const _: () = assert!(KERNEL == bindings::GFP_KERNEL);
const _: () = assert!(ATOMIC == bindings::GFP_ATOMIC);
const _: () = assert!(NOWAIT == bindings::GFP_NOWAIT);
const _: () = assert!(ZERO == bindings::__GFP_ZERO);
const _: () = assert!(NOWARN == bindings::__GFP_NOWARN);
const _: () = assert!(HIGHMEM == bindings::__GFP_HIGHMEM);

/// Name and mask of each selector, indexed by `MEMLAB_GFP_*`.
const TABLE: [(&str, gfp_t); uapi::MEMLAB_NR_GFP as usize] = [
    ("GFP_KERNEL", KERNEL),
    ("GFP_ATOMIC", ATOMIC),
    ("GFP_NOWAIT", NOWAIT),
    ("GFP_NOIO", RECLAIM),
    ("GFP_NOFS", RECLAIM | IO),
    ("GFP_USER", USER),
    ("GFP_HIGHUSER", USER | HIGHMEM),
    ("GFP_DMA", KERNEL | DMA),
    ("GFP_DMA32", KERNEL | DMA32),
];

/// A validated GFP selector plus the zero modifier.
#[derive(Clone, Copy)]
pub(crate) struct Gfp {
    sel: u32,
    zero: bool,
}

impl Gfp {
    /// Decodes a uapi `gfp` field; `None` for an unknown selector.
    pub(crate) fn from_uapi(gfp: u32) -> Option<Self> {
        let sel = gfp & 0xff;
        if sel >= uapi::MEMLAB_NR_GFP || gfp & !(0xff | uapi::MEMLAB_GFP_ZERO) != 0 {
            return None;
        }
        Some(Gfp {
            sel,
            zero: gfp & uapi::MEMLAB_GFP_ZERO != 0,
        })
    }

    /// Selector `sel` (a `MEMLAB_GFP_*` below `MEMLAB_NR_GFP`), zeroing or not.
    pub(crate) const fn new(sel: u32, zero: bool) -> Self {
        Gfp { sel, zero }
    }

    /// The kernel mask, always with `__GFP_NOWARN`: whatever user space asks
    /// for, a failing allocation must not splat.
    pub(crate) fn flags(self) -> gfp_t {
        let (_, mask) = TABLE[self.sel as usize % TABLE.len()];
        mask | NOWARN | if self.zero { ZERO } else { 0 }
    }

    /// `GFP_KERNEL | __GFP_NOWARN`.
    pub(crate) const fn kernel() -> Self {
        Gfp::new(uapi::MEMLAB_GFP_KERNEL, false)
    }

    /// The selector's name, e.g. `GFP_KERNEL`.
    pub(crate) fn name(self) -> &'static str {
        TABLE[self.sel as usize % TABLE.len()].0
    }

    /// Whether `__GFP_ZERO` is requested (and must be verified).
    pub(crate) fn zero(self) -> bool {
        self.zero
    }

    /// Whether the slab allocators accept the mask: `__GFP_DMA32` and
    /// `__GFP_HIGHMEM` are in mm's `GFP_SLAB_BUG_MASK` (slub would print a
    /// stack dump and strip them), so kmalloc and kmem_cache refuse them.
    pub(crate) fn slab_ok(self) -> bool {
        self.flags() & (DMA32 | HIGHMEM) == 0
    }

    /// Whether the selector is meant for atomic context (may not sleep).
    pub(crate) fn atomic(self) -> bool {
        self.sel == uapi::MEMLAB_GFP_ATOMIC || self.sel == uapi::MEMLAB_GFP_NOWAIT
    }

    /// The zone the mask restricts the allocation to, if any (`MEMLAB_ZONE_*`
    /// of the highest zone allowed).
    pub(crate) fn zone_limit(self) -> Option<u32> {
        let f = self.flags();
        if f & DMA != 0 {
            Some(uapi::MEMLAB_ZONE_DMA)
        } else if f & DMA32 != 0 {
            Some(uapi::MEMLAB_ZONE_DMA32)
        } else {
            None
        }
    }
}
