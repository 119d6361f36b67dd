// SPDX-License-Identifier: GPL-2.0

//! The GFP masks memlab offers ([`Gfp`]: a selector plus `__GFP_ZERO`), what
//! they mean to the allocators (atomic, reserves, reclaim, zone limits), and
//! the zones ([`Zone`]). Plain `core`; the kernel `gfp_t` of each is in
//! `src/real/gfp.rs`.

use super::Refusal;
use crate::uapi;

/// The GFP selectors memlab offers (`MEMLAB_GFP_*`), in ABI order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GfpSel {
    /// `GFP_KERNEL`.
    Kernel,
    /// `GFP_ATOMIC`.
    Atomic,
    /// `GFP_NOWAIT`.
    Nowait,
    /// `GFP_NOIO`.
    Noio,
    /// `GFP_NOFS`.
    Nofs,
    /// `GFP_USER`.
    User,
    /// `GFP_HIGHUSER`.
    HighUser,
    /// `GFP_KERNEL | __GFP_DMA`.
    Dma,
    /// `GFP_KERNEL | __GFP_DMA32`.
    Dma32,
}

impl GfpSel {
    /// Every selector, indexed by its `MEMLAB_GFP_*` value.
    pub const ALL: [GfpSel; uapi::MEMLAB_NR_GFP as usize] = [
        GfpSel::Kernel,
        GfpSel::Atomic,
        GfpSel::Nowait,
        GfpSel::Noio,
        GfpSel::Nofs,
        GfpSel::User,
        GfpSel::HighUser,
        GfpSel::Dma,
        GfpSel::Dma32,
    ];

    /// The kernel's name for the mask, e.g. `GFP_KERNEL`.
    pub const fn name(self) -> &'static str {
        match self {
            GfpSel::Kernel => "GFP_KERNEL",
            GfpSel::Atomic => "GFP_ATOMIC",
            GfpSel::Nowait => "GFP_NOWAIT",
            GfpSel::Noio => "GFP_NOIO",
            GfpSel::Nofs => "GFP_NOFS",
            GfpSel::User => "GFP_USER",
            GfpSel::HighUser => "GFP_HIGHUSER",
            GfpSel::Dma => "GFP_DMA",
            GfpSel::Dma32 => "GFP_DMA32",
        }
    }
}

/// A GFP selector plus the `__GFP_ZERO` modifier: the `gfp` field of the ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gfp {
    /// The mask.
    pub sel: GfpSel,
    /// `__GFP_ZERO` asked for (and to be verified).
    pub zero: bool,
}

impl Gfp {
    /// `GFP_KERNEL`, not zeroing.
    pub const KERNEL: Gfp = Gfp::new(GfpSel::Kernel, false);

    /// `sel`, zeroing or not.
    pub const fn new(sel: GfpSel, zero: bool) -> Self {
        Gfp { sel, zero }
    }

    /// Decodes an ABI `gfp` field: a selector in the low byte, optionally
    /// `MEMLAB_GFP_ZERO`, nothing else.
    pub fn from_uapi(gfp: u32) -> Result<Self, Refusal> {
        if gfp & !(0xff | uapi::MEMLAB_GFP_ZERO) != 0 {
            return Err(Refusal::GfpBits(gfp));
        }
        let sel = GfpSel::ALL
            .get((gfp & 0xff) as usize)
            .copied()
            .ok_or(Refusal::GfpSelector(gfp & 0xff))?;
        Ok(Gfp::new(sel, gfp & uapi::MEMLAB_GFP_ZERO != 0))
    }

    /// The ABI `gfp` field for this mask.
    pub const fn to_uapi(self) -> u32 {
        self.sel as u32 | if self.zero { uapi::MEMLAB_GFP_ZERO } else { 0 }
    }

    /// The kernel's name for the mask, e.g. `GFP_KERNEL`.
    pub const fn name(self) -> &'static str {
        self.sel.name()
    }

    /// Whether the mask is meant for atomic context (may not sleep).
    pub const fn atomic(self) -> bool {
        matches!(self.sel, GfpSel::Atomic | GfpSel::Nowait)
    }

    /// Whether the mask may dip into a zone's reserve (`__GFP_HIGH`).
    pub const fn high(self) -> bool {
        matches!(self.sel, GfpSel::Atomic)
    }

    /// Whether the mask may reclaim (`__GFP_DIRECT_RECLAIM`).
    pub const fn may_reclaim(self) -> bool {
        !self.atomic()
    }

    /// Whether the slab allocators accept the mask: `__GFP_DMA32` and
    /// `__GFP_HIGHMEM` are in mm's `GFP_SLAB_BUG_MASK` (SLUB would print a
    /// stack dump and strip them).
    pub const fn slab_ok(self) -> bool {
        !matches!(self.sel, GfpSel::Dma32 | GfpSel::HighUser)
    }

    /// The mask with its zone modifiers dropped (`__GFP_DMA`, `__GFP_DMA32`,
    /// `__GFP_HIGHMEM`), everything else kept. SLUB allocates a
    /// kmem_cache's slabs with `gfp & (GFP_RECLAIM_MASK |
    /// GFP_CONSTRAINT_MASK)` plus the cache's own `allocflags`: the zone of
    /// a cache's objects comes from the cache (`SLAB_CACHE_DMA`), never from
    /// the mask of one allocation.
    pub const fn without_zone(self) -> Gfp {
        let sel = match self.sel {
            GfpSel::Dma | GfpSel::Dma32 => GfpSel::Kernel,
            GfpSel::HighUser => GfpSel::User,
            s => s,
        };
        Gfp::new(sel, self.zero)
    }

    /// The highest zone the mask allows, if it restricts the zone at all.
    pub const fn zone_limit(self) -> Option<Zone> {
        match self.sel {
            GfpSel::Dma => Some(Zone::Dma),
            GfpSel::Dma32 => Some(Zone::Dma32),
            _ => None,
        }
    }
}

/// The memory zones of one node, as `/proc/buddyinfo` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Zone {
    /// `ZONE_DMA`: the first 16 MiB.
    Dma,
    /// `ZONE_DMA32`: below 4 GiB.
    Dma32,
    /// `ZONE_NORMAL`.
    Normal,
    /// `ZONE_MOVABLE`.
    Movable,
}

impl Zone {
    /// Every zone, indexed by its `MEMLAB_ZONE_*` value (the kernel's order).
    pub const ALL: [Zone; 4] = [Zone::Dma, Zone::Dma32, Zone::Normal, Zone::Movable];

    /// The zone whose `MEMLAB_ZONE_*` value is `z`.
    pub fn from_uapi(z: u32) -> Option<Zone> {
        Zone::ALL.get(z as usize).copied()
    }

    /// Its `MEMLAB_ZONE_*` value, which is also its index in a node.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Its name as `/proc/buddyinfo` prints it.
    pub const fn name(self) -> &'static str {
        match self {
            Zone::Dma => "DMA",
            Zone::Dma32 => "DMA32",
            Zone::Normal => "Normal",
            Zone::Movable => "Movable",
        }
    }

    /// The name of a `MEMLAB_ZONE_*` value, `mixed` for `MEMLAB_ZONE_MIXED`.
    pub fn name_of_uapi(z: u32) -> &'static str {
        match Zone::from_uapi(z) {
            Some(z) => z.name(),
            None if z == uapi::MEMLAB_ZONE_MIXED => "mixed",
            None => "?",
        }
    }
}
