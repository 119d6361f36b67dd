// SPDX-License-Identifier: GPL-2.0

//! Unit tests of the slab caches (src/core/slab/).

#[path = "../harness.rs"]
mod harness;

use std::collections::HashSet;

use harness::Pool;
use memlab_core::buddy::{Buddy, BuddyError, PageMeta, Region, PAGE_SIZE};
use memlab_core::slab::{
    AddrMap, BuddyPages, LinearMap, OwnerTag, PageSource, SlabCache, SlabError, SlabFlags,
    SlabInfo, SlabStat, MAX_OBJS_PER_SLAB,
};

const BASE_PFN: u64 = 0x8000;

fn pool(pages: u64) -> Pool {
    Pool::new(pages, BASE_PFN)
}

fn cache(name: &str, size: usize) -> SlabCache {
    SlabCache::new(name, size, 0, SlabFlags::NONE, None).unwrap()
}

#[test]
fn creation_validates_arguments() {
    let bad = |name: &str, size, align| SlabCache::new(name, size, align, SlabFlags::NONE, None);
    assert_eq!(bad("", 8, 0).err(), Some(SlabError::InvalidName));
    assert_eq!(bad("with space", 8, 0).err(), Some(SlabError::InvalidName));
    assert_eq!(
        bad(&"x".repeat(33), 8, 0).err(),
        Some(SlabError::InvalidName)
    );
    assert!(bad(&"x".repeat(32), 8, 0).is_ok());
    assert_eq!(bad("a", 0, 0).err(), Some(SlabError::InvalidSize));
    assert_eq!(bad("a", 8, 3).err(), Some(SlabError::InvalidAlign));
    assert_eq!(bad("a", 8, 1 << 30).err(), Some(SlabError::InvalidAlign));
    assert_eq!(bad("a", 5 << 20, 0).err(), Some(SlabError::ObjectTooLarge));
    assert_eq!(
        bad("a", usize::MAX, 0).err(),
        Some(SlabError::ObjectTooLarge)
    );
    assert_eq!(
        bad("a", usize::MAX, 4096).err(),
        Some(SlabError::ObjectTooLarge)
    );
}

#[test]
fn alignment_rules() {
    // ARCH_SLAB_MINALIGN = 8.
    let c = cache("c", 1);
    assert_eq!((c.align(), c.size()), (8, 8));
    let c = cache("c", 20);
    assert_eq!((c.align(), c.size()), (8, 24));
    // SLAB_HWCACHE_ALIGN halves the cache line while the object fits in half.
    let hw = |size| SlabCache::new("c", size, 0, SlabFlags::HWCACHE_ALIGN, None).unwrap();
    assert_eq!(hw(20).align(), 32);
    assert_eq!(hw(16).align(), 16);
    assert_eq!(hw(33).align(), 64);
    assert_eq!(hw(100).size(), 128);
    let c = SlabCache::new("c", 100, 256, SlabFlags::NONE, None).unwrap();
    assert_eq!((c.align(), c.size()), (256, 256));
}

#[test]
fn order_and_object_count_choice() {
    // Small objects: one page, nearly all of it objects.
    let c = cache("c", 64);
    assert_eq!(c.order(), 0);
    assert!(c.objects_per_slab() >= 60, "{}", c.objects_per_slab());
    let c = cache("c", 8);
    assert_eq!(c.order(), 0);
    assert!(c.objects_per_slab() >= 490);
    // At least MIN_OBJECTS (12) per slab where the costly order allows.
    let c = cache("c", 512);
    assert!(c.objects_per_slab() >= 12);
    assert!(c.order() >= 1);
    // Waste within 1/16 where an order up to 3 allows it, else 1/8.
    for (size, fraction) in [
        (24, 16),
        (40, 16),
        (96, 16),
        (192, 16),
        (200, 16),
        (700, 16),
        (1000, 16),
        (1500, 16),
        (3000, 8),
    ] {
        let c = cache("c", size);
        let slab = PAGE_SIZE << c.order();
        let used = c.objects_per_slab() as usize * c.size();
        assert!(c.order() <= 3, "{size}: order {}", c.order());
        assert!(
            (slab - used) * fraction <= slab,
            "{size}: waste {} of {slab}",
            slab - used
        );
    }
    // 3000 bytes: 10 objects in 8 pages, as SLUB picks with 2 CPUs.
    let c = cache("c", 3000);
    assert_eq!((c.order(), c.objects_per_slab()), (3, 10));
    // Objects too large for order 3 get the smallest order holding one.
    let c = cache("c", 40000);
    assert_eq!((c.order(), c.objects_per_slab()), (4, 1));
    // Nothing but objects in a slab: 2 MiB fits order 9 exactly.
    let c = cache("c", 4 << 20 >> 1);
    assert_eq!((c.order(), c.objects_per_slab()), (9, 1));
    let c = cache("c", (4 << 20 >> 1) + 8);
    assert_eq!((c.order(), c.objects_per_slab()), (10, 1));
    for size in [1, 8, 13, 64, 4096, 8192, 20000] {
        assert!(cache("c", size).objects_per_slab() as usize <= MAX_OBJS_PER_SLAB);
    }
}

#[test]
fn alloc_free_moves_slabs_between_lists() {
    let mut pool = pool(64);
    let mut c = cache("c", 1000);
    let per = c.objects_per_slab() as usize;
    let mut src = pool.src();
    let mut objs = Vec::new();
    for i in 0..per {
        objs.push(c.alloc(&mut src).unwrap());
        c.check_invariants(&src).unwrap();
        let info = c.info();
        assert_eq!((info.num_slabs, info.active_objs), (1, i as u64 + 1));
    }
    // Full slab; the next object needs a second slab.
    objs.push(c.alloc(&mut src).unwrap());
    assert_eq!(c.info().num_slabs, 2);
    assert_eq!(c.info().active_slabs, 2);
    // Objects of one slab are distinct, aligned and in one block.
    let set: HashSet<_> = objs.iter().collect();
    assert_eq!(set.len(), objs.len());
    // Empty the second slab: it stays cached (below the empty limit).
    c.free(&mut src, objs.pop().unwrap().as_ptr()).unwrap();
    let info = c.info();
    assert_eq!((info.num_slabs, info.active_slabs), (2, 1));
    c.check_invariants(&src).unwrap();
    // The next allocation takes the partial... no: the full slab has none,
    // the empty slab is reused before any new slab.
    let again = c.alloc(&mut src).unwrap();
    assert_eq!(c.info().num_slabs, 2);
    c.free(&mut src, again.as_ptr()).unwrap();
    // Free one object of the full slab: it becomes partial and is preferred.
    let victim = objs.swap_remove(3);
    c.free(&mut src, victim.as_ptr()).unwrap();
    let reused = c.alloc(&mut src).unwrap();
    assert_eq!(reused, victim, "partial slab first, lowest free object");
    c.check_invariants(&src).unwrap();
    objs.push(reused);
    for o in objs {
        c.free(&mut src, o.as_ptr()).unwrap();
    }
    assert_eq!(c.shrink(&mut src).unwrap(), 2);
    assert_eq!(
        c.info(),
        SlabInfo {
            objsize: 1000,
            objperslab: per as u32,
            pagesperslab: 1 << c.order(),
            ..Default::default()
        }
    );
    c.check_invariants(&src).unwrap();
    assert_eq!(src.buddy().free_pages(), 64);
}

#[test]
fn stat_counts_as_sysfs_does() {
    let mut pool = pool(64);
    let mut c = cache("c", 1000);
    let per = u64::from(c.objects_per_slab());
    let mut src = pool.src();
    // One full slab, one with 2 objects, one empty (kept, below min_partial).
    let mut objs: Vec<_> = (0..per + 2).map(|_| c.alloc(&mut src).unwrap()).collect();
    let extra: Vec<_> = (0..per).map(|_| c.alloc(&mut src).unwrap()).collect();
    for o in extra {
        c.free(&mut src, o.as_ptr()).unwrap();
    }
    let s = c.stat();
    assert_eq!(
        s,
        SlabStat {
            object_size: 1000,
            slab_size: 1000,
            objs_per_slab: per,
            order: c.order(),
            objects: per + 2,
            total_objects: 3 * per,
            slabs: 3,
            // SLUB keeps empty slabs on its partial list.
            partial: 2,
            objects_partial: 2,
            min_partial: c.empty_limit(),
        }
    );
    assert_eq!(s.objects, c.info().active_objs);
    assert_eq!(s.total_objects, c.info().num_objs);
    for o in objs.drain(..) {
        c.free(&mut src, o.as_ptr()).unwrap();
    }
    c.shrink(&mut src).unwrap();
    assert_eq!(
        (c.stat().slabs, c.stat().partial, c.stat().objects),
        (0, 0, 0)
    );
}

#[test]
fn an_emptied_slab_is_released_once_min_partial_slabs_have_room() {
    let mut pool = pool(256);
    let mut c = cache("c", 2048);
    c.set_empty_limit(2);
    let per = c.objects_per_slab() as usize;
    let mut src = pool.src();
    let objs: Vec<_> = (0..per * 5).map(|_| c.alloc(&mut src).unwrap()).collect();
    assert_eq!(c.info().num_slabs, 5);
    // Slab by slab: the first to empty is kept (no other slab has room,
    // SLUB's nr_partial 1 < min_partial 2); from the second on, an emptied
    // slab finds two with room (itself and the kept one) and goes.
    for (i, o) in objs.into_iter().enumerate() {
        c.free(&mut src, o.as_ptr()).unwrap();
        c.check_invariants(&src).unwrap();
        assert!(
            c.info().num_slabs - c.info().active_slabs <= 1,
            "after free {i}"
        );
    }
    assert_eq!(c.info().num_slabs, 1);
    assert_eq!(c.shrink(&mut src).unwrap(), 1);
    assert_eq!(c.info().num_slabs, 0);
    assert_eq!(src.buddy().free_pages(), 256);
}

#[test]
fn a_full_slab_that_frees_an_object_goes_to_the_tail_of_the_partial_list() {
    let mut pool = pool(256);
    let mut c = cache("c", 2048);
    c.set_empty_limit(8);
    let per = c.objects_per_slab() as usize;
    let mut src = pool.src();
    // Three full slabs, A, B, C.
    let objs: Vec<_> = (0..per * 3).map(|_| c.alloc(&mut src).unwrap()).collect();
    let shift = 12 + c.order();
    let slab_of = |p: std::ptr::NonNull<u8>| p.as_ptr() as usize >> shift;
    // One object back to A, then one to C: A is partial first, C after it.
    c.free(&mut src, objs[0].as_ptr()).unwrap();
    c.free(&mut src, objs[2 * per].as_ptr()).unwrap();
    c.check_invariants(&src).unwrap();
    // SLUB takes the head of its partial list: A, the older one, not C.
    let x = c.alloc(&mut src).unwrap();
    assert_eq!(slab_of(x), slab_of(objs[0]));
    let y = c.alloc(&mut src).unwrap();
    assert_eq!(slab_of(y), slab_of(objs[2 * per]));
    c.check_invariants(&src).unwrap();
}

#[test]
fn misuse_is_detected() {
    let mut pool = pool(64);
    let mut a = cache("a", 64);
    let mut b = cache("b", 64);
    let mut src = pool.src();
    let x = a.alloc(&mut src).unwrap().as_ptr();
    let y = b.alloc(&mut src).unwrap().as_ptr();
    let snapshot = |c: &SlabCache| c.info();
    let (ia, ib) = (snapshot(&a), snapshot(&b));
    assert_eq!(
        a.free(&mut src, std::ptr::null_mut()),
        Err(SlabError::NullPointer)
    );
    assert_eq!(
        a.free(&mut src, y),
        Err(SlabError::ForeignPointer),
        "other cache's object"
    );
    assert_eq!(
        a.free(&mut src, x.wrapping_add(8)),
        Err(SlabError::NotAnObject)
    );
    assert_eq!(
        a.free(&mut src, x.wrapping_add(1)),
        Err(SlabError::NotAnObject)
    );
    // No descriptor in the slab: its first byte is object 0; the middle of
    // an object and the last byte of the slab are no objects.
    let head = x.with_addr(x.addr() & !(PAGE_SIZE - 1));
    assert_eq!(head, x, "the first object starts the slab");
    assert_eq!(
        a.free(&mut src, head.wrapping_add(PAGE_SIZE - 1)),
        Err(SlabError::NotAnObject)
    );
    assert_eq!(
        a.free(&mut src, head.wrapping_add(64 * 3 + 32)),
        Err(SlabError::NotAnObject)
    );
    // Free pages and memory outside the zone are foreign, never dereferenced.
    let free_page = head.wrapping_add(8 * PAGE_SIZE);
    assert_eq!(a.free(&mut src, free_page), Err(SlabError::ForeignPointer));
    let mut on_stack = 0u64;
    assert_eq!(
        a.free(&mut src, std::ptr::from_mut(&mut on_stack).cast()),
        Err(SlabError::ForeignPointer)
    );
    assert_eq!(
        a.free(&mut src, usize::MAX as *mut u8),
        Err(SlabError::ForeignPointer)
    );
    // A raw page block of the zone is not a slab either.
    let pfn = buddy_mut(&mut src).alloc(0).unwrap();
    let page = src.map().pfn_to_ptr(pfn).unwrap().as_ptr();
    assert_eq!(a.free(&mut src, page), Err(SlabError::ForeignPointer));
    buddy_mut(&mut src).free(pfn, 0).unwrap();
    assert_eq!((snapshot(&a), snapshot(&b)), (ia, ib));
    a.check_invariants(&src).unwrap();
    b.check_invariants(&src).unwrap();
    // Double free.
    let x2 = a.alloc(&mut src).unwrap().as_ptr();
    a.free(&mut src, x).unwrap();
    assert_eq!(a.free(&mut src, x), Err(SlabError::DoubleFree));
    a.check_invariants(&src).unwrap();
    assert!(!a.owns(&src, x));
    assert!(a.owns(&src, x2));
    // Freeing the slab's block behind the cache's back is refused (owner tag).
    let slab_pfn = src.map().ptr_to_pfn(x2).unwrap();
    assert!(buddy_mut(&mut src).free(slab_pfn, 0).is_err());
    let tag = a.tag();
    assert_eq!(
        buddy_mut(&mut src).free_tagged(slab_pfn, 0, tag),
        Err(BuddyError::ProtectedTag(tag))
    );
    assert_eq!(
        buddy_mut(&mut src).set_tag(slab_pfn, 0),
        Err(BuddyError::ProtectedTag(tag))
    );
    // Nor through the page source with any tag one can name.
    let slab_head = src.map().pfn_to_ptr(slab_pfn).unwrap();
    for t in [0, 1, 2, 255] {
        assert!(src.free_block(slab_head, 0, &OwnerTag::public(t)).is_err());
    }
    // Nor can a block be forged with a cache's tag.
    assert_eq!(
        buddy_mut(&mut src).alloc_tagged(0, tag),
        Err(BuddyError::ProtectedTag(tag))
    );
    assert_eq!(a.destroy(&mut src), Err(SlabError::Busy(1)));
    a.free(&mut src, x2).unwrap();
    assert_eq!(a.free(&mut src, x2), Err(SlabError::DoubleFree));
    a.destroy(&mut src).unwrap();
    // Once the slab went back to the zone, its old objects are foreign.
    assert_eq!(a.free(&mut src, x2), Err(SlabError::ForeignPointer));
    b.free(&mut src, y).unwrap();
    b.destroy(&mut src).unwrap();
    assert_eq!(src.buddy().free_pages(), 64);
}

#[test]
fn out_of_memory_is_an_error() {
    let mut c = cache("c", 3000);
    let mut pool = pool(2 << c.order());
    let mut src = pool.src();
    let n = 2 * c.objects_per_slab() as usize;
    let objs: Vec<_> = (0..n).map(|_| c.alloc(&mut src).unwrap()).collect();
    assert_eq!(c.alloc(&mut src), Err(SlabError::OutOfMemory));
    c.check_invariants(&src).unwrap();
    for o in objs {
        c.free(&mut src, o.as_ptr()).unwrap();
    }
    c.destroy(&mut src).unwrap();
}

fn fill_ctor(obj: *mut u8) {
    // SAFETY: The cache passes 40 writable bytes.
    unsafe { obj.cast::<[u32; 10]>().write_unaligned([0xC0DE; 10]) };
}

#[test]
fn constructor_runs_for_every_object_of_a_new_slab() {
    let mut pool = pool(64);
    let mut c = SlabCache::new("ctor", 40, 0, SlabFlags::NONE, Some(fill_ctor)).unwrap();
    let mut src = pool.src();
    let per = c.objects_per_slab() as usize;
    let objs: Vec<_> = (0..per).map(|_| c.alloc(&mut src).unwrap()).collect();
    for o in &objs {
        // SAFETY: A live 40-byte object.
        let v = unsafe { o.as_ptr().cast::<[u32; 10]>().read_unaligned() };
        assert_eq!(v, [0xC0DE; 10]);
    }
    // The constructed state survives free and reallocation: with a
    // constructor the free pointer lives after the object (SLUB), which
    // adds a word to the stride.
    assert_eq!(c.size(), 48);
    c.free(&mut src, objs[5].as_ptr()).unwrap();
    let again = c.alloc(&mut src).unwrap();
    assert_eq!(again, objs[5]);
    // SAFETY: A live 40-byte object.
    let v = unsafe { again.as_ptr().cast::<[u32; 10]>().read_unaligned() };
    assert_eq!(v, [0xC0DE; 10]);
    for o in objs {
        c.free(&mut src, o.as_ptr()).unwrap();
    }
    c.destroy(&mut src).unwrap();
}

#[test]
fn colour_offsets_cycle_per_slab() {
    let mut pool = pool(256);
    // 1000-byte objects: 4 per page, leftover ~900 bytes: several colours.
    let mut c = cache("c", 1000);
    assert!(c.colours() > 1, "colours {}", c.colours());
    let per = c.objects_per_slab() as usize;
    let mut src = pool.src();
    let mut firsts = Vec::new();
    let mut objs = Vec::new();
    for _ in 0..c.colours() as usize + 1 {
        let first = c.alloc(&mut src).unwrap();
        firsts.push(first.as_ptr().addr() % PAGE_SIZE);
        objs.push(first);
        for _ in 1..per {
            objs.push(c.alloc(&mut src).unwrap());
        }
    }
    let n = c.colours() as usize;
    let base = firsts[0];
    for (i, f) in firsts.iter().enumerate() {
        assert_eq!(*f, base + (i % n) * 64, "slab {i}: first object at {f:#x}");
    }
    c.check_invariants(&src).unwrap();
    for o in objs {
        c.free(&mut src, o.as_ptr()).unwrap();
    }
    c.destroy(&mut src).unwrap();
    // Colouring with alignment above a cache line keeps the alignment.
    let mut c = SlabCache::new("c", 300, 128, SlabFlags::NONE, None).unwrap();
    let objs: Vec<_> = (0..40).map(|_| c.alloc(&mut src).unwrap()).collect();
    assert!(objs.iter().all(|o| o.as_ptr().addr() % 128 == 0));
    for o in objs {
        c.free(&mut src, o.as_ptr()).unwrap();
    }
    c.destroy(&mut src).unwrap();
}

#[test]
fn objects_fill_the_slab_without_overlap() {
    let mut pool = pool(1024);
    for (size, align) in [
        (1, 0),
        (8, 0),
        (24, 0),
        (100, 64),
        (4096, 4096),
        (8192, 8192),
        (5000, 0),
    ] {
        let mut c = SlabCache::new("c", size, align, SlabFlags::NONE, None).unwrap();
        let mut src = pool.src();
        let n = c.objects_per_slab() as usize * 3;
        let mut objs: Vec<usize> = (0..n)
            .map(|_| c.alloc(&mut src).unwrap().as_ptr().addr())
            .collect();
        assert_eq!(c.info().num_slabs, 3);
        objs.sort();
        for w in objs.windows(2) {
            assert!(w[0] + c.size() <= w[1], "size {size}: overlap");
        }
        for &o in &objs {
            assert_eq!(o % c.align(), 0);
            let block = src.block_of(o as *const u8).unwrap();
            let end = block.head.as_ptr().addr() + (PAGE_SIZE << block.order);
            assert!(o + c.object_size() <= end);
        }
        c.check_invariants(&src).unwrap();
        let base = pool.arena.base();
        let mut src = pool.src();
        for o in objs {
            c.free(&mut src, base.with_addr(o)).unwrap();
        }
        c.destroy(&mut src).unwrap();
        assert_eq!(src.buddy().free_pages(), 1024);
    }
}

#[test]
fn cache_name_and_numbers() {
    let c = cache("my_cache", 192);
    assert_eq!(c.name(), "my_cache");
    assert_eq!(c.object_size(), 192);
    let i = c.info();
    assert_eq!(i.objsize, 192);
    assert_eq!(i.pagesperslab, 1 << c.order());
    assert_eq!(i.objperslab, c.objects_per_slab());
    assert!(cache("other", 192).tag() != c.tag(), "tags are unique");
}

/// The zone behind `src`, for direct page calls (no regions are added).
fn buddy_mut<'s>(
    src: &'s mut BuddyPages<'_, Vec<PageMeta>, Vec<Region>, LinearMap>,
) -> &'s mut Buddy<Vec<PageMeta>, Vec<Region>> {
    // SAFETY: The tests only allocate and free through it, never add regions.
    unsafe { src.buddy_mut() }
}
