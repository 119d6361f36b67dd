// SPDX-License-Identifier: GPL-2.0

//! Cross-CPU free in two calls: a KEEP run times BATCH's allocations and
//! leaves the objects allocated in the open file; a FREE_KEPT run, from a
//! thread on another CPU, frees them, timed. The objects stay charged to
//! the file until then, and are freed untimed if the file closes first.

use super::pass;
use super::steps::{self, Step};
use super::timed;
use super::ObjectAllocator;
use crate::budget::Charge;
use crate::request::WorkloadRequest;
use crate::uapi;
use kernel::prelude::*;

/// Objects of one allocator, type-erased so the open file can hold them.
pub(crate) trait KeptObjects: Send {
    /// Frees every object through `steps` as `req` asks, timed into `w`.
    fn free_timed(
        &mut self,
        req: &WorkloadRequest,
        w: &mut uapi::MemlabWorkload,
        steps: &[Step],
    ) -> Result;
}

struct KeptOf<A: ObjectAllocator> {
    a: A,
    slots: KVVec<Option<A::Obj>>,
}

// SAFETY: the objects are owned by this value alone, and the kernel's
// allocators and the mirror take frees from any task on any CPU.
unsafe impl<A: ObjectAllocator> Send for KeptOf<A> {}

impl<A: ObjectAllocator> KeptObjects for KeptOf<A> {
    fn free_timed(
        &mut self,
        req: &WorkloadRequest,
        w: &mut uapi::MemlabWorkload,
        steps: &[Step],
    ) -> Result {
        pass::run_steps(&mut self.a, req, w, steps, &mut self.slots, 0)
    }
}

impl<A: ObjectAllocator> Drop for KeptOf<A> {
    fn drop(&mut self) {
        timed::free_all(&mut self.a, &mut self.slots);
    }
}

/// KEEP: runs and times the allocations of `req` (a BATCH) on `a`, and
/// returns the objects; the figures go to `w`.
pub(super) fn keep<A: ObjectAllocator + 'static>(
    mut a: A,
    req: &WorkloadRequest,
    w: &mut uapi::MemlabWorkload,
) -> Result<KBox<dyn KeptObjects>> {
    let seq = steps::generate(req)?;
    let allocs = seq.steps.get(..req.count as usize).ok_or(EINVAL)?;
    let mut slots = pass::slots::<A>(seq.slots)?;
    let r = pass::run_steps(&mut a, req, w, allocs, &mut slots, seq.peak_live);
    // On failure the objects are freed as the value drops.
    let kept = KBox::new(KeptOf { a, slots }, GFP_KERNEL)?;
    r?;
    Ok(kept)
}

/// A file's kept objects, what KEEP asked, and their charge.
pub(crate) struct Kept {
    objs: KBox<dyn KeptObjects>,
    req: WorkloadRequest,
    /// Bytes charged to the file for them.
    pub(crate) bytes: usize,
    _charge: Charge,
}

impl Kept {
    pub(crate) fn new(
        objs: KBox<dyn KeptObjects>,
        req: &WorkloadRequest,
        bytes: usize,
        charge: Charge,
    ) -> Self {
        Kept {
            objs,
            req: *req,
            bytes,
            _charge: charge,
        }
    }

    /// Whether FREE_KEPT request `req` names these objects.
    pub(crate) fn matches(&self, req: &WorkloadRequest) -> bool {
        req.frees_what(&self.req)
    }

    /// FREE_KEPT: frees every object (BATCH's frees) as `req` asks, timed
    /// into `w`, on the caller's CPU.
    pub(crate) fn free(&mut self, req: &WorkloadRequest, w: &mut uapi::MemlabWorkload) -> Result {
        let seq = steps::generate(&self.req)?;
        let frees = seq.steps.get(self.req.count as usize..).ok_or(EINVAL)?;
        self.objs.free_timed(req, w, frees)
    }
}
