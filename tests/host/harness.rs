// SPDX-License-Identifier: GPL-2.0

//! Model-checking harness over memlab's mirror allocators, shared (through
//! `#[path]`) by the property tests, the fixed-corpus test and the fuzz
//! target.
//!
//! A [`World`] is one zone over an aligned host arena, a few slab caches, the
//! kmalloc mirror and a reference model: the set of live blocks and objects
//! with their address ranges. Every [`Op`] runs against the allocators and
//! the model, then [`World::check`] verifies that live items never overlap,
//! are aligned and inside the arena, that their contents are intact (so the
//! allocators never write into live memory), that page accounting adds up,
//! and every invariant checker. Misuse (double frees, foreign, interior and
//! wild pointers through every free API) must fail exactly when the model
//! says the pointer is not a live item of that API. [`World::finish`] frees
//! everything and requires the zone to be back to its initial free lists.

#![allow(dead_code)]

use std::alloc::{alloc, dealloc, Layout};
use std::collections::BTreeMap;
use std::ptr::NonNull;

use memlab_core::buddy::{Buddy, PageMeta, Region, MAX_PAGE_ORDER, NR_PAGE_ORDERS, PAGE_SIZE};
use memlab_core::sizeclass::{Kmalloc, KMALLOC_MAX_SIZE, ZERO_SIZE_PTR};
use memlab_core::slab::{AddrMap, BuddyPages, LinearMap, SlabCache, SlabFlags};

/// Pages in the arena of a world.
pub const ARENA_PAGES: u64 = 2048;
/// PFN of the arena's first page (aligned to the largest block).
pub const BASE_PFN: u64 = 0x40000;
/// Byte the constructor of the ctor cache fills objects with.
pub const CTOR_BYTE: u8 = 0xC7;
/// Object size of the ctor cache.
pub const CTOR_SIZE: usize = 48;

/// Page-aligned host memory aligned to the largest block size.
pub struct Arena {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl Arena {
    /// Allocates `pages` pages aligned to `PAGE_SIZE << MAX_PAGE_ORDER`.
    pub fn new(pages: u64) -> Arena {
        let layout =
            Layout::from_size_align(pages as usize * PAGE_SIZE, PAGE_SIZE << MAX_PAGE_ORDER)
                .expect("arena layout");
        // SAFETY: The layout has a non-zero size.
        let ptr = NonNull::new(unsafe { alloc(layout) }).expect("arena allocation");
        Arena { ptr, layout }
    }

    /// First byte of the arena.
    pub fn base(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.layout.size()
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: Allocated in `new` with this layout.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

/// A zone over host vectors.
pub type Zone = Buddy<Vec<PageMeta>, Vec<Region>>;

/// Creates a zone with room for `pages` frames and `regions` regions.
pub fn zone(pages: usize, regions: usize) -> Zone {
    Buddy::new(vec![PageMeta::INIT; pages], vec![Region::EMPTY; regions])
}

/// One zone of `pages` frames over an arena of its own, at `base_pfn`.
pub struct Pool {
    /// The memory.
    pub arena: Arena,
    /// The zone managing it.
    pub zone: Zone,
    base_pfn: u64,
}

impl Pool {
    /// A zone of `pages` frames from `base_pfn` (aligned to the largest
    /// block) over a fresh arena.
    pub fn new(pages: u64, base_pfn: u64) -> Pool {
        let arena = Arena::new(pages);
        let mut zone = zone(pages as usize, 1);
        zone.add_region(base_pfn, pages).expect("add region");
        Pool {
            arena,
            zone,
            base_pfn,
        }
    }

    /// The page source over the zone.
    pub fn src(&mut self) -> BuddyPages<'_, Vec<PageMeta>, Vec<Region>, LinearMap> {
        // SAFETY: The region maps onto the arena, which is aligned to the
        // largest block and only accessed through allocated blocks.
        unsafe {
            BuddyPages::new(
                &mut self.zone,
                LinearMap::new(self.arena.base(), self.base_pfn),
            )
        }
    }
}

/// Region layouts (arena-relative page ranges, in the order they are added).
pub const NR_LAYOUTS: u8 = 5;

fn layout_ranges(layout: u8) -> Vec<(u64, u64)> {
    match layout % NR_LAYOUTS {
        0 => vec![(0, ARENA_PAGES)],
        // Two halves, the second extending the first.
        1 => vec![(0, 1024), (1024, 2048)],
        // Holes and unaligned edges, added out of order, one extension.
        2 => vec![(1537, 2048), (5, 700), (1100, 1500), (700, 1000)],
        // Many small regions with gaps.
        3 => (0..48).rev().map(|i| (i * 42 + 1, i * 42 + 38)).collect(),
        // Odd sizes everywhere.
        _ => vec![(3, 4), (4, 9), (17, 530), (1023, 1025), (1030, 2047)],
    }
}

/// Constructor of the ctor cache.
fn ctor48(obj: *mut u8) {
    // SAFETY: The cache hands the constructor `CTOR_SIZE` writable bytes.
    unsafe { obj.write_bytes(CTOR_BYTE, CTOR_SIZE) };
}

/// Arguments of `SlabCache::new`: name, size, align, flags, ctor.
type CacheSpec = (&'static str, usize, usize, SlabFlags, Option<fn(*mut u8)>);

/// The world's caches.
fn cache_specs() -> Vec<CacheSpec> {
    vec![
        ("obj-1", 1, 0, SlabFlags::NONE, None),
        ("obj-24", 24, 0, SlabFlags::NONE, None),
        ("obj-100-hw", 100, 0, SlabFlags::HWCACHE_ALIGN, None),
        (
            "ctor-48",
            CTOR_SIZE,
            0,
            SlabFlags::NONE,
            Some(ctor48 as fn(*mut u8)),
        ),
        ("obj-3000", 3000, 0, SlabFlags::NONE, None),
        ("obj-512-a512", 512, 512, SlabFlags::NONE, None),
        ("obj-20000", 20000, 0, SlabFlags::NONE, None),
    ]
}

/// Number of slab caches in a world (besides kmalloc's).
pub const NR_CACHES: u8 = 7;

/// One step of a test.
#[derive(Clone, Debug)]
pub enum Op {
    /// Allocate pages from the zone.
    AllocPages {
        /// Order, taken modulo `MAX_PAGE_ORDER + 2` (one invalid order).
        order: u8,
    },
    /// Allocate an object from a cache.
    AllocObj {
        /// Cache, modulo the number of caches.
        cache: u8,
    },
    /// kmalloc `size` bytes (0 and above `KMALLOC_MAX_SIZE` included).
    Kmalloc {
        /// Request size.
        size: u32,
    },
    /// Free a live item through its own API.
    Free {
        /// Which live item, modulo their number.
        which: u16,
    },
    /// Free a live item, then free it again (the second must fail).
    DoubleFree {
        /// Which live item, modulo their number.
        which: u16,
    },
    /// Free the address `delta` bytes from a live item through `api`.
    FreeAt {
        /// Which live item, modulo their number.
        which: u16,
        /// Byte offset from the item's start.
        delta: i32,
        /// API: see [`World::free_through`].
        api: u8,
    },
    /// Free the address `offset` bytes past the arena's start through `api`.
    FreeWild {
        /// Byte offset from the arena's start (may be past its end).
        offset: u32,
        /// API: see [`World::free_through`].
        api: u8,
    },
    /// Shrink a cache (`NR_CACHES` and above: every kmalloc cache).
    Shrink {
        /// Cache.
        cache: u8,
    },
    /// `alloc_bulk` of `n` objects from a cache (`NR_CACHES` and above: a
    /// kmalloc class's cache, whose objects are then freed by kfree).
    AllocBulk {
        /// Cache, modulo the number of caches plus kmalloc classes.
        cache: u8,
        /// Objects asked for.
        n: u8,
    },
    /// `free_bulk` of up to `n` live objects of the cache of live item
    /// `which`, with bad pointers mixed in as `junk` says (bit 0: the first
    /// object again at the end, a double free in one batch; bit 1: an
    /// interior pointer; bit 2: null).
    FreeBulk {
        /// Which live item, modulo their number.
        which: u16,
        /// Live objects to free.
        n: u8,
        /// Bad pointers to add.
        junk: u8,
    },
}

/// What a live item is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Pages { order: u32 },
    Obj { cache: usize },
    Kmalloc,
}

#[derive(Clone, Copy, Debug)]
struct Live {
    len: usize,
    kind: Kind,
    id: u64,
}

/// Allocators under test plus the reference model.
pub struct World {
    arena: Arena,
    zone: Zone,
    caches: Vec<SlabCache>,
    kmalloc: Kmalloc,
    live: BTreeMap<usize, Live>,
    initial_free: [u64; NR_PAGE_ORDERS],
    next_id: u64,
    /// Operations that failed as the model predicted (misuse caught, OOM).
    pub rejected: u64,
}

impl World {
    /// A world with region layout `layout` (modulo [`NR_LAYOUTS`]).
    pub fn new(layout: u8) -> World {
        let arena = Arena::new(ARENA_PAGES);
        let ranges = layout_ranges(layout);
        let mut zone = zone(ARENA_PAGES as usize, ranges.len());
        for &(start, end) in &ranges {
            zone.add_region(BASE_PFN + start, end - start)
                .expect("add region");
        }
        let covered: u64 = ranges.iter().map(|(s, e)| e - s).sum();
        assert_eq!(zone.managed_pages(), covered);
        assert_eq!(zone.free_pages(), covered);
        zone.check_invariants().expect("invariants after setup");
        let caches = cache_specs()
            .into_iter()
            .map(|(name, size, align, flags, ctor)| {
                SlabCache::new(name, size, align, flags, ctor).expect("cache")
            })
            .collect();
        World {
            initial_free: zone.free_counts(),
            arena,
            zone,
            caches,
            kmalloc: Kmalloc::new().expect("kmalloc caches"),
            live: BTreeMap::new(),
            next_id: 1,
            rejected: 0,
        }
    }

    fn map(&self) -> LinearMap {
        LinearMap::new(self.arena.base(), BASE_PFN)
    }

    fn src(
        zone: &mut Zone,
        map: LinearMap,
    ) -> BuddyPages<'_, Vec<PageMeta>, Vec<Region>, LinearMap> {
        // SAFETY: The zone's regions lie within the arena (BASE_PFN maps to its
        // first byte, which is aligned to the largest block), the arena is
        // only accessed through blocks the zone hands out, and the map is
        // linear with `ptr_to_pfn` its inverse.
        unsafe { BuddyPages::new(zone, map) }
    }

    /// Live items.
    pub fn live_count(&self) -> usize {
        self.live.len()
    }

    /// Runs one operation, then checks everything.
    pub fn apply(&mut self, op: &Op) {
        match *op {
            Op::AllocPages { order } => self.alloc_pages(u32::from(order) % (MAX_PAGE_ORDER + 2)),
            Op::AllocObj { cache } => self.alloc_obj(usize::from(cache % NR_CACHES)),
            Op::Kmalloc { size } => self.kmalloc(size as usize),
            Op::Free { which } => {
                if let Some((addr, item)) = self.pick(which) {
                    self.free_item(addr, item);
                }
            }
            Op::DoubleFree { which } => {
                if let Some((addr, item)) = self.pick(which) {
                    self.free_item(addr, item);
                    let api = match item.kind {
                        Kind::Pages { order } => order as u8,
                        Kind::Obj { cache } => 16 + cache as u8,
                        Kind::Kmalloc => 255,
                    };
                    self.free_through(addr, api);
                }
            }
            Op::FreeAt { which, delta, api } => {
                if let Some((addr, _)) = self.pick(which) {
                    self.free_through(addr.wrapping_add_signed(delta as isize), api);
                }
            }
            Op::FreeWild { offset, api } => {
                let addr = self.arena.base().addr().wrapping_add(offset as usize);
                self.free_through(addr, api);
            }
            Op::AllocBulk { cache, n } => self.alloc_bulk(cache, usize::from(n)),
            Op::FreeBulk { which, n, junk } => {
                if let Some((addr, item)) = self.pick(which) {
                    self.free_bulk(addr, item, usize::from(n), junk);
                }
            }
            Op::Shrink { cache } => {
                let map = self.map();
                let mut src = Self::src(&mut self.zone, map);
                if let Some(c) = self.caches.get_mut(usize::from(cache)) {
                    let before = c.info();
                    let released = c.shrink(&mut src).expect("shrink");
                    let after = c.info();
                    assert_eq!(before.num_slabs - after.num_slabs, released);
                    assert_eq!(after.num_slabs, after.active_slabs);
                } else {
                    self.kmalloc.shrink(&mut src).expect("kmalloc shrink");
                }
            }
        }
        self.check();
    }

    /// The `which`-th live item (modulo their number).
    fn pick(&self, which: u16) -> Option<(usize, Live)> {
        if self.live.is_empty() {
            return None;
        }
        let n = usize::from(which) % self.live.len();
        self.live.iter().nth(n).map(|(&a, &l)| (a, l))
    }

    fn alloc_pages(&mut self, order: u32) {
        let possible = (order..=MAX_PAGE_ORDER).any(|o| self.zone.nr_free(o) > 0);
        match self.zone.alloc(order) {
            Ok(pfn) => {
                assert!(
                    possible,
                    "alloc of order {order} succeeded with no free block"
                );
                let addr = self.map().pfn_to_ptr(pfn).expect("mapped").as_ptr().addr();
                assert_eq!(addr % (PAGE_SIZE << order), 0, "block misaligned");
                self.insert(addr, PAGE_SIZE << order, Kind::Pages { order });
            }
            Err(e) => {
                assert!(
                    !possible || order > MAX_PAGE_ORDER,
                    "order {order} failed: {e}"
                );
                self.rejected += 1;
            }
        }
    }

    fn alloc_obj(&mut self, cache: usize) {
        let map = self.map();
        let mut src = Self::src(&mut self.zone, map);
        let c = &mut self.caches[cache];
        let info = c.info();
        let must = info.num_objs > info.active_objs
            || (c.order()..=MAX_PAGE_ORDER).any(|o| src.buddy().nr_free(o) > 0);
        match c.alloc(&mut src) {
            Ok(ptr) => {
                assert_eq!(ptr.as_ptr().addr() % c.align(), 0, "object misaligned");
                let len = c.object_size();
                if c.name() == "ctor-48" {
                    // SAFETY: A freshly allocated object of CTOR_SIZE bytes.
                    let bytes = unsafe { std::slice::from_raw_parts(ptr.as_ptr(), len) };
                    assert!(
                        bytes.iter().all(|&b| b == CTOR_BYTE),
                        "object not constructed"
                    );
                }
                self.insert(ptr.as_ptr().addr(), len, Kind::Obj { cache });
            }
            Err(e) => {
                assert!(!must, "cache alloc failed: {e}");
                self.rejected += 1;
            }
        }
    }

    fn alloc_bulk(&mut self, cache: u8, n: usize) {
        use memlab_core::sizeclass::{SizeClass, NR_KMALLOC_CLASSES};
        let map = self.map();
        let mut src = Self::src(&mut self.zone, map);
        let which = usize::from(cache) % (usize::from(NR_CACHES) + NR_KMALLOC_CLASSES);
        let (c, kind) = match which.checked_sub(usize::from(NR_CACHES)) {
            None => (&mut self.caches[which], Kind::Obj { cache: which }),
            Some(k) => (self.kmalloc.cache_mut(SizeClass::ALL[k]), Kind::Kmalloc),
        };
        let mut out = vec![std::ptr::null_mut(); n];
        let got = c.alloc_bulk(&mut src, &mut out);
        assert!(got <= n);
        if got < n {
            // Only when memory ran out: no free object, no block for a slab.
            let info = c.info();
            assert_eq!(info.num_objs, info.active_objs, "bulk stopped with room");
            assert!(
                (c.order()..=MAX_PAGE_ORDER).all(|o| src.buddy().nr_free(o) == 0),
                "bulk stopped with free blocks"
            );
            self.rejected += 1;
        }
        let (len, align) = (c.object_size(), c.align());
        let ctor = c.name() == "ctor-48";
        for &p in &out[..got] {
            assert!(!p.is_null());
            assert_eq!(p.addr() % align, 0, "bulk object misaligned");
            if ctor {
                // SAFETY: A freshly allocated object of CTOR_SIZE bytes.
                let bytes = unsafe { std::slice::from_raw_parts(p, len) };
                assert!(bytes.iter().all(|&b| b == CTOR_BYTE), "not constructed");
            }
        }
        for p in &out[..got] {
            self.insert(p.addr(), len, kind);
        }
    }

    fn free_bulk(&mut self, addr: usize, item: Live, n: usize, junk: u8) {
        let Kind::Obj { cache } = item.kind else {
            return;
        };
        let mut objs: Vec<usize> = self
            .live
            .range(addr..)
            .chain(self.live.range(..addr))
            .filter(|(_, l)| l.kind == item.kind)
            .map(|(&a, _)| a)
            .take(n.max(1))
            .collect();
        for &a in &objs {
            let l = self.live[&a];
            self.verify(a, &l);
            if cache == 3 {
                self.stamp(a, l.len, [CTOR_BYTE; 8]);
            }
        }
        let good = objs.len();
        if junk & 1 != 0 {
            objs.push(objs[0]);
        }
        if junk & 2 != 0 {
            objs.push(objs[0] + 1);
        }
        if junk & 4 != 0 {
            objs.push(0);
        }
        let base = self.arena.base();
        let ptrs: Vec<*mut u8> = objs
            .iter()
            .map(|&a| {
                if a == 0 {
                    std::ptr::null_mut()
                } else {
                    base.with_addr(a)
                }
            })
            .collect();
        let map = self.map();
        let mut src = Self::src(&mut self.zone, map);
        let result = self.caches[cache].free_bulk(&mut src, &ptrs);
        let bad = ptrs.len() - good;
        match result {
            Ok(()) => assert_eq!(bad, 0, "bulk free took {bad} bad pointers"),
            Err(e) => {
                assert_eq!((e.failed, e.first_index), (bad, good), "{e}");
                self.rejected += 1;
            }
        }
        for a in &objs[..good] {
            self.live.remove(a);
        }
    }

    fn kmalloc(&mut self, size: usize) {
        use memlab_core::sizeclass::{get_order, KmallocError, SizeClass};
        let map = self.map();
        let mut src = Self::src(&mut self.zone, map);
        let free_from = |src: &mut BuddyPages<'_, _, _, _>, order: u32| {
            (order..=MAX_PAGE_ORDER).any(|o| src.buddy().nr_free(o) > 0)
        };
        let must = match SizeClass::for_size(size) {
            _ if size == 0 => true,
            Some(class) => {
                let cache = self.kmalloc.cache(class);
                let info = cache.info();
                info.num_objs > info.active_objs || free_from(&mut src, cache.order())
            }
            None if size > KMALLOC_MAX_SIZE => false,
            None => free_from(&mut src, get_order(size)),
        };
        match self.kmalloc.kmalloc(&mut src, size) {
            Ok(ptr) if size == 0 => assert_eq!(ptr.as_ptr(), ZERO_SIZE_PTR),
            Ok(ptr) => {
                assert!(
                    must || size <= KMALLOC_MAX_SIZE,
                    "kmalloc({size}) succeeded"
                );
                let addr = ptr.as_ptr().addr();
                let ksize = self.kmalloc.ksize(&src, ptr.as_ptr()).expect("ksize");
                assert!(ksize >= size, "ksize {ksize} < {size}");
                match SizeClass::for_size(size) {
                    Some(class) => {
                        assert_eq!(ksize, class.size());
                        assert_eq!(addr % class.align(), 0, "kmalloc object misaligned");
                    }
                    None => {
                        assert_eq!(ksize, PAGE_SIZE << get_order(size));
                        assert_eq!(addr % ksize, 0, "large kmalloc misaligned");
                    }
                }
                self.insert(addr, ksize, Kind::Kmalloc);
            }
            Err(e) => {
                assert!(!must, "kmalloc({size}) failed: {e}");
                if size > KMALLOC_MAX_SIZE {
                    assert_eq!(e, KmallocError::TooLarge(size));
                } else {
                    assert_eq!(e, KmallocError::OutOfMemory);
                }
                self.rejected += 1;
            }
        }
    }

    /// Records a new live item and stamps it.
    fn insert(&mut self, addr: usize, len: usize, kind: Kind) {
        let base = self.arena.base().addr();
        assert!(
            addr >= base && addr + len <= base + self.arena.len(),
            "item outside the arena"
        );
        if let Some((&prev, p)) = self.live.range(..addr).next_back() {
            assert!(
                prev + p.len <= addr,
                "{kind:?} at {addr:#x} overlaps {p:?} at {prev:#x}"
            );
        }
        if let Some((&next, n)) = self.live.range(addr..).next() {
            assert!(
                addr + len <= next,
                "{kind:?} at {addr:#x} overlaps {n:?} at {next:#x}"
            );
        }
        let id = self.next_id;
        self.next_id += 1;
        self.stamp(addr, len, id.to_le_bytes());
        self.live.insert(addr, Live { len, kind, id });
    }

    /// Writes `pattern` (truncated to the item) at both ends of an item.
    fn stamp(&self, addr: usize, len: usize, pattern: [u8; 8]) {
        let n = len.min(8);
        let ptr = self.arena.base().with_addr(addr);
        // SAFETY: `[addr, addr + len)` is a live item inside the arena.
        unsafe {
            ptr.copy_from_nonoverlapping(pattern.as_ptr(), n);
            ptr.add(len - n)
                .copy_from_nonoverlapping(pattern.as_ptr(), n);
        }
    }

    /// Checks the stamp of a live item.
    fn verify(&self, addr: usize, item: &Live) {
        let n = item.len.min(8);
        let ptr = self.arena.base().with_addr(addr);
        let want = item.id.to_le_bytes();
        // SAFETY: A live item inside the arena.
        let (head, tail) = unsafe {
            (
                std::slice::from_raw_parts(ptr, n),
                std::slice::from_raw_parts(ptr.add(item.len - n), n),
            )
        };
        assert_eq!(head, &want[..n], "{item:?} at {addr:#x}: head overwritten");
        assert_eq!(tail, &want[..n], "{item:?} at {addr:#x}: tail overwritten");
    }

    /// Frees a live item through its own API; must succeed.
    fn free_item(&mut self, addr: usize, item: Live) {
        self.verify(addr, &item);
        if item.kind == (Kind::Obj { cache: 3 }) {
            self.stamp(addr, item.len, [CTOR_BYTE; 8]);
        }
        let map = self.map();
        let ptr = self.arena.base().with_addr(addr);
        let result = match item.kind {
            Kind::Pages { order } => {
                let pfn = map.ptr_to_pfn(ptr).expect("pfn");
                self.zone.free(pfn, order).map_err(|e| e.to_string())
            }
            Kind::Obj { cache } => {
                let mut src = Self::src(&mut self.zone, map);
                self.caches[cache]
                    .free(&mut src, ptr)
                    .map_err(|e| e.to_string())
            }
            Kind::Kmalloc => {
                let mut src = Self::src(&mut self.zone, map);
                self.kmalloc.kfree(&mut src, ptr).map_err(|e| e.to_string())
            }
        };
        result.unwrap_or_else(|e| panic!("free of live {item:?} at {addr:#x} failed: {e}"));
        self.live.remove(&addr);
    }

    /// Frees `addr` through one API; it must succeed exactly when the model
    /// has a live item of that API there. `api`: 0..=11 buddy free with that
    /// order (11 is invalid), 16.. a cache (modulo their number), 255 kfree,
    /// others kfree too.
    pub fn free_through(&mut self, addr: usize, api: u8) {
        let map = self.map();
        let ptr = self.arena.base().with_addr(addr);
        let live = self.live.get(&addr).copied();
        let (ok, expected) = match api {
            0..=11 => {
                let order = u32::from(api);
                let pfn = map
                    .ptr_to_pfn(ptr)
                    .unwrap_or(addr as u64 >> memlab_core::buddy::PAGE_SHIFT);
                let page_addr = map.pfn_to_ptr(pfn).map(|p| p.as_ptr().addr());
                let expected = page_addr
                    .and_then(|a| self.live.get(&a))
                    .is_some_and(|l| l.kind == Kind::Pages { order });
                if expected {
                    let a = page_addr.expect("mapped");
                    let item = self.live[&a];
                    self.verify(a, &item);
                }
                let ok = self.zone.free(pfn, order).is_ok();
                if ok {
                    if let Some(a) = page_addr {
                        self.live.remove(&a);
                    }
                }
                (ok, expected)
            }
            16..=254 => {
                let cache = usize::from(api - 16) % self.caches.len();
                let expected = live.is_some_and(|l| l.kind == Kind::Obj { cache });
                if let Some(item) = live.filter(|_| expected) {
                    self.verify(addr, &item);
                    if cache == 3 {
                        self.stamp(addr, item.len, [CTOR_BYTE; 8]);
                    }
                }
                let mut src = Self::src(&mut self.zone, map);
                let ok = self.caches[cache].free(&mut src, ptr).is_ok();
                (ok, expected)
            }
            _ => {
                let trivially = addr == 0 || ptr == ZERO_SIZE_PTR;
                let expected = trivially || live.is_some_and(|l| l.kind == Kind::Kmalloc);
                if let Some(item) = live.filter(|_| expected && !trivially) {
                    self.verify(addr, &item);
                }
                let mut src = Self::src(&mut self.zone, map);
                let ok = self.kmalloc.kfree(&mut src, ptr).is_ok();
                (ok, expected)
            }
        };
        assert_eq!(
            ok, expected,
            "free of {addr:#x} through api {api}: ok={ok}, model says {expected}"
        );
        if ok {
            if api > 11 {
                self.live.remove(&addr);
            }
        } else {
            self.rejected += 1;
        }
    }

    /// Verifies every invariant and the page accounting.
    pub fn check(&self) {
        self.zone.check_invariants().expect("buddy invariants");
        let map = self.map();
        // block_of needs only shared access; build a source over a copy-free
        // borrow by checking through a temporary exclusive borrow is not
        // possible here, so use the zone directly for page lookups.
        let mut held = 0u64;
        for (&addr, item) in &self.live {
            if let Kind::Pages { order } = item.kind {
                held += 1 << order;
                let pfn = map
                    .ptr_to_pfn(self.arena.base().with_addr(addr))
                    .expect("pfn");
                let block = self.zone.allocated_block(pfn).expect("live block");
                assert_eq!((block.head_pfn, block.order), (pfn, order));
            }
        }
        for cache in self.caches.iter().chain(self.kmalloc.caches()) {
            let info = cache.info();
            held += info.num_slabs * u64::from(info.pagesperslab);
        }
        held += self.kmalloc.large_pages();
        assert_eq!(
            self.zone.free_pages() + held,
            self.zone.managed_pages(),
            "page accounting"
        );
        let live_objs = |cache: usize| {
            self.live
                .values()
                .filter(|l| l.kind == Kind::Obj { cache })
                .count() as u64
        };
        for (i, cache) in self.caches.iter().enumerate() {
            assert_eq!(
                cache.active_objs(),
                live_objs(i),
                "{} active objects",
                cache.name()
            );
        }
        let live_kmalloc = self
            .live
            .values()
            .filter(|l| l.kind == Kind::Kmalloc)
            .count() as u64;
        let kmalloc_objs: u64 = self
            .kmalloc
            .caches()
            .iter()
            .map(SlabCache::active_objs)
            .sum();
        assert_eq!(kmalloc_objs + self.kmalloc.large_blocks(), live_kmalloc);
    }

    /// Checks the slab invariants (needs the page source, hence `&mut`).
    pub fn check_slabs(&mut self) {
        let map = self.map();
        let src = Self::src(&mut self.zone, map);
        for cache in &self.caches {
            cache
                .check_invariants(&src)
                .unwrap_or_else(|e| panic!("{}: {e:?}", cache.name()));
        }
        self.kmalloc
            .check_invariants(&src)
            .unwrap_or_else(|e| panic!("kmalloc: {e:?}"));
    }

    /// Frees everything, releases every slab, and requires the zone to be
    /// back to its initial free lists (all free memory coalesced).
    pub fn finish(mut self) {
        let items: Vec<(usize, Live)> = self.live.iter().map(|(&a, &l)| (a, l)).collect();
        // Free in a scrambled but deterministic order.
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_by_key(|&i| (items[i].1.id.wrapping_mul(0x9E37_79B9_7F4A_7C15)) >> 17);
        for i in order {
            let (addr, item) = items[i];
            self.free_item(addr, item);
        }
        self.check();
        self.check_slabs();
        let map = self.map();
        let mut src = Self::src(&mut self.zone, map);
        for cache in &mut self.caches {
            cache.destroy(&mut src).expect("destroy cache");
        }
        self.kmalloc.destroy(&mut src).expect("destroy kmalloc");
        self.check();
        assert_eq!(self.zone.free_pages(), self.zone.managed_pages());
        assert_eq!(
            self.zone.free_counts(),
            self.initial_free,
            "not coalesced back"
        );
    }
}

/// Decodes a byte string into a layout and operations (the fuzz input
/// format): byte 0 is the layout, then 4 bytes per operation.
pub fn decode(data: &[u8]) -> (u8, Vec<Op>) {
    let layout = data.first().copied().unwrap_or(0);
    let ops = data
        .get(1..)
        .unwrap_or(&[])
        .chunks_exact(4)
        .map(|c| {
            let arg16 = u16::from_le_bytes([c[1], c[2]]);
            let arg24 = u32::from_le_bytes([c[1], c[2], c[3], 0]);
            match c[0] % 16 {
                0..=2 => Op::AllocPages { order: c[1] % 12 },
                3 | 4 => Op::AllocObj { cache: c[1] },
                5 => Op::AllocBulk {
                    cache: c[1],
                    n: c[2] % 70,
                },
                6..=8 => Op::Kmalloc {
                    size: match c[3] % 8 {
                        0..=4 => arg16 as u32 % 512,
                        5 | 6 => arg16 as u32,
                        _ => arg24 << 3,
                    },
                },
                9 | 10 => Op::Free { which: arg16 },
                11 => Op::FreeBulk {
                    which: arg16,
                    n: c[3] % 70,
                    junk: c[3] >> 5,
                },
                12 => Op::DoubleFree { which: arg16 },
                13 => Op::FreeAt {
                    which: arg16,
                    delta: i32::from(c[3] as i8) * 8,
                    api: c[3].rotate_left(3),
                },
                14 => Op::FreeWild {
                    offset: arg24 << 3,
                    api: c[3],
                },
                _ => Op::Shrink { cache: c[1] % 8 },
            }
        })
        .collect();
    (layout, ops)
}

/// Runs a fuzz input: decode, apply every op with checks, then finish.
pub fn run_bytes(data: &[u8]) {
    let (layout, ops) = decode(data);
    let mut world = World::new(layout);
    for (i, op) in ops.iter().enumerate() {
        world.apply(op);
        if i % 8 == 7 {
            world.check_slabs();
        }
    }
    world.check_slabs();
    world.finish();
}
