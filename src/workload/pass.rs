// SPDX-License-Identifier: GPL-2.0

//! One measured run of a step sequence: floor, warm-up, timed pass, then
//! the figures, converted from ticks after the loop.

use super::steps::Step;
use super::timed::{self, NoMigrate, Null, Samples};
use super::ObjectAllocator;
use crate::platform::clock::RawClock;
use crate::request::{Mode, WorkloadRequest};
use crate::stats::percentile;
use crate::uapi;
use kernel::{
    prelude::*,
    uaccess::{UserPtr, UserSlice},
};

/// Empty slots for `n` objects of `A`.
pub(super) fn slots<A: ObjectAllocator>(n: usize) -> Result<KVVec<Option<A::Obj>>> {
    let mut slots = KVVec::with_capacity(n, GFP_KERNEL)?;
    for _ in 0..n {
        slots.push(None, GFP_KERNEL)?;
    }
    Ok(slots)
}

/// Runs `steps` on `a` with migration disabled: the floor (the same steps
/// on [`Null`]), the first `req.warmup` steps untimed, then the timed
/// pass; fills in the figures of `w` and copies the raw samples out if
/// asked. What the steps leave in `slots` stays there (the caller frees or
/// keeps it).
pub(super) fn run_steps<A: ObjectAllocator>(
    a: &mut A,
    req: &WorkloadRequest,
    w: &mut uapi::MemlabWorkload,
    steps: &[Step],
    slots: &mut [Option<A::Obj>],
    peak_live: u32,
) -> Result {
    if req.mode == Mode::Throughput {
        // The warm-up, then one pass timed as a whole (no floor: two clock
        // reads per pass, not per operation).
        let clock = RawClock::new();
        let pin = NoMigrate::new();
        w.cpu = kernel::cpu::CpuId::current().as_u32();
        warm_up(a, req, steps, slots);
        let pass = timed::throughput(a, &clock, steps, slots);
        drop(pin);
        report(w, &pass, &clock, peak_live);
        return Ok(());
    }
    let k = req.k;
    let cap = req.samples() as usize;
    let (mut alloc, mut free) = (Samples::new(cap)?, Samples::new(cap)?);
    // Full, so that a free-only sequence has windows to time too.
    let mut null_slots = KVVec::from_elem(Some(()), slots.len(), GFP_KERNEL)?;
    let clock = RawClock::new();
    let pin = NoMigrate::new();
    w.cpu = kernel::cpu::CpuId::current().as_u32();
    // The floor: the same loop, the same windows, empty calls.
    timed::timed(
        &mut Null,
        &clock,
        steps,
        &mut null_slots,
        k,
        &mut alloc,
        &mut free,
    );
    let mut floor = KVVec::with_capacity(alloc.len + free.len, GFP_KERNEL)?;
    floor.extend_from_slice(alloc.taken(), GFP_KERNEL)?;
    floor.extend_from_slice(free.taken(), GFP_KERNEL)?;
    crate::platform::sort::sort_sleepable(&mut floor);
    w.floor_ticks = percentile(&floor, 1, 2);
    let (mut alloc, mut free) = (Samples::new(cap)?, Samples::new(cap)?);
    warm_up(a, req, steps, slots);
    let pass = timed::timed(a, &clock, steps, slots, k, &mut alloc, &mut free);
    drop(pin);
    report(w, &pass, &clock, peak_live);
    w.zone_allocs = pass.zones;
    w.alloc_samples = alloc.len as u32;
    w.free_samples = free.len as u32;
    if let Some(ptr) = req.samples_ptr {
        let bytes = |s: &[u64]| core::mem::size_of_val(s);
        let len = bytes(alloc.taken()) + bytes(free.taken());
        let mut out = UserSlice::new(UserPtr::from_addr(ptr as usize), len).writer();
        for part in [alloc.taken(), free.taken()] {
            for s in part {
                out.write(s)?;
            }
        }
    }
    // Medians and p99 per operation, floor subtracted.
    for (s, median, p99) in [
        (&mut alloc, &mut w.alloc_median_ps, &mut w.alloc_p99_ps),
        (&mut free, &mut w.free_median_ps, &mut w.free_p99_ps),
    ] {
        let n = s.len;
        let v = s.ticks.get_mut(..n).unwrap_or(&mut []);
        crate::platform::sort::sort_sleepable(v);
        let net = |t: u64| clock.ps(t.saturating_sub(w.floor_ticks), k);
        *median = net(percentile(v, 1, 2));
        *p99 = net(percentile(v, 99, 100));
    }
    Ok(())
}

/// The first `req.warmup` steps, untimed. The warm-up ends with every slot
/// empty: never on a free-only pass, whose slots hold the objects to free
/// (FREE_KEPT takes no warm-up).
fn warm_up<A: ObjectAllocator>(
    a: &mut A,
    req: &WorkloadRequest,
    steps: &[Step],
    slots: &mut [Option<A::Obj>],
) {
    if req.warmup > 0 {
        let warm = steps.get(..req.warmup as usize).unwrap_or(steps);
        timed::untimed(a, warm, slots);
    }
}

/// The figures of `pass` every run reports.
fn report(w: &mut uapi::MemlabWorkload, pass: &timed::Pass, clock: &RawClock, peak_live: u32) {
    w.ops = pass.ops;
    w.failed = pass.failed;
    w.elapsed_ticks = pass.elapsed;
    w.peak_live = peak_live;
    w.clock_khz = clock.khz();
    w.kconfig = timed::kconfig();
}
