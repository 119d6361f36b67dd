// SPDX-License-Identifier: GPL-2.0

//! Text reports in the kernel's own layouts, written to any
//! [`core::fmt::Write`].
//!
//! This file is plain `core` Rust: the kernel module and the host test crate
//! compile the very same source.
//!
//! - `buddyinfo`: `/proc/buddyinfo`, `frag_show_print()` in mm/vmstat.c.
//! - `slabinfo`: `/proc/slabinfo` version 2.1, `print_slabinfo_header()` and
//!   `cache_show()` in mm/slab_common.c. The tunables and shared columns are
//!   0 as with SLUB; `active_slabs` counts slabs with an object allocated.
//! - `extfrag_index` and `unusable_index`: `/sys/kernel/debug/extfrag/*`,
//!   `__fragmentation_index()`, `unusable_free_index()` and their
//!   `*_show_print()` in mm/vmstat.c, integer fixed point with 3 decimals.
//!   The arithmetic is the kernel's, unsigned 64-bit wrapping included, so
//!   the output matches it for any counters.
//! - `slabstat`: no kernel file has it; one line per cache with a column
//!   for each `/sys/kernel/slab/<cache>/` attribute memlab reads (named as
//!   in `mm/slub.c`), then the sheaf state the kernel keeps private
//!   (`struct slub_percpu_sheaves`, `struct node_barn`): objects on the
//!   CPUs' sheaves and the barn's full and empty sheaves. [`SLABSTAT_COLUMNS`]
//!   names the columns, in the header line too, so a reader finds them by
//!   name.

use core::fmt::{self, Write};

use crate::buddy::NR_PAGE_ORDERS;
use crate::slab::{SlabCache, SlabInfo, SlabStat};

/// `struct contig_page_info` of mm/vmstat.c: free memory of a zone as seen by
/// a request of one order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContigPageInfo {
    /// Free base pages.
    pub free_pages: u64,
    /// Free blocks of any order.
    pub free_blocks_total: u64,
    /// Free blocks able to serve the order, counted in blocks of that order.
    pub free_blocks_suitable: u64,
}

impl ContigPageInfo {
    /// `fill_contig_page_info()` from the free block counts per order.
    pub fn new(nr_free: &[u64; NR_PAGE_ORDERS], suitable_order: u32) -> Self {
        let mut info = ContigPageInfo::default();
        for (order, &blocks) in (0u32..).zip(nr_free.iter()) {
            info.free_blocks_total = info.free_blocks_total.wrapping_add(blocks);
            info.free_pages = info.free_pages.wrapping_add(blocks << order);
            if order >= suitable_order {
                info.free_blocks_suitable = info
                    .free_blocks_suitable
                    .wrapping_add(blocks << (order - suitable_order));
            }
        }
        info
    }
}

/// `__fragmentation_index()`: thousandths; -1000 when a suitable block is
/// free, 0 when nothing is free.
pub fn fragmentation_index(order: u32, info: &ContigPageInfo) -> i32 {
    if order as usize >= NR_PAGE_ORDERS || info.free_blocks_total == 0 {
        return 0;
    }
    if info.free_blocks_suitable != 0 {
        return -1000;
    }
    let requested = 1u64 << order;
    let scaled = info.free_pages.wrapping_mul(1000) / requested;
    // C: int = 1000 - u64, computed in u64 and truncated to int.
    1000u64.wrapping_sub(1000u64.wrapping_add(scaled) / info.free_blocks_total) as i32
}

/// `unusable_free_index()` at any fixed-point `scale`: the part of free
/// memory unusable for `order`, times `scale` (the kernel's is 1000; the
/// replay ioctl's is 10^6). The same function serves both backends.
pub fn unusable_free_scaled(order: u32, info: &ContigPageInfo, scale: u64) -> u64 {
    if info.free_pages == 0 {
        return scale;
    }
    let suitable_pages = info.free_blocks_suitable.checked_shl(order).unwrap_or(0);
    // C: div_u64((free - suitable << order) * 1000, free).
    info.free_pages
        .wrapping_sub(suitable_pages)
        .wrapping_mul(scale)
        / info.free_pages
}

/// `unusable_free_index()`: thousandths of free memory unusable for `order`.
pub fn unusable_free_index(order: u32, info: &ContigPageInfo) -> i32 {
    // C: the u64 quotient truncated to int.
    unusable_free_scaled(order, info, 1000) as i32
}

/// Writes the `"Node %d, zone %8s "` prefix shared by the per-zone files.
fn zone_prefix<W: Write>(w: &mut W, node: i32, zone: &str) -> fmt::Result {
    write!(w, "Node {node}, zone {zone:>8} ")
}

/// One zone's line of /proc/buddyinfo.
pub fn buddyinfo<W: Write>(
    w: &mut W,
    node: i32,
    zone: &str,
    nr_free: &[u64; NR_PAGE_ORDERS],
) -> fmt::Result {
    zone_prefix(w, node, zone)?;
    for count in nr_free {
        write!(w, "{count:>6} ")?;
    }
    w.write_char('\n')
}

/// One zone's line of /sys/kernel/debug/extfrag/extfrag_index.
pub fn extfrag_index<W: Write>(
    w: &mut W,
    node: i32,
    zone: &str,
    nr_free: &[u64; NR_PAGE_ORDERS],
) -> fmt::Result {
    zone_prefix(w, node, zone)?;
    for order in 0..NR_PAGE_ORDERS as u32 {
        let index = fragmentation_index(order, &ContigPageInfo::new(nr_free, order));
        write!(w, "{:2}.{:03} ", index / 1000, index % 1000)?;
    }
    w.write_char('\n')
}

/// One zone's line of /sys/kernel/debug/extfrag/unusable_index.
pub fn unusable_index<W: Write>(
    w: &mut W,
    node: i32,
    zone: &str,
    nr_free: &[u64; NR_PAGE_ORDERS],
) -> fmt::Result {
    zone_prefix(w, node, zone)?;
    for order in 0..NR_PAGE_ORDERS as u32 {
        let index = unusable_free_index(order, &ContigPageInfo::new(nr_free, order));
        write!(w, "{}.{:03} ", index / 1000, index % 1000)?;
    }
    w.write_char('\n')
}

/// The two header lines of /proc/slabinfo.
pub fn slabinfo_header<W: Write>(w: &mut W) -> fmt::Result {
    w.write_str("slabinfo - version: 2.1\n")?;
    w.write_str(
        "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>",
    )?;
    w.write_str(" : tunables <limit> <batchcount> <sharedfactor>")?;
    w.write_str(" : slabdata <active_slabs> <num_slabs> <sharedavail>")?;
    w.write_char('\n')
}

/// One cache's line of /proc/slabinfo from its numbers.
pub fn slabinfo_line<W: Write>(w: &mut W, name: &str, info: &SlabInfo) -> fmt::Result {
    write!(
        w,
        "{:<17} {:>6} {:>6} {:>6} {:>4} {:>4}",
        name, info.active_objs, info.num_objs, info.objsize, info.objperslab, info.pagesperslab
    )?;
    write!(w, " : tunables {:>4} {:>4} {:>4}", 0, 0, 0)?;
    write!(
        w,
        " : slabdata {:>6} {:>6} {:>6}",
        info.active_slabs, info.num_slabs, 0
    )?;
    w.write_char('\n')
}

/// One cache's line of /proc/slabinfo.
pub fn slabinfo_cache<W: Write>(w: &mut W, cache: &SlabCache) -> fmt::Result {
    slabinfo_line(w, cache.name(), &cache.info())
}

/// A whole /proc/slabinfo: header, then one line per cache.
pub fn slabinfo<'a, W: Write>(
    w: &mut W,
    caches: impl IntoIterator<Item = &'a SlabCache>,
) -> fmt::Result {
    slabinfo_header(w)?;
    caches
        .into_iter()
        .try_for_each(|cache| slabinfo_cache(w, cache))
}

/// A cache's sheaves: SLUB keeps these in private structures, with no sysfs
/// attribute but `sheaf_capacity`. A cache without sheaves has all zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SheafStat {
    /// Objects a sheaf holds (`sheaf_capacity`).
    pub capacity: u64,
    /// Objects on all CPUs' main and spare sheaves.
    pub fill: u64,
    /// Full sheaves in the barn (`barn->nr_full`).
    pub barn_full: u64,
    /// Empty sheaves in the barn (`barn->nr_empty`).
    pub barn_empty: u64,
}

/// The columns of a `slabstat` line, in order: the cache name, then
/// `/sys/kernel/slab` attribute names, then the sheaf state.
pub const SLABSTAT_COLUMNS: [&str; 15] = [
    "name",
    "object_size",
    "slab_size",
    "objs_per_slab",
    "order",
    "objects",
    "total_objects",
    "slabs",
    "partial",
    "objects_partial",
    "min_partial",
    "sheaf_capacity",
    "sheaf_fill",
    "barn_full",
    "barn_empty",
];

/// The header line of `slabstat`: `# ` and the column names.
pub fn slabstat_header<W: Write>(w: &mut W) -> fmt::Result {
    w.write_str("#")?;
    for c in SLABSTAT_COLUMNS {
        write!(w, " {c}")?;
    }
    w.write_char('\n')
}

/// One cache's line of `slabstat`.
pub fn slabstat_line<W: Write>(
    w: &mut W,
    name: &str,
    s: &SlabStat,
    sheaves: &SheafStat,
) -> fmt::Result {
    write!(
        w,
        "{:<17} {:>6} {:>6} {:>4} {} {:>8} {:>8} {:>6} {:>6} {:>8} {:>3}",
        name,
        s.object_size,
        s.slab_size,
        s.objs_per_slab,
        s.order,
        s.objects,
        s.total_objects,
        s.slabs,
        s.partial,
        s.objects_partial,
        s.min_partial
    )?;
    writeln!(
        w,
        " {:>4} {:>6} {:>3} {:>3}",
        sheaves.capacity, sheaves.fill, sheaves.barn_full, sheaves.barn_empty
    )
}
