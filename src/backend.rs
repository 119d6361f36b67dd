// SPDX-License-Identifier: GPL-2.0

//! The seam between the ioctl layer and the two backends.
//!
//! The real allocators ([`crate::real::Real`]) and the mirror
//! ([`crate::mirror::Mirror`]) both implement [`Backend`]: one call that
//! serves a validated [`AllocRequest`] and returns an [`Allocation`], which
//! owns the memory (dropping it frees it, on whichever backend it came from)
//! and carries its [`Facts`], built the same way on both sides.
//!
//! The workloads and the in-kernel replay call the allocators object by
//! object, untimed bookkeeping kept out of the call: an
//! [`ObjectAllocator`] is one family on one backend (its implementations
//! sit beside the owner types, in `src/real/objects.rs` and
//! `src/mirror/objects.rs`), and `workload::with_allocator` is the one
//! dispatch from a typed request to it, running an [`OnAllocator`].

use crate::platform::phys::Placement;
use crate::request::{AllocRequest, Gfp};
use crate::uapi;
use core::ptr::NonNull;
use kernel::prelude::*;

/// An allocator family set behind one call.
pub(crate) trait Backend: Sync {
    /// Allocates what `req` names. Process context: a backend may sleep
    /// (GFP_KERNEL, vmalloc, the DMA device lock) except inside the atomic
    /// sections it opens itself for atomic selectors.
    fn alloc(&self, req: &AllocRequest) -> Result<Allocation>;
}

/// One allocator family on one backend, as the workloads and the
/// in-kernel replay (`src/replay.rs`) see it.
pub(crate) trait ObjectAllocator {
    /// A live allocation.
    type Obj: Placed;
    /// Allocates `size` bytes, or `1 << order` pages for the pages family,
    /// with `gfp` (quietly: a failed allocation is a figure, not a splat).
    fn alloc(&mut self, size: usize, order: u32, gfp: Gfp) -> Result<Self::Obj>;
    /// Frees `obj`.
    fn free(&mut self, obj: Self::Obj);
    /// Bytes `obj`, asked for as `size`, may use (ksize for kmalloc).
    fn usable(&self, _obj: &Self::Obj, size: usize) -> usize {
        size
    }
}

/// Where an object lies: its first page frame, for the zone count.
pub(crate) trait Placed {
    /// The page frame of the object's first byte (0 if unknown).
    fn pfn(&self) -> u64;
}

/// Nothing: a stand-in object (the floor's).
impl Placed for () {
    fn pfn(&self) -> u64 {
        0
    }
}

impl<T> Placed for NonNull<T> {
    fn pfn(&self) -> u64 {
        linear_pfn(self.as_ptr())
    }
}

impl<T, U> Placed for (NonNull<T>, U) {
    fn pfn(&self) -> u64 {
        linear_pfn(self.0.as_ptr())
    }
}

impl<T, U, V> Placed for (NonNull<T>, U, V) {
    fn pfn(&self) -> u64 {
        linear_pfn(self.0.as_ptr())
    }
}

/// The page frame of a direct-map address.
fn linear_pfn<T>(p: *const T) -> u64 {
    crate::platform::phys::linear_phys(p.cast()) >> kernel::page::PAGE_SHIFT
}

/// Code written once for any [`ObjectAllocator`], run on the one a
/// request names.
pub(crate) trait OnAllocator {
    /// What the code returns.
    type Out;
    /// Runs on `a`.
    fn run<A: ObjectAllocator>(self, a: &mut A) -> Result<Self::Out>;
}

/// What INSPECT reports about an allocation: zone, PFNs, contiguity,
/// alignment, usable bytes, latency. No kernel virtual address.
#[derive(Clone, Copy)]
pub(crate) struct Facts(uapi::MemlabBlockInfo);

impl Facts {
    /// The facts of an allocation for `req` placed at `at`.
    pub(crate) fn new(req: &AllocRequest, at: Placement) -> Self {
        Facts(uapi::MemlabBlockInfo {
            family: req.family.to_uapi(),
            gfp: req.gfp.to_uapi(),
            size: req.size(),
            zone: at.zone,
            first_pfn: at.first_pfn,
            nr_pages: at.nr_pages,
            phys_runs: at.runs,
            align_log2: at.align_log2,
            ..Default::default()
        })
    }

    /// Bytes the caller may use (ksize, whole pages, the object size).
    pub(crate) fn usable(mut self, bytes: usize) -> Self {
        self.0.usable = bytes as u64;
        self
    }

    /// Whether `__GFP_ZERO` was asked for and the memory was checked zero.
    pub(crate) fn zeroed(mut self, zeroed: bool) -> Self {
        self.0.zeroed = u32::from(zeroed);
        self
    }

    /// The bus address of a DMA buffer.
    pub(crate) fn dma_addr(mut self, addr: u64) -> Self {
        self.0.dma_addr = addr;
        self
    }

    /// How long the allocator call took.
    pub(crate) fn took(mut self, ns: u64) -> Self {
        self.0.alloc_ns = ns;
        self
    }

    /// The INSPECT reply for `handle`.
    pub(crate) fn info(&self, handle: u32) -> uapi::MemlabBlockInfo {
        uapi::MemlabBlockInfo { handle, ..self.0 }
    }

    /// Bytes the caller may use.
    pub(crate) fn usable_bytes(&self) -> usize {
        self.0.usable as usize
    }
}

/// One live allocation from either backend; dropping it frees the memory.
pub(crate) struct Allocation {
    facts: Facts,
    pinned: usize,
    _owner: KBox<dyn Send + Sync>,
}

impl Allocation {
    /// `owner` holds the memory (frees it when dropped); it pins the usable
    /// bytes the facts report.
    pub(crate) fn new(owner: impl Send + Sync + 'static, facts: Facts) -> Result<Self> {
        let owner: KBox<dyn Send + Sync> = KBox::new(owner, GFP_KERNEL)?;
        Ok(Allocation {
            pinned: facts.usable_bytes(),
            facts,
            _owner: owner,
        })
    }

    /// Charges `bytes` against the caps instead of the usable bytes: for
    /// what holds more than it hands out (a slab, a power-of-two block,
    /// page tables). Never less than the usable bytes.
    pub(crate) fn pinning(mut self, bytes: usize) -> Self {
        self.pinned = self.pinned.max(bytes);
        self
    }

    /// What INSPECT reports.
    pub(crate) fn facts(&self) -> &Facts {
        &self.facts
    }

    /// Bytes this allocation pins, counted against `max_pinned_mb`.
    pub(crate) fn pinned_bytes(&self) -> usize {
        self.pinned
    }
}
