// SPDX-License-Identifier: GPL-2.0

//! [`SlabCache`] at work: creation (`kmem_cache_create()`), its numbers,
//! and growing and releasing slabs; objects are in `object.rs`.

use core::ptr::{self, NonNull};

use super::layout::{
    align_up, calculate_geometry, empty_bitmap, FreePtr, Reciprocal, SlabMeta, NIL,
};
use super::list::{ListKind, SlabList};
use super::{
    new_owner_tag, CacheName, PageSource, SlabCache, SlabError, SlabFlags, SlabInfo, SlabStat,
    CACHE_LINE_SIZE, DEFAULT_NR_CPUS, MAX_NAME_LEN, SLAB_MIN_ALIGN,
};
use crate::buddy::{MAX_PAGE_ORDER, PAGE_SIZE};

impl SlabCache {
    /// Creates a cache of objects of `size` bytes aligned to `align` (0 for
    /// the default), like `kmem_cache_create()`, with slabs sized as SLUB
    /// sizes them on [`DEFAULT_NR_CPUS`] CPUs. `ctor` runs on every object
    /// of a new slab; objects must be freed in their constructed state.
    pub fn new(
        name: &str,
        size: usize,
        align: usize,
        flags: SlabFlags,
        ctor: Option<fn(*mut u8)>,
    ) -> Result<SlabCache, SlabError> {
        Self::new_for_cpus(name, size, align, flags, ctor, DEFAULT_NR_CPUS)
    }

    /// [`SlabCache::new`] with slabs sized as SLUB sizes them on a machine
    /// with `nr_cpus` CPUs (`num_present_cpus()` at boot, or `nr_cpu_ids`
    /// when that is 1 or less).
    pub fn new_for_cpus(
        name: &str,
        size: usize,
        align: usize,
        flags: SlabFlags,
        ctor: Option<fn(*mut u8)>,
        nr_cpus: u32,
    ) -> Result<SlabCache, SlabError> {
        if name.is_empty()
            || name.len() > MAX_NAME_LEN
            || name
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            return Err(SlabError::InvalidName);
        }
        if size == 0 {
            return Err(SlabError::InvalidSize);
        }
        if align != 0 && (!align.is_power_of_two() || align > PAGE_SIZE << MAX_PAGE_ORDER) {
            return Err(SlabError::InvalidAlign);
        }
        // calculate_alignment() in mm/slab_common.c.
        let mut align = align.max(SLAB_MIN_ALIGN);
        if flags.contains(SlabFlags::HWCACHE_ALIGN) {
            let mut ralign = CACHE_LINE_SIZE;
            while size <= ralign / 2 {
                ralign /= 2;
            }
            align = align.max(ralign);
        }
        // calculate_sizes() in mm/slub.c: the free pointer goes after the
        // object when the object must keep its state while free (a
        // constructor), else near its middle.
        let words = align_up(size, 8).ok_or(SlabError::ObjectTooLarge)?;
        let (fp_offset, inuse) = if ctor.is_some() {
            (
                words,
                words.checked_add(8).ok_or(SlabError::ObjectTooLarge)?,
            )
        } else {
            ((size / 2) & !7, words)
        };
        let stride = align_up(inuse, align).ok_or(SlabError::ObjectTooLarge)?;
        let geo = calculate_geometry(stride, nr_cpus).ok_or(SlabError::ObjectTooLarge)?;
        let colour_off = CACHE_LINE_SIZE.max(align);
        let tag = new_owner_tag()?;
        let random = u64::from(tag.get()).wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ 0x5851_F42D;
        let mut bytes = [0; MAX_NAME_LEN];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        // set_min_partial() in mm/slub.c: min(10, max(5, ilog2(size) / 2)).
        let empty_limit = u64::from((size.ilog2() / 2).clamp(5, 10));
        Ok(SlabCache {
            name: CacheName {
                bytes,
                len: name.len() as u8,
            },
            tag,
            object_size: size,
            size: stride,
            align,
            flags,
            ctor,
            order: geo.order,
            objects: geo.objects as u32,
            // The stride fits a u32: a slab of at most MAX_PAGE_ORDER holds it.
            recip: Reciprocal::new(stride as u32),
            fp: FreePtr {
                offset: fp_offset,
                random,
            },
            colour_off,
            colours: (geo.leftover / colour_off) as u32 + 1,
            colour_next: 0,
            lists: [SlabList::EMPTY; 3],
            active_objs: 0,
            empty_limit,
        })
    }

    /// The cache's name.
    pub fn name(&self) -> &str {
        core::str::from_utf8(
            self.name
                .bytes
                .get(..usize::from(self.name.len))
                .unwrap_or(&[]),
        )
        .unwrap_or("")
    }

    /// The owner tag of this cache's slabs in the page metadata.
    pub fn tag(&self) -> u32 {
        self.tag.get()
    }

    /// Object size requested at creation.
    pub fn object_size(&self) -> usize {
        self.object_size
    }

    /// Bytes between objects (object size rounded to the alignment).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Object alignment.
    pub fn align(&self) -> usize {
        self.align
    }

    /// Creation flags.
    pub fn flags(&self) -> SlabFlags {
        self.flags
    }

    /// Order of every slab.
    pub fn order(&self) -> u32 {
        self.order
    }

    /// Objects per slab.
    pub fn objects_per_slab(&self) -> u32 {
        self.objects
    }

    /// Number of distinct colour offsets slabs cycle through.
    pub fn colours(&self) -> u32 {
        self.colours
    }

    /// SLUB's `min_partial`: a slab that becomes empty is released once
    /// this many slabs have free objects, empty ones counted.
    pub fn empty_limit(&self) -> u64 {
        self.empty_limit
    }

    /// Sets [`SlabCache::empty_limit`] (applied on later frees;
    /// `u64::MAX` keeps every empty slab).
    pub fn set_empty_limit(&mut self, limit: u64) {
        self.empty_limit = limit;
    }

    /// Objects allocated.
    pub fn active_objs(&self) -> u64 {
        self.active_objs
    }

    /// The numbers /proc/slabinfo prints.
    pub fn info(&self) -> SlabInfo {
        let [partial, full, empty] = self.lists;
        let num_slabs = partial.len + full.len + empty.len;
        SlabInfo {
            active_objs: self.active_objs,
            num_objs: num_slabs.saturating_mul(u64::from(self.objects)),
            objsize: u32::try_from(self.size).unwrap_or(u32::MAX),
            objperslab: self.objects,
            pagesperslab: 1 << self.order,
            active_slabs: partial.len + full.len,
            num_slabs,
        }
    }

    /// The numbers /sys/kernel/slab/<cache>/ gives under these names.
    pub fn stat(&self) -> SlabStat {
        let [partial, full, empty] = self.lists;
        let slabs = partial.len + full.len + empty.len;
        let per_slab = u64::from(self.objects);
        SlabStat {
            object_size: self.object_size as u64,
            slab_size: self.size as u64,
            objs_per_slab: per_slab,
            order: self.order,
            objects: self.active_objs,
            total_objects: slabs.saturating_mul(per_slab),
            slabs,
            partial: partial.len + empty.len,
            // Full slabs hold `per_slab` each and empty ones none: the rest
            // of the allocated objects are on partial slabs.
            objects_partial: self
                .active_objs
                .saturating_sub(full.len.saturating_mul(per_slab)),
            min_partial: self.empty_limit,
        }
    }

    /// Releases every empty slab to the page source; returns how many.
    pub fn shrink<P: PageSource>(&mut self, src: &mut P) -> Result<u64, SlabError> {
        let mut released = 0;
        loop {
            let slab = self.lists[ListKind::Empty as usize].head;
            if slab.is_null() {
                return Ok(released);
            }
            // SAFETY: `slab` heads the empty list, a live descriptor.
            unsafe { self.discard_slab(src, slab)? };
            released += 1;
        }
    }

    /// Releases every slab if no object is allocated (`kmem_cache_destroy()`);
    /// otherwise reports how many objects are.
    pub fn destroy<P: PageSource>(&mut self, src: &mut P) -> Result<(), SlabError> {
        if self.active_objs != 0 {
            return Err(SlabError::Busy(self.active_objs));
        }
        self.shrink(src).map(|_| ())
    }

    /// Allocates, describes and constructs a new slab on the empty list.
    pub(super) fn grow<P: PageSource>(&mut self, src: &mut P) -> Result<(), SlabError> {
        let head = src
            .alloc_block(self.order, &self.tag)
            .ok_or(SlabError::OutOfMemory)?;
        let Some((_, area)) = src.head_of_mut(head.as_ptr()) else {
            // A page source breaking its contract: give the block back.
            let _ = src.free_block(head, self.order, &self.tag);
            return Err(SlabError::Corrupt);
        };
        let colour = self.colour_next as usize * self.colour_off;
        self.colour_next += 1;
        if self.colour_next >= self.colours {
            self.colour_next = 0;
        }
        let slab = area.as_ptr().cast::<SlabMeta>();
        // SAFETY: The page source hands us `PAGE_SIZE << order` bytes, aligned
        // to that size and exclusively ours, and the owner area of its head
        // frame, which fits a `SlabMeta`; the geometry computed at creation
        // fits the largest colour and all objects in the block.
        unsafe {
            let objs = head.as_ptr().add(colour);
            ptr::write(
                slab,
                SlabMeta {
                    next: ptr::null_mut(),
                    prev: ptr::null_mut(),
                    objs,
                    freelist: NIL,
                    fresh: 0,
                    inuse: 0,
                    list: ListKind::Empty as u8,
                    bitmap: empty_bitmap(self.objects as usize),
                },
            );
            if let Some(ctor) = self.ctor {
                for i in 0..self.objects as usize {
                    ctor(objs.add(i * self.size));
                }
            }
            self.list_add(slab, ListKind::Empty);
        }
        Ok(())
    }

    /// Gives the empty slab `slab` back to the page source.
    ///
    /// # Safety
    ///
    /// `slab` must be a live descriptor of this cache on the empty list.
    pub(super) unsafe fn discard_slab<P: PageSource>(
        &mut self,
        src: &mut P,
        slab: *mut SlabMeta,
    ) -> Result<(), SlabError> {
        // SAFETY: `slab` is live (caller); unlink before the memory goes.
        let objs = unsafe {
            self.list_del(slab);
            (*slab).objs
        };
        let head = objs.with_addr(objs.addr() & !(self.slab_bytes() - 1));
        let head = NonNull::new(head).ok_or(SlabError::Corrupt)?;
        if let Err(e) = src.free_block(head, self.order, &self.tag) {
            // SAFETY: The block was not freed, so the descriptor is still live.
            unsafe { self.list_add(slab, ListKind::Empty) };
            return Err(SlabError::PageSource(e));
        }
        Ok(())
    }
}
