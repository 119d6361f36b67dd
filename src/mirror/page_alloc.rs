// SPDX-License-Identifier: GPL-2.0

//! `alloc_pages`/`__free_pages` on the mirror: blocks of any order from the
//! zones' buddies, order 0 through the CPU's page lists first, as
//! `rmqueue_pcplist` and `free_unref_page` do.

use super::percpu::{CpuCache, PCP_BATCH};
use super::zone::{zone_of, MirrorState, ZonedPages};
use super::{Mirror, TAG_MIRROR_PAGES};
use crate::request::Gfp;
use crate::slab::PageSource;
use core::ptr::NonNull;
use kernel::{prelude::*, sync::SpinLock};

impl Mirror {
    /// `alloc_pages(gfp, order)`; order 0 through the CPU's page lists.
    pub(crate) fn alloc_pages(&self, order: u32, gfp: Gfp) -> Result<NonNull<u8>> {
        self.with_reclaim(gfp, || {
            if order == 0 {
                if let Some(c) = self.cpu() {
                    return self.alloc_page_pcp(c, gfp);
                }
            }
            self.with_src(gfp, |_, src| src.alloc_block(order, &TAG_MIRROR_PAGES))
        })
    }

    /// `rmqueue_pcplist`: a page from this CPU's list of the first zone of
    /// the zonelist that has one, refilling a batch from that zone's buddy
    /// (watermark rules apply there) when the list is empty.
    fn alloc_page_pcp(&self, c: &SpinLock<CpuCache>, gfp: Gfp) -> Option<NonNull<u8>> {
        let mut cc = c.lock();
        let CpuCache { pcp, counters, .. } = &mut *cc;
        for z in super::zone::zonelist(gfp) {
            let list = pcp.get_mut(z.index())?;
            if let Some(p) = list.pop() {
                counters.pcp_hit += 1;
                return Some(p);
            }
            counters.pcp_refill += 1;
            let mut guard = self.state.lock();
            let MirrorState { zones, reserve, .. } = &mut **guard;
            let mut src = ZonedPages::over(zones, *reserve, core::slice::from_ref(z), gfp);
            for _ in 0..PCP_BATCH {
                let Some(p) = src.alloc_block(0, &TAG_MIRROR_PAGES) else {
                    break;
                };
                if let Err(p) = list.push(p) {
                    // Not reached: the list was empty and holds more than a
                    // batch. Give the page back rather than lose it.
                    let r = src.free_block(p, 0, &TAG_MIRROR_PAGES);
                    guard.rejected += u64::from(r.is_err());
                    break;
                }
            }
            drop(guard);
            if let Some(p) = list.pop() {
                return Some(p);
            }
        }
        None
    }

    /// `__free_pages` of a block from [`Mirror::alloc_pages`]; order 0 goes
    /// to the CPU's list of its zone, a batch back to the buddy when full.
    /// EINVAL if the buddy refuses the block (it checks head, order and
    /// owner for everything but a cached order-0 page).
    ///
    /// # Safety
    ///
    /// `head` came from `alloc_pages(order, _)` of this mirror and has not
    /// been freed since (an order-0 page is cached without being checked).
    pub(crate) unsafe fn free_pages(&self, head: NonNull<u8>, order: u32) -> Result {
        if let (0, Some(c), Some(z)) = (order, self.cpu(), zone_of(head)) {
            let mut cc = c.lock();
            let CpuCache { pcp, counters, .. } = &mut *cc;
            if let Some(list) = pcp.get_mut(z.index()) {
                counters.pcp_free += 1;
                let flushes = &mut counters.pcp_flush;
                let parked = self.park(list, head, PCP_BATCH, flushes, |_, src, p| {
                    src.free_block(p, 0, &TAG_MIRROR_PAGES).is_ok()
                });
                if parked.is_ok() {
                    return Ok(());
                }
            }
        }
        self.with_src(Gfp::KERNEL, |_, src| {
            src.free_block(head, order, &TAG_MIRROR_PAGES)
        })
        .map_err(|_| EINVAL)
    }
}
