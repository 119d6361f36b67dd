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
//! [`WorkloadRequest`] (`workload.rs`) and [`replay::ReplayRequest`] do the
//! same for WORKLOAD and REPLAY. Each refusal is a [`Refusal`]: the rule,
//! the value and the limit, which the kernel turns into its errno and
//! memlabctl into a sentence.
//!
//! Plain `core` Rust, like the allocator core: the host test crate compiles
//! this file and tests the rules without a kernel.

mod gfp;
mod refusal;
pub mod replay;
pub mod session;
mod workload;

pub use gfp::{Gfp, GfpSel, Zone};
pub use refusal::{family_name, Ioctl, Refusal};
pub use workload::{Mode, Pattern, WorkloadFamily, WorkloadRequest};

use crate::buddy::{MAX_PAGE_ORDER, PAGE_SIZE};
use crate::sizeclass::KMALLOC_MAX_SIZE;
use crate::uapi;

/// Largest kmem_cache alignment: the largest block the page allocator
/// serves (SLUB's size arithmetic is `unsigned int`; this keeps it far away).
pub const KMEM_CACHE_MAX_ALIGN: usize = PAGE_SIZE << MAX_PAGE_ORDER;

/// The errno class of a [`Refusal`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// Malformed: `EINVAL`.
    Invalid,
    /// Larger than anything this machine could hold: `E2BIG`.
    TooBig,
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
    pub fn from_uapi(b: u32) -> Result<Self, Refusal> {
        match b {
            uapi::MEMLAB_BACKEND_REAL => Ok(BackendId::Real),
            uapi::MEMLAB_BACKEND_MIRROR => Ok(BackendId::Mirror),
            _ => Err(Refusal::Backend(b)),
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
    pub fn from_uapi(f: u32) -> Result<Self, Refusal> {
        if f & !uapi::MEMLAB_CACHE_FLAGS != 0 {
            return Err(Refusal::CacheFlags(f));
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
    type Error = Refusal;

    fn try_from(r: &uapi::MemlabAlloc) -> Result<Self, Refusal> {
        // `handle` is an output and `reserved` is for later: both zero.
        if r.handle != 0 || r.reserved != 0 {
            return Err(Refusal::OutputSet {
                ioctl: Ioctl::Alloc,
            });
        }
        let backend = BackendId::from_uapi(r.backend)?;
        let gfp = Gfp::from_uapi(r.gfp)?;
        let size = usize::try_from(r.size).map_err(|_| Refusal::Unaddressable(r.size))?;
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
            f => {
                return Err(Refusal::Family {
                    ioctl: Ioctl::Alloc,
                    family: f,
                })
            }
        };
        family_fields(r, family)?;
        if family.is_slab() && !gfp.slab_ok() {
            return Err(Refusal::SlabGfp {
                family: r.family,
                gfp: gfp.name(),
            });
        }
        Ok(AllocRequest {
            family,
            gfp,
            backend,
        })
    }
}

/// Each family reads only its own fields of `r`; the others must be zero.
fn family_fields(r: &uapi::MemlabAlloc, family: Family) -> Result<(), Refusal> {
    let not_taken = |field, value| {
        Err(Refusal::FieldNotTaken {
            family: r.family,
            field,
            value,
        })
    };
    if !matches!(family, Family::Pages { .. }) {
        if r.order != 0 {
            return not_taken("order", u64::from(r.order));
        }
        if r.size == 0 {
            return Err(Refusal::SizeBelow {
                family: r.family,
                size: 0,
                min: 1,
            });
        }
    }
    match family {
        Family::Pages { order } if order > MAX_PAGE_ORDER => {
            return Err(Refusal::Order {
                order: u64::from(order),
                error: RequestError::Invalid,
            });
        }
        // kmem_cache_create() refuses these with a stack dump.
        Family::KmemCache { align, .. } => {
            object_size(r.family, r.size, 1, RequestError::Invalid)?;
            if align != 0 && (!align.is_power_of_two() || align > KMEM_CACHE_MAX_ALIGN) {
                return Err(Refusal::Align(u64::from(r.align)));
            }
            return Ok(());
        }
        _ => {}
    }
    if r.align != 0 {
        return not_taken("align", u64::from(r.align));
    }
    if r.cache_flags != 0 {
        return not_taken("cache_flags", u64::from(r.cache_flags));
    }
    Ok(())
}

/// An object size of `family` (kmalloc, kmem_cache, vmalloc): at least
/// `min` (EINVAL below), at most `KMALLOC_MAX_SIZE` (`error` above).
fn object_size(family: u32, size: u64, min: u64, error: RequestError) -> Result<usize, Refusal> {
    if size < min {
        return Err(Refusal::SizeBelow { family, size, min });
    }
    if size > KMALLOC_MAX_SIZE as u64 {
        return Err(Refusal::SizeAbove {
            family,
            size,
            max: KMALLOC_MAX_SIZE as u64,
            error,
        });
    }
    Ok(size as usize)
}

/// Whether a file holding `pinned` bytes under a cap of `cap` may take
/// `bytes` more: [`Refusal::PinCap`] (E2BIG) if not.
pub const fn check_pin_cap(bytes: u64, pinned: u64, cap: u64) -> Result<(), Refusal> {
    if bytes > cap.saturating_sub(pinned) {
        Err(Refusal::PinCap { bytes, pinned, cap })
    } else {
        Ok(())
    }
}
