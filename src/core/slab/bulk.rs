// SPDX-License-Identifier: GPL-2.0

//! Bulk allocation and freeing (`kmem_cache_alloc_bulk()` and
//! `kmem_cache_free_bulk()`), for per-CPU magazines to refill and flush in
//! one call. Each object costs O(1): allocation takes objects from one slab
//! until it is full; freeing finds each object's slab by aligning its
//! address down to the slab size (the page metadata lookup is skipped while
//! consecutive objects share a slab, as SLUB's detached freelists do) and
//! its index by a reciprocal multiply. Nothing scans.

use core::fmt;

use super::list::ListKind;
use super::{PageSource, SlabCache, SlabError};

/// What [`SlabCache::free_bulk`] could not free. Every other object was
/// freed; the refused ones are untouched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BulkFreeError {
    /// Objects refused.
    pub failed: usize,
    /// Position of the first refused object in the slice.
    pub first_index: usize,
    /// Why the first was refused.
    pub first: SlabError,
}

impl fmt::Display for BulkFreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} objects refused, the first (#{}): {}",
            self.failed, self.first_index, self.first
        )
    }
}

impl SlabCache {
    /// Allocates up to `out.len()` objects into `out` and returns how many
    /// (`out[..n]`). Fewer than asked only when no slab could be had (out of
    /// memory) or a slab's freelist is corrupt; [`SlabCache::alloc`] tells
    /// which.
    pub fn alloc_bulk<P: PageSource>(&mut self, src: &mut P, out: &mut [*mut u8]) -> usize {
        let mut n = 0;
        while n < out.len() {
            let Ok(slab) = self.slab_with_room(src) else {
                return n;
            };
            // Take from this slab until it is full (`take` moves it to the
            // full list) or `out` is.
            loop {
                let Some(slot) = out.get_mut(n) else {
                    return n;
                };
                // SAFETY: A live descriptor of this cache on the partial list.
                match unsafe { self.take(slab) } {
                    Ok(obj) => *slot = obj,
                    Err(_) => return n,
                }
                n += 1;
                // SAFETY: As above.
                if unsafe { (*slab).list } != ListKind::Partial as u8 {
                    break;
                }
            }
        }
        n
    }

    /// Frees every object of `objs` that is an allocated object of this
    /// cache, as [`SlabCache::free`] would one by one; reports the others.
    pub fn free_bulk<P: PageSource>(
        &mut self,
        src: &mut P,
        objs: &[*mut u8],
    ) -> Result<(), BulkFreeError> {
        let mask = !(self.slab_bytes() - 1);
        // The slab of the previous object: its first byte and descriptor.
        let mut last = None;
        let mut error: Option<BulkFreeError> = None;
        for (i, &ptr) in objs.iter().enumerate() {
            let result = (|| {
                if ptr.is_null() {
                    return Err(SlabError::NullPointer);
                }
                let slab = match last {
                    Some((head, slab)) if head == ptr.addr() & mask => slab,
                    _ => self.locate_mut(src, ptr)?.0,
                };
                last = Some((ptr.addr() & mask, slab));
                // SAFETY: `slab` came from `locate_mut` for this head, and is
                // live until discarded below (which forgets it).
                let index = self.index_in(unsafe { &*slab }, ptr)?;
                // SAFETY: As above.
                let emptied = unsafe { self.put_object(slab, index)? };
                if emptied && self.lists[ListKind::Empty as usize].len > self.empty_limit {
                    last = None;
                    // SAFETY: Live, and just moved to the empty list.
                    // Best effort: a refusal leaves the slab cached.
                    let _ = unsafe { self.discard_slab(src, slab) };
                }
                Ok(())
            })();
            if let Err(e) = result {
                match &mut error {
                    Some(err) => err.failed += 1,
                    None => {
                        error = Some(BulkFreeError {
                            failed: 1,
                            first_index: i,
                            first: e,
                        })
                    }
                }
            }
        }
        error.map_or(Ok(()), Err)
    }
}
