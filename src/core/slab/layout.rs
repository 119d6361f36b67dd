// SPDX-License-Identifier: GPL-2.0

//! Slab layout: the slab descriptor kept in the head frame's page metadata
//! (SLUB's `struct slab`, which overlays `struct page`), the free pointer
//! inside free objects, the reciprocal that turns an offset into an object
//! index, and the geometry (order, objects per slab) chosen for a cache.

use super::order::{calculate_order, order_objects, SLUB_MAX_PAGE_ORDER, SLUB_PAGE_SIZE};
use super::MAX_OBJS_PER_SLAB;
use crate::buddy::{OwnerArea, MAX_PAGE_ORDER, PAGE_SIZE};

const _: () = assert!(SLUB_PAGE_SIZE == PAGE_SIZE && SLUB_MAX_PAGE_ORDER == MAX_PAGE_ORDER);

/// End of a slab's freelist.
pub(super) const NIL: u16 = u16::MAX;
const _: () = assert!(MAX_OBJS_PER_SLAB < NIL as usize);

/// Most objects per slab whose in-use bits fit the descriptor.
pub(super) const BITMAP_OBJS: usize = 128;

/// A slab's descriptor, in the owner area of its head frame's metadata.
///
/// A slab of at most [`BITMAP_OBJS`] objects keeps one in-use bit per
/// object in `bitmap` (bits past the last object set), and the allocator
/// never touches its objects. A slab of more objects (8- to 24-byte
/// objects) links its free objects as SLUB does: objects `[0, fresh)` have
/// been handed out at least once, those of them not in use are on the
/// freelist, linked through a free pointer inside each free object
/// ([`FreePtr`]); objects `[fresh, objects)` were never allocated (a new
/// slab is not threaded up front, so growing one touches none of its
/// memory unless the cache has a constructor).
#[repr(C)]
pub(super) struct SlabMeta {
    pub(super) next: *mut SlabMeta,
    pub(super) prev: *mut SlabMeta,
    /// First object: the slab's first byte plus its colour offset.
    pub(super) objs: *mut u8,
    /// Index of the first object on the freelist, or [`NIL`].
    pub(super) freelist: u16,
    /// Objects from this index up were never allocated.
    pub(super) fresh: u16,
    /// Objects in use.
    pub(super) inuse: u16,
    /// The [`ListKind`](super::list::ListKind) the slab is on.
    pub(super) list: u8,
    /// In-use bits, for slabs of at most [`BITMAP_OBJS`] objects.
    pub(super) bitmap: [u64; BITMAP_OBJS / 64],
}

/// The in-use bits of a slab of `objects` objects with none in use: the
/// bits past the last object set.
pub(super) const fn empty_bitmap(objects: usize) -> [u64; BITMAP_OBJS / 64] {
    let mut map = [0; BITMAP_OBJS / 64];
    let mut w = 0;
    while w < map.len() {
        let valid = objects.saturating_sub(w * 64);
        map[w] = if valid >= 64 { 0 } else { u64::MAX << valid };
        w += 1;
    }
    map
}

const _: () = assert!(
    core::mem::size_of::<SlabMeta>() <= core::mem::size_of::<OwnerArea>()
        && core::mem::align_of::<SlabMeta>() <= core::mem::align_of::<OwnerArea>()
);

/// `struct reciprocal_value` (lib/reciprocal_div.c): division by a
/// constant as a multiply and two shifts, exact for every `u32` dividend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reciprocal {
    m: u32,
    sh1: u8,
    sh2: u8,
}

impl Reciprocal {
    /// `reciprocal_value(d)` for `d >= 1`.
    pub const fn new(d: u32) -> Reciprocal {
        let l = u32::BITS - (d - 1).leading_zeros();
        let m = ((1u64 << 32) * ((1u64 << l) - d as u64)) / d as u64 + 1;
        Reciprocal {
            m: m as u32,
            sh1: if l < 1 { l } else { 1 } as u8,
            sh2: l.saturating_sub(1) as u8,
        }
    }

    /// `reciprocal_divide(a, R)`: `a / d`.
    #[inline]
    pub const fn divide(self, a: u32) -> u32 {
        let t = ((a as u64 * self.m as u64) >> 32) as u32;
        (t + ((a - t) >> self.sh1)) >> self.sh2
    }
}

/// How a free object's free pointer is stored: at `offset` in the object,
/// the index of the next free object XOR a cookie of the object's address
/// (the idea of SLUB's `CONFIG_SLAB_FREELIST_HARDENED`). A word whose
/// decoded top 48 bits are not zero is certainly not a free pointer, so a
/// free of a live object costs one load; a live object that happens to hold
/// a valid-looking word is told apart by walking the freelist (SLUB's
/// `on_freelist()`), so the check never errs.
#[derive(Clone, Copy, Debug)]
pub(super) struct FreePtr {
    pub(super) offset: usize,
    pub(super) random: u64,
}

impl FreePtr {
    #[inline]
    fn cookie(self, obj: *mut u8) -> u64 {
        (self.random ^ obj.addr() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// Writes `next` as the free pointer of `obj`.
    ///
    /// # Safety
    ///
    /// `obj` must be an object of a slab of the cache this was made for.
    #[inline]
    pub(super) unsafe fn set(self, obj: *mut u8, next: u16) {
        // SAFETY: `offset + 8 <= size` and objects are 8-byte aligned
        // (cache creation), inside the slab (caller).
        unsafe {
            obj.add(self.offset)
                .cast::<u64>()
                .write(u64::from(next) ^ self.cookie(obj))
        };
    }

    /// Overwrites the free pointer of `obj` with a word that is never valid.
    ///
    /// # Safety
    ///
    /// As for [`FreePtr::set`].
    #[inline]
    pub(super) unsafe fn clear(self, obj: *mut u8) {
        // SAFETY: As in `set`.
        unsafe { obj.add(self.offset).cast::<u64>().write(!self.cookie(obj)) };
    }

    /// The free pointer of `obj`, if the word there is one.
    ///
    /// # Safety
    ///
    /// As for [`FreePtr::set`].
    #[inline]
    pub(super) unsafe fn get(self, obj: *mut u8) -> Option<u16> {
        // SAFETY: As in `set`.
        let x = unsafe { obj.add(self.offset).cast::<u64>().read() } ^ self.cookie(obj);
        (x >> 16 == 0).then_some(x as u16)
    }
}

/// Round `x` up to `align` (a power of two), or `None` on overflow.
pub(super) const fn align_up(x: usize, align: usize) -> Option<usize> {
    match x.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

/// Slab geometry of a cache.
#[derive(Clone, Copy, Debug)]
pub(super) struct Geometry {
    pub(super) order: u32,
    pub(super) objects: usize,
    /// Bytes of the slab after the last object (colour room).
    pub(super) leftover: usize,
}

/// SLUB's order and object count for objects of `stride` bytes with
/// `nr_cpus` CPUs ([`calculate_order`]); objects start at offset 0.
pub(super) fn calculate_geometry(stride: usize, nr_cpus: u32) -> Option<Geometry> {
    let order = calculate_order(stride, nr_cpus)?;
    let objects = order_objects(order, stride);
    if objects == 0 || objects > MAX_OBJS_PER_SLAB {
        return None;
    }
    Some(Geometry {
        order,
        objects,
        leftover: (PAGE_SIZE << order) - objects * stride,
    })
}
