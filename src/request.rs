// SPDX-License-Identifier: GPL-2.0

//! One allocation request, decoded once from the ioctl struct.
//!
//! [`AllocRequest::try_from`] holds every rule that does not depend on the
//! allocator that will serve the request: unknown family, backend or GFP
//! selector, stray bits, a zero size, an order above `MAX_PAGE_ORDER`, an
//! alignment that is not a power of two or is given for a family that takes
//! none, and a slab family asked for `__GFP_DMA32`/`__GFP_HIGHMEM` (the
//! kernel's `GFP_SLAB_BUG_MASK`) are `EINVAL`; a size the machine cannot
//! address is `E2BIG`. What is left for a backend to refuse is what that
//! backend really cannot do (the mirror's vmalloc in atomic context, a pool
//! too small), and the allocator failing.
//!
//! Plain `core` Rust, like the allocator core: the host test crate compiles
//! this file and tests the rules without a kernel.

use crate::buddy::{MAX_PAGE_ORDER, PAGE_SIZE};
use crate::sizeclass::KMALLOC_MAX_SIZE;
use crate::uapi;

/// Largest kmem_cache alignment: the largest block the page allocator
/// serves (SLUB's size arithmetic is `unsigned int`; this keeps it far away).
pub const KMEM_CACHE_MAX_ALIGN: usize = PAGE_SIZE << MAX_PAGE_ORDER;

/// Why a request was refused before any allocator saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// Malformed: `EINVAL`.
    Invalid,
    /// Larger than anything this machine could hold: `E2BIG`.
    TooBig,
}

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
    pub fn from_uapi(gfp: u32) -> Result<Self, RequestError> {
        if gfp & !(0xff | uapi::MEMLAB_GFP_ZERO) != 0 {
            return Err(RequestError::Invalid);
        }
        let sel = GfpSel::ALL
            .get((gfp & 0xff) as usize)
            .copied()
            .ok_or(RequestError::Invalid)?;
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

/// Which allocators serve a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendId {
    /// The kernel's own allocators.
    Real,
    /// memlab's mirror of them, on the module's pool.
    Mirror,
}

impl BackendId {
    /// Decodes `MEMLAB_BACKEND_*`.
    pub fn from_uapi(b: u32) -> Result<Self, RequestError> {
        match b {
            uapi::MEMLAB_BACKEND_REAL => Ok(BackendId::Real),
            uapi::MEMLAB_BACKEND_MIRROR => Ok(BackendId::Mirror),
            _ => Err(RequestError::Invalid),
        }
    }
}

/// An allocator family with what it needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// `kmalloc(size)`.
    Kmalloc {
        /// Bytes, at least 1.
        size: usize,
    },
    /// `vmalloc(size)`.
    Vmalloc {
        /// Bytes, at least 1.
        size: usize,
    },
    /// `alloc_pages(order)`.
    Pages {
        /// `0..=MAX_PAGE_ORDER`.
        order: u32,
    },
    /// One object from a fresh `kmem_cache` of `size` bytes aligned to `align`.
    KmemCache {
        /// Object bytes, `1..=KMALLOC_MAX_SIZE`.
        size: usize,
        /// 0 or a power of two up to [`KMEM_CACHE_MAX_ALIGN`].
        align: usize,
        /// How the cache is created.
        flags: CacheFlags,
    },
    /// `dma_alloc_coherent(size)` on memlab's device for the GFP selector.
    Dma {
        /// Bytes, at least 1.
        size: usize,
    },
}

impl Family {
    /// Its `MEMLAB_FAMILY_*` value.
    pub const fn to_uapi(self) -> u32 {
        match self {
            Family::Kmalloc { .. } => uapi::MEMLAB_FAMILY_KMALLOC,
            Family::Vmalloc { .. } => uapi::MEMLAB_FAMILY_VMALLOC,
            Family::Pages { .. } => uapi::MEMLAB_FAMILY_PAGES,
            Family::KmemCache { .. } => uapi::MEMLAB_FAMILY_KMEM_CACHE,
            Family::Dma { .. } => uapi::MEMLAB_FAMILY_DMA,
        }
    }

    /// Whether the family is a slab allocator (bound by `GFP_SLAB_BUG_MASK`).
    pub const fn is_slab(self) -> bool {
        matches!(self, Family::Kmalloc { .. } | Family::KmemCache { .. })
    }
}

/// kmem_cache creation flags (`MEMLAB_CACHE_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheFlags {
    /// `SLAB_CACHE_DMA`: the cache's slabs, so all its objects, come from
    /// ZONE_DMA, whatever the mask of an allocation.
    pub dma: bool,
    /// `SLAB_HWCACHE_ALIGN`: objects aligned to the cache line.
    pub hwcache_align: bool,
}

impl CacheFlags {
    /// Decodes `MEMLAB_CACHE_*`; unknown bits are EINVAL.
    pub fn from_uapi(f: u32) -> Result<Self, RequestError> {
        if f & !uapi::MEMLAB_CACHE_FLAGS != 0 {
            return Err(RequestError::Invalid);
        }
        Ok(CacheFlags {
            dma: f & uapi::MEMLAB_CACHE_DMA != 0,
            hwcache_align: f & uapi::MEMLAB_CACHE_HWCACHE_ALIGN != 0,
        })
    }

    /// The zone the cache's slabs come from, if the flags fix one.
    pub const fn zone(self) -> Option<Zone> {
        if self.dma {
            Some(Zone::Dma)
        } else {
            None
        }
    }
}

/// A validated ALLOC request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocRequest {
    /// What to allocate.
    pub family: Family,
    /// With which mask.
    pub gfp: Gfp,
    /// From which allocators.
    pub backend: BackendId,
}

impl AllocRequest {
    /// The bytes asked for: `size`, or the pages of `order`. The pin cap is
    /// checked against this before allocating, and against what the
    /// allocation really holds after.
    pub const fn bytes(&self) -> usize {
        match self.family {
            Family::Kmalloc { size }
            | Family::Vmalloc { size }
            | Family::KmemCache { size, .. }
            | Family::Dma { size } => size,
            Family::Pages { order } => PAGE_SIZE << order,
        }
    }

    /// The ABI `size` field (0 for pages, as the caller passed it).
    pub const fn size(&self) -> u64 {
        match self.family {
            Family::Pages { .. } => 0,
            _ => self.bytes() as u64,
        }
    }
}

impl TryFrom<&uapi::MemlabAlloc> for AllocRequest {
    type Error = RequestError;

    fn try_from(r: &uapi::MemlabAlloc) -> Result<Self, RequestError> {
        use RequestError::{Invalid, TooBig};
        // `handle` is an output and `reserved` is for later: both zero.
        if r.handle != 0 || r.reserved != 0 {
            return Err(Invalid);
        }
        let backend = BackendId::from_uapi(r.backend)?;
        let gfp = Gfp::from_uapi(r.gfp)?;
        let size = usize::try_from(r.size).map_err(|_| TooBig)?;
        let family = match r.family {
            uapi::MEMLAB_FAMILY_KMALLOC => Family::Kmalloc { size },
            uapi::MEMLAB_FAMILY_VMALLOC => Family::Vmalloc { size },
            uapi::MEMLAB_FAMILY_PAGES => Family::Pages { order: r.order },
            uapi::MEMLAB_FAMILY_KMEM_CACHE => Family::KmemCache {
                size,
                align: r.align as usize,
                flags: CacheFlags::from_uapi(r.cache_flags)?,
            },
            uapi::MEMLAB_FAMILY_DMA => Family::Dma { size },
            _ => return Err(Invalid),
        };
        // Each family reads only its own fields; the others must be zero.
        match family {
            Family::Pages { order } => {
                if order > MAX_PAGE_ORDER || r.align != 0 || r.cache_flags != 0 {
                    return Err(Invalid);
                }
            }
            Family::KmemCache { size, align, .. } => {
                // kmem_cache_create() refuses these with a stack dump.
                if size == 0 || size > KMALLOC_MAX_SIZE || r.order != 0 {
                    return Err(Invalid);
                }
                if align != 0 && (!align.is_power_of_two() || align > KMEM_CACHE_MAX_ALIGN) {
                    return Err(Invalid);
                }
            }
            _ => {
                if size == 0 || r.order != 0 || r.align != 0 || r.cache_flags != 0 {
                    return Err(Invalid);
                }
            }
        }
        if family.is_slab() && !gfp.slab_ok() {
            return Err(Invalid);
        }
        Ok(AllocRequest {
            family,
            gfp,
            backend,
        })
    }
}
