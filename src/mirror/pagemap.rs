// SPDX-License-Identifier: GPL-2.0

//! `mirror/pagemap`: what every page of the pool is, from the buddy's own
//! metadata, as runs:
//!
//! ```text
//! # memlab mirror/pagemap 1
//! # zone start_pfn pages kind [detail]
//! Normal 0x140000 512 free order=9
//! Normal 0x140200 8 slab kmalloc-64 order=0
//! ```
//!
//! One line per run of consecutive blocks of the same kind and detail, in
//! PFN order, zone by zone. Kinds:
//!
//! - `free order=N`: free buddy blocks of order N (what buddyinfo counts);
//! - `pcp`: blocks (orders 0-3) parked on a CPU's page lists;
//! - `pages order=N`: blocks handed out by `alloc_pages` (the pages family,
//!   and the pages of mirror vmalloc and DMA, which are page allocations);
//! - `slab NAME order=N`: slabs of the named kmalloc cache (`kmem_cache` for
//!   a cache of a handle or a workload);
//! - `kmalloc-large order=N` (and `dma-kmalloc-large`): kmalloc above
//!   KMALLOC_MAX_CACHE_SIZE.
//!
//! The CPU lists are read before the zones (lock order), so under
//! concurrent use a page may be reported as `pages` that just went to a
//! list, or the reverse; on a quiet mirror the map is exact.

use super::percpu::NR_PCP_ORDERS;
use super::zone::MirrorState;
use super::{Mirror, TAG_MIRROR_PAGES};
use crate::platform::{phys, sort::sort_sleepable};
use crate::request::Zone;
use core::fmt;
use kernel::{page::PAGE_SHIFT, prelude::*};

/// The kind of one block, and what to print after it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind<'a> {
    Free(u32),
    Pcp,
    Pages(u32),
    Slab(&'a str, u32),
    Large(&'static str, u32),
}

impl fmt::Display for Kind<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Free(o) => write!(f, "free order={o}"),
            Kind::Pcp => write!(f, "pcp"),
            Kind::Pages(o) => write!(f, "pages order={o}"),
            Kind::Slab(name, o) => write!(f, "slab {name} order={o}"),
            Kind::Large(name, o) => write!(f, "{name} order={o}"),
        }
    }
}

/// What the block with owner `tag` and order `order` is.
fn kind_of(st: &MirrorState, tag: u32, order: u32, pcp: bool) -> Kind<'_> {
    if tag == TAG_MIRROR_PAGES.get() {
        return if pcp { Kind::Pcp } else { Kind::Pages(order) };
    }
    for (km, large) in [
        (&st.kmalloc, "kmalloc-large"),
        (&st.kmalloc_dma, "dma-kmalloc-large"),
    ] {
        if tag == km.large_tag() {
            return Kind::Large(large, order);
        }
        if let Some(c) = km.caches().iter().find(|c| c.tag() == tag) {
            return Kind::Slab(c.name(), order);
        }
    }
    Kind::Slab("kmem_cache", order)
}

impl Mirror {
    /// The frames parked on every CPU's page lists, sorted.
    fn pcp_frames(&self) -> Result<KVec<u64>> {
        let per_cpu: usize = self.pcp.iter().map(|p| p.list_cap() * NR_PCP_ORDERS).sum();
        let mut frames = KVec::with_capacity(self.cpus.len() * per_cpu, GFP_KERNEL)?;
        // In an IPI on each CPU: pushes within capacity never allocate.
        self.cpus.each(&mut |cc| {
            for list in cc.stock.pcp.iter().flat_map(|p| p.lists.iter()) {
                for p in list.iter() {
                    let pfn = phys::linear_phys(p.as_ptr().cast()) >> PAGE_SHIFT;
                    // Capacity is every list full: this cannot fail.
                    let _ = frames.push_within_capacity(pfn);
                }
            }
        });
        sort_sleepable(&mut frames);
        Ok(frames)
    }

    /// Writes `mirror/pagemap` (see the module docs for the format).
    pub(crate) fn pagemap(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pcp = self.pcp_frames().map_err(|_| fmt::Error)?;
        writeln!(f, "# memlab mirror/pagemap 1")?;
        writeln!(f, "# zone start_pfn pages kind [detail]")?;
        let st = self.state.lock();
        for (z, buddy) in Zone::ALL.iter().zip(st.zones.iter()) {
            let Some(b) = buddy else { continue };
            for r in b.regions() {
                let mut run: Option<(u64, u64, Kind<'_>)> = None;
                let mut pfn = r.start_pfn();
                while pfn < r.end_pfn() {
                    let blk = b.block_of(pfn).map_err(|_| fmt::Error)?;
                    let pages = 1u64 << blk.order;
                    let kind = if blk.free {
                        Kind::Free(blk.order)
                    } else {
                        let parked = pcp.binary_search(&pfn).is_ok();
                        kind_of(&st, blk.tag, blk.order, parked)
                    };
                    run = match run {
                        Some((start, n, k)) if k == kind => Some((start, n + pages, k)),
                        Some((start, n, k)) => {
                            writeln!(f, "{} {start:#x} {n} {k}", z.name())?;
                            Some((pfn, pages, kind))
                        }
                        None => Some((pfn, pages, kind)),
                    };
                    pfn = blk.head_pfn + pages;
                }
                if let Some((start, n, k)) = run {
                    writeln!(f, "{} {start:#x} {n} {k}", z.name())?;
                }
            }
        }
        Ok(())
    }
}
