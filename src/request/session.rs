// SPDX-License-Identifier: GPL-2.0

//! A replay session (`struct memlab_session`, `MEMLAB_IOC_SESSION`): one
//! operation stream run in chunks on one backend, its objects live between
//! chunks, so that user space can read the allocators' own counters
//! (sysfs, /proc, debugfs) along the way.
//!
//! [`SessionRequest::try_from`] holds the rules of the header: an unknown
//! op or backend, a field the op does not take or an output not zero, an id
//! table of 0 or more than `MEMLAB_REPLAY_MAX_IDS` slots, a `max_bytes` of
//! 0, a step buffer empty or not a multiple of the step are `EINVAL`; more
//! than `MEMLAB_REPLAY_MAX_STEPS` steps is `E2BIG`.
//!
//! [`plan_chunk`] checks a chunk as REPLAY checks a whole replay
//! ([`super::replay::plan_from`]), against the ids the session holds from
//! its earlier chunks: an id at or above the session's table is `EINVAL`,
//! live memory past `max_bytes` or more caches than the session may make
//! `E2BIG`. It also says which caches the chunk needs first
//! ([`SessionCaches`]): each slab object goes to a cache of the session's
//! own ([`SessionCache`]), a kmalloc size class or a kmem_cache size, on
//! either backend, so that the rest of the kernel does not share its slabs.
//!
//! Plain `core` Rust: the host tests compile this file.

use super::replay::{self, ReplayOp};
use super::{BackendId, Family, Ioctl, Refusal};
use crate::sizeclass::{get_order, SizeClass, NR_KMALLOC_CLASSES};
use crate::uapi;
use core::fmt;

/// Most caches one session makes: every kmalloc class and as many
/// kmem_cache sizes as one REPLAY may use.
pub const MAX_SESSION_CACHES: usize = NR_KMALLOC_CLASSES + replay::MAX_CACHES;

/// A decoded `struct memlab_session`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionRequest {
    /// Open a session on `backend` with a table of `ids` slots, its live
    /// objects holding at most `max_bytes`.
    Open {
        /// On which allocators.
        backend: BackendId,
        /// Slots of the id table, `1..=MEMLAB_REPLAY_MAX_IDS`.
        ids: usize,
        /// The most live bytes, in [`replay::charge_of`]'s measure.
        max_bytes: u64,
    },
    /// Run `steps` steps at `steps_ptr` in `session`.
    Run {
        /// The session's number.
        session: u32,
        /// The user address of the steps.
        steps_ptr: u64,
        /// How many, `1..=MEMLAB_REPLAY_MAX_STEPS`.
        steps: usize,
    },
    /// Free everything `session` holds and close it.
    Close {
        /// The session's number.
        session: u32,
    },
}

impl SessionRequest {
    /// Bytes of the step buffer of a RUN, 0 for the other ops.
    pub const fn steps_bytes(&self) -> usize {
        match self {
            SessionRequest::Run { steps, .. } => *steps * replay::STEP_BYTES,
            _ => 0,
        }
    }
}

impl TryFrom<&uapi::MemlabSession> for SessionRequest {
    type Error = Refusal;

    fn try_from(q: &uapi::MemlabSession) -> Result<Self, Refusal> {
        // Only the op's own inputs may be set; outputs come in zeroed.
        let mut input = uapi::MemlabSession {
            op: q.op,
            ..Default::default()
        };
        let req = match q.op {
            uapi::MEMLAB_SESSION_OPEN => {
                (input.backend, input.ids, input.max_bytes) = (q.backend, q.ids, q.max_bytes);
                let backend = BackendId::from_uapi(q.backend)?;
                if q.ids == 0 || q.ids > uapi::MEMLAB_REPLAY_MAX_IDS {
                    return Err(Refusal::SessionIds(q.ids));
                }
                if q.max_bytes == 0 {
                    return Err(Refusal::SessionBytes);
                }
                SessionRequest::Open {
                    backend,
                    ids: q.ids as usize,
                    max_bytes: q.max_bytes,
                }
            }
            uapi::MEMLAB_SESSION_RUN => {
                (input.session, input.steps, input.steps_len) = (q.session, q.steps, q.steps_len);
                let len = usize::try_from(q.steps_len).map_err(|_| Refusal::Steps(q.steps_len))?;
                if len == 0 || len % replay::STEP_BYTES != 0 {
                    return Err(Refusal::StepsLen(q.steps_len));
                }
                let steps = len / replay::STEP_BYTES;
                if steps > uapi::MEMLAB_REPLAY_MAX_STEPS as usize {
                    return Err(Refusal::Steps(steps as u64));
                }
                SessionRequest::Run {
                    session: q.session,
                    steps_ptr: q.steps,
                    steps,
                }
            }
            uapi::MEMLAB_SESSION_CLOSE => {
                input.session = q.session;
                SessionRequest::Close { session: q.session }
            }
            op => return Err(Refusal::SessionOp(op)),
        };
        if *q != input {
            return Err(Refusal::OutputSet {
                ioctl: Ioctl::Session,
            });
        }
        Ok(req)
    }
}

/// A cache of a session: where its slab objects of one kind go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionCache {
    /// kmalloc's objects of one size class.
    Kmalloc(SizeClass),
    /// kmem_cache objects of one size.
    Sized(usize),
}

impl SessionCache {
    /// Object size.
    pub const fn object_size(self) -> usize {
        match self {
            SessionCache::Kmalloc(c) => c.size(),
            SessionCache::Sized(s) => s,
        }
    }

    /// Alignment to create it with: a kmalloc class's natural alignment
    /// (as `create_kmalloc_cache` gives), else the default (0).
    pub const fn align(self) -> usize {
        match self {
            SessionCache::Kmalloc(c) => c.align(),
            SessionCache::Sized(_) => 0,
        }
    }

    /// Its name in session `session`: `memlab_s<session>_kmalloc-<class>`
    /// (`kmalloc-1k` as the kernel names the class) or
    /// `memlab_s<session>_cache-<size>`; at most 32 bytes.
    pub const fn name(self, session: u32) -> CacheName {
        CacheName {
            session,
            cache: self,
        }
    }
}

/// A session cache's name, written by `Display`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheName {
    session: u32,
    cache: SessionCache,
}

impl fmt::Display for CacheName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cache {
            SessionCache::Kmalloc(c) => write!(f, "memlab_s{}_{}", self.session, c.name()),
            SessionCache::Sized(s) => write!(f, "memlab_s{}_cache-{s}", self.session),
        }
    }
}

/// Where an allocation of a session goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionAlloc {
    /// A page block of this order: the pages family, and kmalloc above
    /// `KMALLOC_MAX_CACHE_SIZE` (as `kmalloc_large` does).
    Pages(u32),
    /// An object of a session cache.
    Object(SessionCache),
}

impl SessionAlloc {
    /// Where an allocation of `family` goes; `None` for the families a
    /// replay does not take.
    pub const fn of(family: Family) -> Option<Self> {
        Some(match family {
            Family::Pages { order } => SessionAlloc::Pages(order),
            Family::Kmalloc { size } => match SizeClass::for_size(size) {
                Some(c) => SessionAlloc::Object(SessionCache::Kmalloc(c)),
                None => SessionAlloc::Pages(get_order(size)),
            },
            Family::KmemCache { size, .. } => SessionAlloc::Object(SessionCache::Sized(size)),
            Family::Vmalloc { .. } | Family::Dma { .. } => return None,
        })
    }
}

/// The caches a session has made, in order of first use: a step's cache
/// is found by its index here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionCaches {
    list: [SessionCache; MAX_SESSION_CACHES],
    len: usize,
}

impl Default for SessionCaches {
    fn default() -> Self {
        SessionCaches {
            list: [SessionCache::Sized(0); MAX_SESSION_CACHES],
            len: 0,
        }
    }
}

impl SessionCaches {
    /// The caches, in order of first use.
    pub fn as_slice(&self) -> &[SessionCache] {
        self.list.get(..self.len).unwrap_or(&[])
    }

    /// The index of `c`, if the session has it.
    pub fn index_of(&self, c: SessionCache) -> Option<usize> {
        self.as_slice().iter().position(|&x| x == c)
    }

    /// Adds `c` if it is new; [`Refusal::Caches`] (E2BIG) past
    /// [`MAX_SESSION_CACHES`].
    pub fn add(&mut self, c: SessionCache) -> Result<(), Refusal> {
        if self.index_of(c).is_none() {
            *self.list.get_mut(self.len).ok_or(Refusal::Caches)? = c;
            self.len += 1;
        }
        Ok(())
    }
}

/// What [`plan_chunk`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkPlan {
    /// The chunk as REPLAY plans it (its peak counts what was live before).
    pub replay: replay::ReplayPlan,
    /// The session's caches once the chunk has run: those it had first,
    /// then the new ones the chunk needs, to be made before it runs.
    pub caches: SessionCaches,
}

/// Checks the chunk `steps` of a session whose live ids' charges are in
/// `live` (one slot per id of its table; updated to what they are after
/// the chunk; left part-way on a refusal, so pass a copy), adding up to
/// `start` bytes, with at most `max_bytes` live and the caches `caches`
/// made so far. See the module documentation.
pub fn plan_chunk(
    steps: &[uapi::MemlabReplayStep],
    live: &mut [u64],
    start: u64,
    max_bytes: u64,
    caches: &SessionCaches,
) -> Result<ChunkPlan, Refusal> {
    let ids = live.len() as u32;
    let p = replay::plan_from(steps, live, start).map_err(|r| match r {
        Refusal::StepId(id) if id < uapi::MEMLAB_REPLAY_MAX_IDS => Refusal::SessionId { id, ids },
        r => r,
    })?;
    if p.peak_bytes > max_bytes {
        return Err(Refusal::SessionPeak {
            peak: p.peak_bytes,
            max: max_bytes,
        });
    }
    let mut after = *caches;
    for s in steps {
        if let Ok(ReplayOp::Alloc { family, .. }) = replay::decode(s) {
            if let Some(SessionAlloc::Object(c)) = SessionAlloc::of(family) {
                after.add(c)?;
            }
        }
    }
    Ok(ChunkPlan {
        replay: p,
        caches: after,
    })
}
