// SPDX-License-Identifier: GPL-2.0

//! Why a request was refused: the rule that failed, with the value asked
//! for and the limit, and the errno it maps to.
//!
//! The kernel maps a [`Refusal`] to its errno and nothing more; memlabctl
//! compiles the same rules and prints the [`Refusal`] (its `Display`) as
//! the one line that tells the user what to change.

use super::{RequestError, KMEM_CACHE_MAX_ALIGN};
use crate::buddy::MAX_PAGE_ORDER;
use crate::uapi;
use core::fmt;

/// The name of a `MEMLAB_FAMILY_*` value, `None` for an unknown one.
pub const fn family_name(f: u32) -> Option<&'static str> {
    match f {
        uapi::MEMLAB_FAMILY_KMALLOC => Some("kmalloc"),
        uapi::MEMLAB_FAMILY_VMALLOC => Some("vmalloc"),
        uapi::MEMLAB_FAMILY_PAGES => Some("pages"),
        uapi::MEMLAB_FAMILY_KMEM_CACHE => Some("kmem_cache"),
        uapi::MEMLAB_FAMILY_DMA => Some("dma"),
        _ => None,
    }
}

/// A family value as text: its name, or `family N`.
struct FamilyName(u32);

impl fmt::Display for FamilyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match family_name(self.0) {
            Some(n) => f.write_str(n),
            None => write!(f, "family {}", self.0),
        }
    }
}

/// The request that a rule belongs to, for the messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ioctl {
    /// `MEMLAB_IOC_ALLOC`.
    Alloc,
    /// `MEMLAB_IOC_WORKLOAD`.
    Workload,
    /// `MEMLAB_IOC_REPLAY` (its header or a step).
    Replay,
    /// `MEMLAB_IOC_SESSION`.
    Session,
}

impl Ioctl {
    const fn name(self) -> &'static str {
        match self {
            Ioctl::Alloc => "ALLOC",
            Ioctl::Workload => "WORKLOAD",
            Ioctl::Replay => "REPLAY",
            Ioctl::Session => "SESSION",
        }
    }
}

/// One refused rule. Every `EINVAL`/`E2BIG` a request can get before an
/// allocator sees it is one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// An output or reserved field came in non-zero (EINVAL).
    OutputSet {
        /// Which request.
        ioctl: Ioctl,
    },
    /// `backend` is not `MEMLAB_BACKEND_*` (EINVAL).
    Backend(u32),
    /// `family` is not one this request takes (EINVAL).
    Family {
        /// Which request.
        ioctl: Ioctl,
        /// The value.
        family: u32,
    },
    /// `gfp` has bits beyond a selector and `MEMLAB_GFP_ZERO` (EINVAL); a
    /// replay step takes no `MEMLAB_GFP_ZERO` either.
    GfpBits(u32),
    /// The GFP selector is past the last one (EINVAL).
    GfpSelector(u32),
    /// A slab family with `__GFP_DMA32` or `__GFP_HIGHMEM` (EINVAL).
    SlabGfp {
        /// The family.
        family: u32,
        /// The mask's name.
        gfp: &'static str,
    },
    /// `cache_flags` has unknown bits (EINVAL).
    CacheFlags(u32),
    /// A field the family does not read is not zero (EINVAL).
    FieldNotTaken {
        /// The family.
        family: u32,
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// A size below the family's least (EINVAL).
    SizeBelow {
        /// The family.
        family: u32,
        /// The size asked for.
        size: u64,
        /// The least size.
        min: u64,
    },
    /// A size above the largest the request takes.
    SizeAbove {
        /// The family.
        family: u32,
        /// The size asked for.
        size: u64,
        /// The largest size, `KMALLOC_MAX_SIZE`.
        max: u64,
        /// EINVAL or E2BIG, as the ioctl has always answered.
        error: RequestError,
    },
    /// A size this machine cannot address (E2BIG).
    Unaddressable(u64),
    /// An order above `MAX_PAGE_ORDER`.
    Order {
        /// The order asked for.
        order: u64,
        /// EINVAL or E2BIG, as the ioctl has always answered.
        error: RequestError,
    },
    /// An alignment that is not a power of two up to
    /// [`KMEM_CACHE_MAX_ALIGN`] (EINVAL).
    Align(u64),
    /// A workload pattern past `MEMLAB_NR_PATTERNS` (EINVAL).
    Pattern(u32),
    /// A workload count outside `1..=MEMLAB_WORKLOAD_MAX_COUNT` (EINVAL).
    Count(u32),
    /// Operations per sample outside `1..=MEMLAB_WORKLOAD_MAX_K` (EINVAL).
    OpsPerSample(u32),
    /// A warm-up longer than the run, or any for FREE_KEPT (EINVAL).
    Warmup {
        /// Steps asked for.
        warmup: u32,
        /// The most allowed.
        max: u32,
    },
    /// Workload flags other than 0, KEEP, FREE_KEPT or THROUGHPUT (EINVAL).
    Flags(u32),
    /// A THROUGHPUT run given a sample buffer (EINVAL).
    ThroughputSamples,
    /// KEEP of another pattern than BATCH, or of a family other than
    /// kmalloc or pages (EINVAL).
    Keep {
        /// The pattern.
        pattern: u32,
        /// The family.
        family: u32,
    },
    /// A buffer's address given without its length or the other way
    /// round (EINVAL).
    BufferHalf {
        /// Which buffer: `samples`.
        ioctl: Ioctl,
    },
    /// A sample buffer too small for the samples the run takes (EINVAL).
    SamplesShort {
        /// Which request.
        ioctl: Ioctl,
        /// Room given (samples for WORKLOAD, bytes for REPLAY).
        room: u64,
        /// Room needed.
        need: u64,
    },
    /// A workload sample buffer above `2 * MEMLAB_WORKLOAD_MAX_COUNT`
    /// (E2BIG).
    SamplesCap(u32),
    /// A replay zone other than DMA, DMA32 or Normal (EINVAL).
    Zone(u32),
    /// A replay step buffer empty or not a multiple of the step (EINVAL).
    StepsLen(u64),
    /// More replay steps than `MEMLAB_REPLAY_MAX_STEPS` (E2BIG).
    Steps(u64),
    /// A replay sample buffer without a sample interval (EINVAL).
    SamplesWithoutInterval,
    /// A replay step's op is neither ALLOC nor FREE (EINVAL).
    StepOp(u32),
    /// A replay id at or above `MEMLAB_REPLAY_MAX_IDS` (EINVAL).
    StepId(u32),
    /// A replay FREE step with a family, gfp or arg (EINVAL).
    FreeFields(u32),
    /// A replay alloc of an id that is live (EINVAL).
    IdLive(u32),
    /// A replay free of an id that is not live (EINVAL).
    IdNotLive(u32),
    /// More distinct kmem_cache sizes than `MEMLAB_REPLAY_MAX_CACHES`
    /// (E2BIG).
    Caches,
    /// The request would take its file past `max_pinned_mb` (E2BIG).
    PinCap {
        /// Bytes it would hold.
        bytes: u64,
        /// Bytes the file holds already.
        pinned: u64,
        /// The cap, bytes.
        cap: u64,
    },
    /// The request would take all files together past
    /// `max_pinned_total_mb` (E2BIG).
    TotalCap {
        /// Bytes it would hold.
        bytes: u64,
        /// Bytes all files hold already.
        pinned: u64,
        /// The cap, bytes.
        cap: u64,
    },
    /// The file holds `MAX_HANDLES` handles already (E2BIG).
    Handles(u32),
    /// A session op other than OPEN, RUN and CLOSE (EINVAL).
    SessionOp(u32),
    /// A session id table of 0 or more than `MEMLAB_REPLAY_MAX_IDS`
    /// slots (EINVAL).
    SessionIds(u32),
    /// A session opened with `max_bytes` 0 (EINVAL).
    SessionBytes,
    /// A session step's id at or above the session's table (EINVAL).
    SessionId {
        /// The id.
        id: u32,
        /// The table's slots.
        ids: u32,
    },
    /// A chunk whose live memory would pass the session's `max_bytes`
    /// (E2BIG).
    SessionPeak {
        /// Bytes live at its peak.
        peak: u64,
        /// The session's `max_bytes`.
        max: u64,
    },
    /// No session of this number in this file (EINVAL).
    NoSession(u32),
    /// The file holds `MEMLAB_SESSION_MAX` sessions already (E2BIG).
    Sessions,
}

impl Refusal {
    /// The errno class of the refusal.
    pub const fn error(self) -> RequestError {
        use RequestError::{Invalid, TooBig};
        match self {
            Refusal::SizeAbove { error, .. } | Refusal::Order { error, .. } => error,
            Refusal::Unaddressable(_)
            | Refusal::SamplesCap(_)
            | Refusal::Steps(_)
            | Refusal::Caches
            | Refusal::PinCap { .. }
            | Refusal::TotalCap { .. }
            | Refusal::Handles(_)
            | Refusal::SessionPeak { .. }
            | Refusal::Sessions => TooBig,
            _ => Invalid,
        }
    }

    /// The errno's name, as `errno.h` spells it.
    pub const fn errno_name(self) -> &'static str {
        match self.error() {
            RequestError::Invalid => "EINVAL",
            RequestError::TooBig => "E2BIG",
        }
    }
}

impl From<Refusal> for RequestError {
    fn from(r: Refusal) -> Self {
        r.error()
    }
}

/// `bytes` in the largest binary unit that keeps it whole or readable.
struct Bytes(u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        if b >= 1 << 30 {
            write!(f, "{} GiB", b >> 30)
        } else if b >= 1 << 20 {
            write!(f, "{} MiB", b >> 20)
        } else if b >= 1 << 10 {
            write!(f, "{} KiB", b >> 10)
        } else {
            write!(f, "{b} B")
        }
    }
}

impl Refusal {
    /// The rules of a request's fields, ALLOC's and shared ones.
    fn fmt_alloc(self, f: &mut fmt::Formatter<'_>) -> Option<fmt::Result> {
        Some(match self {
            Refusal::OutputSet { ioctl } => write!(
                f,
                "{}: output and reserved fields must come in as 0",
                ioctl.name()
            ),
            Refusal::Backend(b) => write!(f, "backend {b} is neither real (0) nor mirror (1)"),
            Refusal::Family { ioctl, family } => {
                let takes = match ioctl {
                    Ioctl::Alloc => "kmalloc, vmalloc, pages, kmem_cache or dma",
                    Ioctl::Workload => "kmalloc, vmalloc, pages or kmem_cache",
                    Ioctl::Replay | Ioctl::Session => "kmalloc, pages or kmem_cache",
                };
                write!(
                    f,
                    "{} is not a {} family: {takes}",
                    FamilyName(family),
                    ioctl.name()
                )
            }
            Refusal::GfpBits(g) => write!(
                f,
                "gfp {g:#x} has bits beyond a selector (low byte) and MEMLAB_GFP_ZERO {:#x} (none in a replay step)",
                uapi::MEMLAB_GFP_ZERO
            ),
            Refusal::GfpSelector(s) => write!(
                f,
                "gfp selector {s} is above the last one, {} (GFP_DMA32)",
                uapi::MEMLAB_NR_GFP - 1
            ),
            Refusal::SlabGfp { family, gfp } => write!(
                f,
                "{} with {gfp}: the slab allocators refuse __GFP_DMA32 and __GFP_HIGHMEM (GFP_SLAB_BUG_MASK)",
                FamilyName(family)
            ),
            Refusal::CacheFlags(c) => write!(
                f,
                "cache_flags {c:#x} has bits beyond MEMLAB_CACHE_FLAGS {:#x}",
                uapi::MEMLAB_CACHE_FLAGS
            ),
            Refusal::FieldNotTaken {
                family,
                field,
                value,
            } => write!(f, "{} takes no {field} (got {value})", FamilyName(family)),
            Refusal::SizeBelow { family, size, min } => write!(
                f,
                "{} size {size}: size must be at least {min}",
                FamilyName(family)
            ),
            Refusal::SizeAbove {
                family, size, max, ..
            } => write!(
                f,
                "{} size {size}: size must be at most {max} (KMALLOC_MAX_SIZE)",
                FamilyName(family)
            ),
            Refusal::Unaddressable(s) => {
                write!(f, "size {s} is more than this machine can address")
            }
            Refusal::Order { order, .. } => {
                write!(f, "order {order} is above MAX_PAGE_ORDER {MAX_PAGE_ORDER}")
            }
            Refusal::Align(a) => write!(
                f,
                "align {a} is not a power of two up to {KMEM_CACHE_MAX_ALIGN} (PAGE_SIZE << MAX_PAGE_ORDER)"
            ),
            _ => return None,
        })
    }

    /// The rules only WORKLOAD has.
    fn fmt_workload(self, f: &mut fmt::Formatter<'_>) -> Option<fmt::Result> {
        Some(match self {
            Refusal::Pattern(p) => {
                write!(f, "pattern {p} is not PAIRS (0), BATCH (1) or RANDOM (2)")
            }
            Refusal::Count(c) => write!(
                f,
                "count {c}: count must be 1..={} (MEMLAB_WORKLOAD_MAX_COUNT)",
                uapi::MEMLAB_WORKLOAD_MAX_COUNT
            ),
            Refusal::OpsPerSample(k) => write!(
                f,
                "ops_per_sample {k}: K must be 1..={} (MEMLAB_WORKLOAD_MAX_K)",
                uapi::MEMLAB_WORKLOAD_MAX_K
            ),
            Refusal::Warmup { warmup, max } => {
                write!(
                    f,
                    "warmup {warmup} is above {max} (the count; 0 for FREE_KEPT)"
                )
            }
            Refusal::Flags(x) => write!(
                f,
                "workload flags {x:#x}: one of 0, KEEP (1), FREE_KEPT (2) or THROUGHPUT (4)"
            ),
            Refusal::ThroughputSamples => {
                f.write_str("a THROUGHPUT run takes no sample buffer (samples_ptr, samples_cap 0)")
            }
            Refusal::Keep { pattern, family } => write!(
                f,
                "KEEP of pattern {pattern}, {}: KEEP runs BATCH (1) of kmalloc or pages only",
                FamilyName(family)
            ),
            Refusal::BufferHalf { ioctl } => write!(
                f,
                "{}: a sample buffer's address and length come together or not at all",
                ioctl.name()
            ),
            Refusal::SamplesShort { ioctl, room, need } => write!(
                f,
                "{}: the sample buffer holds {room}, the run needs {need}",
                ioctl.name()
            ),
            Refusal::SamplesCap(c) => write!(
                f,
                "samples_cap {c} is above {} (2 * MEMLAB_WORKLOAD_MAX_COUNT)",
                2 * uapi::MEMLAB_WORKLOAD_MAX_COUNT
            ),
            _ => return None,
        })
    }

    /// The rules only REPLAY has.
    fn fmt_replay(self, f: &mut fmt::Formatter<'_>) -> Option<fmt::Result> {
        Some(match self {
            Refusal::Zone(z) => write!(f, "zone {z} is not DMA (0), DMA32 (1) or Normal (2)"),
            Refusal::StepsLen(l) => write!(
                f,
                "steps_len {l} is not a non-zero multiple of {} (struct memlab_replay_step)",
                core::mem::size_of::<uapi::MemlabReplayStep>()
            ),
            Refusal::Steps(n) => write!(
                f,
                "{n} steps is above MEMLAB_REPLAY_MAX_STEPS {}",
                uapi::MEMLAB_REPLAY_MAX_STEPS
            ),
            Refusal::SamplesWithoutInterval => {
                f.write_str("a sample buffer needs sample_every above 0")
            }
            Refusal::StepOp(op) => write!(f, "step op {op} is neither ALLOC (0) nor FREE (1)"),
            Refusal::StepId(id) => write!(
                f,
                "id {id} is not below MEMLAB_REPLAY_MAX_IDS {}",
                uapi::MEMLAB_REPLAY_MAX_IDS
            ),
            Refusal::FreeFields(id) => {
                write!(f, "free of id {id} takes no family, gfp or arg")
            }
            Refusal::IdLive(id) => write!(f, "alloc of id {id}, which is live"),
            Refusal::IdNotLive(id) => write!(f, "free of id {id}, which is not live"),
            Refusal::Caches => write!(
                f,
                "more than MEMLAB_REPLAY_MAX_CACHES {} distinct kmem_cache sizes",
                uapi::MEMLAB_REPLAY_MAX_CACHES
            ),
            _ => return None,
        })
    }

    /// The rules only SESSION has.
    fn fmt_session(self, f: &mut fmt::Formatter<'_>) -> Option<fmt::Result> {
        Some(match self {
            Refusal::SessionOp(op) => {
                write!(f, "session op {op} is not OPEN (0), RUN (1) or CLOSE (2)")
            }
            Refusal::SessionIds(n) => write!(
                f,
                "a session of {n} ids: ids must be 1..={} (MEMLAB_REPLAY_MAX_IDS)",
                uapi::MEMLAB_REPLAY_MAX_IDS
            ),
            Refusal::SessionBytes => f.write_str("a session needs max_bytes above 0"),
            Refusal::SessionId { id, ids } => {
                write!(f, "id {id} is not below the session's {ids} ids")
            }
            Refusal::SessionPeak { peak, max } => write!(
                f,
                "the steps would hold {} live, past the session's max_bytes {}",
                Bytes(peak),
                Bytes(max)
            ),
            Refusal::NoSession(n) => write!(f, "this file has no session {n}"),
            Refusal::Sessions => write!(
                f,
                "this file holds MEMLAB_SESSION_MAX {} sessions",
                uapi::MEMLAB_SESSION_MAX
            ),
            _ => return None,
        })
    }

    /// The caps.
    fn fmt_cap(self, f: &mut fmt::Formatter<'_>) -> Option<fmt::Result> {
        Some(match self {
            Refusal::PinCap { bytes, pinned, cap } => write!(
                f,
                "{} would pass this file's pin cap, max_pinned_mb={} ({} held)",
                Bytes(bytes),
                cap >> 20,
                Bytes(pinned)
            ),
            Refusal::TotalCap { bytes, pinned, cap } => write!(
                f,
                "{} would pass the module's pin budget, max_pinned_total_mb={} ({} held by all files)",
                Bytes(bytes),
                cap >> 20,
                Bytes(pinned)
            ),
            Refusal::Handles(n) => write!(f, "this file holds {n} handles, MAX_HANDLES"),
            _ => return None,
        })
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_alloc(f)
            .or_else(|| self.fmt_workload(f))
            .or_else(|| self.fmt_replay(f))
            .or_else(|| self.fmt_session(f))
            .or_else(|| self.fmt_cap(f))
            .unwrap_or(Ok(()))
    }
}
