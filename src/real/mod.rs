// SPDX-License-Identifier: GPL-2.0

//! The kernel's real allocators behind small safe owners.
//!
//! PLACEHOLDER: the families are being written (issue 4). Until then every
//! request fails with ENOTSUPP so the ABI can be exercised end to end.

use crate::uapi;
use kernel::prelude::*;

/// State shared by every open file and debugfs: exercise reports, the DMA device.
pub(crate) struct Real {}

impl Real {
    /// Creates the shared state.
    pub(crate) fn new() -> Result<Self> {
        Ok(Real {})
    }

    /// Allocates what `req` names (already validated for shape by the caller).
    pub(crate) fn alloc(&self, _req: &uapi::MemlabAlloc) -> Result<RealBlock> {
        Err(ENOTSUPP)
    }

    /// Runs exercise `id` with `reps` repetitions per case.
    pub(crate) fn exercise(&self, _id: u32, _reps: u32) -> Result<uapi::MemlabExercise> {
        Err(ENOTSUPP)
    }
}

/// One live allocation; dropping it frees the memory.
pub(crate) struct RealBlock {}

impl RealBlock {
    /// What the kernel handed out (the caller fills in `handle`).
    pub(crate) fn info(&self) -> uapi::MemlabBlockInfo {
        uapi::MemlabBlockInfo::default()
    }

    /// Bytes this allocation pins (counted against `max_pinned_mb`).
    pub(crate) fn pinned_bytes(&self) -> usize {
        0
    }
}
