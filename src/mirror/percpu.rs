// SPDX-License-Identifier: GPL-2.0

//! What each CPU caches in front of the mirror's shared state, modelled on
//! the kernel's per-CPU page lists (`struct per_cpu_pages`) and SLUB's
//! per-CPU sheaves: per size class a main and a spare sheaf of kmalloc
//! objects ([`super::sheaf`]), and per zone a list of free blocks for each
//! order up to `PAGE_ALLOC_COSTLY_ORDER`. It lives in a
//! [`PerCpu`](crate::platform::percpu::PerCpu) slot and is reached without locks.
//!
//! Items in these caches are not re-validated when they come back (the buddy
//! and the slabs check them when they are flushed), so the free fast paths
//! are `unsafe fn`s whose callers guarantee where the item came from.

use core::ptr::NonNull;
use kernel::prelude::*;

use super::sheaf::Sheaves;
use super::zone::NR_MIRROR_ZONES;
use crate::pcp::{sheaf_capacity, zone_batchsize, zone_highsize};
use crate::sizeclass::{SizeClass, NR_KMALLOC_CLASSES};

/// Orders with per-CPU lists: 0..=`PAGE_ALLOC_COSTLY_ORDER`.
pub(crate) const NR_PCP_ORDERS: usize = 4;

/// A zone's per-CPU list sizes, as `zone_batchsize`/`zone_highsize`
/// compute them for the zone's size.
#[derive(Clone, Copy, Default)]
pub(crate) struct PcpParams {
    /// Pages moved at once between the buddy and a CPU (`pcp->batch`).
    pub(crate) batch: u64,
    /// Pages a CPU keeps before it gives some back (`pcp->high`).
    pub(crate) high: u64,
}

impl PcpParams {
    /// The sizes for a zone of `managed` pages whose min watermark is
    /// `min`, split over `cpus` CPUs. The low watermark is the kernel's
    /// `min + max(min / 4, managed * watermark_scale_factor / 10000)`.
    pub(crate) fn for_zone(managed: u64, min: u64, cpus: u64) -> Self {
        let batch = zone_batchsize(managed);
        let low = min + (min / 4).max(managed * 10 / 10000);
        PcpParams {
            batch,
            high: zone_highsize(low, cpus, batch),
        }
    }

    /// Blocks a list of one order may hold: never more than `high` pages
    /// plus the batch that brings the list over it.
    pub(crate) fn list_cap(&self) -> usize {
        (self.high + 2 * self.batch + 1) as usize
    }
}

/// Free blocks of one order of one zone on one CPU.
pub(crate) type PcpList = KVec<NonNull<u8>>;

/// One zone's lists on one CPU (`struct per_cpu_pages`).
pub(crate) struct Pcp {
    /// Heads of free blocks, per order.
    pub(crate) lists: [PcpList; NR_PCP_ORDERS],
    /// Pages on all lists (`pcp->count`).
    pub(crate) count: u64,
    /// How many times the next order-0 refill doubles (`pcp->alloc_factor`).
    pub(crate) alloc_factor: u32,
    /// Pages freed in a row (`pcp->free_count`): sizes the next flush.
    pub(crate) free_count: u64,
}

// SAFETY: the addresses name mirror memory these lists own while they are
// on them; any CPU may hand them out or give them back.
unsafe impl Send for Pcp {}

/// Everything a CPU holds; a drain swaps it whole for an empty one.
pub(crate) struct Stock {
    /// kmalloc sheaves per size class.
    pub(crate) objs: [Sheaves; NR_KMALLOC_CLASSES],
    /// Page lists per zone (`MEMLAB_ZONE_*`).
    pub(crate) pcp: [Pcp; NR_MIRROR_ZONES],
}

impl Stock {
    /// An empty stock: sheaves of SLUB's capacity per class, lists sized
    /// by `params`.
    pub(crate) fn new(params: &[PcpParams; NR_MIRROR_ZONES]) -> Result<Self> {
        let mut objs = [const { Sheaves::EMPTY }; NR_KMALLOC_CLASSES];
        for (s, class) in objs.iter_mut().zip(SizeClass::ALL) {
            s.reserve(sheaf_capacity(class.size()))?;
        }
        let mut pcp = [const {
            Pcp {
                lists: [const { KVec::new() }; NR_PCP_ORDERS],
                count: 0,
                alloc_factor: 0,
                free_count: 0,
            }
        }; NR_MIRROR_ZONES];
        for (p, params) in pcp.iter_mut().zip(params) {
            for l in p.lists.iter_mut() {
                l.reserve(params.list_cap(), GFP_KERNEL)?;
            }
        }
        Ok(Stock { objs, pcp })
    }

    /// (pages, objects) held.
    pub(crate) fn held(&self) -> (u64, usize) {
        (
            self.pcp.iter().map(|p| p.count).sum(),
            self.objs.iter().map(Sheaves::len).sum(),
        )
    }
}

/// Event counters, per CPU and bumped only by their CPU with wrapping adds
/// (no overflow branch, no atomic); `mirror/counters` sums them, like
/// /proc/vmstat sums per-CPU counts.
#[derive(Clone, Copy, Default)]
pub(crate) struct Counters {
    /// Blocks served from a CPU's page lists.
    pub(crate) pcp_hit: u64,
    /// Batches moved from a zone's buddy to a CPU's list.
    pub(crate) pcp_refill: u64,
    /// Blocks freed to a CPU's page lists.
    pub(crate) pcp_free: u64,
    /// Batches moved from a CPU's lists back to the buddy.
    pub(crate) pcp_flush: u64,
    /// kmalloc objects served from a CPU's sheaves.
    pub(crate) obj_hit: u64,
    /// Sheaves refilled from a size class's slabs.
    pub(crate) obj_refill: u64,
    /// kmalloc objects freed to a CPU's sheaves.
    pub(crate) obj_free: u64,
    /// Sheaves flushed back to the slabs.
    pub(crate) obj_flush: u64,
    /// Sheaves traded with a size class's barn (full for empty or back).
    pub(crate) obj_barn: u64,
}

/// Adds 1, wrapping: a counter never costs an overflow check.
#[inline(always)]
pub(crate) fn bump(c: &mut u64) {
    *c = c.wrapping_add(1);
}

impl Counters {
    /// Names and values, in `mirror/counters` order.
    pub(crate) fn fields(&self) -> [(&'static str, u64); 9] {
        [
            ("pcp_hit", self.pcp_hit),
            ("pcp_refill", self.pcp_refill),
            ("pcp_free", self.pcp_free),
            ("pcp_flush", self.pcp_flush),
            ("obj_hit", self.obj_hit),
            ("obj_refill", self.obj_refill),
            ("obj_free", self.obj_free),
            ("obj_flush", self.obj_flush),
            ("obj_barn", self.obj_barn),
        ]
    }

    /// Adds `o` to `self`, field by field.
    pub(crate) fn add(&mut self, o: &Counters) {
        let mine = [
            &mut self.pcp_hit,
            &mut self.pcp_refill,
            &mut self.pcp_free,
            &mut self.pcp_flush,
            &mut self.obj_hit,
            &mut self.obj_refill,
            &mut self.obj_free,
            &mut self.obj_flush,
            &mut self.obj_barn,
        ];
        for (f, (_, v)) in mine.into_iter().zip(o.fields()) {
            *f = f.wrapping_add(v);
        }
    }
}

/// One CPU's slot of the mirror.
pub(crate) struct CpuCache {
    /// What it holds.
    pub(crate) stock: Stock,
    /// What its fast paths did.
    pub(crate) counters: Counters,
}
