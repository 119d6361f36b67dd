// SPDX-License-Identifier: GPL-2.0

//! The slab lists of a cache: partial, full and empty (the old SLAB's
//! `slabs_partial`, `slabs_full` and `slabs_free`), doubly linked through
//! the slab descriptors in the page metadata.

use core::ptr;

use super::layout::SlabMeta;
use super::SlabCache;

/// Which list a slab is on.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ListKind {
    Partial = 0,
    Full = 1,
    Empty = 2,
}

/// A doubly linked list of slab descriptors.
#[derive(Clone, Copy, Debug)]
pub(super) struct SlabList {
    pub(super) head: *mut SlabMeta,
    pub(super) tail: *mut SlabMeta,
    pub(super) len: u64,
}

impl SlabList {
    pub(super) const EMPTY: SlabList = SlabList {
        head: ptr::null_mut(),
        tail: ptr::null_mut(),
        len: 0,
    };
}

impl SlabCache {
    /// Moves `slab` from its list to `to`.
    ///
    /// # Safety
    ///
    /// `slab` must be a live descriptor of this cache, on one of its lists.
    pub(super) unsafe fn move_slab(&mut self, slab: *mut SlabMeta, to: ListKind) {
        // SAFETY: Forwarded from the caller.
        unsafe {
            self.list_del(slab);
            self.list_add(slab, to);
        }
    }

    /// Moves `slab` from its list to the tail of `to` (SLUB's
    /// `ADD_TO_TAIL`).
    ///
    /// # Safety
    ///
    /// `slab` must be a live descriptor of this cache, on one of its lists.
    pub(super) unsafe fn move_slab_to_tail(&mut self, slab: *mut SlabMeta, to: ListKind) {
        // SAFETY: Forwarded from the caller.
        unsafe {
            self.list_del(slab);
            self.list_add_tail(slab, to);
        }
    }

    /// Pushes `slab` on list `to`.
    ///
    /// # Safety
    ///
    /// `slab` must be a live descriptor of this cache, on none of its lists.
    pub(super) unsafe fn list_add(&mut self, slab: *mut SlabMeta, to: ListKind) {
        let list = &mut self.lists[to as usize];
        // SAFETY: `slab` and the list's head (if any) are live descriptors.
        unsafe {
            (*slab).next = list.head;
            (*slab).prev = ptr::null_mut();
            (*slab).list = to as u8;
            if !list.head.is_null() {
                (*list.head).prev = slab;
            }
        }
        if list.tail.is_null() {
            list.tail = slab;
        }
        list.head = slab;
        list.len += 1;
    }

    /// Appends `slab` to list `to`.
    ///
    /// # Safety
    ///
    /// `slab` must be a live descriptor of this cache, on none of its lists.
    pub(super) unsafe fn list_add_tail(&mut self, slab: *mut SlabMeta, to: ListKind) {
        let list = &mut self.lists[to as usize];
        // SAFETY: `slab` and the list's tail (if any) are live descriptors.
        unsafe {
            (*slab).next = ptr::null_mut();
            (*slab).prev = list.tail;
            (*slab).list = to as u8;
            if !list.tail.is_null() {
                (*list.tail).next = slab;
            }
        }
        if list.head.is_null() {
            list.head = slab;
        }
        list.tail = slab;
        list.len += 1;
    }

    /// Unlinks `slab` from its list.
    ///
    /// # Safety
    ///
    /// `slab` must be a live descriptor of this cache, on one of its lists.
    pub(super) unsafe fn list_del(&mut self, slab: *mut SlabMeta) {
        // SAFETY: `slab` and its neighbours are live descriptors.
        unsafe {
            let list = &mut self.lists[usize::from((*slab).list)];
            let (next, prev) = ((*slab).next, (*slab).prev);
            if prev.is_null() {
                list.head = next;
            } else {
                (*prev).next = next;
            }
            if next.is_null() {
                list.tail = prev;
            } else {
                (*next).prev = prev;
            }
            list.len -= 1;
            (*slab).next = ptr::null_mut();
            (*slab).prev = ptr::null_mut();
        }
    }
}
