// SPDX-License-Identifier: GPL-2.0

//! The steps of an in-kernel replay (`struct memlab_replay_step`), decoded
//! and checked as a whole before anything is allocated.
//!
//! [`decode`] holds the rules for one step: an unknown op, family or GFP
//! selector, a modifier bit in `gfp`, a zero size, fields a step does not
//! take left non-zero, or an id outside `0..MEMLAB_REPLAY_MAX_IDS` are
//! `EINVAL`; a size above KMALLOC_MAX_SIZE or an order above MAX_PAGE_ORDER
//! is `E2BIG`. [`plan`] walks every step once with a table of live ids: an
//! alloc of a live id or a free of an id that is not live is `EINVAL`, and
//! more distinct kmem_cache sizes than `MEMLAB_REPLAY_MAX_CACHES` is
//! `E2BIG`. It also finds the most memory the replay holds at once, which
//! the caller charges against the pin caps before running it.
//!
//! [`ReplayRequest::try_from`] holds the rules of the header, `struct
//! memlab_replay`: output fields not zero, an unknown backend or a zone
//! other than DMA, DMA32 and Normal, a step buffer empty or not a multiple
//! of the step size, a sample buffer without a sample interval or too small
//! for the samples are `EINVAL`; more than `MEMLAB_REPLAY_MAX_STEPS` steps
//! is `E2BIG`.
//!
//! Plain `core` Rust: the host tests compile this file.

use super::{object_size, BackendId, CacheFlags, Family, Gfp, Ioctl, Refusal, RequestError, Zone};
use crate::buddy::{MAX_PAGE_ORDER, NR_PAGE_ORDERS, PAGE_SIZE};
use crate::render::{unusable_free_scaled, ContigPageInfo};
use crate::uapi;

/// Most distinct kmem_cache sizes in one replay.
pub const MAX_CACHES: usize = uapi::MEMLAB_REPLAY_MAX_CACHES as usize;

/// One decoded step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayOp {
    /// Allocate `family` with `gfp` and file it under `id`.
    Alloc {
        /// The object's name.
        id: u32,
        /// Kmalloc, Pages or KmemCache (no alignment, no flags).
        family: Family,
        /// The mask (a selector, never `__GFP_ZERO`).
        gfp: Gfp,
    },
    /// Free what `id` holds.
    Free {
        /// The object's name.
        id: u32,
    },
}

/// Decodes one step; see the module documentation for the rules.
pub fn decode(s: &uapi::MemlabReplayStep) -> Result<ReplayOp, Refusal> {
    if s.id >= uapi::MEMLAB_REPLAY_MAX_IDS {
        return Err(Refusal::StepId(s.id));
    }
    match s.op {
        uapi::MEMLAB_REPLAY_FREE => {
            if s.family != 0 || s.gfp != 0 || s.arg != 0 {
                return Err(Refusal::FreeFields(s.id));
            }
            Ok(ReplayOp::Free { id: s.id })
        }
        uapi::MEMLAB_REPLAY_ALLOC => {
            // A selector only: zeroing would be timed on one backend only.
            if s.gfp & !0xff != 0 {
                return Err(Refusal::GfpBits(s.gfp));
            }
            let gfp = Gfp::from_uapi(s.gfp)?;
            let family = step_family(s)?;
            if family.is_slab() && !gfp.slab_ok() {
                return Err(Refusal::SlabGfp {
                    family: s.family,
                    gfp: gfp.name(),
                });
            }
            Ok(ReplayOp::Alloc {
                id: s.id,
                family,
                gfp,
            })
        }
        op => Err(Refusal::StepOp(op)),
    }
}

/// The family of alloc step `s`, with its size or order.
fn step_family(s: &uapi::MemlabReplayStep) -> Result<Family, Refusal> {
    match s.family {
        uapi::MEMLAB_FAMILY_PAGES => {
            if s.arg > u64::from(MAX_PAGE_ORDER) {
                return Err(Refusal::Order {
                    order: s.arg,
                    error: RequestError::TooBig,
                });
            }
            Ok(Family::Pages {
                order: s.arg as u32,
            })
        }
        uapi::MEMLAB_FAMILY_KMALLOC | uapi::MEMLAB_FAMILY_KMEM_CACHE => {
            let size = object_size(s.family, s.arg, 1, RequestError::TooBig)?;
            Ok(if s.family == uapi::MEMLAB_FAMILY_KMALLOC {
                Family::Kmalloc { size }
            } else {
                Family::KmemCache {
                    size,
                    align: 0,
                    flags: CacheFlags::default(),
                }
            })
        }
        f => Err(Refusal::Family {
            ioctl: Ioctl::Replay,
            family: f,
        }),
    }
}

/// What an allocation of `family` is charged while live: its page block,
/// or its object size rounded up to a power of two (the size class and
/// more: 96 and 192 are below it).
pub const fn charge_of(family: Family) -> u64 {
    match family {
        Family::Pages { order } => (PAGE_SIZE as u64) << order,
        Family::Kmalloc { size }
        | Family::KmemCache { size, .. }
        | Family::Vmalloc { size }
        | Family::Dma { size } => {
            let s = if size < 8 { 8 } else { size as u64 };
            s.next_power_of_two()
        }
    }
}

/// What [`plan`] found: counts, the ids and caches to set up, and the peak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayPlan {
    /// Alloc steps.
    pub allocs: u64,
    /// Free steps.
    pub frees: u64,
    /// Slots the run's id table needs: the largest id plus one.
    pub ids: usize,
    /// The most [`charge_of`] bytes live at once.
    pub peak_bytes: u64,
    /// The [`charge_of`] bytes live after the last step.
    pub end_bytes: u64,
    /// The distinct kmem_cache object sizes, in order of first use.
    pub caches: [usize; MAX_CACHES],
    /// How many of `caches` are used.
    pub nr_caches: usize,
}

impl Default for ReplayPlan {
    fn default() -> Self {
        ReplayPlan {
            allocs: 0,
            frees: 0,
            ids: 0,
            peak_bytes: 0,
            end_bytes: 0,
            caches: [0; MAX_CACHES],
            nr_caches: 0,
        }
    }
}

impl ReplayPlan {
    /// The distinct kmem_cache object sizes, in order of first use.
    pub fn sizes(&self) -> &[usize] {
        self.caches.get(..self.nr_caches).unwrap_or(&[])
    }

    /// The index of the run's kmem_cache for objects of `size`.
    pub fn cache_index(&self, size: usize) -> Option<usize> {
        self.caches
            .get(..self.nr_caches)?
            .iter()
            .position(|&s| s == size)
    }
}

/// The largest id of `steps` plus one, at most `MEMLAB_REPLAY_MAX_IDS`
/// (a larger id is refused by [`plan`]): the size of the table it needs.
pub fn ids_needed(steps: &[uapi::MemlabReplayStep]) -> usize {
    let max = steps
        .iter()
        .map(|s| s.id)
        .max()
        .map_or(0, |m| m as usize + 1);
    max.min(uapi::MEMLAB_REPLAY_MAX_IDS as usize)
}

/// Checks `steps` as a whole with `live` as the id table (zeroed, at least
/// [`ids_needed`] slots; it holds each live id's charge, 0 when free).
pub fn plan(steps: &[uapi::MemlabReplayStep], live: &mut [u64]) -> Result<ReplayPlan, Refusal> {
    plan_from(steps, live, 0)
}

/// [`plan`] of steps that follow others: `live` holds the charges of the
/// ids still live from before (an id outside it is refused as out of
/// range), which add up to `start` bytes; the peak counts them.
pub fn plan_from(
    steps: &[uapi::MemlabReplayStep],
    live: &mut [u64],
    start: u64,
) -> Result<ReplayPlan, Refusal> {
    let mut p = ReplayPlan {
        peak_bytes: start,
        ..ReplayPlan::default()
    };
    let mut cur = start;
    for s in steps {
        let op = decode(s)?;
        let id = match op {
            ReplayOp::Alloc { id, .. } | ReplayOp::Free { id } => id as usize,
        };
        let slot = live.get_mut(id).ok_or(Refusal::StepId(id as u32))?;
        p.ids = p.ids.max(id + 1);
        match op {
            ReplayOp::Alloc { family, .. } => {
                if *slot != 0 {
                    return Err(Refusal::IdLive(id as u32));
                }
                if let Family::KmemCache { size, .. } = family {
                    if p.cache_index(size).is_none() {
                        *p.caches.get_mut(p.nr_caches).ok_or(Refusal::Caches)? = size;
                        p.nr_caches += 1;
                    }
                }
                *slot = charge_of(family);
                cur = cur.saturating_add(*slot);
                p.peak_bytes = p.peak_bytes.max(cur);
                p.allocs += 1;
            }
            ReplayOp::Free { .. } => {
                if *slot == 0 {
                    return Err(Refusal::IdNotLive(id as u32));
                }
                cur = cur.saturating_sub(*slot);
                *slot = 0;
                p.frees += 1;
            }
        }
    }
    p.end_bytes = cur;
    Ok(p)
}

/// The unusable free index of a zone with free blocks `nr_free` at
/// `order`, in `MEMLAB_UNUSABLE_SCALE` units (mm/vmstat.c's formula).
pub fn unusable_ppm(nr_free: &[u64; NR_PAGE_ORDERS], order: u32) -> u32 {
    let scale = u64::from(uapi::MEMLAB_UNUSABLE_SCALE);
    let v = unusable_free_scaled(order, &ContigPageInfo::new(nr_free, order), scale);
    v.min(scale) as u32
}

/// Bytes of one step in the user buffer.
pub const STEP_BYTES: usize = core::mem::size_of::<uapi::MemlabReplayStep>();
/// Bytes of one fragmentation sample in the user buffer.
pub const SAMPLE_BYTES: usize = core::mem::size_of::<uapi::MemlabFragSample>();

/// A validated REPLAY header: where the steps are, and what to sample.
/// The steps themselves are checked by [`plan`] once copied in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayRequest {
    /// On which allocators.
    pub backend: BackendId,
    /// The zone sampled and probed: DMA, DMA32 or Normal.
    pub zone: Zone,
    /// The user address of the steps.
    pub steps_ptr: u64,
    /// How many steps, `1..=MEMLAB_REPLAY_MAX_STEPS`.
    pub steps: usize,
    /// Sample every this many steps (0: never).
    pub every: usize,
    /// The user address of the samples.
    pub samples_ptr: u64,
    /// Samples the run takes: before the first step and after every
    /// `every`-th (0 without sampling); the buffer has room for them.
    pub nr_samples: usize,
}

impl ReplayRequest {
    /// Bytes of the step buffer.
    pub const fn steps_bytes(&self) -> usize {
        self.steps * STEP_BYTES
    }

    /// Bytes of the samples copied out.
    pub const fn samples_bytes(&self) -> usize {
        self.nr_samples * SAMPLE_BYTES
    }
}

impl TryFrom<&uapi::MemlabReplay> for ReplayRequest {
    type Error = Refusal;

    fn try_from(q: &uapi::MemlabReplay) -> Result<Self, Refusal> {
        // Outputs must come in zeroed: they are not inputs.
        let input = uapi::MemlabReplay {
            steps: q.steps,
            steps_len: q.steps_len,
            samples: q.samples,
            samples_len: q.samples_len,
            backend: q.backend,
            sample_every: q.sample_every,
            zone: q.zone,
            ..Default::default()
        };
        if *q != input {
            return Err(Refusal::OutputSet {
                ioctl: Ioctl::Replay,
            });
        }
        let backend = BackendId::from_uapi(q.backend)?;
        let zone = match Zone::from_uapi(q.zone) {
            Some(z) if z <= Zone::Normal => z,
            _ => return Err(Refusal::Zone(q.zone)),
        };
        let len = usize::try_from(q.steps_len).map_err(|_| Refusal::Steps(q.steps_len))?;
        if len == 0 || len % STEP_BYTES != 0 {
            return Err(Refusal::StepsLen(q.steps_len));
        }
        let steps = len / STEP_BYTES;
        if steps > uapi::MEMLAB_REPLAY_MAX_STEPS as usize {
            return Err(Refusal::Steps(steps as u64));
        }
        let every = q.sample_every as usize;
        if every == 0 && (q.samples != 0 || q.samples_len != 0) {
            return Err(Refusal::SamplesWithoutInterval);
        }
        let nr_samples = steps.checked_div(every).map_or(0, |k| k + 1);
        let need = (nr_samples * SAMPLE_BYTES) as u64;
        if need > q.samples_len {
            return Err(Refusal::SamplesShort {
                ioctl: Ioctl::Replay,
                room: q.samples_len,
                need,
            });
        }
        Ok(ReplayRequest {
            backend,
            zone,
            steps_ptr: q.steps,
            steps,
            every,
            samples_ptr: q.samples,
            nr_samples,
        })
    }
}
