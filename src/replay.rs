// SPDX-License-Identifier: GPL-2.0

//! `MEMLAB_IOC_REPLAY`: a batch of allocation steps from a user buffer,
//! replayed inside the kernel on one backend with only the allocator calls
//! timed, so no syscall cost is mixed into the figures.
//!
//! In order, before anything is allocated for the replay:
//!
//! 1. the header, decoded into a [`ReplayRequest`]: unknown backend or
//!    zone, a zero sample interval with a sample buffer, a sample buffer
//!    too small, output fields not zero, a step buffer empty or not a
//!    multiple of the step size: EINVAL; more than
//!    `MEMLAB_REPLAY_MAX_STEPS` steps: E2BIG;
//! 2. the copy of the steps and the id table are charged to the caps, then
//!    the steps are copied in once (never read from user space again);
//! 3. [`crate::request::replay::plan`] checks every step and the id
//!    pairing, and finds the peak of live memory; that peak plus the run's
//!    own vectors is charged (E2BIG past the caps).
//!
//! The run itself goes through the workloads' [`ObjectAllocator`]s, one per
//! family (a kmem_cache per distinct size), on either backend. Each call is
//! bracketed by two raw clock reads kept in vectors sized up front; they are
//! converted and sorted after the loop. An allocation that fails is counted
//! and a later free of its id skipped. Fragmentation samples of the zone
//! are taken outside the timed windows. After the last step the live slab
//! objects are measured, then everything still allocated is freed, the
//! run's caches destroyed, and only then are the samples copied out: an
//! EFAULT there leaves nothing allocated either.

use crate::backend::{ObjectAllocator, Placed};
use crate::mirror::objects::{MirrorCache, MirrorKmallocObjects, MirrorPageBlocks};
use crate::mirror::Mirror;
use crate::platform::{
    clock::{NoMigrate, RawClock},
    phys::{self, BuddyInfo},
    sort::sort_sleepable,
};
use crate::real::kmem_cache;
use crate::real::objects::{RealCache, RealKmalloc, RealPages};
use crate::request::replay::{self as rules, ReplayOp, ReplayPlan, ReplayRequest};
use crate::request::{BackendId, CacheFlags, Family, Gfp, GfpSel, Zone};
use crate::stats::median_p99;
use crate::uapi::{self, MemlabFragSample, MemlabReplay, MemlabReplayStep};
use kernel::{
    prelude::*,
    sync::Arc,
    transmute::{AsBytes, FromBytes},
    uaccess::{UserPtr, UserSlice},
};

// SAFETY: `#[repr(C)]` structs of `u32`/`u64` fields (and arrays of them)
// without padding (sizes asserted in uapi.rs): every byte is initialised
// and any bit pattern valid.
unsafe impl AsBytes for MemlabReplay {}
// SAFETY: as above.
unsafe impl FromBytes for MemlabReplay {}
// SAFETY: as above.
unsafe impl AsBytes for MemlabReplayStep {}
// SAFETY: as above.
unsafe impl FromBytes for MemlabReplayStep {}
// SAFETY: as above.
unsafe impl AsBytes for MemlabFragSample {}

const SAMPLE: usize = rules::SAMPLE_BYTES;
const NR_ORDERS: usize = uapi::MEMLAB_NR_ORDERS;

const _: () = assert!(NR_ORDERS == crate::buddy::NR_PAGE_ORDERS);
const _: () = assert!(NR_ORDERS == crate::platform::phys::MAX_ORDER + 1);

/// One live object of the run, with the bytes it was asked for.
enum Live<K, P, C> {
    Kmalloc(K, usize),
    Pages(P),
    Cache(C, usize, usize),
}

/// Bytes a slot of the run's id table takes at most, on either backend.
const SLOT_BYTES: usize = 48;

/// A live object of the allocators `K`, `P`, `C`.
type SlotLive<K, P, C> =
    Live<<K as ObjectAllocator>::Obj, <P as ObjectAllocator>::Obj, <C as ObjectAllocator>::Obj>;

/// An allocation and how long it took, in raw clock units.
type Timed<T> = (Result<T>, u64);

/// A slot of the table `exec` builds for the allocators `K`, `P`, `C`.
type SlotOf<K, P, C> = Option<SlotLive<K, P, C>>;

const _: () =
    assert!(core::mem::size_of::<SlotOf<RealKmalloc, RealPages, RealCache>>() <= SLOT_BYTES);
const _: () = assert!(
    core::mem::size_of::<SlotOf<MirrorKmallocObjects, MirrorPageBlocks, MirrorCache<'static>>>()
        <= SLOT_BYTES
);

/// The allocators of one backend: one per family, a cache per size.
struct Families<K, P, C> {
    kmalloc: K,
    pages: P,
    caches: KVec<C>,
}

impl<K: ObjectAllocator, P: ObjectAllocator, C: ObjectAllocator> Families<K, P, C> {
    /// Frees `l` through the allocator that made it.
    #[inline(always)]
    fn free(&mut self, l: SlotLive<K, P, C>) {
        match l {
            Live::Kmalloc(o, _) => self.kmalloc.free(o),
            Live::Pages(o) => self.pages.free(o),
            Live::Cache(o, _, ci) => {
                if let Some(c) = self.caches.get_mut(ci) {
                    c.free(o);
                }
            }
        }
    }

    /// Allocates `family` with `gfp` through the allocator of its family
    /// (the plan's cache for its size), timed alone on `clock`: the live
    /// object or the error, and the raw time; `None` if no allocator of
    /// this run serves it (the plan admits none such).
    #[inline(always)]
    fn alloc_timed(
        &mut self,
        plan: &ReplayPlan,
        clock: &RawClock,
        family: Family,
        gfp: Gfp,
    ) -> Option<Timed<SlotLive<K, P, C>>> {
        Some(match family {
            Family::Kmalloc { size } => {
                let (r, dt) = timed(clock, || self.kmalloc.alloc(size, 0, gfp));
                (r.map(|o| Live::Kmalloc(o, size)), dt)
            }
            Family::Pages { order } => {
                let (r, dt) = timed(clock, || self.pages.alloc(0, order, gfp));
                (r.map(Live::Pages), dt)
            }
            Family::KmemCache { size, .. } => {
                let ci = plan.cache_index(size)?;
                let c = self.caches.get_mut(ci)?;
                let (r, dt) = timed(clock, || c.alloc(size, 0, gfp));
                (r.map(|o| Live::Cache(o, size, ci)), dt)
            }
            Family::Vmalloc { .. } | Family::Dma { .. } => return None,
        })
    }

    /// The bytes the slab objects of `table` asked for, and what their
    /// size classes add (ksize minus size).
    fn measure(&self, table: &[SlotOf<K, P, C>]) -> (u64, u64) {
        let (mut live, mut waste) = (0u64, 0u64);
        for l in table.iter().flatten() {
            let (usable, size) = match l {
                Live::Kmalloc(o, size) => (self.kmalloc.usable(o, *size), *size),
                Live::Cache(o, size, ci) => match self.caches.get(*ci) {
                    Some(c) => (c.usable(o, *size), *size),
                    None => (*size, *size),
                },
                Live::Pages(_) => continue,
            };
            live += size as u64;
            waste += usable.saturating_sub(size) as u64;
        }
        (live, waste)
    }
}

/// Converts the raw times of `v` to ns on `clock`, then sorts them.
fn to_sorted_ns(clock: &RawClock, v: &mut KVVec<u64>) {
    for x in v.iter_mut() {
        *x = clock.ns(*x);
    }
    sort_sleepable(v);
}

/// What the loop found, besides the latencies.
#[derive(Default)]
struct Tally {
    allocs: u64,
    frees: u64,
    failed: u64,
    live_bytes: u64,
    ksize_waste: u64,
    slab_bytes: u64,
    last: [u64; NR_ORDERS],
}

impl Tally {
    /// Counts allocation `r`, filing the object in `slot` if there is one.
    #[inline(always)]
    fn record<L>(&mut self, slot: &mut Option<L>, r: Result<L>) {
        match r {
            Ok(l) => {
                *slot = Some(l);
                self.allocs += 1;
            }
            Err(_) => self.failed += 1,
        }
    }
}

/// A table of `n` empty slots.
fn empty_table<L>(n: usize) -> Result<KVVec<Option<L>>> {
    let mut table = KVVec::with_capacity(n, GFP_KERNEL)?;
    for _ in 0..n {
        table.push_within_capacity(None).map_err(|_| ENOMEM)?;
    }
    Ok(table)
}

/// Times `f` on `clock`, in raw units.
#[inline(always)]
fn timed<T>(clock: &RawClock, f: impl FnOnce() -> T) -> (T, u64) {
    let t0 = clock.now();
    let r = f();
    (r, clock.now().wrapping_sub(t0))
}

/// The sample of free counts `c` after `step` steps, with the probes
/// that `failed` (`MEMLAB_PROBE_*`).
fn sample(step: usize, c: &[u64; NR_ORDERS], failed: u32) -> MemlabFragSample {
    MemlabFragSample {
        step: step as u64,
        unusable_3: rules::unusable_ppm(c, 3),
        unusable_9: rules::unusable_ppm(c, 9),
        free_blocks: *c,
        probe_failed: failed,
        reserved: 0,
    }
}

/// The probes of a sample: one block of order 3 and one of order 9 from
/// `pages`, GFP_NOWAIT (no direct reclaim or compaction, which would change
/// what is measured), each freed at once; the `MEMLAB_PROBE_*` bits of
/// those that failed or came from a zone other than `zone`.
fn probe<P: ObjectAllocator>(pages: &mut P, zone: Zone) -> u32 {
    let gfp = Gfp::new(GfpSel::Nowait, false);
    let mut failed = 0;
    for (order, bit) in [
        (3, uapi::MEMLAB_PROBE_ORDER3),
        (9, uapi::MEMLAB_PROBE_ORDER9),
    ] {
        match pages.alloc(0, order, gfp) {
            Ok(block) => {
                if phys::zone_of_pfn(block.pfn()) as usize != zone.index() {
                    failed |= bit;
                }
                pages.free(block);
            }
            Err(_) => failed |= bit,
        }
    }
    failed
}

/// One replay's checked steps, and the vectors it fills, sized up front.
struct Run<'a> {
    steps: &'a [MemlabReplayStep],
    plan: &'a ReplayPlan,
    /// Sample every this many steps (0: never).
    every: usize,
    /// The zone sampled and probed.
    zone: Zone,
    /// Allocation and free latencies: raw, then ns, sorted.
    lat: [KVVec<u64>; 2],
    samples: KVVec<MemlabFragSample>,
}

impl Run<'_> {
    /// Runs the steps on `f`; `counts` reads the zone's free blocks,
    /// `slab_bytes` what the backend's slabs hold. Frees everything it
    /// allocated before returning.
    fn exec<K: ObjectAllocator, P: ObjectAllocator, C: ObjectAllocator>(
        &mut self,
        f: &mut Families<K, P, C>,
        mut counts: impl FnMut() -> [u64; NR_ORDERS],
        slab_bytes: impl Fn(&[C]) -> u64,
    ) -> Result<Tally> {
        let Run {
            steps,
            plan,
            every,
            zone,
            lat,
            samples,
        } = self;
        let every = *every;
        let mut table = empty_table::<SlotLive<K, P, C>>(plan.ids)?;
        let mut t = Tally::default();
        let clock = RawClock::new();
        let [lat_alloc, lat_free] = lat;
        // Capacity was reserved for every sample and latency: the pushes below
        // cannot fail, and nothing can stop the loop once it has allocated.
        if every != 0 {
            let c = counts();
            let _ = samples.push_within_capacity(sample(0, &c, probe(&mut f.pages, *zone)));
        }
        // One CPU for the whole loop: each window's two reads are of one TSC,
        // and the per-CPU caches warmed are the ones timed. The kernels are
        // preemptible (PREEMPT_LAZY), so a long replay needs no
        // `cond_resched`.
        let pin = NoMigrate::new();
        for (i, s) in steps.iter().enumerate() {
            match rules::decode(s) {
                Ok(ReplayOp::Alloc { id, family, gfp }) => {
                    let Some(slot) = table.get_mut(id as usize) else {
                        continue;
                    };
                    let Some((r, dt)) = f.alloc_timed(plan, &clock, family, gfp) else {
                        continue;
                    };
                    let _ = lat_alloc.push_within_capacity(dt);
                    t.record(slot, r);
                }
                Ok(ReplayOp::Free { id }) => {
                    let Some(l) = table.get_mut(id as usize).and_then(Option::take) else {
                        continue;
                    };
                    let ((), dt) = timed(&clock, || f.free(l));
                    let _ = lat_free.push_within_capacity(dt);
                    t.frees += 1;
                }
                Err(_) => {}
            }
            // The sample after the last step is taken below, so that the
            // final counts are read before its probes move blocks.
            if every != 0 && (i + 1) % every == 0 && i + 1 < steps.len() {
                let c = counts();
                let failed = probe(&mut f.pages, *zone);
                let _ = samples.push_within_capacity(sample(i + 1, &c, failed));
            }
        }
        t.last = counts();
        if every != 0 && steps.len() % every == 0 {
            let failed = probe(&mut f.pages, *zone);
            let _ = samples.push_within_capacity(sample(steps.len(), &t.last, failed));
        }
        drop(pin);
        t.slab_bytes = slab_bytes(&f.caches);
        (t.live_bytes, t.ksize_waste) = f.measure(&table);
        // Nothing stays allocated: what the trace left live is freed here.
        for l in table.drain_all().flatten() {
            f.free(l);
        }
        for v in [lat_alloc, lat_free] {
            to_sorted_ns(&clock, v);
        }
        Ok(t)
    }
}

/// What a replay holds against the caps, in two charges: the input (the
/// copy of the steps and the plan's id table, before either exists), then
/// the run (the peak of live objects, the run's caches, the latency
/// vectors, the id table of the run and the samples).
struct Charges;

impl Charges {
    /// The input charge of `req`.
    fn input(req: &ReplayRequest) -> usize {
        req.steps_bytes() + uapi::MEMLAB_REPLAY_MAX_IDS as usize * 8
    }

    /// The run charge of `req` planned as `plan`; E2BIG if it is more than
    /// the machine can address.
    fn run(req: &ReplayRequest, plan: &ReplayPlan) -> Result<usize> {
        // What the run's caches hold beyond their live objects (a sheaf
        // refill, a slab's slack, the cache itself), as a kmem_cache handle
        // is charged: an upper bound on both backends.
        let caches_bytes = plan.sizes().iter().fold(0u64, |sum, &size| {
            sum.saturating_add(kmem_cache::footprint(size, 0, CacheFlags::default()) as u64)
        });
        let run_bytes = plan
            .peak_bytes
            .saturating_add(caches_bytes)
            .saturating_add((plan.allocs + plan.frees) * 8)
            .saturating_add((plan.ids * SLOT_BYTES) as u64)
            .saturating_add(req.samples_bytes() as u64);
        usize::try_from(run_bytes).map_err(|_| E2BIG)
    }
}

/// Copies the steps of `req` in, once: they are never read from user
/// space again.
fn copy_in(req: &ReplayRequest) -> Result<KVVec<MemlabReplayStep>> {
    let mut steps = KVVec::from_elem(MemlabReplayStep::default(), req.steps, GFP_KERNEL)?;
    UserSlice::new(
        UserPtr::from_addr(req.steps_ptr as usize),
        req.steps_bytes(),
    )
    .reader()
    .read_slice(steps.as_mut_slice().as_bytes_mut())?;
    Ok(steps)
}

/// Checks every step of `steps` and the id pairing (see
/// [`rules::plan`]).
fn plan(steps: &[MemlabReplayStep]) -> Result<ReplayPlan> {
    let mut live = KVVec::from_elem(0u64, rules::ids_needed(steps), GFP_KERNEL)?;
    Ok(rules::plan(steps, &mut live)?)
}

impl Run<'_> {
    /// Runs the steps on the real allocators.
    fn on_real(&mut self) -> Result<Tally> {
        let zone = self.zone;
        let mut info = KBox::new(BuddyInfo::default(), GFP_KERNEL)?;
        info.read();
        if !info.populated[zone.index()] {
            return Err(EINVAL);
        }
        let sizes = self.plan.sizes();
        let mut caches = KVec::with_capacity(sizes.len(), GFP_KERNEL)?;
        for &size in sizes {
            caches.push(RealCache::new(size)?, GFP_KERNEL)?;
        }
        let mut f = Families {
            kmalloc: RealKmalloc,
            pages: RealPages,
            caches,
        };
        let counts = || {
            info.read();
            info.nr_free[zone.index()]
        };
        self.exec(&mut f, counts, |_| 0)
    }

    /// Runs the steps on the mirror, then destroys the run's caches.
    fn on_mirror(&mut self, mirror: &Arc<Mirror>) -> Result<Tally> {
        let zone = self.zone;
        mirror.zone_free_counts(zone).ok_or(EINVAL)?;
        let sizes = self.plan.sizes();
        let mut caches = KVec::with_capacity(sizes.len(), GFP_KERNEL)?;
        for &size in sizes {
            caches.push(MirrorCache::new(mirror, size)?, GFP_KERNEL)?;
        }
        let mut f = Families {
            kmalloc: MirrorKmallocObjects(mirror.clone()),
            pages: MirrorPageBlocks(mirror.clone()),
            caches,
        };
        let counts = || mirror.zone_free_counts(zone).unwrap_or_default();
        let slabs = |c: &[MirrorCache<'_>]| {
            mirror.kmalloc_slab_bytes() + c.iter().map(MirrorCache::slab_bytes).sum::<u64>()
        };
        let r = self.exec(&mut f, counts, slabs);
        // Every object is freed: the caches can go.
        let mut destroyed = Ok(());
        for c in f.caches.drain_all() {
            destroyed = destroyed.and(c.destroy());
        }
        let t = r?;
        destroyed?;
        Ok(t)
    }
}

/// Copies the samples out and fills in the reply: everything the run
/// allocated is freed already, so an EFAULT here leaves nothing behind.
fn copy_out(
    req: &ReplayRequest,
    q: &mut MemlabReplay,
    run: Run<'_>,
    t: &Tally,
    charged: usize,
) -> Result {
    let Run { lat, samples, .. } = run;
    UserSlice::new(
        UserPtr::from_addr(req.samples_ptr as usize),
        samples.len() * SAMPLE,
    )
    .writer()
    .write_slice(samples.as_slice().as_bytes())?;
    let (alloc_median_ns, alloc_p99_ns) = median_p99(&lat[0]);
    let (free_median_ns, free_p99_ns) = median_p99(&lat[1]);
    *q = MemlabReplay {
        nr_samples: samples.len() as u32,
        steps_done: req.steps as u64,
        allocs: t.allocs,
        frees: t.frees,
        failed: t.failed,
        alloc_median_ns,
        alloc_p99_ns,
        free_median_ns,
        free_p99_ns,
        unusable_3: rules::unusable_ppm(&t.last, 3),
        unusable_9: rules::unusable_ppm(&t.last, 9),
        live_bytes: t.live_bytes,
        ksize_waste: t.ksize_waste,
        slab_bytes: t.slab_bytes,
        charged: charged as u64,
        ..*q
    };
    Ok(())
}

/// Runs `MEMLAB_IOC_REPLAY` for `q` on `mirror` or the real allocators:
/// decode, charge, run, copy out. `reserve(bytes)` charges the caller's
/// caps and returns a guard that gives the charge back when dropped.
pub(crate) fn replay<R>(
    mirror: &Arc<Mirror>,
    q: &mut MemlabReplay,
    mut reserve: impl FnMut(usize) -> Result<R>,
) -> Result {
    let req = ReplayRequest::try_from(&*q)?;
    let input = Charges::input(&req);
    let _input = reserve(input)?;
    let steps = copy_in(&req)?;
    let plan = plan(&steps)?;
    let run_bytes = Charges::run(&req, &plan)?;
    let _run = reserve(run_bytes)?;
    let mut run = Run {
        steps: &steps,
        plan: &plan,
        every: req.every,
        zone: req.zone,
        lat: [
            KVVec::with_capacity(plan.allocs as usize, GFP_KERNEL)?,
            KVVec::with_capacity(plan.frees as usize, GFP_KERNEL)?,
        ],
        samples: KVVec::with_capacity(req.nr_samples, GFP_KERNEL)?,
    };
    let t = match req.backend {
        BackendId::Real => run.on_real()?,
        BackendId::Mirror => run.on_mirror(mirror)?,
    };
    copy_out(&req, q, run, &t, input + run_bytes)
}
