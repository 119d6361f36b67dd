// SPDX-License-Identifier: GPL-2.0

//! Workloads written once against [`ObjectAllocator`] and run on either
//! backend, timed in the kernel with the same clock, so real and mirror are
//! compared like for like in one VM run.
//!
//! Patterns (`MEMLAB_PATTERN_*`): PAIRS (alloc then free at once), BATCH
//! (all allocs, then all frees), RANDOM (a seeded mix of allocs of random
//! size or order and frees of random live objects). A run, with migration
//! disabled: the step sequence is generated ([`steps`]), the floor measured
//! on an allocator that does nothing, the first `warmup` steps run
//! untimed, then every step is timed alone ([`timed`] says what a window
//! holds); alloc and free samples of K windows each are kept apart, in
//! ticks, and converted after the loop.
//!
//! Equal work: both backends are called on raw objects with no reference
//! count. The real kmem_cache is created `SLAB_NO_MERGE`. kfree differs:
//! the real one is unsized (SLUB finds the cache from the page), the
//! mirror's is told the size by its caller.

#[path = "workload/kept.rs"]
mod kept;
#[path = "workload/pass.rs"]
mod pass;
#[path = "workload/steps.rs"]
mod steps;
#[path = "workload/timed.rs"]
mod timed;

pub(crate) use kept::Kept;

pub(crate) use crate::backend::{ObjectAllocator, OnAllocator, Placed};
use crate::mirror::objects::{MirrorCache, MirrorKmallocObjects, MirrorPageBlocks, MirrorVmap};
use crate::mirror::Mirror;
use crate::real::objects::{RealCache, RealKmalloc, RealPages, RealVmalloc};
use crate::request::{BackendId, WorkloadFamily, WorkloadRequest};
use crate::uapi;
use kernel::{bindings, prelude::*, sync::Arc};

/// Runs `req` on `a`: the sequence, then [`pass::run_steps`], then frees
/// what is left; the figures go to `out`.
fn run<A: ObjectAllocator>(
    a: &mut A,
    req: &WorkloadRequest,
    out: &mut uapi::MemlabWorkload,
) -> Result {
    let seq = steps::generate(req)?;
    let mut slots = pass::slots::<A>(seq.slots)?;
    let r = pass::run_steps(a, req, out, &seq.steps, &mut slots, seq.peak_live);
    timed::free_all(a, &mut slots);
    r
}

/// KEEP: runs the allocations of `req` and returns the objects, for a
/// FREE_KEPT run to free.
pub(crate) fn keep_workload(
    mirror: &Arc<Mirror>,
    req: &WorkloadRequest,
    out: &mut uapi::MemlabWorkload,
) -> Result<KBox<dyn kept::KeptObjects>> {
    out.page_meta_bytes = page_meta_bytes(req.backend);
    match (req.backend, req.family) {
        (BackendId::Real, WorkloadFamily::Kmalloc { .. }) => kept::keep(RealKmalloc, req, out),
        (BackendId::Real, WorkloadFamily::Pages { .. }) => kept::keep(RealPages, req, out),
        (BackendId::Mirror, WorkloadFamily::Kmalloc { .. }) => {
            kept::keep(MirrorKmallocObjects(mirror.clone()), req, out)
        }
        (BackendId::Mirror, WorkloadFamily::Pages { .. }) => {
            kept::keep(MirrorPageBlocks(mirror.clone()), req, out)
        }
        // `WorkloadRequest::try_from` keeps only kmalloc and pages.
        (_, WorkloadFamily::KmemCache { .. } | WorkloadFamily::Vmalloc { .. }) => Err(EINVAL),
    }
}

/// Bytes of page metadata `backend` keeps per page.
fn page_meta_bytes(backend: BackendId) -> u32 {
    let bytes = match backend {
        BackendId::Real => core::mem::size_of::<bindings::page>(),
        BackendId::Mirror => core::mem::size_of::<crate::buddy::PageMeta>(),
    };
    bytes as u32
}

/// Runs `f` on the allocator of `family` on `backend`: the one dispatch
/// from a typed request to an [`ObjectAllocator`]. A kmem_cache is made
/// for the call and destroyed after it.
pub(crate) fn with_allocator<F: OnAllocator>(
    mirror: &Arc<Mirror>,
    backend: BackendId,
    family: WorkloadFamily,
    f: F,
) -> Result<F::Out> {
    match (backend, family) {
        (BackendId::Real, WorkloadFamily::Kmalloc { .. }) => f.run(&mut RealKmalloc),
        (BackendId::Real, WorkloadFamily::Pages { .. }) => f.run(&mut RealPages),
        (BackendId::Real, WorkloadFamily::Vmalloc { .. }) => f.run(&mut RealVmalloc),
        (BackendId::Real, WorkloadFamily::KmemCache { size }) => {
            f.run(&mut RealCache::new(size as usize)?)
        }
        (BackendId::Mirror, WorkloadFamily::Kmalloc { .. }) => {
            f.run(&mut MirrorKmallocObjects(mirror.clone()))
        }
        (BackendId::Mirror, WorkloadFamily::Pages { .. }) => {
            f.run(&mut MirrorPageBlocks(mirror.clone()))
        }
        (BackendId::Mirror, WorkloadFamily::Vmalloc { .. }) => f.run(&mut MirrorVmap(mirror)),
        (BackendId::Mirror, WorkloadFamily::KmemCache { size }) => {
            let mut a = MirrorCache::new(mirror, size as usize)?;
            let r = f.run(&mut a);
            a.destroy()?;
            r
        }
    }
}

/// A timed or THROUGHPUT run of a request, figures into `out`.
struct Timed<'a> {
    req: &'a WorkloadRequest,
    out: &'a mut uapi::MemlabWorkload,
}

impl OnAllocator for Timed<'_> {
    type Out = ();
    fn run<A: ObjectAllocator>(self, a: &mut A) -> Result {
        run(a, self.req, self.out)
    }
}

/// Runs `req` (timed or THROUGHPUT) on the backend it names; the figures
/// go to `out`.
pub(crate) fn run_workload(
    mirror: &Arc<Mirror>,
    req: &WorkloadRequest,
    out: &mut uapi::MemlabWorkload,
) -> Result {
    out.page_meta_bytes = page_meta_bytes(req.backend);
    with_allocator(mirror, req.backend, req.family, Timed { req, out })
}
