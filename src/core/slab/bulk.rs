// SPDX-License-Identifier: GPL-2.0

//! Bulk allocation and freeing (`kmem_cache_alloc_bulk()` and
//! `kmem_cache_free_bulk()`), for per-CPU magazines to refill and flush in
//! one call. Each object costs O(1): allocation takes objects from one slab
//! until it is full; freeing finds each object's slab by aligning its
//! address down to the slab size (the page metadata lookup is skipped while
//! consecutive objects share a slab, as SLUB's detached freelists do) and
//! its index by a reciprocal multiply. Nothing scans.

use core::fmt;

use super::layout::SlabMeta;
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

impl BulkFreeError {
    /// Counts the refusal of object `i` for `e` in `error`, the first one
    /// named.
    fn note(error: &mut Option<BulkFreeError>, i: usize, e: SlabError) {
        match error {
            Some(err) => err.failed += 1,
            None => {
                *error = Some(BulkFreeError {
                    failed: 1,
                    first_index: i,
                    first: e,
                })
            }
        }
    }
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
            if self.bitmap_mode() {
                // SAFETY: A live descriptor of this cache on the partial list.
                let got = unsafe { self.take_bitmap(slab, out.get_mut(n..).unwrap_or_default()) };
                if got == 0 {
                    return n;
                }
                n += got;
                continue;
            }
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

    /// Takes free objects of bitmap slab `slab` into `out`, lowest first,
    /// until the slab or `out` is full, with one count update and one list
    /// move for them all; returns how many. 0 only for a slab whose bitmap
    /// says full while it is on the partial list (corrupt).
    ///
    /// # Safety
    ///
    /// `slab` must be a live descriptor of this cache on the partial list,
    /// and the cache in bitmap mode.
    unsafe fn take_bitmap(&mut self, slab: *mut SlabMeta, out: &mut [*mut u8]) -> usize {
        // SAFETY: `slab` is live and only this cache (borrowed mutably)
        // accesses it; the objects addressed are inside its slab (a clear
        // bit is an object below `objects`, see `empty_bitmap`).
        let s = unsafe { &mut *slab };
        let mut n: usize = 0;
        for (w, word) in s.bitmap.iter_mut().enumerate() {
            let mut free = !*word;
            // As many as this word has and `out` takes, counted first, so
            // the loop below has one branch per object (each one ends a
            // translated block under TCG).
            let k = (free.count_ones() as usize).min(out.len() - n);
            let base = s.objs.wrapping_add(w * 64 * self.size);
            for slot in out.iter_mut().skip(n).take(k) {
                let bit = free.trailing_zeros() as usize;
                free &= free - 1;
                *slot = base.wrapping_add(bit * self.size);
            }
            // The taken bits, and only they, become set.
            *word = !free;
            n += k;
            if n == out.len() {
                break;
            }
        }
        // At most `objects - inuse` bits were clear, so these stay in range.
        s.inuse += n as u16;
        self.active_objs += n as u64;
        if u32::from(s.inuse) == self.objects {
            // SAFETY: Live, on the partial list (caller).
            unsafe { self.move_slab(slab, ListKind::Full) };
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
        if self.bitmap_mode() {
            return self.free_bulk_bitmap(src, objs);
        }
        let mask = !(self.slab_bytes() - 1);
        // The slab of the previous object: its first byte and descriptor.
        let mut last: Option<(usize, *mut SlabMeta)> = None;
        let mut error: Option<BulkFreeError> = None;
        for (i, &ptr) in objs.iter().enumerate() {
            let result = (|| {
                if ptr.is_null() {
                    return Err(SlabError::NullPointer);
                }
                let (slab, index) = match last {
                    Some((head, slab)) if head == ptr.addr() & mask => {
                        // SAFETY: `slab` came from `locate_mut` for this
                        // head, and is live until discarded below (which
                        // forgets it).
                        let s = unsafe { &*slab };
                        (slab, self.index_in(s, ptr)?)
                    }
                    _ => self.locate_mut(src, ptr)?,
                };
                last = Some((ptr.addr() & mask, slab));
                // SAFETY: `slab` is live: just found by `locate_mut`, or kept
                // from it while its slab was not discarded.
                let emptied = unsafe { self.put_object(slab, index)? };
                if emptied.is_some_and(|was_full| self.release_emptied(was_full)) {
                    last = None;
                    // SAFETY: Live, and just moved to the empty list.
                    // Best effort: a refusal leaves the slab cached.
                    let _ = unsafe { self.discard_slab(src, slab) };
                }
                Ok(())
            })();
            if let Err(e) = result {
                BulkFreeError::note(&mut error, i, e);
            }
        }
        error.map_or(Ok(()), Err)
    }

    /// [`SlabCache::free_bulk`] for bitmap slabs: each object is checked
    /// (its slab, its index, its in-use bit) and its bit cleared; the counts
    /// and list moves of a slab are done once for each run of objects in
    /// it, as SLUB's detached freelists are given back one slab at a time.
    // `&` and `|` on the checks' booleans on purpose: no branch per check.
    #[allow(clippy::needless_bitwise_bool)]
    fn free_bulk_bitmap<P: PageSource>(
        &mut self,
        src: &mut P,
        objs: &[*mut u8],
    ) -> Result<(), BulkFreeError> {
        let mask = !(self.slab_bytes() - 1);
        let span = self.objects as usize * self.size;
        // The slab of the current run: its first byte (`usize::MAX`: no
        // run), its descriptor, and the objects freed in it so far.
        let (mut head, mut slab, mut n) = (usize::MAX, core::ptr::null_mut::<SlabMeta>(), 0u16);
        let mut error: Option<BulkFreeError> = None;
        for (i, &ptr) in objs.iter().enumerate() {
            if ptr.addr() & mask != head {
                // Another slab (or a null or foreign pointer): settle the
                // run, then find the slab through the page metadata.
                if n > 0 {
                    // SAFETY: `slab` came from `locate_mut` for `head` and
                    // is not released since (only `put_run` does).
                    unsafe { self.put_run(src, slab, n) };
                }
                (head, n) = (usize::MAX, 0);
                if ptr.is_null() {
                    BulkFreeError::note(&mut error, i, SlabError::NullPointer);
                    continue;
                }
                match self.locate_mut(src, ptr) {
                    Ok((s, _)) => (head, slab) = (ptr.addr() & mask, s),
                    Err(e) => {
                        BulkFreeError::note(&mut error, i, e);
                        continue;
                    }
                }
            }
            // SAFETY: As above; only this cache, borrowed mutably, accesses
            // it.
            let s = unsafe { &mut *slab };
            // `index_in` and the in-use bit, checked with one branch: an
            // offset below the objects' span fits a u32, and its index is
            // then below `objects`, so within the bitmap.
            let offset = ptr.addr().wrapping_sub(s.objs.addr());
            let index = self.recip.divide(offset as u32) as usize;
            let w = index / 64;
            let bit = 1u64 << (index % 64);
            let word = s.bitmap.get(w).copied().unwrap_or(0);
            let object = (offset < span) & (index * self.size == offset);
            if !object | (word & bit == 0) {
                let e = if object {
                    SlabError::DoubleFree
                } else {
                    SlabError::NotAnObject
                };
                BulkFreeError::note(&mut error, i, e);
                continue;
            }
            if let Some(word) = s.bitmap.get_mut(w) {
                *word &= !bit;
                n += 1;
            }
        }
        if n > 0 {
            // SAFETY: As above.
            unsafe { self.put_run(src, slab, n) };
        }
        error.map_or(Ok(()), Err)
    }

    /// The counts and list moves for `n` objects whose bits were just
    /// cleared in `slab`, releasing it if it became empty beyond the limit.
    ///
    /// # Safety
    ///
    /// `slab` must be a live descriptor of this cache.
    unsafe fn put_run<P: PageSource>(&mut self, src: &mut P, slab: *mut SlabMeta, n: u16) {
        if n == 0 {
            return;
        }
        // SAFETY: `slab` is live (caller) and only this cache accesses it.
        unsafe {
            let s = &mut *slab;
            let was_full = u32::from(s.inuse) == self.objects;
            // Each cleared bit was an object in use, so `n <= inuse`.
            s.inuse = s.inuse.saturating_sub(n);
            self.active_objs = self.active_objs.saturating_sub(u64::from(n));
            if s.inuse == 0 {
                self.move_slab(slab, ListKind::Empty);
                if self.release_emptied(was_full) {
                    // Best effort: a refusal leaves the slab cached.
                    let _ = self.discard_slab(src, slab);
                }
            } else if was_full {
                self.move_slab_to_tail(slab, ListKind::Partial);
            }
        }
    }
}
