// SPDX-License-Identifier: GPL-2.0

//! The free lists, one per order: the mirror's `struct free_area`, linked
//! through the metadata of the free blocks' heads.

use core::ops::DerefMut;

use super::{Buddy, PageMeta, Region, NIL};

/// Free list and counter of one order, the mirror's `struct free_area`.
#[derive(Clone, Copy, Debug)]
pub(super) struct FreeArea {
    pub(super) head: u32,
    pub(super) nr_free: u64,
}

impl<M, R> Buddy<M, R>
where
    M: DerefMut<Target = [PageMeta]>,
    R: DerefMut<Target = [Region]>,
{
    /// Pushes the free head `idx` on the free list of `order`.
    pub(super) fn list_add(&mut self, order: u32, idx: u32) {
        let area = &mut self.free_area[order as usize];
        let old = area.head;
        area.head = idx;
        area.nr_free += 1;
        if old != NIL {
            self.meta[old as usize].prev = idx;
        }
        let m = &mut self.meta[idx as usize];
        m.next = old;
        m.prev = NIL;
    }

    /// Unlinks the free head `idx` from the free list of `order`.
    pub(super) fn list_del(&mut self, order: u32, idx: u32) {
        let PageMeta { next, prev, .. } = self.meta[idx as usize];
        if prev == NIL {
            self.free_area[order as usize].head = next;
        } else {
            self.meta[prev as usize].next = next;
        }
        if next != NIL {
            self.meta[next as usize].prev = prev;
        }
        self.free_area[order as usize].nr_free -= 1;
        let m = &mut self.meta[idx as usize];
        m.next = NIL;
        m.prev = NIL;
    }
}
