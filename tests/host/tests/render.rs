// SPDX-License-Identifier: GPL-2.0

//! Byte-exact tests of the kernel-format renderers (src/core/render.rs).
//!
//! Expected lines are literal text in the layout of a real kernel's
//! /proc/buddyinfo, /proc/slabinfo and /sys/kernel/debug/extfrag/*; the index
//! values were computed independently with the C formulas of mm/vmstat.c
//! (unsigned 64-bit arithmetic, C truncating division, `%2d.%03d`).

use memlab_core::buddy::NR_PAGE_ORDERS;
use memlab_core::render::{self, ContigPageInfo};
use memlab_core::slab::{SlabCache, SlabFlags, SlabInfo};

type Zone = (i32, &'static str, [u64; NR_PAGE_ORDERS]);

const ZONES: [Zone; 7] = [
    (0, "DMA", [1, 1, 1, 0, 2, 1, 1, 0, 1, 1, 3]),
    (0, "DMA32", [3, 4, 4, 5, 3, 5, 3, 4, 3, 5, 427]),
    (0, "Normal", [1372, 894, 381, 175, 97, 41, 17, 5, 3, 0, 0]),
    (1, "Movable", [0; NR_PAGE_ORDERS]),
    (0, "Normal", [4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    (0, "HighMem", [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    (0, "Normal", [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
];

fn render(f: fn(&mut String, i32, &str, &[u64; NR_PAGE_ORDERS]) -> std::fmt::Result) -> String {
    let mut out = String::new();
    for (node, zone, nr_free) in &ZONES {
        f(&mut out, *node, zone, nr_free).unwrap();
    }
    out
}

#[test]
fn buddyinfo_layout() {
    let want = "\
Node 0, zone      DMA      1      1      1      0      2      1      1      0      1      1      3 
Node 0, zone    DMA32      3      4      4      5      3      5      3      4      3      5    427 
Node 0, zone   Normal   1372    894    381    175     97     41     17      5      3      0      0 
Node 1, zone  Movable      0      0      0      0      0      0      0      0      0      0      0 
Node 0, zone   Normal      4      0      0      0      0      0      0      0      0      0      0 
Node 0, zone  HighMem      1      1      0      0      0      0      0      0      0      0      0 
Node 0, zone   Normal      1      0      0      0      0      0      0      0      0      0      0 
";
    assert_eq!(render(render::buddyinfo), want);
    // Counts wider than the field push the columns, as printf does.
    let mut out = String::new();
    render::buddyinfo(
        &mut out,
        0,
        "Normal",
        &[12345678, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    )
    .unwrap();
    assert_eq!(out, "Node 0, zone   Normal 12345678      0      0      0      0      0      0      0      0      0      1 \n");
    // Long zone names are not truncated (%8s).
    let mut out = String::new();
    render::buddyinfo(&mut out, 0, "Device_Zone", &[0; NR_PAGE_ORDERS]).unwrap();
    assert!(out.starts_with("Node 0, zone Device_Zone      0 "));
}

#[test]
fn extfrag_index_layout() {
    let want = "\
Node 0, zone      DMA -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 
Node 0, zone    DMA32 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 
Node 0, zone   Normal -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000 -1.000  0.993  0.996 
Node 1, zone  Movable  0.000  0.000  0.000  0.000  0.000  0.000  0.000  0.000  0.000  0.000  0.000 
Node 0, zone   Normal -1.000  0.250  0.500  0.625  0.688  0.719  0.735  0.743  0.747  0.749  0.750 
Node 0, zone  HighMem -1.000 -1.000  0.125  0.313  0.407  0.454  0.477  0.489  0.495  0.498  0.499 
Node 0, zone   Normal -1.000  0.-500  0.-250  0.-125  0.-62  0.-31  0.-15  0.-07  0.-03  0.-01  0.000 
";
    assert_eq!(render(render::extfrag_index), want);
}

#[test]
fn unusable_index_layout() {
    let want = "\
Node 0, zone      DMA 0.000 0.000 0.000 0.001 0.001 0.009 0.017 0.033 0.033 0.098 0.227 
Node 0, zone    DMA32 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.001 0.002 0.003 0.009 
Node 0, zone   Normal 0.000 0.119 0.276 0.409 0.531 0.667 0.781 0.876 0.932 1.000 1.000 
Node 1, zone  Movable 1.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 
Node 0, zone   Normal 0.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 
Node 0, zone  HighMem 0.000 0.333 1.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 
Node 0, zone   Normal 0.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 1.000 
";
    assert_eq!(render(render::unusable_index), want);
}

#[test]
fn index_formulas() {
    let nr = [1372, 894, 381, 175, 97, 41, 17, 5, 3, 0, 0];
    let info = ContigPageInfo::new(&nr, 9);
    assert_eq!(
        info,
        ContigPageInfo {
            free_pages: 1372
                + 894 * 2
                + 381 * 4
                + 175 * 8
                + 97 * 16
                + 41 * 32
                + 17 * 64
                + 5 * 128
                + 3 * 256,
            free_blocks_total: 2985,
            free_blocks_suitable: 0,
        }
    );
    assert_eq!(render::fragmentation_index(9, &info), 993);
    assert_eq!(
        render::fragmentation_index(11, &info),
        0,
        "order above the maximum"
    );
    assert_eq!(render::unusable_free_index(9, &info), 1000);
    assert_eq!(
        render::unusable_free_index(99, &info),
        1000,
        "no panic on a huge order"
    );
    // Huge counters wrap like the kernel's unsigned long, never panic.
    let huge = [u64::MAX; NR_PAGE_ORDERS];
    let info = ContigPageInfo::new(&huge, 3);
    let _ = render::fragmentation_index(3, &info);
    let _ = render::unusable_free_index(3, &info);
    let mut out = String::new();
    render::extfrag_index(&mut out, 0, "Normal", &huge).unwrap();
    render::unusable_index(&mut out, 0, "Normal", &huge).unwrap();
    render::buddyinfo(&mut out, 0, "Normal", &huge).unwrap();
}

#[test]
fn slabinfo_layout() {
    let mut out = String::new();
    render::slabinfo_header(&mut out).unwrap();
    let lines: [(&str, SlabInfo); 4] = [
        (
            "kmalloc-8k",
            SlabInfo {
                active_objs: 380,
                num_objs: 392,
                objsize: 8192,
                objperslab: 4,
                pagesperslab: 8,
                active_slabs: 98,
                num_slabs: 98,
            },
        ),
        (
            "kmalloc-96",
            SlabInfo {
                active_objs: 1743,
                num_objs: 2058,
                objsize: 96,
                objperslab: 42,
                pagesperslab: 1,
                active_slabs: 49,
                num_slabs: 49,
            },
        ),
        (
            "ext4_inode_cache",
            SlabInfo {
                active_objs: 25840,
                num_objs: 25920,
                objsize: 1176,
                objperslab: 27,
                pagesperslab: 8,
                active_slabs: 960,
                num_slabs: 960,
            },
        ),
        (
            "fsnotify_mark_connector",
            SlabInfo {
                active_objs: 1024,
                num_objs: 1024,
                objsize: 32,
                objperslab: 128,
                pagesperslab: 1,
                active_slabs: 8,
                num_slabs: 8,
            },
        ),
    ];
    for (name, info) in &lines {
        render::slabinfo_line(&mut out, name, info).unwrap();
    }
    let want = "\
slabinfo - version: 2.1
# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>
kmalloc-8k           380    392   8192    4    8 : tunables    0    0    0 : slabdata     98     98      0
kmalloc-96          1743   2058     96   42    1 : tunables    0    0    0 : slabdata     49     49      0
ext4_inode_cache   25840  25920   1176   27    8 : tunables    0    0    0 : slabdata    960    960      0
fsnotify_mark_connector   1024   1024     32  128    1 : tunables    0    0    0 : slabdata      8      8      0
";
    assert_eq!(out, want);
}

#[test]
fn slabinfo_of_a_cache() {
    let caches = [
        SlabCache::new("memlab_a", 64, 0, SlabFlags::NONE, None).unwrap(),
        SlabCache::new("memlab_b", 100, 0, SlabFlags::HWCACHE_ALIGN, None).unwrap(),
    ];
    let mut out = String::new();
    render::slabinfo(&mut out, &caches).unwrap();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("slabinfo - version: 2.1"));
    assert!(lines
        .next()
        .unwrap()
        .starts_with("# name            <active_objs>"));
    let a = &caches[0];
    let want_a = format!(
        "memlab_a               0      0     64 {:>4}    1 : tunables    0    0    0 : slabdata      0      0      0",
        a.objects_per_slab()
    );
    assert_eq!(lines.next(), Some(want_a.as_str()));
    let b = lines.next().unwrap();
    assert!(
        b.starts_with("memlab_b               0      0    128 "),
        "{b}"
    );
    assert_eq!(lines.next(), None);
    // Parsable the way slabtop and friends split it.
    let fields: Vec<&str> = b.split_whitespace().collect();
    assert_eq!(fields.len(), 16);
    assert_eq!(fields[6], ":");
    assert_eq!(fields[7], "tunables");
}

#[test]
fn slabstat_layout() {
    let mut out = String::new();
    render::slabstat_header(&mut out).unwrap();
    let s = memlab_core::slab::SlabStat {
        object_size: 64,
        slab_size: 64,
        objs_per_slab: 64,
        order: 0,
        objects: 120,
        total_objects: 128,
        slabs: 2,
        partial: 1,
        objects_partial: 56,
        min_partial: 5,
    };
    let sheaves = render::SheafStat {
        capacity: 60,
        fill: 120,
        barn_full: 0,
        barn_empty: 4,
    };
    render::slabstat_line(&mut out, "kmalloc-64", &s, &sheaves).unwrap();
    let want = "\
# name object_size slab_size objs_per_slab order objects total_objects slabs partial objects_partial min_partial sheaf_capacity sheaf_fill barn_full barn_empty
kmalloc-64            64     64   64 0      120      128      2      1       56   5   60    120   0   4
";
    assert_eq!(out, want);
    let header = out.lines().next().unwrap();
    assert_eq!(
        header.split_whitespace().count(),
        render::SLABSTAT_COLUMNS.len() + 1
    );
    let line = out.lines().nth(1).unwrap();
    assert_eq!(
        line.split_whitespace().count(),
        render::SLABSTAT_COLUMNS.len()
    );
}
