// SPDX-License-Identifier: GPL-2.0

//! memlab's GFP selectors ([`Gfp`], decoded in `src/request/`) as the
//! kernel's `gfp_t`.
//!
//! The composite masks (`GFP_NOIO`, `GFP_USER`, ...) are macros bindgen does
//! not export, so they are rebuilt here from the `___GFP_*_BIT` numbers,
//! exactly as `include/linux/gfp_types.h` composes them; the ones bindgen
//! does export are checked against at compile time.

use crate::request::{Gfp, GfpSel};
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
const NORETRY: gfp_t = bit(bindings::___GFP_NORETRY_BIT);
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

/// The kernel mask of a memlab [`Gfp`].
pub(crate) trait GfpFlags {
    /// The kernel mask, always with `__GFP_NOWARN`: whatever user space asks
    /// for, a failing allocation must not splat.
    fn flags(self) -> gfp_t;

    /// [`GfpFlags::flags`] with `__GFP_NORETRY`: one light round of
    /// reclaim and no OOM kill before a failure, for a replay session that
    /// drives its zone near full (a failure is an answer there, and the
    /// mirror fails as early: it reclaims its caches once).
    fn flags_noretry(self) -> gfp_t;
}

impl GfpFlags for Gfp {
    fn flags(self) -> gfp_t {
        let mask = match self.sel {
            GfpSel::Kernel => KERNEL,
            GfpSel::Atomic => ATOMIC,
            GfpSel::Nowait => NOWAIT,
            GfpSel::Noio => RECLAIM,
            GfpSel::Nofs => RECLAIM | IO,
            GfpSel::User => USER,
            GfpSel::HighUser => USER | HIGHMEM,
            GfpSel::Dma => KERNEL | DMA,
            GfpSel::Dma32 => KERNEL | DMA32,
        };
        mask | NOWARN | if self.zero { ZERO } else { 0 }
    }

    fn flags_noretry(self) -> gfp_t {
        self.flags() | NORETRY
    }
}
