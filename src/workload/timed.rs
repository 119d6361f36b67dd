// SPDX-License-Identifier: GPL-2.0

//! The timed pass of a workload and what it measures with.
//!
//! Inside one timing window there is exactly: `lfence; rdtsc`, the
//! allocator call (its argument set-up and the `Result` it returns), then
//! `lfence; rdtsc`. The step decode, storing the object in its slot, the
//! zone count and the sample bookkeeping happen between windows. The floor
//! is the same loop on [`Null`], whose calls are empty: its windows hold
//! only the two clock reads ([`RawClock::now`]).

use super::steps::Step;
use super::{ObjectAllocator, Placed};
pub(super) use crate::platform::clock::NoMigrate;
use crate::platform::{clock::RawClock, phys};
use crate::request::Gfp;
use crate::uapi;
use kernel::prelude::*;

/// An allocator that does nothing, for the floor.
pub(super) struct Null;

impl ObjectAllocator for Null {
    type Obj = ();
    #[inline(always)]
    fn alloc(&mut self, _size: usize, _order: u32, _gfp: Gfp) -> Result<()> {
        Ok(())
    }
    #[inline(always)]
    fn free(&mut self, _obj: ()) {}
}

/// Samples of one kind: sums of K windows, in ticks, in a vector sized
/// before the pass (nothing is allocated inside it).
pub(super) struct Samples {
    pub(super) ticks: KVVec<u64>,
    pub(super) len: usize,
    acc: u64,
    n: u32,
}

impl Samples {
    pub(super) fn new(cap: usize) -> Result<Self> {
        Ok(Samples {
            ticks: KVVec::from_elem(0, cap, GFP_KERNEL)?,
            len: 0,
            acc: 0,
            n: 0,
        })
    }

    #[inline(always)]
    fn add(&mut self, ticks: u64, k: u32) {
        self.acc += ticks;
        self.n += 1;
        if self.n == k {
            if let Some(s) = self.ticks.get_mut(self.len) {
                *s = self.acc;
                self.len += 1;
            }
            self.acc = 0;
            self.n = 0;
        }
    }

    /// The samples taken.
    pub(super) fn taken(&self) -> &[u64] {
        self.ticks.get(..self.len).unwrap_or(&[])
    }
}

/// What a pass did besides its samples.
#[derive(Default)]
pub(super) struct Pass {
    pub(super) ops: u64,
    pub(super) failed: u64,
    pub(super) elapsed: u64,
    pub(super) zones: [u32; 4],
}

/// Runs `steps` on `a`, timing each call; objects go to `slots`. The
/// caller frees what is left in `slots` (RANDOM leaves objects live).
pub(super) fn timed<A: ObjectAllocator>(
    a: &mut A,
    clock: &RawClock,
    steps: &[Step],
    slots: &mut [Option<A::Obj>],
    k: u32,
    alloc: &mut Samples,
    free: &mut Samples,
) -> Pass {
    let mut p = Pass::default();
    let start = clock.now();
    for &s in steps {
        let Some(slot) = slots.get_mut(s.slot()) else {
            continue;
        };
        if s.is_alloc() {
            let t0 = clock.now();
            let r = a.alloc(s.arg as usize, s.arg, Gfp::KERNEL);
            let t1 = clock.now();
            alloc.add(t1.saturating_sub(t0), k);
            p.ops += 1;
            match r {
                Ok(o) => {
                    let z = phys::zone_of_pfn(o.pfn()) as usize;
                    if let Some(c) = p.zones.get_mut(z.min(3)) {
                        *c += 1;
                    }
                    *slot = Some(o);
                }
                Err(_) => p.failed += 1,
            }
        } else if let Some(o) = slot.take() {
            let t0 = clock.now();
            a.free(o);
            let t1 = clock.now();
            free.add(t1.saturating_sub(t0), k);
            p.ops += 1;
        }
    }
    p.elapsed = clock.now().saturating_sub(start);
    p
}

/// Runs `steps` on `a` with one window around the whole pass (THROUGHPUT):
/// no clock read per operation, no sample or zone bookkeeping; the window
/// holds the step decode and the slot stores, the same on every backend.
pub(super) fn throughput<A: ObjectAllocator>(
    a: &mut A,
    clock: &RawClock,
    steps: &[Step],
    slots: &mut [Option<A::Obj>],
) -> Pass {
    let start = clock.now();
    let mut p = plain(a, steps, slots);
    p.elapsed = clock.now().saturating_sub(start);
    p
}

/// Runs `steps` on `a` untimed (the warm-up), then frees every slot.
pub(super) fn untimed<A: ObjectAllocator>(a: &mut A, steps: &[Step], slots: &mut [Option<A::Obj>]) {
    plain(a, steps, slots);
    free_all(a, slots);
}

/// Runs `steps` on `a`, counting operations and failures and reading no
/// clock; objects go to `slots`.
#[inline(always)]
fn plain<A: ObjectAllocator>(a: &mut A, steps: &[Step], slots: &mut [Option<A::Obj>]) -> Pass {
    let mut p = Pass::default();
    for &s in steps {
        let Some(slot) = slots.get_mut(s.slot()) else {
            continue;
        };
        if s.is_alloc() {
            p.ops += 1;
            match a.alloc(s.arg as usize, s.arg, Gfp::KERNEL) {
                Ok(o) => *slot = Some(o),
                Err(_) => p.failed += 1,
            }
        } else if let Some(o) = slot.take() {
            p.ops += 1;
            a.free(o);
        }
    }
    p
}

/// Frees whatever `slots` still hold, untimed.
pub(super) fn free_all<A: ObjectAllocator>(a: &mut A, slots: &mut [Option<A::Obj>]) {
    for o in slots.iter_mut().filter_map(Option::take) {
        a.free(o);
    }
}

/// The `MEMLAB_KCONFIG_*` bits of the kernel this module was built for.
pub(super) fn kconfig() -> u32 {
    [
        (cfg!(CONFIG_MEMCG), uapi::MEMLAB_KCONFIG_MEMCG),
        (cfg!(CONFIG_KFENCE), uapi::MEMLAB_KCONFIG_KFENCE),
        (
            cfg!(CONFIG_INIT_ON_ALLOC_DEFAULT_ON),
            uapi::MEMLAB_KCONFIG_INIT_ON_ALLOC,
        ),
        (
            cfg!(CONFIG_INIT_ON_FREE_DEFAULT_ON),
            uapi::MEMLAB_KCONFIG_INIT_ON_FREE,
        ),
        (
            cfg!(CONFIG_SLAB_FREELIST_HARDENED),
            uapi::MEMLAB_KCONFIG_FREELIST_HARDENED,
        ),
        (
            cfg!(CONFIG_SLAB_FREELIST_RANDOM),
            uapi::MEMLAB_KCONFIG_FREELIST_RANDOM,
        ),
        (cfg!(CONFIG_JUMP_LABEL), uapi::MEMLAB_KCONFIG_JUMP_LABEL),
        (
            cfg!(CONFIG_CC_OPTIMIZE_FOR_PERFORMANCE),
            uapi::MEMLAB_KCONFIG_O2,
        ),
        (cfg!(CONFIG_KASAN), uapi::MEMLAB_KCONFIG_KASAN),
        (cfg!(CONFIG_PROVE_LOCKING), uapi::MEMLAB_KCONFIG_LOCKDEP),
        (
            cfg!(CONFIG_SLUB_DEBUG_ON),
            uapi::MEMLAB_KCONFIG_SLUB_DEBUG_ON,
        ),
        (
            cfg!(CONFIG_RANDOM_KMALLOC_CACHES),
            uapi::MEMLAB_KCONFIG_RANDOM_KMALLOC,
        ),
        (cfg!(CONFIG_PREEMPT), uapi::MEMLAB_KCONFIG_PREEMPT),
        (cfg!(CONFIG_DEBUG_KMEMLEAK), uapi::MEMLAB_KCONFIG_KMEMLEAK),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .fold(0, |bits, (_, b)| bits | b)
}
