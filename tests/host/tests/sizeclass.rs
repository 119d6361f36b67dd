// SPDX-License-Identifier: GPL-2.0

//! Unit tests of the kmalloc mirror (src/core/sizeclass.rs).

#[path = "../harness.rs"]
mod harness;

use harness::Pool;
use memlab_core::buddy::{Buddy, PageMeta, Region, PAGE_SIZE};
use memlab_core::render;
use memlab_core::sizeclass::{
    get_order, kmalloc_size_roundup, Kmalloc, KmallocError, SizeClass, KMALLOC_MAX_CACHE_SIZE,
    KMALLOC_MAX_SIZE, NR_KMALLOC_CLASSES, ZERO_SIZE_PTR,
};
use memlab_core::slab::{AddrMap, BuddyPages, LinearMap, SlabCache, SlabError, SlabFlags};

const BASE_PFN: u64 = 0x10_0000;
const PAGES: u64 = 4096;

#[test]
fn size_classes_match_kmalloc_index() {
    let expect = |size: usize| -> usize {
        // __kmalloc_index() of include/linux/slab.h.
        match size {
            0..=8 => 8,
            65..=96 => 96,
            129..=192 => 192,
            _ => size.next_power_of_two().max(8),
        }
    };
    for size in 1..=KMALLOC_MAX_CACHE_SIZE {
        let class = SizeClass::for_size(size).unwrap();
        assert_eq!(class.size(), expect(size), "size {size}");
        assert_eq!(SizeClass::ALL[class.index()], class);
    }
    assert_eq!(SizeClass::for_size(0), None);
    assert_eq!(SizeClass::for_size(8193), None);
    let sizes: Vec<usize> = SizeClass::ALL.iter().map(|c| c.size()).collect();
    assert_eq!(
        sizes,
        [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192]
    );
    let names: Vec<&str> = SizeClass::ALL.iter().map(|c| c.name()).collect();
    assert_eq!(names[4], "kmalloc-96");
    assert_eq!(names[12], "kmalloc-8k");
    let aligns: Vec<usize> = SizeClass::ALL.iter().map(|c| c.align()).collect();
    assert_eq!(
        aligns,
        [8, 16, 32, 64, 32, 128, 64, 256, 512, 1024, 2048, 4096, 8192]
    );
}

#[test]
fn get_order_like_the_kernel() {
    assert_eq!(get_order(0), 0);
    assert_eq!(get_order(1), 0);
    assert_eq!(get_order(4096), 0);
    assert_eq!(get_order(4097), 1);
    assert_eq!(get_order(8192), 1);
    assert_eq!(get_order(8193), 2);
    assert_eq!(get_order(KMALLOC_MAX_SIZE), 10);
    assert_eq!(get_order(KMALLOC_MAX_SIZE + 1), 11);
    assert_eq!(get_order(usize::MAX), 52);
    assert_eq!(kmalloc_size_roundup(100), Some(128));
    assert_eq!(kmalloc_size_roundup(9000), Some(16384));
    assert_eq!(kmalloc_size_roundup(KMALLOC_MAX_SIZE + 1), None);
}

#[test]
fn kmalloc_small_large_and_limits() {
    let mut pool = Pool::new(PAGES, BASE_PFN);
    let mut km = Kmalloc::new().unwrap();
    let mut src = pool.src();
    assert_eq!(km.caches().len(), NR_KMALLOC_CLASSES);
    let mut ptrs = Vec::new();
    for size in [1, 8, 9, 65, 96, 97, 129, 192, 193, 1000, 4096, 5000, 8192] {
        let p = km.kmalloc(&mut src, size).unwrap();
        let class = SizeClass::for_size(size).unwrap();
        assert_eq!(km.ksize(&src, p.as_ptr()), Ok(class.size()));
        assert_eq!(p.as_ptr().addr() % class.align(), 0);
        assert!(km.cache(class).active_objs() >= 1);
        ptrs.push(p);
    }
    for size in [8193, 16384, 100_000, KMALLOC_MAX_SIZE] {
        let p = km.kmalloc(&mut src, size).unwrap();
        let bytes = PAGE_SIZE << get_order(size);
        assert_eq!(km.ksize(&src, p.as_ptr()), Ok(bytes));
        assert_eq!(p.as_ptr().addr() % bytes, 0);
        // Interior pointers of a large block are not kfree-able.
        assert_eq!(
            km.kfree(&mut src, p.as_ptr().wrapping_add(8)),
            Err(KmallocError::NotBlockHead)
        );
        ptrs.push(p);
    }
    assert_eq!(km.large_blocks(), 4);
    assert_eq!(
        km.kmalloc(&mut src, KMALLOC_MAX_SIZE + 1),
        Err(KmallocError::TooLarge(KMALLOC_MAX_SIZE + 1))
    );
    assert_eq!(
        km.kmalloc(&mut src, usize::MAX),
        Err(KmallocError::TooLarge(usize::MAX))
    );
    // 16 MiB zone: one 4 MiB block taken, one split by the smaller requests,
    // so two more fit, then OOM.
    let big: Vec<_> = (0..2)
        .map(|_| km.kmalloc(&mut src, KMALLOC_MAX_SIZE).unwrap())
        .collect();
    assert_eq!(
        km.kmalloc(&mut src, KMALLOC_MAX_SIZE),
        Err(KmallocError::OutOfMemory)
    );
    km.check_invariants(&src).unwrap();
    for p in ptrs.into_iter().chain(big) {
        km.kfree(&mut src, p.as_ptr()).unwrap();
        assert!(km.kfree(&mut src, p.as_ptr()).is_err(), "double kfree");
    }
    assert_eq!(km.large_blocks(), 0);
    km.check_invariants(&src).unwrap();
    km.destroy(&mut src).unwrap();
    assert_eq!(src.buddy().free_pages(), PAGES);
}

#[test]
fn kmalloc_zero_null_and_foreign() {
    let mut pool = Pool::new(PAGES, BASE_PFN);
    let mut km = Kmalloc::new().unwrap();
    let mut other = SlabCache::new("other", 64, 0, SlabFlags::NONE, None).unwrap();
    let mut src = pool.src();
    assert_eq!(km.kmalloc(&mut src, 0).unwrap().as_ptr(), ZERO_SIZE_PTR);
    assert_eq!(km.kfree(&mut src, ZERO_SIZE_PTR), Ok(()));
    assert_eq!(km.kfree(&mut src, std::ptr::null_mut()), Ok(()));
    assert_eq!(km.ksize(&src, ZERO_SIZE_PTR), Ok(0));
    let mut local = 0u8;
    assert_eq!(
        km.kfree(&mut src, &mut local),
        Err(KmallocError::ForeignPointer)
    );
    // Another cache's object, a raw page: foreign to kmalloc.
    let o = other.alloc(&mut src).unwrap();
    assert_eq!(
        km.kfree(&mut src, o.as_ptr()),
        Err(KmallocError::ForeignPointer)
    );
    assert_eq!(
        km.ksize(&src, o.as_ptr()),
        Err(KmallocError::ForeignPointer)
    );
    let p = km.kmalloc(&mut src, 64).unwrap();
    assert_eq!(
        other.free(&mut src, p.as_ptr()),
        Err(SlabError::ForeignPointer)
    );
    assert_eq!(
        km.kfree(&mut src, p.as_ptr().wrapping_add(8)),
        Err(KmallocError::Slab(SlabError::NotAnObject))
    );
    assert_eq!(
        km.ksize(&src, p.as_ptr().wrapping_add(8)),
        Err(KmallocError::Slab(SlabError::NotAnObject))
    );
    assert!(matches!(
        km.destroy(&mut src),
        Err(KmallocError::Slab(SlabError::Busy(1)))
    ));
    km.kfree(&mut src, p.as_ptr()).unwrap();
    other.free(&mut src, o.as_ptr()).unwrap();
    km.destroy(&mut src).unwrap();
    other.destroy(&mut src).unwrap();
    assert_eq!(src.buddy().free_pages(), PAGES);
}

#[test]
fn kmalloc_slabinfo() {
    let mut pool = Pool::new(PAGES, BASE_PFN);
    let mut km = Kmalloc::new().unwrap();
    let mut src = pool.src();
    let ptrs: Vec<_> = (0..100)
        .map(|_| km.kmalloc(&mut src, 96).unwrap())
        .collect();
    let mut out = String::new();
    render::slabinfo(&mut out, km.caches()).unwrap();
    let line = out.lines().find(|l| l.starts_with("kmalloc-96 ")).unwrap();
    let f: Vec<&str> = line.split_whitespace().collect();
    let cache = km.cache(SizeClass::for_size(96).unwrap());
    let per = cache.objects_per_slab() as u64;
    let slabs = 100u64.div_ceil(per);
    assert_eq!(f[1], "100");
    assert_eq!(f[2], (slabs * per).to_string());
    assert_eq!(f[3], "96");
    assert_eq!(f[13], slabs.to_string());
    assert_eq!(out.lines().count(), 2 + NR_KMALLOC_CLASSES);
    for p in ptrs {
        km.kfree(&mut src, p.as_ptr()).unwrap();
    }
    km.destroy(&mut src).unwrap();
}

/// A block the caller tagged with a public tag, or another `Kmalloc`'s large
/// block, is not this kmalloc's: kfree must refuse it (it used to take any
/// block tagged 1 and underflow its large-block counters, a panic in the
/// module with overflow checks on).
#[test]
fn kfree_refuses_large_blocks_it_does_not_own() {
    let mut pool = Pool::new(PAGES, BASE_PFN);
    let mut km = Kmalloc::new().unwrap();
    let mut other = Kmalloc::new().unwrap();
    let mut src = pool.src();
    // Every public tag, including the one large kmalloc blocks used to share.
    for tag in 0..4u32 {
        let pfn = buddy_mut(&mut src).alloc_tagged(2, tag).unwrap();
        let ptr = pool_ptr(&src, pfn);
        assert_eq!(km.kfree(&mut src, ptr), Err(KmallocError::ForeignPointer));
        assert_eq!(km.ksize(&src, ptr), Err(KmallocError::ForeignPointer));
        assert_eq!(km.large_blocks(), 0);
        buddy_mut(&mut src).free_tagged(pfn, 2, tag).unwrap();
    }
    // Another kmalloc's large block.
    let big = other.kmalloc(&mut src, 3 * PAGE_SIZE).unwrap();
    assert_eq!(
        km.kfree(&mut src, big.as_ptr()),
        Err(KmallocError::ForeignPointer)
    );
    assert_eq!(
        km.ksize(&src, big.as_ptr()),
        Err(KmallocError::ForeignPointer)
    );
    assert_eq!((km.large_blocks(), other.large_blocks()), (0, 1));
    // Nor can a public call retag or free it behind kmalloc's back.
    let pfn = src.map().ptr_to_pfn(big.as_ptr()).unwrap();
    assert!(buddy_mut(&mut src).set_tag(pfn, 0).is_err());
    assert!(buddy_mut(&mut src).free(pfn, 2).is_err());
    other.kfree(&mut src, big.as_ptr()).unwrap();
    km.destroy(&mut src).unwrap();
    other.destroy(&mut src).unwrap();
    assert_eq!(src.buddy().free_pages(), PAGES);
}

fn pool_ptr(src: &BuddyPages<'_, Vec<PageMeta>, Vec<Region>, LinearMap>, pfn: u64) -> *mut u8 {
    src.map().pfn_to_ptr(pfn).unwrap().as_ptr()
}

/// The zone behind `src`, for direct page calls (no regions are added).
fn buddy_mut<'s>(
    src: &'s mut BuddyPages<'_, Vec<PageMeta>, Vec<Region>, LinearMap>,
) -> &'s mut Buddy<Vec<PageMeta>, Vec<Region>> {
    // SAFETY: The tests only allocate and free through it, never add regions.
    unsafe { src.buddy_mut() }
}

#[test]
fn dma_set_has_the_kernels_names_and_same_classes() {
    let normal = Kmalloc::new().unwrap();
    let dma = Kmalloc::new_dma().unwrap();
    assert_eq!(dma.caches().len(), normal.caches().len());
    for (d, n) in dma.caches().iter().zip(normal.caches()) {
        assert_eq!(d.name(), format!("dma-{}", n.name()));
        assert_eq!(d.object_size(), n.object_size());
        assert_ne!(d.tag(), n.tag(), "separate caches, separate owners");
    }
}
