// SPDX-License-Identifier: GPL-2.0

//! One WORKLOAD request, decoded once from `struct memlab_workload`.
//!
//! [`WorkloadRequest::try_from`] holds every rule: outputs not zero, an
//! unknown backend, pattern or family, a count outside
//! `1..=MEMLAB_WORKLOAD_MAX_COUNT`, an order above `MAX_PAGE_ORDER`, K
//! outside `1..=MEMLAB_WORKLOAD_MAX_K`, a warm-up longer than the run (any
//! for FREE_KEPT), unknown flags, a THROUGHPUT run with a sample buffer,
//! KEEP of anything but a BATCH of kmalloc or pages, a sample buffer given
//! by half or too small, an object below 8 bytes, and an order for a sized
//! family are `EINVAL`; a sample buffer above `2 * MEMLAB_WORKLOAD_MAX_COUNT`,
//! an object above `KMALLOC_MAX_SIZE` and a run the machine could not hold
//! are `E2BIG`. It also works out [`WorkloadRequest::bytes`], the most the
//! run holds at once, which the caller charges against the pin caps.
//!
//! Plain `core` Rust: the host tests compile this file.

use super::{object_size, BackendId, Ioctl, Refusal, RequestError};
use crate::buddy::{MAX_PAGE_ORDER, PAGE_SIZE};
use crate::uapi;

/// How a workload orders its allocs and frees (`MEMLAB_PATTERN_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// Alloc, then free at once.
    Pairs,
    /// All allocs, then all frees.
    Batch,
    /// A seeded mix of allocs of random size or order and frees of random
    /// live objects.
    Random,
}

impl Pattern {
    /// Decodes `MEMLAB_PATTERN_*`.
    pub fn from_uapi(p: u32) -> Result<Self, Refusal> {
        match p {
            uapi::MEMLAB_PATTERN_PAIRS => Ok(Pattern::Pairs),
            uapi::MEMLAB_PATTERN_BATCH => Ok(Pattern::Batch),
            uapi::MEMLAB_PATTERN_RANDOM => Ok(Pattern::Random),
            _ => Err(Refusal::Pattern(p)),
        }
    }

    /// The most objects the pattern holds at once over `count` steps.
    pub const fn max_live(self, count: u32) -> u32 {
        match self {
            Pattern::Pairs => 1,
            Pattern::Batch => count,
            Pattern::Random => {
                let half = count / 2;
                if half == 0 {
                    1
                } else {
                    half
                }
            }
        }
    }
}

/// What a workload run does with its objects (`flags`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every call timed alone, samples of K calls (flags 0).
    Timed,
    /// BATCH's allocations, timed; the objects stay with the file.
    Keep,
    /// The frees of what KEEP left, timed, on the caller's CPU.
    FreeKept,
    /// One window around the whole pass.
    Throughput,
}

impl Mode {
    /// Decodes `flags`: 0 or exactly one `MEMLAB_WORKLOAD_*` flag.
    pub fn from_uapi(f: u32) -> Result<Self, Refusal> {
        match f {
            0 => Ok(Mode::Timed),
            uapi::MEMLAB_WORKLOAD_KEEP => Ok(Mode::Keep),
            uapi::MEMLAB_WORKLOAD_FREE_KEPT => Ok(Mode::FreeKept),
            uapi::MEMLAB_WORKLOAD_THROUGHPUT => Ok(Mode::Throughput),
            _ => Err(Refusal::Flags(f)),
        }
    }
}

/// The allocator family of a workload and the size or order of its
/// objects (the largest for RANDOM).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadFamily {
    /// `kmalloc(size)`; RANDOM picks sizes in `8..size`.
    Kmalloc {
        /// Bytes, `8..=KMALLOC_MAX_SIZE`.
        size: u32,
    },
    /// `alloc_pages(order)`; RANDOM picks orders in `0..=order`.
    Pages {
        /// `0..=MAX_PAGE_ORDER`.
        order: u32,
    },
    /// Objects of a fresh kmem_cache of `size` bytes for the run.
    KmemCache {
        /// Bytes, `8..=KMALLOC_MAX_SIZE`.
        size: u32,
    },
    /// `vmalloc(size)`.
    Vmalloc {
        /// Bytes, `8..=KMALLOC_MAX_SIZE`.
        size: u32,
    },
}

impl WorkloadFamily {
    /// What one step allocates: the size, or the order for pages.
    pub const fn arg(self) -> u32 {
        match self {
            WorkloadFamily::Pages { order } => order,
            WorkloadFamily::Kmalloc { size }
            | WorkloadFamily::KmemCache { size }
            | WorkloadFamily::Vmalloc { size } => size,
        }
    }

    /// The most one object holds: its page block, or its size rounded up
    /// to a power of two (its size class and more: 96 and 192 are below
    /// the next power of two; above 8 KiB whole pages of the next order).
    pub const fn bytes_per_object(self) -> u64 {
        match self {
            WorkloadFamily::Pages { order } => (PAGE_SIZE as u64) << order,
            _ => (self.arg() as u64).next_power_of_two(),
        }
    }
}

/// A validated WORKLOAD request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkloadRequest {
    /// On which allocators.
    pub backend: BackendId,
    /// What to allocate.
    pub family: WorkloadFamily,
    /// In which order.
    pub pattern: Pattern,
    /// Steps, `1..=MEMLAB_WORKLOAD_MAX_COUNT`.
    pub count: u32,
    /// Seed of RANDOM.
    pub seed: u32,
    /// Operations per sample, `1..=MEMLAB_WORKLOAD_MAX_K`.
    pub k: u32,
    /// Steps run untimed first, `0..=count` (0 for FREE_KEPT).
    pub warmup: u32,
    /// The user address of the raw samples, with room for all of them.
    pub samples_ptr: Option<u64>,
    /// Timed, KEEP, FREE_KEPT or THROUGHPUT.
    pub mode: Mode,
    /// The most bytes the run holds at once: its objects and its own
    /// vectors.
    pub bytes: usize,
}

impl WorkloadRequest {
    /// Samples of each kind a timed pass takes: one per K calls.
    pub const fn samples(&self) -> u32 {
        self.count.div_ceil(self.k)
    }

    /// Whether `self`, a FREE_KEPT request, names the objects `kept` left.
    pub fn frees_what(&self, kept: &WorkloadRequest) -> bool {
        self.mode == Mode::FreeKept
            && (self.backend, self.family, self.pattern, self.count)
                == (kept.backend, kept.family, kept.pattern, kept.count)
    }
}

/// Whether every output field of `w` is zero, as it must come in.
fn outputs_clear(w: &uapi::MemlabWorkload) -> bool {
    let inputs = uapi::MemlabWorkload {
        backend: w.backend,
        family: w.family,
        pattern: w.pattern,
        count: w.count,
        size: w.size,
        order: w.order,
        seed: w.seed,
        ops_per_sample: w.ops_per_sample,
        warmup: w.warmup,
        samples_ptr: w.samples_ptr,
        samples_cap: w.samples_cap,
        flags: w.flags,
        ..Default::default()
    };
    inputs == *w
}

/// The scalar fields: backend, pattern, count, order, K, flags, warm-up.
fn scalars(w: &uapi::MemlabWorkload) -> Result<(BackendId, Pattern, Mode), Refusal> {
    let backend = BackendId::from_uapi(w.backend)?;
    let pattern = Pattern::from_uapi(w.pattern)?;
    if w.count == 0 || w.count > uapi::MEMLAB_WORKLOAD_MAX_COUNT {
        return Err(Refusal::Count(w.count));
    }
    if w.order > MAX_PAGE_ORDER {
        return Err(Refusal::Order {
            order: u64::from(w.order),
            error: RequestError::Invalid,
        });
    }
    if w.ops_per_sample == 0 || w.ops_per_sample > uapi::MEMLAB_WORKLOAD_MAX_K {
        return Err(Refusal::OpsPerSample(w.ops_per_sample));
    }
    let mode = Mode::from_uapi(w.flags)?;
    // FREE_KEPT frees what KEEP left: nothing to warm up with.
    let max = if mode == Mode::FreeKept { 0 } else { w.count };
    if w.warmup > max {
        return Err(Refusal::Warmup {
            warmup: w.warmup,
            max,
        });
    }
    Ok((backend, pattern, mode))
}

/// The raw sample buffer: all samples fit, or none are asked for (and
/// none for THROUGHPUT).
fn sample_buffer(w: &uapi::MemlabWorkload, mode: Mode) -> Result<Option<u64>, Refusal> {
    let given = w.samples_ptr != 0 || w.samples_cap != 0;
    if mode == Mode::Throughput && given {
        return Err(Refusal::ThroughputSamples);
    }
    if w.samples_cap > 2 * uapi::MEMLAB_WORKLOAD_MAX_COUNT {
        return Err(Refusal::SamplesCap(w.samples_cap));
    }
    if (w.samples_ptr == 0) != (w.samples_cap == 0) {
        return Err(Refusal::BufferHalf {
            ioctl: Ioctl::Workload,
        });
    }
    let need = 2 * u64::from(w.count.div_ceil(w.ops_per_sample));
    if w.samples_ptr != 0 && u64::from(w.samples_cap) < need {
        return Err(Refusal::SamplesShort {
            ioctl: Ioctl::Workload,
            room: u64::from(w.samples_cap),
            need,
        });
    }
    Ok((w.samples_ptr != 0).then_some(w.samples_ptr))
}

/// The family, with its size or order.
fn family(w: &uapi::MemlabWorkload) -> Result<WorkloadFamily, Refusal> {
    let sized = |make: fn(u32) -> WorkloadFamily| {
        let size = object_size(w.family, w.size, 8, RequestError::TooBig)?;
        if w.order != 0 {
            return Err(Refusal::FieldNotTaken {
                family: w.family,
                field: "order",
                value: u64::from(w.order),
            });
        }
        Ok(make(size as u32))
    };
    match w.family {
        uapi::MEMLAB_FAMILY_PAGES => {
            // The size is not read; it has always had to fit 32 bits.
            if u32::try_from(w.size).is_err() {
                return Err(Refusal::FieldNotTaken {
                    family: w.family,
                    field: "size",
                    value: w.size,
                });
            }
            Ok(WorkloadFamily::Pages { order: w.order })
        }
        uapi::MEMLAB_FAMILY_KMALLOC => sized(|size| WorkloadFamily::Kmalloc { size }),
        uapi::MEMLAB_FAMILY_KMEM_CACHE => sized(|size| WorkloadFamily::KmemCache { size }),
        uapi::MEMLAB_FAMILY_VMALLOC => sized(|size| WorkloadFamily::Vmalloc { size }),
        f => Err(Refusal::Family {
            ioctl: Ioctl::Workload,
            family: f,
        }),
    }
}

impl TryFrom<&uapi::MemlabWorkload> for WorkloadRequest {
    type Error = Refusal;

    fn try_from(w: &uapi::MemlabWorkload) -> Result<Self, Refusal> {
        if !outputs_clear(w) {
            return Err(Refusal::OutputSet {
                ioctl: Ioctl::Workload,
            });
        }
        let (backend, pattern, mode) = scalars(w)?;
        if matches!(mode, Mode::Keep | Mode::FreeKept)
            && (pattern != Pattern::Batch
                || !matches!(
                    w.family,
                    uapi::MEMLAB_FAMILY_KMALLOC | uapi::MEMLAB_FAMILY_PAGES
                ))
        {
            return Err(Refusal::Keep {
                pattern: w.pattern,
                family: w.family,
            });
        }
        let samples_ptr = sample_buffer(w, mode)?;
        let family = family(w)?;
        let mut r = WorkloadRequest {
            backend,
            family,
            pattern,
            count: w.count,
            seed: w.seed,
            k: w.ops_per_sample,
            warmup: w.warmup,
            samples_ptr,
            mode,
            bytes: 0,
        };
        // The objects live at once, and the run's own vectors: two steps
        // of 8 bytes per count, a slot (and, for RANDOM, two list entries)
        // per live object, and four sample vectors (alloc and free, for
        // the floor and the pass) plus the floor's sorted copy.
        let max_live = u64::from(pattern.max_live(w.count));
        let vectors =
            u64::from(w.count) * 16 + max_live * (24 + 8) + u64::from(r.samples()) * 8 * 6;
        let bytes = family
            .bytes_per_object()
            .saturating_mul(max_live)
            .saturating_add(vectors);
        r.bytes = usize::try_from(bytes).map_err(|_| Refusal::Unaddressable(bytes))?;
        Ok(r)
    }
}
