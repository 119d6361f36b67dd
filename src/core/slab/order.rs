// SPDX-License-Identifier: GPL-2.0

//! SLUB's slab order rule, `calculate_order()` and `calc_slab_order()` in
//! mm/slub.c (Linux 7.2), with the number of CPUs as an input.
//!
//! Self-contained on purpose (no `crate::` paths, no allocation): the core
//! compiles it into the module and the host tests, and memlabctl includes
//! the same file through `#[path]` to check the rule against the running
//! kernel's /proc/slabinfo.
//!
//! The kernel's defaults are modelled: `slab_min_order` 0, `slab_max_order`
//! `PAGE_ALLOC_COSTLY_ORDER` (3), `slab_min_objects` 0 (so derived from the
//! CPUs), 4 KiB pages. SLUB keeps its `struct slab` in the memmap, outside
//! the slab, so a slab of order `o` holds `(PAGE_SIZE << o) / size` objects
//! starting at offset 0.

/// Page size the rule is computed for.
pub const SLUB_PAGE_SIZE: usize = 4096;
/// `PAGE_ALLOC_COSTLY_ORDER`, SLUB's default `slub_max_order`.
pub const SLUB_MAX_ORDER: u32 = 3;
/// `MAX_PAGE_ORDER` on x86-64.
pub const SLUB_MAX_PAGE_ORDER: u32 = 10;
/// `MAX_OBJS_PER_PAGE` (the 15-bit `objects` field of `struct slab`).
pub const MAX_OBJS_PER_PAGE: usize = 32767;

/// Objects of `size` bytes a slab of `order` holds (`order_objects()`).
pub const fn order_objects(order: u32, size: usize) -> usize {
    if size == 0 {
        return 0;
    }
    (SLUB_PAGE_SIZE << order) / size
}

/// The smallest order whose block holds `size` bytes (`get_order()`).
pub const fn slub_get_order(size: usize) -> u32 {
    let pages = size.saturating_sub(1) / SLUB_PAGE_SIZE;
    usize::BITS - pages.leading_zeros()
}

/// The objects per slab SLUB aims for: `4 * (fls(nr_cpus) + 1)`.
///
/// `nr_cpus` is what SLUB counts at boot: `num_present_cpus()`, or
/// `nr_cpu_ids` when that is 1 or less.
pub const fn slub_min_objects(nr_cpus: u32) -> usize {
    let fls = u32::BITS - nr_cpus.leading_zeros();
    4 * (fls as usize + 1)
}

/// `calc_slab_order()`: the smallest order from `min_order` up to
/// `max_order` whose leftover is at most `1 / fract_leftover` of the slab;
/// `max_order + 1` if none.
pub const fn calc_slab_order(size: usize, min_order: u32, max_order: u32, fract: usize) -> u32 {
    let mut order = min_order;
    while order <= max_order {
        let slab_size = SLUB_PAGE_SIZE << order;
        if slab_size % size <= slab_size / fract {
            break;
        }
        order += 1;
    }
    order
}

/// `calculate_order()`: the slab order SLUB gives objects of `size` bytes
/// (the cache's `s->size`, padding included) on a machine with `nr_cpus`
/// CPUs; `None` where SLUB fails the cache (`-ENOSYS`) or `size` is 0.
pub const fn calculate_order(size: usize, nr_cpus: u32) -> Option<u32> {
    if size == 0 {
        return None;
    }
    let mut max_objects = order_objects(SLUB_MAX_ORDER, size);
    if max_objects < 1 {
        max_objects = 1;
    }
    let mut min_objects = slub_min_objects(nr_cpus);
    if min_objects > max_objects {
        min_objects = max_objects;
    }
    let min_order = slub_get_order(min_objects.saturating_mul(size));
    if min_order > SLUB_MAX_PAGE_ORDER {
        return None;
    }
    if order_objects(min_order, size) > MAX_OBJS_PER_PAGE {
        return Some(slub_get_order(size.saturating_mul(MAX_OBJS_PER_PAGE)) - 1);
    }
    let mut fraction = 16;
    while fraction > 1 {
        let order = calc_slab_order(size, min_order, SLUB_MAX_ORDER, fraction);
        if order <= SLUB_MAX_ORDER {
            return Some(order);
        }
        fraction /= 2;
    }
    let order = slub_get_order(size);
    if order <= SLUB_MAX_PAGE_ORDER {
        Some(order)
    } else {
        None
    }
}

/// What /proc/slabinfo prints for a SLUB cache of `size`-byte objects:
/// `(objsize, objperslab, pagesperslab)`.
pub const fn slub_geometry(size: usize, nr_cpus: u32) -> Option<(usize, usize, usize)> {
    match calculate_order(size, nr_cpus) {
        Some(order) => Some((size, order_objects(order, size), 1 << order)),
        None => None,
    }
}
