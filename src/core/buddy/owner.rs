// SPDX-License-Identifier: GPL-2.0

//! The owner area of an allocated block's head frame (see [`PageMeta`]),
//! found from the head's frame number in O(regions) without probing: what
//! the kernel's `virt_to_slab()` is, once a slab's address is aligned down
//! to its size.

use core::ops::DerefMut;
use core::ptr::NonNull;

use super::meta::{OwnerArea, PageState};
use super::{BlockInfo, Buddy, PageMeta, Region};

impl<M, R> Buddy<M, R>
where
    M: DerefMut<Target = [PageMeta]>,
    R: DerefMut<Target = [Region]>,
{
    /// Index in the metadata of `pfn` if it heads an allocated block, with
    /// the block.
    fn allocated_head(&self, pfn: u64) -> Option<(usize, BlockInfo)> {
        let (_, region) = self.region_of(pfn)?;
        let idx = region.meta_index(pfn) as usize;
        let m = self.meta.get(idx)?;
        (m.state == PageState::Allocated).then_some((
            idx,
            BlockInfo {
                head_pfn: pfn,
                order: u32::from(m.order),
                free: false,
                tag: m.word,
            },
        ))
    }

    /// The allocated block headed by `pfn` (exactly) and its owner area,
    /// for reading only. Reads metadata only.
    pub(crate) fn owner_area(&self, pfn: u64) -> Option<(BlockInfo, NonNull<OwnerArea>)> {
        let (idx, block) = self.allocated_head(pfn)?;
        let area = &self.meta.get(idx)?.owner;
        Some((block, NonNull::from(area)))
    }

    /// [`Buddy::owner_area`] for reading and writing. The area stays at the
    /// same address until the block is freed: the metadata storage never
    /// moves, and the buddy never reads or writes an allocated head's area.
    pub(crate) fn owner_area_mut(&mut self, pfn: u64) -> Option<(BlockInfo, NonNull<OwnerArea>)> {
        let (idx, block) = self.allocated_head(pfn)?;
        let area = &mut self.meta.get_mut(idx)?.owner;
        Some((block, NonNull::from(area)))
    }
}
