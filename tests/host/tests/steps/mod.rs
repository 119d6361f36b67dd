// SPDX-License-Identifier: GPL-2.0

//! Replay steps for the tests of REPLAY (`replay.rs`) and SESSION
//! (`session.rs`), which share the step rules.

#![allow(dead_code)]

use memlab_core::uapi::{self, MemlabReplayStep};

/// An alloc of `family` (`arg`: bytes, or the order of pages) under `id`.
pub fn alloc(family: u32, id: u32, arg: u64) -> MemlabReplayStep {
    MemlabReplayStep {
        op: uapi::MEMLAB_REPLAY_ALLOC,
        family,
        gfp: uapi::MEMLAB_GFP_KERNEL,
        id,
        arg,
    }
}

pub fn kmalloc(id: u32, size: u64) -> MemlabReplayStep {
    alloc(uapi::MEMLAB_FAMILY_KMALLOC, id, size)
}

pub fn pages(id: u32, order: u64) -> MemlabReplayStep {
    alloc(uapi::MEMLAB_FAMILY_PAGES, id, order)
}

pub fn cache(id: u32, size: u64) -> MemlabReplayStep {
    alloc(uapi::MEMLAB_FAMILY_KMEM_CACHE, id, size)
}

/// A free of `id`.
pub fn free(id: u32) -> MemlabReplayStep {
    MemlabReplayStep {
        op: uapi::MEMLAB_REPLAY_FREE,
        id,
        ..Default::default()
    }
}
