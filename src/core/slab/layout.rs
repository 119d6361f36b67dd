// SPDX-License-Identifier: GPL-2.0

//! Slab layout: the descriptor at the head of every slab, the in-use bitmap
//! after it, and the geometry (order, objects per slab, first object offset)
//! chosen for a cache when it is created.

use super::{MAX_OBJS_PER_SLAB, MIN_OBJECTS, SLAB_MAX_ORDER};
use crate::buddy::{MAX_PAGE_ORDER, PAGE_SIZE};

/// Magic number at the start of every slab descriptor.
pub(super) const SLAB_MAGIC: u32 = 0x51AB_CAFE;

/// The descriptor at the start of every slab; the in-use bitmap follows it.
#[repr(C)]
pub(super) struct SlabHeader {
    pub(super) magic: u32,
    pub(super) tag: u32,
    pub(super) next: *mut SlabHeader,
    pub(super) prev: *mut SlabHeader,
    /// First object (after descriptor, padding and colour).
    pub(super) objs: *mut u8,
    /// Objects in use.
    pub(super) inuse: u32,
    /// First bitmap word that may have a clear bit.
    pub(super) hint: u16,
    /// The [`ListKind`](super::list::ListKind) the slab is on.
    pub(super) list: u8,
}

const HEADER_SIZE: usize = core::mem::size_of::<SlabHeader>();
const _: () = assert!(HEADER_SIZE.is_multiple_of(8) && core::mem::align_of::<SlabHeader>() <= 8);

/// Slab geometry for one order.
#[derive(Clone, Copy, Debug)]
pub(super) struct Geometry {
    pub(super) order: u32,
    pub(super) objects: usize,
    /// Offset of object 0 of an uncoloured slab.
    pub(super) first_offset: usize,
    /// Bytes of the slab used by nothing (waste besides the descriptor).
    pub(super) leftover: usize,
}

/// Round `x` up to `align` (a power of two), or `None` on overflow.
pub(super) const fn align_up(x: usize, align: usize) -> Option<usize> {
    match x.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

/// Bytes of descriptor plus bitmap for `objects` objects.
const fn header_len(objects: usize) -> usize {
    HEADER_SIZE + objects.div_ceil(64) * 8
}

/// How many objects of `stride` bytes aligned to `align` fit a slab of
/// `order`, with the descriptor in front.
fn geometry(order: u32, stride: usize, align: usize) -> Option<Geometry> {
    let slab_bytes = PAGE_SIZE.checked_shl(order)?;
    let mut objects = MAX_OBJS_PER_SLAB.min(slab_bytes / stride);
    loop {
        let first = align_up(header_len(objects), align)?;
        let fit = slab_bytes.saturating_sub(first) / stride;
        if fit >= objects {
            break;
        }
        objects = fit;
    }
    if objects == 0 {
        return None;
    }
    let first_offset = align_up(header_len(objects), align)?;
    Some(Geometry {
        order,
        objects,
        first_offset,
        leftover: slab_bytes - first_offset - objects * stride,
    })
}

/// The slab order and object count for `stride`, as described in the
/// documentation of [`crate::slab`] (`calculate_order()` in mm/slub.c).
pub(super) fn calculate_geometry(stride: usize, align: usize) -> Option<Geometry> {
    let max_objects = geometry(SLAB_MAX_ORDER, stride, align).map_or(1, |g| g.objects);
    let min_objects = MIN_OBJECTS.min(max_objects);
    let mut min_order = 0;
    while min_order < SLAB_MAX_ORDER
        && geometry(min_order, stride, align).is_none_or(|g| g.objects < min_objects)
    {
        min_order += 1;
    }
    let mut fraction = 16;
    while fraction > 1 {
        for order in min_order..=SLAB_MAX_ORDER {
            if let Some(g) = geometry(order, stride, align) {
                let slab_bytes = PAGE_SIZE << order;
                if g.first_offset + g.leftover <= slab_bytes / fraction {
                    return Some(g);
                }
            }
        }
        fraction /= 2;
    }
    (0..=MAX_PAGE_ORDER).find_map(|order| geometry(order, stride, align))
}

/// The bitmap following the descriptor `slab`.
///
/// # Safety
///
/// `slab` must point to a slab descriptor, which its bitmap follows.
pub(super) unsafe fn bitmap_of(slab: *mut SlabHeader) -> *mut u64 {
    // SAFETY: The bitmap starts right after the descriptor, in the same slab.
    unsafe { slab.add(1).cast::<u64>() }
}
