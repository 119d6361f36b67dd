// SPDX-License-Identifier: GPL-2.0

//! Per-CPU caches in front of the mirror's shared state, modelled on the
//! kernel's per-CPU page lists (`struct per_cpu_pages`) and per-CPU slab
//! freelists.
//!
//! Each CPU has one [`CpuCache`] behind its own spinlock: order-0 pages per
//! zone and kmalloc objects per size class. The fast paths take only that
//! lock; refills and flushes move a batch at once under `Mirror::state`. A
//! task may migrate between reading its CPU number and taking the lock: that
//! costs locality, never correctness, since every access is under a lock.
//!
//! Items in these caches are not re-validated when they come back (the buddy
//! and the slabs check them when they are flushed), so the free fast paths
//! are `unsafe fn`s whose callers guarantee where the item came from.

use core::ptr::NonNull;
use kernel::prelude::*;

use super::zone::NR_MIRROR_ZONES;
use crate::sizeclass::NR_KMALLOC_CLASSES;

/// Order-0 pages a CPU keeps per zone before giving a batch back (`pcp->high`).
pub(crate) const PCP_HIGH: usize = 64;
/// Pages moved at once between a zone's buddy and a CPU (`pcp->batch`).
pub(crate) const PCP_BATCH: usize = 16;
/// kmalloc objects a CPU keeps per size class.
pub(crate) const MAG_SIZE: usize = 64;
/// Objects moved at once between a size class's slabs and a CPU.
pub(crate) const MAG_BATCH: usize = 32;

/// A bounded stack of addresses of mirror memory. All-zero is empty, so it
/// can be built in place with `pin_init::zeroed()`.
#[derive(Zeroable)]
pub(crate) struct Stack<const N: usize> {
    items: [Option<NonNull<u8>>; N],
    len: usize,
}

impl<const N: usize> Stack<N> {
    /// An empty stack.
    pub(crate) const EMPTY: Self = Stack {
        items: [None; N],
        len: 0,
    };

    /// Takes the most recently pushed address (hot in cache, like the kernel's LIFO lists).
    pub(crate) fn pop(&mut self) -> Option<NonNull<u8>> {
        let i = self.len.checked_sub(1)?;
        let p = self.items.get_mut(i)?.take();
        self.len = i;
        p
    }

    /// Pushes `p`; gives it back if the stack is full.
    pub(crate) fn push(&mut self, p: NonNull<u8>) -> Result<(), NonNull<u8>> {
        match self.items.get_mut(self.len) {
            Some(slot) => {
                *slot = Some(p);
                self.len += 1;
                Ok(())
            }
            None => Err(p),
        }
    }

    /// The addresses held, most recent last.
    pub(crate) fn iter(&self) -> impl Iterator<Item = NonNull<u8>> + '_ {
        self.items.iter().take(self.len).flatten().copied()
    }

    /// Addresses held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether no more fit.
    pub(crate) fn is_full(&self) -> bool {
        self.len >= N
    }
}

// SAFETY: the addresses name mirror memory this cache owns while they are in
// it; any CPU may hand them out or give them back.
unsafe impl<const N: usize> Send for Stack<N> {}

/// Event counters, kept under the lock of whatever they count (a CPU's
/// cache or the shared state), so counting costs no atomic operation; the
/// `mirror/counters` file sums them, like /proc/vmstat sums per-CPU counts.
#[derive(Clone, Copy, Default, Zeroable)]
pub(crate) struct Counters {
    /// Order-0 pages served from a CPU's list.
    pub(crate) pcp_hit: u64,
    /// Batches moved from a zone's buddy to a CPU's list.
    pub(crate) pcp_refill: u64,
    /// Order-0 pages freed to a CPU's list.
    pub(crate) pcp_free: u64,
    /// Batches moved from a CPU's list back to the buddy.
    pub(crate) pcp_flush: u64,
    /// kmalloc objects served from a CPU's cache.
    pub(crate) obj_hit: u64,
    /// Batches moved from a size class's slabs to a CPU.
    pub(crate) obj_refill: u64,
    /// kmalloc objects freed to a CPU's cache.
    pub(crate) obj_free: u64,
    /// Batches moved from a CPU back to the slabs.
    pub(crate) obj_flush: u64,
}

impl Counters {
    /// Names and values, in `mirror/counters` order.
    pub(crate) fn fields(&self) -> [(&'static str, u64); 8] {
        [
            ("pcp_hit", self.pcp_hit),
            ("pcp_refill", self.pcp_refill),
            ("pcp_free", self.pcp_free),
            ("pcp_flush", self.pcp_flush),
            ("obj_hit", self.obj_hit),
            ("obj_refill", self.obj_refill),
            ("obj_free", self.obj_free),
            ("obj_flush", self.obj_flush),
        ]
    }

    /// `self + other`, field by field.
    pub(crate) fn sum(&self, o: &Counters) -> Counters {
        Counters {
            pcp_hit: self.pcp_hit.wrapping_add(o.pcp_hit),
            pcp_refill: self.pcp_refill.wrapping_add(o.pcp_refill),
            pcp_free: self.pcp_free.wrapping_add(o.pcp_free),
            pcp_flush: self.pcp_flush.wrapping_add(o.pcp_flush),
            obj_hit: self.obj_hit.wrapping_add(o.obj_hit),
            obj_refill: self.obj_refill.wrapping_add(o.obj_refill),
            obj_free: self.obj_free.wrapping_add(o.obj_free),
            obj_flush: self.obj_flush.wrapping_add(o.obj_flush),
        }
    }
}

/// What one CPU caches; all-zero is empty (it is kilobytes: built in place).
#[derive(Zeroable)]
pub(crate) struct CpuCache {
    /// Order-0 pages per zone (`MEMLAB_ZONE_*`).
    pub(crate) pcp: [Stack<PCP_HIGH>; NR_MIRROR_ZONES],
    /// kmalloc objects per size class.
    pub(crate) mags: [Stack<MAG_SIZE>; NR_KMALLOC_CLASSES],
    /// What this CPU's fast paths did.
    pub(crate) counters: Counters,
}

impl CpuCache {
    /// (pages, objects) held.
    pub(crate) fn held(&self) -> (usize, usize) {
        (
            self.pcp.iter().map(Stack::len).sum(),
            self.mags.iter().map(Stack::len).sum(),
        )
    }
}
