// SPDX-License-Identifier: GPL-2.0

//! The exercises: each runs a list of cases against one family, `reps`
//! times each, and records per case success, latency (min / median / p99),
//! zone, physical alignment and contiguity, plus buddyinfo around the run.
//!
//! A case passes when the allocation succeeded exactly when expected, in
//! every repetition (a case expected to succeed fails if any repetition
//! failed, and the row counts them; one expected to fail fails if any
//! succeeded), and every family-specific check held (size class,
//! alignment, zone limit, zeroing, ...). Failing cases are expected to fail quietly: every mask
//! carries `__GFP_NOWARN`.

mod dma;
mod pages;
mod slab;

use super::{
    report::{Latency, Report, Row},
    Real,
};
use crate::platform::clock::time;
use crate::uapi;
use kernel::prelude::*;

/// Repetitions per case when the caller asks for 0.
pub(crate) const DEFAULT_REPS: u32 = 32;

pub(super) const MIB: usize = 1 << 20;

/// Caps repetitions for large sizes (a 64 MiB vmalloc under TCG and KASAN
/// takes a while).
pub(super) fn reps_for(reps: u32, bytes: usize) -> u32 {
    if bytes >= 16 * MIB {
        reps.min(4)
    } else if bytes >= MIB {
        reps.min(16)
    } else {
        reps
    }
}

/// One run in progress: its rows and every latency sample.
pub(super) struct Run {
    rows: KVec<Row>,
    all: KVVec<u64>,
    scratch: KVec<u64>,
    /// Repetitions of the last [`Run::measure`] that failed and that
    /// succeeded, taken by the [`Run::record`] that follows it.
    reps_failed: u32,
    reps_ok: u32,
}

impl Run {
    fn new(reps: u32) -> Result<Self> {
        Ok(Run {
            rows: KVec::new(),
            all: KVVec::new(),
            scratch: KVec::with_capacity(reps as usize, GFP_KERNEL)?,
            reps_failed: 0,
            reps_ok: 0,
        })
    }

    /// Times `alloc` `reps` times, keeping the last success (each previous
    /// one is freed after its timing). Does not allocate: usable in atomic
    /// context. The samples stay in `scratch` until [`Run::push`].
    pub(super) fn measure<T>(
        &mut self,
        reps: u32,
        mut alloc: impl FnMut() -> Result<T>,
    ) -> (Option<T>, Latency) {
        self.scratch.clear();
        (self.reps_failed, self.reps_ok) = (0, 0);
        let mut keep = None;
        for _ in 0..reps.max(1) {
            let (r, dt) = time(&mut alloc);
            let _ = self.scratch.push_within_capacity(dt);
            if let Ok(x) = r {
                keep = Some(x);
                self.reps_ok += 1;
            } else {
                self.reps_failed += 1;
            }
        }
        let lat = Latency::from_samples(&mut self.scratch);
        (keep, lat)
    }

    /// Finishes `row` with the outcome [`Run::measure`] just measured and
    /// appends it: a case expected to succeed passes if every repetition
    /// did and `check` says so (it may add facts to the row); one expected
    /// to fail passes only if every repetition failed. The failed
    /// repetitions of an expected success are counted in the row. `got` is
    /// freed here.
    pub(super) fn record<T>(
        &mut self,
        mut row: Row,
        got: Option<T>,
        lat: Latency,
        check: impl FnOnce(&mut Row, &T) -> bool,
    ) -> Result {
        let (failed, succeeded) = (self.reps_failed, self.reps_ok);
        (self.reps_failed, self.reps_ok) = (0, 0);
        row.pass = match &got {
            Some(x) => {
                row.ok = true;
                // `check` runs either way: it records the row's facts.
                check(&mut row, x) && row.expect_ok
            }
            None => !row.expect_ok,
        };
        if row.expect_ok {
            row.failed_reps = failed;
            row.pass &= failed == 0;
        } else {
            row.pass &= succeeded == 0;
        }
        drop(got);
        self.push(row, lat)
    }

    /// Measures `alloc` `reps` times and records the row ([`Run::record`]).
    pub(super) fn case<T>(
        &mut self,
        row: Row,
        reps: u32,
        alloc: impl FnMut() -> Result<T>,
        check: impl FnOnce(&mut Row, &T) -> bool,
    ) -> Result {
        let (got, lat) = self.measure(reps, alloc);
        self.record(row, got, lat, check)
    }

    /// Appends a finished row and its samples.
    fn push(&mut self, mut row: Row, lat: Latency) -> Result {
        row.lat = lat;
        self.all.extend_from_slice(&self.scratch, GFP_KERNEL)?;
        self.rows.push(row, GFP_KERNEL)?;
        Ok(())
    }
}

/// Runs exercise `id`; `reps` is 1..=1000.
pub(super) fn run(real: &Real, id: u32, reps: u32) -> Result<KBox<Report>> {
    // A report holds two buddyinfo snapshots, most of a kilobyte: it is
    // built in place on the heap, never as a value on the 16 KiB kernel
    // stack (this runs under the ioctl, above deep allocator call chains).
    let mut report = KBox::init(
        try_init!(Report {
            id,
            reps,
            before <- pin_init::init_zeroed(),
            after <- pin_init::init_zeroed(),
            rows: KVec::new(),
            median_ns: 0,
            p99_ns: 0,
        }),
        GFP_KERNEL,
    )?;
    report.before.read();
    let mut run = Run::new(reps.max(64))?;
    match id {
        uapi::MEMLAB_EX_KMALLOC => slab::ex_kmalloc(&mut run, reps)?,
        uapi::MEMLAB_EX_VMALLOC => pages::ex_vmalloc(&mut run, reps)?,
        uapi::MEMLAB_EX_PAGES => pages::ex_pages(&mut run, reps)?,
        uapi::MEMLAB_EX_KMEM_CACHE => slab::ex_kmem_cache(&mut run, reps)?,
        uapi::MEMLAB_EX_DMA => dma::ex_dma(real, &mut run, reps)?,
        uapi::MEMLAB_EX_GFP => pages::ex_gfp(real, &mut run, reps)?,
        _ => return Err(EINVAL),
    }
    report.after.read();
    let overall = Latency::from_samples(&mut run.all);
    report.rows = run.rows;
    report.median_ns = overall.median;
    report.p99_ns = overall.p99;
    Ok(report)
}
