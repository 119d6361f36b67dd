// SPDX-License-Identifier: GPL-2.0

//! The invariant checker of the slab caches, for tests and debug builds.

use core::ptr;

use super::layout::{empty_bitmap, SlabMeta, NIL};
use super::{PageSource, SlabCache};

/// A violated invariant, found by [`SlabCache::check_invariants`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlabInvariantError {
    /// A list is broken (bad link, wrong length, slab on the wrong list);
    /// the list: 0 partial, 1 full, 2 empty.
    List(u8),
    /// A slab descriptor is bad (colour, object pointer, counters).
    Descriptor,
    /// A slab's freelist disagrees with its in-use count or list, or is
    /// broken (a cycle, an index out of range, a word that is no free
    /// pointer).
    Freelist,
    /// The page source does not describe a slab as this cache's block.
    PageSource,
    /// The cache's object counter is wrong.
    Totals,
}

impl SlabCache {
    /// Verifies the type invariants against the page source the cache uses.
    /// Costs O(slabs * objects per slab); meant for tests and debug builds.
    pub fn check_invariants<P: PageSource>(&self, src: &P) -> Result<(), SlabInvariantError> {
        let mut active = 0u64;
        for (k, list) in self.lists.iter().enumerate() {
            let mut prev: *mut SlabMeta = ptr::null_mut();
            let mut slab = list.head;
            for _ in 0..list.len {
                if slab.is_null() {
                    return Err(SlabInvariantError::List(k as u8));
                }
                // SAFETY: Slabs on the lists are live descriptors of this
                // cache (type invariant; checked against the page source
                // right below before anything else is trusted).
                let s = unsafe { &*slab };
                self.check_slab(src, slab, s)?;
                if usize::from(s.list) != k || s.prev != prev {
                    return Err(SlabInvariantError::List(k as u8));
                }
                let expected_ok = match k {
                    0 => s.inuse > 0 && u32::from(s.inuse) < self.objects,
                    1 => u32::from(s.inuse) == self.objects,
                    _ => s.inuse == 0,
                };
                if !expected_ok {
                    return Err(SlabInvariantError::Freelist);
                }
                active += u64::from(s.inuse);
                prev = slab;
                slab = s.next;
            }
            // The tail is the last slab walked (null for an empty list).
            if list.tail != prev {
                return Err(SlabInvariantError::List(k as u8));
            }
            if !slab.is_null() {
                return Err(SlabInvariantError::List(k as u8));
            }
        }
        if active != self.active_objs {
            return Err(SlabInvariantError::Totals);
        }
        Ok(())
    }

    /// Checks one slab: its block and descriptor, and that its freelist
    /// holds exactly `fresh - inuse` distinct objects below `fresh`.
    fn check_slab<P: PageSource>(
        &self,
        src: &P,
        slab: *mut SlabMeta,
        s: &SlabMeta,
    ) -> Result<(), SlabInvariantError> {
        let head = s.objs.with_addr(s.objs.addr() & !(self.slab_bytes() - 1));
        let (block, area) = src.head_of(head).ok_or(SlabInvariantError::PageSource)?;
        if area.as_ptr().cast::<SlabMeta>() != slab
            || block.tag != self.tag.get()
            || block.order != self.order
        {
            return Err(SlabInvariantError::PageSource);
        }
        let colour = s.objs.addr() - head.addr();
        if !colour.is_multiple_of(self.colour_off)
            // Checked: a division the compiler cannot prove nonzero would
            // leave a panic call at the end of the function (objtool).
            || colour.checked_div(self.colour_off) >= Some(self.colours as usize)
            || (!self.bitmap_mode() && (u32::from(s.fresh) > self.objects || s.inuse > s.fresh))
        {
            return Err(SlabInvariantError::Descriptor);
        }
        if self.bitmap_mode() {
            let pad = empty_bitmap(self.objects as usize);
            let mut used = 0;
            for (&word, &pad) in s.bitmap.iter().zip(&pad) {
                if word & pad != pad {
                    return Err(SlabInvariantError::Freelist);
                }
                used += (word & !pad).count_ones();
            }
            return if used == u32::from(s.inuse) {
                Ok(())
            } else {
                Err(SlabInvariantError::Freelist)
            };
        }
        let mut seen = [0u64; super::MAX_OBJS_PER_SLAB / 64];
        let mut free = 0u16;
        let mut cur = s.freelist;
        while cur != NIL {
            if cur >= s.fresh || free >= s.fresh - s.inuse {
                return Err(SlabInvariantError::Freelist);
            }
            let (w, bit) = (usize::from(cur) / 64, cur % 64);
            if seen[w] & 1 << bit != 0 {
                return Err(SlabInvariantError::Freelist);
            }
            seen[w] |= 1 << bit;
            free += 1;
            // SAFETY: `cur < fresh <= objects`: an object of the slab.
            cur = unsafe { self.fp.get(self.obj(s, cur)) }.ok_or(SlabInvariantError::Freelist)?;
        }
        if free != s.fresh - s.inuse {
            return Err(SlabInvariantError::Freelist);
        }
        Ok(())
    }
}
