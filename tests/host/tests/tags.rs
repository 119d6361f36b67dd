// SPDX-License-Identifier: GPL-2.0

//! Owner tags (src/core/slab/page_source.rs): a live cache's tag is its
//! own, a dropped cache's tag is reused, so no number of caches made over a
//! module's lifetime can exhaust them; a cache dropped while it still holds
//! a slab never gives its tag back.

#[path = "../harness.rs"]
mod harness;

use std::collections::HashSet;

use harness::{zone, Arena};
use memlab_core::slab::{
    live_owner_tags, BuddyPages, LinearMap, SlabCache, SlabFlags, MAX_LIVE_TAGS,
};

fn cache() -> SlabCache {
    SlabCache::new("tags", 64, 0, SlabFlags::NONE, None).unwrap()
}

// One test function: the tag bitmap is process-wide, and the counts below
// must not see other threads' caches.
#[test]
fn tags_are_unique_while_live_and_reused_after() {
    let base = live_owner_tags();

    // Many more caches than tags exist, made and dropped one at a time:
    // none is refused, and they all reuse one tag.
    let mut seen = HashSet::new();
    for _ in 0..3 * MAX_LIVE_TAGS {
        let c = cache();
        seen.insert(c.tag());
    }
    assert_eq!(live_owner_tags(), base);
    assert_eq!(seen.len(), 1, "a dropped cache's tag is reused");

    // Live caches never share a tag.
    let live: Vec<SlabCache> = (0..1000).map(|_| cache()).collect();
    let tags: HashSet<u32> = live.iter().map(SlabCache::tag).collect();
    assert_eq!(tags.len(), live.len());
    assert_eq!(live_owner_tags(), base + live.len());
    drop(live);
    assert_eq!(live_owner_tags(), base);

    // A cache dropped while holding a slab keeps its tag: the slab still
    // carries it, so no new cache may get it.
    let pages = 64;
    let arena = Arena::new(pages);
    let mut z = zone(pages as usize, 1);
    z.add_region(0x8000, pages).unwrap();
    let map = LinearMap::new(arena.base(), 0x8000);
    // SAFETY: the region maps onto the arena, which is aligned to the
    // largest block and only accessed through allocated blocks.
    let mut src = unsafe { BuddyPages::new(&mut z, map) };
    let mut c = cache();
    let leaked_tag = c.tag();
    let _obj = c.alloc(&mut src).unwrap();
    drop(c);
    assert_eq!(live_owner_tags(), base + 1);
    let next = cache();
    assert_ne!(next.tag(), leaked_tag);
}
