// SPDX-License-Identifier: GPL-2.0

//! A workload as a sequence of steps, generated before anything is timed:
//! the random numbers, the choice of the object to free and the slot
//! bookkeeping all happen here, so the timed loop only indexes an array.

use crate::request::{Pattern, WorkloadFamily, WorkloadRequest};
use kernel::prelude::*;

/// One step: allocate into a slot, or free what a slot holds.
#[derive(Clone, Copy)]
pub(crate) struct Step {
    /// Slot index, with [`Step::ALLOC`] set for an allocation.
    word: u32,
    /// Size in bytes, or page order.
    pub(super) arg: u32,
}

impl Step {
    const ALLOC: u32 = 1 << 31;

    fn alloc(slot: u32, arg: u32) -> Self {
        Step {
            word: slot | Self::ALLOC,
            arg,
        }
    }

    fn free(slot: u32) -> Self {
        Step { word: slot, arg: 0 }
    }

    /// Whether this step allocates.
    #[inline(always)]
    pub(super) fn is_alloc(self) -> bool {
        self.word & Self::ALLOC != 0
    }

    /// The slot it allocates into or frees from.
    #[inline(always)]
    pub(super) fn slot(self) -> usize {
        (self.word & !Self::ALLOC) as usize
    }
}

/// xorshift32: cheap, seeded, the same sequence on both backends.
struct Rng(u32);

impl Rng {
    fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u32) -> u32 {
        self.next() % n.max(1)
    }
}

/// The steps of a workload, and how many slots (objects live at once) it
/// needs.
pub(super) struct Sequence {
    pub(super) steps: KVVec<Step>,
    pub(super) slots: usize,
    /// Most objects live at once.
    pub(super) peak_live: u32,
}

/// Steps of `w`. RANDOM allocs pick a size in `8..size` for kmalloc (the
/// full `size` for a kmem_cache or vmalloc) or an order in `0..=order` for
/// pages.
pub(super) fn generate(w: &WorkloadRequest) -> Result<Sequence> {
    let count = w.count;
    let fixed = w.family.arg();
    let slots = w.pattern.max_live(count);
    let mut steps = KVVec::with_capacity(2 * count as usize, GFP_KERNEL)?;
    let mut peak_live = slots;
    match w.pattern {
        Pattern::Pairs => {
            for _ in 0..count {
                steps.push(Step::alloc(0, fixed), GFP_KERNEL)?;
                steps.push(Step::free(0), GFP_KERNEL)?;
            }
        }
        Pattern::Batch => {
            for i in 0..count {
                steps.push(Step::alloc(i, fixed), GFP_KERNEL)?;
            }
            for i in 0..count {
                steps.push(Step::free(i), GFP_KERNEL)?;
            }
        }
        Pattern::Random => {
            let mut rng = Rng(w.seed | 1);
            // Live slots in allocation order, and the unused ones.
            let mut live: KVVec<u32> = KVVec::with_capacity(slots as usize, GFP_KERNEL)?;
            let mut unused: KVVec<u32> = KVVec::with_capacity(slots as usize, GFP_KERNEL)?;
            for s in (0..slots).rev() {
                unused.push(s, GFP_KERNEL)?;
            }
            peak_live = 0;
            for _ in 0..count {
                let n = live.len() as u32;
                if n == 0 || (n < slots && rng.below(2) == 0) {
                    let arg = match w.family {
                        WorkloadFamily::Pages { order } => rng.below(order + 1),
                        WorkloadFamily::Kmalloc { size } => 8 + rng.below(size.saturating_sub(8)),
                        WorkloadFamily::KmemCache { size } | WorkloadFamily::Vmalloc { size } => {
                            size
                        }
                    };
                    let slot = unused.pop().ok_or(EINVAL)?;
                    steps.push(Step::alloc(slot, arg), GFP_KERNEL)?;
                    live.push(slot, GFP_KERNEL)?;
                    peak_live = peak_live.max(n + 1);
                } else {
                    let i = rng.below(n) as usize;
                    let last = live.len() - 1;
                    live.as_mut_slice().swap(i, last);
                    let slot = live.pop().ok_or(EINVAL)?;
                    steps.push(Step::free(slot), GFP_KERNEL)?;
                    unused.push(slot, GFP_KERNEL)?;
                }
            }
        }
    }
    Ok(Sequence {
        steps,
        slots: slots as usize,
        peak_live,
    })
}
