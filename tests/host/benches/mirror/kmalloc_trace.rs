// SPDX-License-Identifier: GPL-2.0

//! The kmalloc-like trace, run on every allocator: memlab's `Kmalloc` (size
//! classes over the buddy), `buddy_system_allocator`'s `Heap`, `talc`, and
//! `slabmalloc`'s `ZoneAllocator`. Sizes 1..=8192 weighted as a kernel's
//! kmalloc traffic leans (most requests 8..256 bytes), a live set of up to
//! 24 MiB rising and falling. Like a kmalloc caller, the trace writes the
//! first word of every object it gets and reads it back before freeing it,
//! on every allocator alike. memlab's kfree is unsized (it finds the class
//! from the page metadata); the others are told the layout at free.

use std::alloc::{alloc, Layout};
use std::cell::RefCell;
use std::hint::black_box;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use buddy_system_allocator::Heap;
use memlab_core::buddy::{Buddy, PageMeta, Region, MAX_PAGE_ORDER, PAGE_SIZE};
use memlab_core::sizeclass::{Kmalloc, SizeClass};
use memlab_core::slab::{BuddyPages, LinearMap};
use slabmalloc::{AllocablePage, Allocator, LargeObjectPage, ObjectPage, ZoneAllocator};
use talc::base::Talc;
use talc::source::Manual;
use talc::DefaultBinning;

use super::{rounds, trace, Step};

/// kmalloc classes and how often a request falls in each.
const CLASSES: [(u32, u32); 13] = [
    (8, 6),
    (16, 10),
    (32, 12),
    (64, 16),
    (96, 6),
    (128, 10),
    (192, 8),
    (256, 8),
    (512, 8),
    (1024, 6),
    (2048, 4),
    (4096, 4),
    (8192, 2),
];
const ARENA: usize = 128 << 20;
const MAX_LIVE: u64 = 24 << 20;
const OPS: usize = 1_000_000;

/// Fresh memory aligned to the largest buddy block, leaked (bench process).
fn arena(bytes: usize, align: usize) -> *mut u8 {
    let layout = Layout::from_size_align(bytes, align).unwrap();
    // SAFETY: Non-zero size.
    let p = unsafe { alloc(layout) };
    assert!(!p.is_null());
    p
}

fn layout(size: u32) -> Layout {
    Layout::from_size_align(size as usize, 8).unwrap()
}

/// Runs the trace with `alloc`/`free` and the caller's touches; the time.
fn run(
    steps: &[Step],
    nslots: usize,
    mut alloc: impl FnMut(u32) -> NonNull<u8>,
    mut free: impl FnMut(NonNull<u8>, u32),
) -> Duration {
    let mut slots: Vec<Option<(NonNull<u8>, u32)>> = vec![None; nslots];
    let t = Instant::now();
    for s in steps {
        match *s {
            Step::Alloc { slot, value } => {
                let p = alloc(value);
                // SAFETY: A live object of at least 1 byte: write 1 to 8 of them.
                unsafe { p.as_ptr().write_bytes(slot as u8, (value as usize).min(8)) };
                slots[slot as usize] = Some((p, value));
            }
            Step::Free { slot } => {
                let (p, size) = slots[slot as usize].take().unwrap();
                // SAFETY: Written at allocation.
                black_box(unsafe { p.as_ptr().read() });
                free(p, size);
            }
        }
    }
    let d = t.elapsed();
    for (p, size) in slots.into_iter().flatten() {
        free(p, size);
    }
    d
}

/// The trace's length, and every allocator's times on it round by round
/// (`rounds`), memlab first (kfree, then freeing with the class known).
pub fn bench() -> (usize, Vec<(&'static str, Vec<Duration>)>) {
    let total: u32 = CLASSES.iter().map(|c| c.1).sum();
    let (steps, nslots) = trace(OPS, MAX_LIVE, 0x6B6D_616C, |rng| {
        let mut pick = rng.below(u64::from(total)) as u32;
        let mut prev = 0;
        for &(size, w) in &CLASSES {
            if pick < w {
                let s = prev + 1 + rng.below(u64::from(size - prev)) as u32;
                return (s, u64::from(s));
            }
            pick -= w;
            prev = size;
        }
        unreachable!()
    });
    let n = steps.len();

    let memlab = |sized: bool| {
        let pages = ARENA / PAGE_SIZE;
        let base = arena(ARENA, PAGE_SIZE << MAX_PAGE_ORDER);
        let mut zone = Buddy::new(vec![PageMeta::INIT; pages], vec![Region::EMPTY; 1]);
        zone.add_region(0, pages as u64).unwrap();
        // SAFETY: The region maps onto the fresh arena, aligned to the
        // largest block, used only through blocks of the zone.
        let mut src = unsafe { BuddyPages::new(&mut zone, LinearMap::new(base, 0)) };
        let mut km = Kmalloc::new().unwrap();
        // Empty slabs kept, as slabmalloc keeps its empty pages (talc and
        // buddy_system_allocator coalesce at every free, by design).
        for class in SizeClass::ALL {
            km.cache_mut(class).set_empty_limit(u64::MAX);
        }
        let km = RefCell::new(km);
        let src = RefCell::new(&mut src);
        run(
            &steps,
            nslots,
            |size| {
                km.borrow_mut()
                    .kmalloc(*src.borrow_mut(), size as usize)
                    .unwrap()
            },
            |p, size| {
                let mut km = km.borrow_mut();
                let mut src = src.borrow_mut();
                let src = &mut **src;
                match SizeClass::for_size(size as usize) {
                    // The class known, as the others are told the layout.
                    Some(class) if sized => km.cache_mut(class).free(src, p.as_ptr()).unwrap(),
                    // kfree(): the class from the page metadata.
                    _ => km.kfree(src, p.as_ptr()).unwrap(),
                }
            },
        )
    };
    let mut memlab_kfree = || memlab(false);
    let mut memlab_sized = || memlab(true);

    let mut bsa = || {
        let mut heap = Heap::<33>::new();
        // SAFETY: A fresh arena, used by nothing else.
        unsafe { heap.init(arena(ARENA, PAGE_SIZE) as usize, ARENA) };
        let heap = RefCell::new(heap);
        run(
            &steps,
            nslots,
            |size| heap.borrow_mut().alloc(layout(size)).unwrap(),
            // SAFETY: Allocated above with this layout.
            |p, size| unsafe { heap.borrow_mut().dealloc(p, layout(size)) },
        )
    };

    let mut talc = || {
        let mut talc = Talc::<Manual, DefaultBinning>::new(Manual);
        // SAFETY: A fresh arena, used by nothing else.
        unsafe { talc.claim(arena(ARENA, PAGE_SIZE), ARENA).unwrap() };
        let talc = RefCell::new(talc);
        run(
            &steps,
            nslots,
            // SAFETY: Layouts of non-zero size.
            |size| unsafe { talc.borrow_mut().allocate(layout(size)).unwrap() },
            // SAFETY: Allocated above with this layout.
            |p, size| unsafe { talc.borrow_mut().deallocate(p.as_ptr(), layout(size)) },
        )
    };

    let mut slabmalloc = || {
        let small = arena(ARENA, PAGE_SIZE);
        let large_size = LargeObjectPage::SIZE;
        let large = arena(ARENA, large_size);
        let (mut next_small, mut next_large) = (0, 0);
        let zone = RefCell::new(ZoneAllocator::new());
        run(
            &steps,
            nslots,
            |size| {
                let l = layout(size);
                let mut z = zone.borrow_mut();
                if let Ok(p) = z.allocate(l) {
                    return p;
                }
                // SAFETY: Fresh, zeroed (a valid empty page), aligned pages
                // of the leaked arenas, never handed out twice.
                unsafe {
                    if l.size() <= ZoneAllocator::MAX_BASE_ALLOC_SIZE {
                        assert!((next_small + 1) * PAGE_SIZE <= ARENA);
                        let p = small
                            .add(next_small * PAGE_SIZE)
                            .cast::<ObjectPage<'static>>();
                        next_small += 1;
                        p.write_bytes(0, 1);
                        z.refill(l, &mut *p).unwrap();
                    } else {
                        assert!((next_large + 1) * large_size <= ARENA);
                        let p = large
                            .add(next_large * large_size)
                            .cast::<LargeObjectPage<'static>>();
                        next_large += 1;
                        p.write_bytes(0, 1);
                        z.refill_large(l, &mut *p).unwrap();
                    }
                }
                z.allocate(l).unwrap()
            },
            |p, size| zone.borrow_mut().deallocate(p, layout(size)).unwrap(),
        )
    };

    let t = rounds(&mut [
        &mut memlab_kfree,
        &mut memlab_sized,
        &mut bsa,
        &mut talc,
        &mut slabmalloc,
    ]);
    let names = [
        "memlab Kmalloc, kfree (unsized)",
        "memlab Kmalloc, sized free",
        "buddy_system_allocator 0.13 Heap",
        "talc 5 (Talc<Manual>)",
        "slabmalloc 0.11 ZoneAllocator",
    ];
    println!("kmalloc trace: {n} ops, sizes 1..=8192 (kmalloc-like mix), up to 24 MiB live, objects written and read");
    (n, names.into_iter().zip(t).collect())
}
