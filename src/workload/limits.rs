// SPDX-License-Identifier: GPL-2.0

//! What a WORKLOAD request may ask for, and what it may hold.

use super::steps;
use crate::sizeclass::KMALLOC_MAX_SIZE;
use crate::uapi;
use kernel::{bindings, prelude::*};

/// Validates `w` and returns the most bytes it will hold at once (objects
/// and its own sample and live vectors), which the caller reserves against
/// its caps for the run.
pub(crate) fn charge(w: &uapi::MemlabWorkload) -> Result<usize> {
    if w.backend > uapi::MEMLAB_BACKEND_MIRROR
        || w.pattern >= uapi::MEMLAB_NR_PATTERNS
        || w.count == 0
        || w.count > uapi::MEMLAB_WORKLOAD_MAX_COUNT
        || w.order > bindings::MAX_PAGE_ORDER
        || w.ops_per_sample == 0
        || w.ops_per_sample > uapi::MEMLAB_WORKLOAD_MAX_K
        || w.warmup > w.count
        || !matches!(
            w.flags,
            0 | uapi::MEMLAB_WORKLOAD_KEEP | uapi::MEMLAB_WORKLOAD_THROUGHPUT
        )
    {
        return Err(EINVAL);
    }
    // A throughput pass takes no samples to copy out.
    if w.flags == uapi::MEMLAB_WORKLOAD_THROUGHPUT && (w.samples_ptr != 0 || w.samples_cap != 0) {
        return Err(EINVAL);
    }
    if w.flags & uapi::MEMLAB_WORKLOAD_KEEP != 0
        && (w.pattern != uapi::MEMLAB_PATTERN_BATCH
            || !matches!(
                w.family,
                uapi::MEMLAB_FAMILY_KMALLOC | uapi::MEMLAB_FAMILY_PAGES
            ))
    {
        return Err(EINVAL);
    }
    samples_ok(w)?;
    let samples = u64::from(w.count.div_ceil(w.ops_per_sample));
    let per_obj = match w.family {
        uapi::MEMLAB_FAMILY_PAGES => (bindings::PAGE_SIZE as u64) << w.order,
        uapi::MEMLAB_FAMILY_KMALLOC
        | uapi::MEMLAB_FAMILY_KMEM_CACHE
        | uapi::MEMLAB_FAMILY_VMALLOC
            if w.size >= 8 =>
        {
            w.size
        }
        _ => return Err(EINVAL),
    };
    if per_obj > KMALLOC_MAX_SIZE as u64 {
        return Err(E2BIG);
    }
    // What an object holds is its size class (96 and 192 are below the next
    // power of two; above 8 KiB whole pages of the next order): charge that.
    let per_obj = per_obj.next_power_of_two();
    if w.family != uapi::MEMLAB_FAMILY_PAGES && w.order != 0 {
        return Err(EINVAL);
    }
    // The most objects the pattern holds at once, for the memory cap.
    let max_live = u64::from(steps::max_live(w.pattern, w.count));
    // The run's own vectors: two steps of 8 bytes per count, a slot (and,
    // for RANDOM, two list entries) per live object, and four sample
    // vectors (alloc and free, for the floor and the pass) plus the floor's
    // sorted copy.
    let vectors = u64::from(w.count) * 16 + max_live * (24 + 8) + samples * 8 * 6;
    usize::try_from(per_obj.saturating_mul(max_live).saturating_add(vectors)).map_err(|_| E2BIG)
}

/// The raw samples: all of them fit, or none are asked for (`w`'s count
/// and K already checked).
pub(super) fn samples_ok(w: &uapi::MemlabWorkload) -> Result {
    let samples = u64::from(w.count.div_ceil(w.ops_per_sample.max(1)));
    if u64::from(w.samples_cap) > 2 * u64::from(uapi::MEMLAB_WORKLOAD_MAX_COUNT) {
        return Err(E2BIG);
    }
    if (w.samples_ptr == 0) != (w.samples_cap == 0)
        || (w.samples_ptr != 0 && u64::from(w.samples_cap) < 2 * samples)
    {
        return Err(EINVAL);
    }
    Ok(())
}
