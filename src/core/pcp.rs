// SPDX-License-Identifier: GPL-2.0

//! How big the per-CPU caches in front of the mirror's allocators are, by
//! the kernel's own rules: SLUB's sheaf capacity (`calculate_sheaf_capacity`
//! in mm/slub.c, 7.2) and the page allocator's per-CPU list batch and high
//! mark (`zone_batchsize`, `zone_highsize` in mm/page_alloc.c).

use crate::sizeclass::{kmalloc_size_roundup, KMALLOC_MAX_CACHE_SIZE};

/// `struct slab_sheaf` without its objects: a 16-byte union (rcu_head or
/// list_head), the cache pointer, `size` and `node`.
pub const SHEAF_HEADER_BYTES: usize = 32;

/// The largest capacity [`sheaf_capacity`] returns for a cache without an
/// explicit request (objects under 256 bytes).
pub const SHEAF_MAX_CAPACITY: usize = 60;

/// Objects per sheaf of a cache whose objects take `size` bytes: 4, 12, 26
/// or 60 by size, then grown so that the sheaf itself (header and object
/// pointers) exactly fills its kmalloc bucket, as SLUB does.
pub fn sheaf_capacity(size: usize) -> usize {
    let base = match size {
        4096.. => 4,
        1024.. => 12,
        256.. => 26,
        _ => 60,
    };
    let bytes = SHEAF_HEADER_BYTES + base * 8;
    let bytes = kmalloc_size_roundup(bytes).unwrap_or(bytes);
    (bytes - SHEAF_HEADER_BYTES) / 8
}

/// Full sheaves a barn keeps per cache and node (`MAX_FULL_SHEAVES`).
pub const MAX_FULL_SHEAVES: usize = 10;
/// Empty sheaves a barn keeps per cache and node (`MAX_EMPTY_SHEAVES`).
pub const MAX_EMPTY_SHEAVES: usize = 10;

/// Largest power of two not above `n` (`rounddown_pow_of_two`); 0 for 0.
fn rounddown_pow_of_two(n: u64) -> u64 {
    match n {
        0 => 0,
        _ => 1 << (63 - n.leading_zeros()),
    }
}

/// `zone_batchsize`: pages moved at once between a zone of `managed` pages
/// and a CPU's list, about 0.025% of the zone or 256 KiB (of 4 KiB pages),
/// whichever is smaller, clamped to 2^n - 1 (63 at most).
pub fn zone_batchsize(managed: u64) -> u64 {
    let batch = (managed >> 12).min(256 * 1024 / 4096);
    if batch <= 1 {
        return 1;
    }
    rounddown_pow_of_two(batch + batch / 2) - 1
}

/// `zone_highsize` with the default `percpu_pagelist_high_fraction` of 0:
/// the zone's low watermark split over the `cpus` CPUs, at least four
/// batches.
pub fn zone_highsize(low_wmark: u64, cpus: u64, batch: u64) -> u64 {
    (low_wmark / cpus.max(1)).max(batch << 2)
}

/// `CONFIG_PCP_BATCH_SCALE_MAX`: how many times an order-0 refill may double.
pub const PCP_BATCH_SCALE_MAX: u32 = 5;

/// `nr_pcp_alloc`: pages one refill of a CPU's list of `order` moves, and
/// whether the order-0 refill factor should grow. Order 0 doubles the batch
/// for each refill without a free in between (`factor`), but never fills
/// the list past `high`; higher orders move `batch >> order` (at least 2).
pub fn pcp_alloc_count(batch: u64, high: u64, held: u64, factor: u32, order: u32) -> (u64, bool) {
    if high < batch {
        return (1, false);
    }
    let mut n = batch;
    let mut grow = false;
    if order == 0 {
        n = batch << factor.min(PCP_BATCH_SCALE_MAX);
        let max = high.saturating_sub(held).saturating_sub(batch).max(batch);
        grow = n <= max && factor < PCP_BATCH_SCALE_MAX;
        n = n.min(max);
    }
    if n > 1 {
        n = (n >> order).max(2);
    }
    (n, grow)
}

/// `nr_pcp_free`: pages to give back once a CPU's lists reach `high`:
/// as many as were freed in a row (`free_count`), but at least `batch` and
/// never so many that fewer than `batch` stay.
pub fn pcp_free_count(batch: u64, high: u64, free_count: u64) -> u64 {
    if high < batch {
        return 1;
    }
    free_count.clamp(batch, high.saturating_sub(batch).max(batch))
}

/// kmalloc class index per 8 bytes up to 192 (`size_index` in
/// mm/slab_common.c): 96 and 192 are not powers of two.
const SIZE_INDEX: [u8; 25] = [
    0, 0, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6,
];

/// The position in `SizeClass::ALL` of the class serving `size`, as the
/// kernel's `kmalloc_index` finds it without a search: a table up to 192
/// bytes, the rounded-up log2 above; `None` for 0 and above
/// `KMALLOC_MAX_CACHE_SIZE`.
#[inline(always)]
pub fn kmalloc_index(size: usize) -> Option<usize> {
    if size <= 192 {
        if size == 0 {
            return None;
        }
        return SIZE_INDEX.get(size.div_ceil(8)).map(|&i| i as usize);
    }
    if size > KMALLOC_MAX_CACHE_SIZE {
        return None;
    }
    // 193..=256 -> 7 (kmalloc-256), 257..=512 -> 8, ...
    Some((usize::BITS - (size - 1).leading_zeros()) as usize - 1)
}
