// SPDX-License-Identifier: GPL-2.0

//! [`SlabCache`] at work: creation (`kmem_cache_create()`), allocation and
//! freeing of objects, and growing and releasing slabs.

use core::ptr::{self, NonNull};

use super::layout::{align_up, bitmap_of, calculate_geometry, SlabHeader, SLAB_MAGIC};
use super::list::{ListKind, SlabList};
use super::{
    new_owner_tag, Block, CacheName, PageSource, SlabCache, SlabError, SlabFlags, SlabInfo,
    CACHE_LINE_SIZE, MAX_NAME_LEN, SLAB_MIN_ALIGN,
};
use crate::buddy::{MAX_PAGE_ORDER, PAGE_SIZE};

impl SlabCache {
    /// Creates a cache of objects of `size` bytes aligned to `align` (0 for
    /// the default), like `kmem_cache_create()`. `ctor` runs on every object
    /// of a new slab; objects must be freed in their constructed state.
    pub fn new(
        name: &str,
        size: usize,
        align: usize,
        flags: SlabFlags,
        ctor: Option<fn(*mut u8)>,
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
        let stride = align_up(size, align).ok_or(SlabError::ObjectTooLarge)?;
        let geo = calculate_geometry(stride, align).ok_or(SlabError::ObjectTooLarge)?;
        let colour_off = CACHE_LINE_SIZE.max(align);
        let tag = new_owner_tag()?;
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
            first_offset: geo.first_offset,
            colour_off,
            colours: (geo.leftover / colour_off) as u32 + 1,
            colour_next: 0,
            bitmap_words: geo.objects.div_ceil(64) as u16,
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

    /// Most empty slabs kept before the surplus is released.
    pub fn empty_limit(&self) -> u64 {
        self.empty_limit
    }

    /// Sets the number of empty slabs kept (surplus released on later frees).
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

    /// Allocates an object (`kmem_cache_alloc()`).
    pub fn alloc<P: PageSource>(&mut self, src: &mut P) -> Result<NonNull<u8>, SlabError> {
        let slab = if !self.lists[ListKind::Partial as usize].head.is_null() {
            self.lists[ListKind::Partial as usize].head
        } else {
            if self.lists[ListKind::Empty as usize].head.is_null() {
                self.grow(src)?;
            }
            let slab = self.lists[ListKind::Empty as usize].head;
            // SAFETY: `slab` heads the empty list (just grown if needed), so
            // per the type invariant it is a live descriptor of this cache.
            unsafe { self.move_slab(slab, ListKind::Partial) };
            slab
        };
        let words = usize::from(self.bitmap_words);
        // SAFETY: `slab` is a live descriptor of this cache with a bitmap of
        // `bitmap_words` words after it, and being on the partial list it has
        // a clear bit. No other reference to the descriptor exists.
        let obj = unsafe {
            let bitmap = bitmap_of(slab);
            let mut w = usize::from((*slab).hint);
            while w < words && *bitmap.add(w) == u64::MAX {
                w += 1;
            }
            if w >= words {
                return Err(SlabError::Corrupt);
            }
            let word = *bitmap.add(w);
            let bit = word.trailing_ones() as usize;
            *bitmap.add(w) = word | (1 << bit);
            (*slab).hint = w as u16;
            (*slab).inuse += 1;
            if (*slab).inuse == self.objects {
                self.move_slab(slab, ListKind::Full);
            }
            (*slab).objs.add((w * 64 + bit) * self.size)
        };
        self.active_objs += 1;
        NonNull::new(obj).ok_or(SlabError::Corrupt)
    }

    /// Frees an object (`kmem_cache_free()`). Pointers that are not
    /// allocated objects of this cache are reported, never dereferenced.
    pub fn free<P: PageSource>(&mut self, src: &mut P, ptr: *mut u8) -> Result<(), SlabError> {
        if ptr.is_null() {
            return Err(SlabError::NullPointer);
        }
        let block = src.block_of(ptr).ok_or(SlabError::ForeignPointer)?;
        self.free_in_block(src, block, ptr)
    }

    /// [`SlabCache::free`] once the page source has described `ptr`'s block.
    pub(crate) fn free_in_block<P: PageSource>(
        &mut self,
        src: &mut P,
        block: Block,
        ptr: *mut u8,
    ) -> Result<(), SlabError> {
        if block.tag != self.tag.get() || block.order != self.order {
            return Err(SlabError::ForeignPointer);
        }
        let slab = block.head.as_ptr().cast::<SlabHeader>();
        // SAFETY: The block carries this cache's tag, and tags are unique, so
        // it is one of this cache's slabs: its descriptor and bitmap are
        // initialised and only this cache (borrowed mutably) accesses them.
        unsafe {
            if (*slab).magic != SLAB_MAGIC || (*slab).tag != self.tag.get() {
                return Err(SlabError::Corrupt);
            }
            let offset = ptr
                .addr()
                .checked_sub((*slab).objs.addr())
                .ok_or(SlabError::NotAnObject)?;
            if offset % self.size != 0 {
                return Err(SlabError::NotAnObject);
            }
            let index = offset / self.size;
            if index >= self.objects as usize {
                return Err(SlabError::NotAnObject);
            }
            let (w, bit) = (index / 64, index % 64);
            let bitmap = bitmap_of(slab);
            let word = *bitmap.add(w);
            if word & (1 << bit) == 0 {
                return Err(SlabError::DoubleFree);
            }
            *bitmap.add(w) = word & !(1 << bit);
            if usize::from((*slab).hint) > w {
                (*slab).hint = w as u16;
            }
            let was_full = (*slab).inuse == self.objects;
            (*slab).inuse -= 1;
            self.active_objs -= 1;
            if (*slab).inuse == 0 {
                self.move_slab(slab, ListKind::Empty);
                if self.lists[ListKind::Empty as usize].len > self.empty_limit {
                    // Best effort: a refusal leaves the slab cached.
                    let _ = self.discard_slab(src, slab);
                }
            } else if was_full {
                self.move_slab(slab, ListKind::Partial);
            }
        }
        Ok(())
    }

    /// Whether `ptr` is an allocated object of this cache.
    pub fn owns<P: PageSource>(&self, src: &P, ptr: *const u8) -> bool {
        let Some(block) = src.block_of(ptr) else {
            return false;
        };
        if block.tag != self.tag.get() || block.order != self.order {
            return false;
        }
        let slab = block.head.as_ptr().cast::<SlabHeader>();
        // SAFETY: As in `free_in_block`: the block is one of this cache's
        // slabs, with an initialised descriptor and bitmap; reads only.
        unsafe {
            let Some(offset) = ptr.addr().checked_sub((*slab).objs.addr()) else {
                return false;
            };
            // Checked: a division the compiler cannot prove nonzero would
            // leave a panic call at the end of this function.
            let (Some(index), Some(0)) =
                (offset.checked_div(self.size), offset.checked_rem(self.size))
            else {
                return false;
            };
            if index >= self.objects as usize {
                return false;
            }
            let bitmap = bitmap_of(slab);
            *bitmap.add(index / 64) & (1 << (index % 64)) != 0
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

    /// Allocates, initialises and constructs a new slab on the empty list.
    fn grow<P: PageSource>(&mut self, src: &mut P) -> Result<(), SlabError> {
        let head = src
            .alloc_block(self.order, &self.tag)
            .ok_or(SlabError::OutOfMemory)?;
        let colour = self.colour_next as usize * self.colour_off;
        self.colour_next += 1;
        if self.colour_next >= self.colours {
            self.colour_next = 0;
        }
        let slab = head.as_ptr().cast::<SlabHeader>();
        let words = usize::from(self.bitmap_words);
        // SAFETY: The page source hands us `PAGE_SIZE << order` bytes, aligned
        // to that size and exclusively ours; the geometry computed at creation
        // fits descriptor, bitmap, padding, the largest colour and all objects
        // in that size.
        unsafe {
            let objs = head.as_ptr().add(self.first_offset + colour);
            ptr::write(
                slab,
                SlabHeader {
                    magic: SLAB_MAGIC,
                    tag: self.tag.get(),
                    next: ptr::null_mut(),
                    prev: ptr::null_mut(),
                    objs,
                    inuse: 0,
                    hint: 0,
                    list: ListKind::Empty as u8,
                },
            );
            let bitmap = bitmap_of(slab);
            for w in 0..words {
                let valid = (self.objects as usize - w * 64).min(64);
                let pad = if valid == 64 { 0 } else { u64::MAX << valid };
                bitmap.add(w).write(pad);
            }
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
    unsafe fn discard_slab<P: PageSource>(
        &mut self,
        src: &mut P,
        slab: *mut SlabHeader,
    ) -> Result<(), SlabError> {
        // SAFETY: `slab` is live (caller); unlink before the memory goes.
        unsafe { self.list_del(slab) };
        let head = NonNull::new(slab.cast::<u8>()).ok_or(SlabError::Corrupt)?;
        if let Err(e) = src.free_block(head, self.order, &self.tag) {
            // SAFETY: The block was not freed, so the descriptor is still live.
            unsafe { self.list_add(slab, ListKind::Empty) };
            return Err(SlabError::PageSource(e));
        }
        Ok(())
    }
}
