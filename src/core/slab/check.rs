// SPDX-License-Identifier: GPL-2.0

//! The invariant checker of the slab caches, for tests and debug builds.

use core::ptr;

use super::layout::{bitmap_of, SlabHeader, SLAB_MAGIC};
use super::{PageSource, SlabCache};

/// A violated invariant, found by [`SlabCache::check_invariants`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlabInvariantError {
    /// A list is broken (bad link, wrong length, slab on the wrong list);
    /// the list: 0 partial, 1 full, 2 empty.
    List(u8),
    /// A slab descriptor is bad (magic, tag, colour or object pointer).
    Descriptor,
    /// A slab's bitmap disagrees with its in-use count or list.
    Bitmap,
    /// The page source does not describe a slab as this cache's block.
    PageSource,
    /// The cache's object counter is wrong.
    Totals,
}

impl SlabCache {
    /// Verifies the type invariants against the page source the cache uses.
    /// Costs O(slabs * objects per slab); meant for tests and debug builds.
    pub fn check_invariants<P: PageSource>(&self, src: &P) -> Result<(), SlabInvariantError> {
        let words = usize::from(self.bitmap_words);
        let mut active = 0u64;
        for (k, list) in self.lists.iter().enumerate() {
            let mut prev: *mut SlabHeader = ptr::null_mut();
            let mut slab = list.head;
            for _ in 0..list.len {
                if slab.is_null() {
                    return Err(SlabInvariantError::List(k as u8));
                }
                let block = src
                    .block_of(slab.cast::<u8>())
                    .ok_or(SlabInvariantError::PageSource)?;
                if block.head.as_ptr() != slab.cast::<u8>()
                    || block.tag != self.tag.get()
                    || block.order != self.order
                {
                    return Err(SlabInvariantError::PageSource);
                }
                // SAFETY: The page source says `slab` heads a block of this
                // cache, so it is one of its slabs with a live descriptor.
                unsafe {
                    let h = &*slab;
                    if h.magic != SLAB_MAGIC || h.tag != self.tag.get() {
                        return Err(SlabInvariantError::Descriptor);
                    }
                    if usize::from(h.list) != k || h.prev != prev {
                        return Err(SlabInvariantError::List(k as u8));
                    }
                    let colour = h
                        .objs
                        .addr()
                        .checked_sub(slab.addr() + self.first_offset)
                        .ok_or(SlabInvariantError::Descriptor)?;
                    if colour % self.colour_off != 0
                        || colour / self.colour_off >= self.colours as usize
                    {
                        return Err(SlabInvariantError::Descriptor);
                    }
                    let bitmap = core::slice::from_raw_parts(bitmap_of(slab), words);
                    let mut used = 0u32;
                    for (w, &word) in bitmap.iter().enumerate() {
                        let valid = (self.objects as usize - w * 64).min(64);
                        let pad = if valid == 64 { 0 } else { u64::MAX << valid };
                        if word & pad != pad {
                            return Err(SlabInvariantError::Bitmap);
                        }
                        used += (word & !pad).count_ones();
                        if w < usize::from(h.hint) && word != u64::MAX {
                            return Err(SlabInvariantError::Bitmap);
                        }
                    }
                    let expected_ok = match k {
                        0 => used > 0 && used < self.objects,
                        1 => used == self.objects,
                        _ => used == 0,
                    };
                    if used != h.inuse || !expected_ok {
                        return Err(SlabInvariantError::Bitmap);
                    }
                    active += u64::from(used);
                    prev = slab;
                    slab = h.next;
                }
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
}
