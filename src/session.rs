// SPDX-License-Identifier: GPL-2.0

//! `MEMLAB_IOC_SESSION`: a replay kept open across ioctls, on one backend,
//! so that user space can read the allocators' own counters (SLUB's
//! `/sys/kernel/slab/<cache>/`, `/proc/buddyinfo`, `/proc/zoneinfo`, the
//! mirror's debugfs) between chunks of one operation stream, while the
//! stream's objects stay live.
//!
//! OPEN charges the session's id table and `max_bytes` to the file's cap
//! and the module's budget, for the session's life. A RUN, in order,
//! before anything is allocated:
//!
//! 1. the header, decoded into a [`SessionRequest`] (EINVAL, E2BIG);
//! 2. the copy of the steps is charged for the call, and the steps copied
//!    in once;
//! 3. [`plan_chunk`] checks every step and the id pairing against the ids
//!    live from earlier chunks, on a copy of the session's table of
//!    charges, and refuses a chunk whose live memory would pass
//!    `max_bytes`;
//! 4. each cache the chunk needs first is charged (as a kmem_cache handle
//!    is: `kmem_cache::footprint`) and made: `memlab_s<n>_kmalloc-<class>`
//!    or `memlab_s<n>_cache-<size>`, `SLAB_NO_MERGE` on the real side, so
//!    the rest of the kernel does not share its slabs.
//!
//! Only then does the chunk run, untimed, with migration disabled: a
//! failed allocation is counted and a later free of its id skipped, as in
//! REPLAY. Real allocations carry `__GFP_NORETRY` (no OOM kill in a zone
//! driven near full). CLOSE, or closing the file, frees every live object
//! through its cache, then destroys the caches, then gives the charges
//! back.

use crate::backend::ObjectAllocator;
use crate::budget::Charge;
use crate::mirror::objects::{MirrorPageBlocks, MirrorSessionCache};
use crate::mirror::Mirror;
use crate::platform::clock::NoMigrate;
use crate::real::kmem_cache;
use crate::real::objects::{RealSessionCache, RealSessionPages};
use crate::request::replay::{self as rules, ReplayOp};
use crate::request::session::{
    plan_chunk, ChunkPlan, SessionAlloc, SessionCache, SessionCaches, SessionRequest,
    MAX_SESSION_CACHES,
};
use crate::request::{BackendId, CacheFlags, Refusal};
use crate::uapi::{self, MemlabReplayStep, MemlabSession};
use core::sync::atomic::{AtomicU32, Ordering};
use kernel::{
    prelude::*,
    str::{CStr, CString},
    sync::Arc,
    transmute::{AsBytes, FromBytes},
    uaccess::{UserPtr, UserSlice},
};

// SAFETY: `#[repr(C)]` of `u32`/`u64` fields without padding (size
// asserted in uapi.rs): every byte is initialised and any bit pattern valid.
unsafe impl AsBytes for MemlabSession {}
// SAFETY: as above.
unsafe impl FromBytes for MemlabSession {}

/// The next session's number: unique while the module is loaded (its
/// caches' sysfs names must be), never 0.
static NEXT_SESSION: AtomicU32 = AtomicU32::new(1);

/// Bytes a slot of a session's table takes at most, with its charge and
/// the planning copy of it.
const SLOT_BYTES: usize = 32 + 2 * 8;

/// One backend's allocators for a session.
trait Side: Send {
    /// Page blocks (`alloc_pages`).
    type Pages: ObjectAllocator;
    /// A cache of the session's own.
    type Cache: ObjectAllocator;
    /// The page allocator.
    fn pages(&mut self) -> &mut Self::Pages;
    /// Makes the cache `c` named `name`.
    fn cache(&self, name: &CStr, c: SessionCache) -> Result<Self::Cache>;
}

/// The real allocators, with `__GFP_NORETRY`.
struct RealSide(RealSessionPages);

impl Side for RealSide {
    type Pages = RealSessionPages;
    type Cache = RealSessionCache;
    fn pages(&mut self) -> &mut RealSessionPages {
        &mut self.0
    }
    fn cache(&self, name: &CStr, c: SessionCache) -> Result<RealSessionCache> {
        RealSessionCache::new(name, c.object_size(), c.align())
    }
}

/// The mirror's.
struct MirrorSide(MirrorPageBlocks);

impl Side for MirrorSide {
    type Pages = MirrorPageBlocks;
    type Cache = MirrorSessionCache;
    fn pages(&mut self) -> &mut MirrorPageBlocks {
        &mut self.0
    }
    fn cache(&self, name: &CStr, c: SessionCache) -> Result<Self::Cache> {
        let name = name.to_str().map_err(|_| EINVAL)?;
        MirrorSessionCache::new(&self.0 .0, name, c.object_size(), c.align())
    }
}

/// A live object: a page block, or an object of the cache at an index.
enum Obj<P, C> {
    Pages(P),
    Object(C, usize),
}

/// A live object of side `S`.
type ObjOf<S> =
    Obj<<<S as Side>::Pages as ObjectAllocator>::Obj, <<S as Side>::Cache as ObjectAllocator>::Obj>;

const _: () = assert!(core::mem::size_of::<Option<ObjOf<RealSide>>>() <= 32);
const _: () = assert!(core::mem::size_of::<Option<ObjOf<MirrorSide>>>() <= 32);

/// A session on side `S`: its caches, its objects by id, and its counts.
struct Session<S: Side> {
    side: S,
    number: u32,
    /// The caches made, in the order of `made`.
    caches: KVec<S::Cache>,
    made: SessionCaches,
    table: KVVec<Option<ObjOf<S>>>,
    /// Each id's charge (`rules::charge_of`) while live, as planned.
    charges: KVVec<u64>,
    /// The planning copy of `charges`.
    scratch: KVVec<u64>,
    max_bytes: u64,
    live_bytes: u64,
    /// Cumulative counts, in the reply's terms.
    steps: u64,
    allocs: u64,
    frees: u64,
    failed: u64,
    live: u64,
}

// SAFETY: the objects are owned by the session alone, and the kernel's
// allocators and the mirror take frees from any task on any CPU.
unsafe impl<S: Side> Send for Session<S> {}

impl<S: Side> Session<S> {
    fn new(side: S, number: u32, ids: usize, max_bytes: u64) -> Result<Self> {
        let mut table = KVVec::with_capacity(ids, GFP_KERNEL)?;
        for _ in 0..ids {
            table.push_within_capacity(None).map_err(|_| ENOMEM)?;
        }
        Ok(Session {
            side,
            number,
            caches: KVec::with_capacity(MAX_SESSION_CACHES, GFP_KERNEL)?,
            made: SessionCaches::default(),
            table,
            charges: KVVec::from_elem(0, ids, GFP_KERNEL)?,
            scratch: KVVec::from_elem(0, ids, GFP_KERNEL)?,
            max_bytes,
            live_bytes: 0,
            steps: 0,
            allocs: 0,
            frees: 0,
            failed: 0,
            live: 0,
        })
    }

    /// Frees `o` through what made it.
    fn free(&mut self, o: ObjOf<S>) {
        match o {
            Obj::Pages(p) => self.side.pages().free(p),
            Obj::Object(p, i) => {
                if let Some(c) = self.caches.get_mut(i) {
                    c.free(p);
                }
            }
        }
    }

    /// Allocates what `family` asks for with `gfp`; `None` if the session
    /// has no allocator for it (the plan admits none such).
    fn alloc(&mut self, a: SessionAlloc, gfp: crate::request::Gfp) -> Option<Result<ObjOf<S>>> {
        Some(match a {
            SessionAlloc::Pages(order) => self.side.pages().alloc(0, order, gfp).map(Obj::Pages),
            SessionAlloc::Object(c) => {
                let i = self.made.index_of(c)?;
                let cache = self.caches.get_mut(i)?;
                cache
                    .alloc(c.object_size(), 0, gfp)
                    .map(|o| Obj::Object(o, i))
            }
        })
    }
}

impl<S: Side> Drop for Session<S> {
    fn drop(&mut self) {
        // Every object through its cache first; the caches drop after.
        let table = core::mem::take(&mut self.table);
        for o in table.into_iter().flatten() {
            self.free(o);
        }
    }
}

/// A session, whatever its side, as its file holds it.
trait SessionOps: Send {
    /// Checks `steps` (see [`plan_chunk`]) into the planning copy.
    fn plan(&mut self, steps: &[MemlabReplayStep]) -> Result<ChunkPlan>;
    /// The caches made so far.
    fn made(&self) -> &SessionCaches;
    /// Makes cache `c`, the next one of a plan.
    fn make(&mut self, c: SessionCache) -> Result;
    /// Runs `steps`, planned as `plan`, every cache of it made.
    fn run(&mut self, steps: &[MemlabReplayStep], plan: &ChunkPlan);
    /// Fills in the counts of the reply.
    fn report(&self, q: &mut MemlabSession);
}

impl<S: Side> SessionOps for Session<S> {
    fn plan(&mut self, steps: &[MemlabReplayStep]) -> Result<ChunkPlan> {
        // Both tables have the session's id count. An element loop, not
        // `copy_from_slice`: its length-mismatch panic is a call objtool
        // (7.2) does not know as noreturn, so the x86 build warned that
        // the function "falls through".
        for (to, from) in self.scratch.iter_mut().zip(self.charges.iter()) {
            *to = *from;
        }
        Ok(plan_chunk(
            steps,
            &mut self.scratch,
            self.live_bytes,
            self.max_bytes,
            &self.made,
        )?)
    }

    fn made(&self) -> &SessionCaches {
        &self.made
    }

    fn make(&mut self, c: SessionCache) -> Result {
        // `CacheName` is core's `Display` (the host tests use it too).
        let name = CString::try_from_fmt(format_args!("{}", c.name(self.number)))?;
        let cache = self.side.cache(&name, c)?;
        // Room for every cache was reserved at open.
        self.caches
            .push_within_capacity(cache)
            .map_err(|_| ENOMEM)?;
        // The plan checked the bound: this cannot fail.
        Ok(self.made.add(c)?)
    }

    fn run(&mut self, steps: &[MemlabReplayStep], plan: &ChunkPlan) {
        // The plan's copy of the charges is the table after the chunk.
        core::mem::swap(&mut self.charges, &mut self.scratch);
        self.live_bytes = plan.replay.end_bytes;
        // One CPU for the chunk: the per-CPU caches it fills are one CPU's,
        // as user space pins itself to one between chunks.
        let pin = NoMigrate::new();
        for s in steps {
            self.steps += 1;
            match rules::decode(s) {
                Ok(ReplayOp::Alloc { id, family, gfp }) => {
                    let Some(a) = SessionAlloc::of(family) else {
                        continue;
                    };
                    let Some(r) = self.alloc(a, gfp) else {
                        continue;
                    };
                    match (r, self.table.get_mut(id as usize)) {
                        (Ok(o), Some(slot)) => {
                            *slot = Some(o);
                            self.allocs += 1;
                            self.live += 1;
                        }
                        (Ok(o), None) => self.free(o),
                        (Err(_), _) => self.failed += 1,
                    }
                }
                Ok(ReplayOp::Free { id }) => {
                    let Some(o) = self.table.get_mut(id as usize).and_then(Option::take) else {
                        continue;
                    };
                    self.free(o);
                    self.frees += 1;
                    self.live -= 1;
                }
                Err(_) => {}
            }
        }
        drop(pin);
    }

    fn report(&self, q: &mut MemlabSession) {
        q.session = self.number;
        q.steps_done = self.steps;
        q.allocs = self.allocs;
        q.frees = self.frees;
        q.failed = self.failed;
        q.live = self.live;
        q.live_bytes = self.live_bytes;
        q.nr_caches = self.made.as_slice().len() as u32;
    }
}

/// One session of a file, with what it holds against the caps.
struct Entry {
    ops: KBox<dyn SessionOps>,
    number: u32,
    /// Bytes charged to the file.
    bytes: usize,
    /// The charges on the module's budget: the open one, one per cache.
    charges: KVec<Charge>,
}

/// How a file charges its cap and the module's budget: `take(bytes)`
/// charges both (E2BIG past either), `give(bytes)` gives the file's part
/// back (the budget's goes with the [`Charge`]).
pub(crate) trait Caps {
    /// Charges `bytes`.
    fn take(&self, bytes: usize) -> Result<Charge>;
    /// Gives `bytes` of the file's part back.
    fn give(&self, bytes: usize);
}

/// The sessions of one open file; closing the file closes them.
#[derive(Default)]
pub(crate) struct Sessions {
    list: KVec<Entry>,
}

impl Sessions {
    /// `MEMLAB_IOC_SESSION` for `q`: see the module documentation.
    pub(crate) fn cmd(
        &mut self,
        mirror: &Arc<Mirror>,
        q: &mut MemlabSession,
        caps: &impl Caps,
    ) -> Result {
        let req = SessionRequest::try_from(&*q)?;
        match req {
            SessionRequest::Open {
                backend,
                ids,
                max_bytes,
            } => self.open(mirror, backend, ids, max_bytes, caps, q),
            SessionRequest::Run {
                session,
                steps_ptr,
                steps,
            } => {
                let e = self.find(session)?;
                let entry = self.list.get_mut(e).ok_or(EINVAL)?;
                let r = run(entry, steps_ptr, steps, caps);
                entry.ops.report(q);
                q.charged = entry.bytes as u64;
                r
            }
            SessionRequest::Close { session } => {
                let e = self.find(session)?;
                let entry = self.list.remove(e).map_err(|_| EINVAL)?;
                entry.ops.report(q);
                let bytes = entry.bytes;
                // Objects, then caches, then the charges.
                drop(entry);
                caps.give(bytes);
                Ok(())
            }
        }
    }

    /// The index of session `number`: EINVAL if this file has none.
    fn find(&self, number: u32) -> Result<usize> {
        self.list
            .iter()
            .position(|e| e.number == number)
            .ok_or(Error::from(Refusal::NoSession(number)))
    }

    fn open(
        &mut self,
        mirror: &Arc<Mirror>,
        backend: BackendId,
        ids: usize,
        max_bytes: u64,
        caps: &impl Caps,
        q: &mut MemlabSession,
    ) -> Result {
        if self.list.len() >= uapi::MEMLAB_SESSION_MAX as usize {
            return Err(Refusal::Sessions.into());
        }
        let bytes = usize::try_from(max_bytes)
            .ok()
            .and_then(|b| b.checked_add(ids * SLOT_BYTES))
            .ok_or(E2BIG)?;
        let charge = caps.take(bytes)?;
        let entry = Self::entry(mirror, backend, ids, max_bytes, bytes, charge);
        let entry = match entry.and_then(|e| Ok(self.list.reserve(1, GFP_KERNEL).map(|()| e)?)) {
            Ok(e) => e,
            Err(err) => {
                caps.give(bytes);
                return Err(err);
            }
        };
        entry.ops.report(q);
        q.charged = bytes as u64;
        // Room was reserved above.
        self.list.push_within_capacity(entry).map_err(|_| ENOMEM)
    }

    /// A new session's entry, holding `charge` (dropped on failure).
    fn entry(
        mirror: &Arc<Mirror>,
        backend: BackendId,
        ids: usize,
        max_bytes: u64,
        bytes: usize,
        charge: Charge,
    ) -> Result<Entry> {
        let mut charges = KVec::with_capacity(MAX_SESSION_CACHES + 1, GFP_KERNEL)?;
        charges.push_within_capacity(charge).map_err(|_| ENOMEM)?;
        let number = loop {
            let n = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
            if n != 0 {
                break n;
            }
        };
        let ops: KBox<dyn SessionOps> = match backend {
            BackendId::Real => {
                let side = RealSide(RealSessionPages);
                KBox::new(Session::new(side, number, ids, max_bytes)?, GFP_KERNEL)?
            }
            BackendId::Mirror => {
                let side = MirrorSide(MirrorPageBlocks(mirror.clone()));
                KBox::new(Session::new(side, number, ids, max_bytes)?, GFP_KERNEL)?
            }
        };
        Ok(Entry {
            ops,
            number,
            bytes,
            charges,
        })
    }
}

/// A RUN of `n` steps at `ptr` in `entry`.
fn run(entry: &mut Entry, ptr: u64, n: usize, caps: &impl Caps) -> Result {
    let input = n * rules::STEP_BYTES;
    let charge = caps.take(input)?;
    let r = copy_in(ptr, n).and_then(|steps| {
        let plan = entry.ops.plan(&steps)?;
        make_caches(entry, &plan, caps)?;
        entry.ops.run(&steps, &plan);
        Ok(())
    });
    drop(charge);
    caps.give(input);
    r
}

/// Makes the caches `plan` needs that `entry` has not made yet, each
/// charged as a kmem_cache handle is.
fn make_caches(entry: &mut Entry, plan: &ChunkPlan, caps: &impl Caps) -> Result {
    let have = entry.ops.made().as_slice().len();
    for &c in plan.caches.as_slice().get(have..).unwrap_or(&[]) {
        let bytes = kmem_cache::footprint(c.object_size(), c.align(), CacheFlags::default());
        let charge = caps.take(bytes)?;
        if let Err(e) = entry.ops.make(c) {
            drop(charge);
            caps.give(bytes);
            return Err(e);
        }
        // Room for a charge per cache was reserved at open.
        if let Err(c) = entry.charges.push_within_capacity(charge) {
            drop(c);
            caps.give(bytes);
            return Err(ENOMEM);
        }
        entry.bytes += bytes;
    }
    Ok(())
}

/// Copies `n` steps from `ptr` in, once.
fn copy_in(ptr: u64, n: usize) -> Result<KVVec<MemlabReplayStep>> {
    let mut steps = KVVec::from_elem(MemlabReplayStep::default(), n, GFP_KERNEL)?;
    UserSlice::new(UserPtr::from_addr(ptr as usize), n * rules::STEP_BYTES)
        .reader()
        .read_slice(steps.as_mut_slice().as_bytes_mut())?;
    Ok(steps)
}
