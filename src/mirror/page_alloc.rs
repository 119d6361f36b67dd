// SPDX-License-Identifier: GPL-2.0

//! `alloc_pages`/`__free_pages` on the mirror: blocks of any order from the
//! zones' buddies; orders up to `PAGE_ALLOC_COSTLY_ORDER` through the CPU's
//! page lists first, as `rmqueue_pcplist` and `free_frozen_pages` do, with
//! the kernel's batch and high mark for each zone's size and its growing
//! order-0 refills (`nr_pcp_alloc`).

use super::percpu::{bump, CpuCache, Pcp, NR_PCP_ORDERS};
use super::zone::{zone_of, zonelist, MirrorState, ZonedPages};
use super::{Mirror, TAG_MIRROR_PAGES};
use crate::pcp::{pcp_alloc_count, pcp_free_count};
use crate::request::Gfp;
use crate::slab::PageSource;
use core::ptr::NonNull;
use kernel::prelude::*;

impl Mirror {
    /// `alloc_pages(gfp, order)`: from this CPU's list of the first zone
    /// of the zonelist with no lock and no atomic, else
    /// [`Mirror::alloc_pages_slow`].
    // Out of line, as the kernel's exported entry is: a caller pays one
    // call on both sides of every comparison (equal work in a timed window).
    #[inline(never)]
    pub(crate) fn alloc_pages(&self, order: u32, gfp: Gfp) -> Result<NonNull<u8>> {
        if let (true, Some(z)) = ((order as usize) < NR_PCP_ORDERS, zonelist(gfp).first()) {
            let hit = self.cpus.local(|cc| {
                let CpuCache { stock, counters } = cc;
                let pcp = stock.pcp.get_mut(z.index())?;
                let p = pcp.lists.get_mut(order as usize)?.pop()?;
                pcp.count = pcp.count.wrapping_sub(1 << order);
                // An allocation breaks a run of frees.
                pcp.free_count >>= 1;
                bump(&mut counters.pcp_hit);
                Some(p)
            });
            if let Some(Some(p)) = hit {
                return Ok(p);
            }
        }
        self.alloc_pages_slow(order, gfp)
    }

    #[cold]
    #[inline(never)]
    fn alloc_pages_slow(&self, order: u32, gfp: Gfp) -> Result<NonNull<u8>> {
        self.with_reclaim(gfp, || {
            if (order as usize) < NR_PCP_ORDERS {
                if let Some(p) = self.cpus.local(|cc| self.pcp_refill(cc, order, gfp)) {
                    return p;
                }
            }
            self.with_src(gfp, |_, src| src.alloc_block(order, &TAG_MIRROR_PAGES))
        })
    }

    /// `rmqueue_pcplist` with `rmqueue_bulk`: a block from this CPU's list
    /// of the first zone of the zonelist that has one, refilling that
    /// zone's list in bulk (the watermark checked once) when it is empty.
    fn pcp_refill(&self, cc: &mut CpuCache, order: u32, gfp: Gfp) -> Option<NonNull<u8>> {
        let CpuCache { stock, counters } = cc;
        for z in zonelist(gfp) {
            let (pcp, params) = (stock.pcp.get_mut(z.index())?, self.pcp.get(z.index())?);
            let Pcp {
                lists,
                count,
                alloc_factor,
                free_count,
            } = pcp;
            *free_count >>= 1;
            let list = lists.get_mut(order as usize)?;
            if list.is_empty() {
                let (n, grow) =
                    pcp_alloc_count(params.batch, params.high, *count, *alloc_factor, order);
                *alloc_factor += u32::from(grow);
                bump(&mut counters.pcp_refill);
                let mut guard = self.state.lock();
                let MirrorState { zones, reserve, .. } = &mut **guard;
                let mut src = ZonedPages::over(zones, *reserve, core::slice::from_ref(z), gfp);
                let got = src.alloc_bulk(*z, order, n as usize, &TAG_MIRROR_PAGES, list);
                *count += (got as u64) << order;
            }
            if let Some(p) = list.pop() {
                *count -= 1 << order;
                bump(&mut counters.pcp_hit);
                return Some(p);
            }
        }
        None
    }

    /// `__free_pages` of a block from [`Mirror::alloc_pages`]: onto this
    /// CPU's list of its zone and order (a batch back to the buddy once the
    /// lists pass `high`), higher orders straight to the buddy. EINVAL if
    /// the buddy refuses the block (it checks head, order and owner of
    /// everything but a block parked on a list).
    ///
    /// # Safety
    ///
    /// `head` came from `alloc_pages(order, _)` of this mirror and has not
    /// been freed since (a parked block is not checked).
    // Out of line, as the kernel's exported entry is: a caller pays one
    // call on both sides of every comparison (equal work in a timed window).
    #[inline(never)]
    pub(crate) unsafe fn free_pages(&self, head: NonNull<u8>, order: u32) -> Result {
        if let (true, Some(z)) = ((order as usize) < NR_PCP_ORDERS, zone_of(head)) {
            let parked = self.cpus.local(|cc| {
                let CpuCache { stock, counters } = cc;
                let (Some(pcp), Some(params)) =
                    (stock.pcp.get_mut(z.index()), self.pcp.get(z.index()))
                else {
                    return false;
                };
                let Some(list) = pcp.lists.get_mut(order as usize) else {
                    return false;
                };
                if list.push_within_capacity(head).is_err() {
                    return false;
                }
                bump(&mut counters.pcp_free);
                pcp.count += 1 << order;
                pcp.free_count = pcp.free_count.wrapping_add(1 << order);
                // A free ends a run of allocations: refills shrink again.
                pcp.alloc_factor >>= 1;
                if pcp.count >= params.high {
                    bump(&mut counters.pcp_flush);
                    let n = pcp_free_count(params.batch, params.high, pcp.free_count);
                    self.pcp_flush(pcp, n);
                }
                true
            });
            if parked == Some(true) {
                return Ok(());
            }
        }
        self.with_src(Gfp::KERNEL, |_, src| {
            src.free_block(head, order, &TAG_MIRROR_PAGES)
        })
        .map_err(|_| EINVAL)
    }

    /// `free_pcppages_bulk`: gives at least `n` pages of the lists of
    /// `pcp` back to their zone's buddy, highest order first, under one lock.
    #[cold]
    #[inline(never)]
    fn pcp_flush(&self, pcp: &mut Pcp, n: u64) {
        let target = pcp.count.saturating_sub(n);
        let refused = self.with_src(Gfp::KERNEL, |_, src| {
            let mut refused = 0;
            for (order, list) in (0..NR_PCP_ORDERS as u32).zip(pcp.lists.iter_mut()).rev() {
                while pcp.count > target {
                    let Some(p) = list.pop() else { break };
                    pcp.count -= 1 << order;
                    let r = src.free_block(p, order, &TAG_MIRROR_PAGES);
                    refused += u64::from(r.is_err());
                }
            }
            refused
        });
        self.count_refused(refused);
    }
}
