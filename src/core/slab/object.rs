// SPDX-License-Identifier: GPL-2.0

//! Objects of a [`SlabCache`]: allocation (`kmem_cache_alloc()`), freeing
//! (`kmem_cache_free()`), and what SLUB calls `virt_to_slab()`,
//! `obj_to_index()` and `on_freelist()`.

use core::ptr::NonNull;

use super::layout::{SlabMeta, BITMAP_OBJS, NIL};
use super::list::ListKind;
use super::{Block, PageSource, SlabCache, SlabError};
use crate::buddy::PAGE_SIZE;

impl SlabCache {
    /// Allocates an object (`kmem_cache_alloc()`).
    pub fn alloc<P: PageSource>(&mut self, src: &mut P) -> Result<NonNull<u8>, SlabError> {
        let slab = self.slab_with_room(src)?;
        // SAFETY: `slab_with_room` returns a live descriptor of this cache
        // on the partial list.
        let obj = unsafe { self.take(slab)? };
        NonNull::new(obj).ok_or(SlabError::Corrupt)
    }

    /// The first partial slab, after moving an empty (or new) one there if
    /// there is none.
    pub(super) fn slab_with_room<P: PageSource>(
        &mut self,
        src: &mut P,
    ) -> Result<*mut SlabMeta, SlabError> {
        let partial = self.lists[ListKind::Partial as usize].head;
        if !partial.is_null() {
            return Ok(partial);
        }
        if self.lists[ListKind::Empty as usize].head.is_null() {
            self.grow(src)?;
        }
        let slab = self.lists[ListKind::Empty as usize].head;
        // SAFETY: `slab` heads the empty list (just grown if needed), so per
        // the type invariant it is a live descriptor of this cache.
        unsafe { self.move_slab(slab, ListKind::Partial) };
        Ok(slab)
    }

    /// Takes one object of `slab`, moving it to the full list if that was
    /// its last free object.
    ///
    /// # Safety
    ///
    /// `slab` must be a live descriptor of this cache on the partial list.
    #[inline]
    pub(super) unsafe fn take(&mut self, slab: *mut SlabMeta) -> Result<*mut u8, SlabError> {
        // SAFETY: `slab` is live and only this cache (borrowed mutably)
        // accesses it; the objects addressed are inside its slab.
        unsafe {
            let s = &mut *slab;
            let index = if self.bitmap_mode() {
                let w = usize::from(s.bitmap[0] == u64::MAX);
                let word = s.bitmap[w];
                if word == u64::MAX {
                    return Err(SlabError::Corrupt);
                }
                let bit = word.trailing_ones();
                s.bitmap[w] = word | 1 << bit;
                (w as u32 * 64 + bit) as u16
            } else {
                let index = if s.freelist != NIL {
                    let obj = self.obj(s, s.freelist);
                    let next = self.fp.get(obj).ok_or(SlabError::Corrupt)?;
                    if next != NIL && next >= s.fresh {
                        return Err(SlabError::Corrupt);
                    }
                    let index = s.freelist;
                    s.freelist = next;
                    index
                } else if u32::from(s.fresh) < self.objects {
                    s.fresh += 1;
                    s.fresh - 1
                } else {
                    return Err(SlabError::Corrupt);
                };
                self.fp.clear(self.obj(s, index));
                index
            };
            let obj = self.obj(s, index);
            s.inuse += 1;
            self.active_objs += 1;
            if u32::from(s.inuse) == self.objects {
                self.move_slab(slab, ListKind::Full);
            }
            Ok(obj)
        }
    }

    /// Whether slabs keep in-use bits rather than a freelist.
    #[inline]
    pub(super) fn bitmap_mode(&self) -> bool {
        self.objects as usize <= BITMAP_OBJS
    }

    /// Object `index` of the slab `s`.
    #[inline]
    pub(super) fn obj(&self, s: &SlabMeta, index: u16) -> *mut u8 {
        s.objs.wrapping_add(usize::from(index) * self.size)
    }

    /// Bytes in a slab.
    #[inline]
    pub(super) fn slab_bytes(&self) -> usize {
        PAGE_SIZE << self.order
    }

    /// The descriptor of this cache's slab holding `ptr`, and the index of
    /// the object at `ptr` (`virt_to_slab()` and `obj_to_index()`: the
    /// slab's first byte is `ptr` aligned down to the slab size).
    #[inline]
    pub(super) fn locate_mut<P: PageSource>(
        &self,
        src: &mut P,
        ptr: *mut u8,
    ) -> Result<(*mut SlabMeta, u16), SlabError> {
        let head = ptr.with_addr(ptr.addr() & !(self.slab_bytes() - 1));
        let (block, area) = src.head_of_mut(head).ok_or(SlabError::ForeignPointer)?;
        if block.tag != self.tag.get() || block.order != self.order {
            return Err(SlabError::ForeignPointer);
        }
        let slab = area.as_ptr().cast::<SlabMeta>();
        // SAFETY: The block carries this cache's tag, and tags are unique, so
        // it is one of this cache's slabs with a live descriptor.
        let index = self.index_in(unsafe { &*slab }, ptr)?;
        Ok((slab, index))
    }

    /// The index of the object at `ptr` in slab `s`, if one starts there.
    #[inline]
    pub(super) fn index_in(&self, s: &SlabMeta, ptr: *const u8) -> Result<u16, SlabError> {
        let offset = ptr
            .addr()
            .checked_sub(s.objs.addr())
            .ok_or(SlabError::NotAnObject)?;
        // Below the slab size, which fits a u32.
        let offset = u32::try_from(offset).map_err(|_| SlabError::NotAnObject)?;
        let index = self.recip.divide(offset);
        if index >= self.objects || index as usize * self.size != offset as usize {
            return Err(SlabError::NotAnObject);
        }
        Ok(index as u16)
    }

    /// Frees an object (`kmem_cache_free()`). Pointers that are not
    /// allocated objects of this cache are reported, never dereferenced.
    pub fn free<P: PageSource>(&mut self, src: &mut P, ptr: *mut u8) -> Result<(), SlabError> {
        if ptr.is_null() {
            return Err(SlabError::NullPointer);
        }
        let (slab, index) = self.locate_mut(src, ptr)?;
        // SAFETY: `locate_mut` returns a live descriptor of this cache.
        unsafe { self.put(src, slab, index) }
    }

    /// [`SlabCache::free`] once the page source has described `ptr`'s block
    /// (for kfree, which finds the cache from the block's tag).
    pub(crate) fn free_in_block<P: PageSource>(
        &mut self,
        src: &mut P,
        block: Block,
        ptr: *mut u8,
    ) -> Result<(), SlabError> {
        if block.tag != self.tag.get() || block.order != self.order {
            return Err(SlabError::ForeignPointer);
        }
        self.free(src, ptr)
    }

    /// Gives object `index` back to `slab`, releasing the slab if it became
    /// empty beyond the limit.
    ///
    /// # Safety
    ///
    /// `slab` must be a live descriptor of this cache.
    #[inline]
    pub(super) unsafe fn put<P: PageSource>(
        &mut self,
        src: &mut P,
        slab: *mut SlabMeta,
        index: u16,
    ) -> Result<(), SlabError> {
        // SAFETY: `slab` is live (caller) and only this cache accesses it.
        unsafe {
            let emptied = self.put_object(slab, index)?;
            if emptied.is_some_and(|was_full| self.release_emptied(was_full)) {
                // Best effort: a refusal leaves the slab cached.
                let _ = self.discard_slab(src, slab);
            }
        }
        Ok(())
    }

    /// Whether a slab that just became empty (and moved to the empty list)
    /// is to be released: SLUB's `n->nr_partial >= s->min_partial`, where
    /// the partial list holds every slab with a free object, empty ones
    /// included, and a slab that was full was not on it.
    pub(super) fn release_emptied(&self, was_full: bool) -> bool {
        let with_room =
            self.lists[ListKind::Partial as usize].len + self.lists[ListKind::Empty as usize].len;
        with_room.saturating_sub(u64::from(was_full)) >= self.empty_limit
    }

    /// Puts object `index` on `slab`'s freelist and moves the slab between
    /// lists: a full slab to the tail of the partial list (SLUB's
    /// `ADD_TO_TAIL`: allocations take the older partial slabs first), an
    /// emptied one to the empty list. Returns, if the slab became empty,
    /// whether it was full before. Never releases it.
    ///
    /// # Safety
    ///
    /// `slab` must be a live descriptor of this cache.
    #[inline]
    pub(super) unsafe fn put_object(
        &mut self,
        slab: *mut SlabMeta,
        index: u16,
    ) -> Result<Option<bool>, SlabError> {
        // SAFETY: `slab` is live (caller) and only this cache accesses it;
        // the object is inside its slab (index checked by the caller).
        unsafe {
            let s = &mut *slab;
            if self.bitmap_mode() {
                let (w, bit) = (usize::from(index / 64), index % 64);
                if s.bitmap[w] & 1 << bit == 0 {
                    return Err(SlabError::DoubleFree);
                }
                s.bitmap[w] &= !(1 << bit);
            } else {
                if index >= s.fresh {
                    return Err(SlabError::DoubleFree);
                }
                let obj = self.obj(s, index);
                if self.fp.get(obj).is_some() && self.on_freelist(s, index)? {
                    return Err(SlabError::DoubleFree);
                }
                self.fp.set(obj, s.freelist);
                s.freelist = index;
            }
            if s.inuse == 0 {
                return Err(SlabError::Corrupt);
            }
            let was_full = u32::from(s.inuse) == self.objects;
            s.inuse -= 1;
            self.active_objs -= 1;
            if s.inuse == 0 {
                self.move_slab(slab, ListKind::Empty);
                return Ok(Some(was_full));
            }
            if was_full {
                self.move_slab_to_tail(slab, ListKind::Partial);
            }
        }
        Ok(None)
    }

    /// Whether object `index` is on the freelist of `s` (SLUB's
    /// `on_freelist()`); `Corrupt` for a broken freelist. At most one step
    /// per free object.
    pub(super) fn on_freelist(&self, s: &SlabMeta, index: u16) -> Result<bool, SlabError> {
        let free = s.fresh.checked_sub(s.inuse).ok_or(SlabError::Corrupt)?;
        let mut cur = s.freelist;
        for _ in 0..=free {
            if cur == NIL {
                return Ok(false);
            }
            if cur == index {
                return Ok(true);
            }
            if cur >= s.fresh {
                return Err(SlabError::Corrupt);
            }
            // SAFETY: `cur < fresh <= objects`: an object of the slab.
            cur = unsafe { self.fp.get(self.obj(s, cur)) }.ok_or(SlabError::Corrupt)?;
        }
        Err(SlabError::Corrupt)
    }

    /// Whether `ptr` is an allocated object of this cache.
    pub fn owns<P: PageSource>(&self, src: &P, ptr: *const u8) -> bool {
        let head = ptr.with_addr(ptr.addr() & !(self.slab_bytes() - 1));
        let Some((block, area)) = src.head_of(head) else {
            return false;
        };
        if block.tag != self.tag.get() || block.order != self.order {
            return false;
        }
        // SAFETY: As in `locate_mut`: one of this cache's slabs, with a live
        // descriptor; read only.
        let s = unsafe { &*area.as_ptr().cast::<SlabMeta>() };
        let Ok(index) = self.index_in(s, ptr) else {
            return false;
        };
        if self.bitmap_mode() {
            return s.bitmap[usize::from(index / 64)] & 1 << (index % 64) != 0;
        }
        if index >= s.fresh {
            return false;
        }
        // SAFETY: An object of the slab (`index < fresh <= objects`).
        if unsafe { self.fp.get(self.obj(s, index)) }.is_none() {
            return true;
        }
        self.on_freelist(s, index) == Ok(false)
    }
}
