// SPDX-License-Identifier: GPL-2.0

//! One slab cache's state, read the same way on both sides ([`CacheStat`]):
//!
//! - the kernel's caches from `/sys/kernel/slab/<cache>/` ([`real`]), whose
//!   attributes 7.2's `mm/slub.c` defines; `objects`, `slabs` and
//!   `total_objects` need `CONFIG_SLUB_DEBUG`, the per-event counters
//!   (`sheaf_refill`, `barn_get`, ...) `CONFIG_SLUB_STATS`;
//! - the mirror's from debugfs `mirror/slabstat` ([`mirror`]), the same
//!   attributes plus the sheaf state that SLUB keeps private;
//! - `/proc/slabinfo` and `mirror/slabinfo` ([`proc`]), to check both.
//!
//! As in SLUB, objects parked on per-CPU sheaves or in a barn are allocated
//! as far as the slabs know: they count in `objects`, not in the free ones.
//! Since 7.0 SLUB has no per-CPU slabs (`cpu_slabs` reads 0), so every free
//! object is on a slab of the partial list.

pub mod mirror;
pub mod proc;
pub mod real;

pub use memlab_core::slab::SlabStat;
use serde::{Deserialize, Serialize};

/// Which allocator a cache belongs to.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The kernel's SLUB.
    Real,
    /// memlab's mirror.
    Mirror,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Real => "real",
            Side::Mirror => "mirror",
        }
    }
}

/// One cache on one side. Names follow `/sys/kernel/slab`; a field is
/// `None` where that side does not expose it (the kernel keeps its sheaves'
/// fill and its barns private).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CacheStat {
    pub side: Side,
    /// What `slabinfo` shows: the cache's name, or for a merged cache's
    /// `:<id>` directory its only alias, as tools/mm/slabinfo does.
    pub name: String,
    /// Every other name that leads to this cache, sorted: its sysfs
    /// symlinks, and its `:<id>` directory when `name` is a symlink.
    pub aliases: Vec<String>,
    /// Bytes asked for per object (`object_size`).
    pub object_size: u64,
    /// Bytes per object slot with alignment and metadata (`slab_size`).
    pub slab_size: u64,
    pub objs_per_slab: u64,
    pub order: u32,
    /// Objects allocated, sheaved ones included (`objects`).
    pub objects: u64,
    /// Objects all slabs hold (`total_objects`).
    pub total_objects: u64,
    pub slabs: u64,
    /// Slabs on the partial list, empty ones included (`partial`).
    pub partial: u64,
    /// Objects allocated on those slabs (`objects_partial`).
    pub objects_partial: u64,
    /// Free objects, all on partial slabs: `total_objects - objects`.
    pub free_partial: u64,
    /// Bytes of slab memory: `slabs * (page_size << order)` (slabinfo's Space).
    pub slab_bytes: u64,
    /// Slab memory not holding allocated objects, as slabinfo counts it:
    /// `slab_bytes - objects * object_size`.
    pub loss: u64,
    /// Empty slabs kept on the partial list before they are freed.
    pub min_partial: u64,
    /// Objects per sheaf (`sheaf_capacity`; 0: the cache has no sheaves).
    pub sheaf_capacity: Option<u64>,
    /// Objects on the CPUs' sheaves.
    pub sheaf_fill: Option<u64>,
    /// Full sheaves in the barn.
    pub barn_full: Option<u64>,
    /// Empty sheaves in the barn.
    pub barn_empty: Option<u64>,
    /// slabinfo's flags: `*` aliases, `d` DMA, `A` hwcache-aligned, `P`
    /// poison, `a` reclaimable, `Z` red zone, `F` sanity checks, `U` user
    /// tracking, `T` tracing.
    pub flags: String,
    /// SLUB_STATS counters, where the kernel has them.
    pub slub_stats: Option<SlubStats>,
}

impl CacheStat {
    /// A cache of `side` named `name` with the numbers `c` (the attributes
    /// both sides give, as the mirror's core counts them), slabs of
    /// `page_size << order` bytes; no sheaf state, flags or stats yet.
    pub fn new(side: Side, name: &str, c: &SlabStat, page_size: u64) -> Self {
        let slab_bytes = c
            .slabs
            .saturating_mul(page_size.checked_shl(c.order).unwrap_or(0));
        CacheStat {
            side,
            name: name.to_string(),
            aliases: Vec::new(),
            object_size: c.object_size,
            slab_size: c.slab_size,
            objs_per_slab: c.objs_per_slab,
            order: c.order,
            objects: c.objects,
            total_objects: c.total_objects,
            slabs: c.slabs,
            partial: c.partial,
            objects_partial: c.objects_partial,
            free_partial: c.total_objects.saturating_sub(c.objects),
            slab_bytes,
            loss: slab_bytes.saturating_sub(c.objects.saturating_mul(c.object_size)),
            min_partial: c.min_partial,
            sheaf_capacity: None,
            sheaf_fill: None,
            barn_full: None,
            barn_empty: None,
            flags: String::new(),
            slub_stats: None,
        }
    }

    /// slabinfo's `%Fr`: partial slabs per slab, 100 without slabs.
    pub fn partial_pct(&self) -> u64 {
        (self.partial * 100).checked_div(self.slabs).unwrap_or(100)
    }

    /// slabinfo's `%Ef`: object bytes per slab byte, 100 without slabs.
    pub fn efficiency_pct(&self) -> u64 {
        (self.objects.saturating_mul(self.object_size) * 100)
            .checked_div(self.slab_bytes)
            .unwrap_or(100)
    }

    /// Whether `name` is this cache's display name or one of its aliases.
    pub fn answers_to(&self, name: &str) -> bool {
        self.name == name || self.aliases.iter().any(|a| a == name)
    }
}

/// The numbers both sides give, each read by its attribute name with `get`.
pub fn counts(get: &dyn Fn(&str) -> Result<u64, String>) -> Result<SlabStat, String> {
    Ok(SlabStat {
        object_size: get("object_size")?,
        slab_size: get("slab_size")?,
        objs_per_slab: get("objs_per_slab")?,
        order: u32::try_from(get("order")?).map_err(|_| "order out of range")?,
        objects: get("objects")?,
        total_objects: get("total_objects")?,
        slabs: get("slabs")?,
        partial: get("partial")?,
        objects_partial: get("objects_partial")?,
        min_partial: get("min_partial")?,
    })
}

/// Declares [`SlubStats`] with one `u64` per SLUB_STATS attribute of 7.2
/// (`STAT_ATTR` in mm/slub.c), each read from the file of its name.
macro_rules! slub_stats {
    ($($name:ident),* $(,)?) => {
        /// SLUB_STATS counters of one cache, summed over CPUs (the number
        /// before the ` C<cpu>=` list of each attribute).
        #[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
        pub struct SlubStats {
            $(pub $name: u64,)*
        }

        impl SlubStats {
            /// The counters `get` gives by attribute name; `None` if the
            /// kernel has none of them (no CONFIG_SLUB_STATS).
            pub fn from_attrs(get: impl Fn(&str) -> Option<u64>) -> Option<Self> {
                let mut any = false;
                let mut read = |n: &str| get(n).inspect(|_| any = true).unwrap_or(0);
                let s = SlubStats { $($name: read(stringify!($name)),)* };
                any.then_some(s)
            }
        }
    };
}

slub_stats!(
    alloc_fastpath,
    alloc_slowpath,
    free_rcu_sheaf,
    free_rcu_sheaf_fail,
    free_fastpath,
    free_slowpath,
    free_add_partial,
    free_remove_partial,
    alloc_slab,
    alloc_node_mismatch,
    free_slab,
    order_fallback,
    cmpxchg_double_fail,
    sheaf_flush,
    sheaf_refill,
    sheaf_alloc,
    sheaf_free,
    barn_get,
    barn_get_fail,
    barn_put,
    barn_put_fail,
    sheaf_prefill_fast,
    sheaf_prefill_slow,
    sheaf_prefill_oversize,
    sheaf_return_fast,
    sheaf_return_slow,
);

/// Bytes per page on this machine (`getpagesize()`, as slabinfo uses).
pub fn page_size() -> u64 {
    // SAFETY: sysconf reads a constant of the running system.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// The kernel's caches (`/sys/kernel/slab`) if `real`, then the mirror's
/// (debugfs) if `mirror`; an error names what could not be read.
pub fn read_sides(real: bool, mirror: bool) -> Result<Vec<CacheStat>, String> {
    let mut all = Vec::new();
    if real {
        all = real::read_all(std::path::Path::new(real::SYSFS_SLAB))?;
    }
    if mirror {
        let m = mirror::read().map_err(|e| format!("{e} (is memlab loaded, debugfs mounted?)"))?;
        all.extend(m);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts() -> SlabStat {
        SlabStat {
            object_size: 64,
            slab_size: 64,
            objs_per_slab: 64,
            order: 0,
            objects: 546,
            total_objects: 576,
            slabs: 9,
            partial: 1,
            objects_partial: 34,
            min_partial: 5,
        }
    }

    #[test]
    fn derived_numbers_are_slabinfos() {
        let s = CacheStat::new(Side::Real, "kmalloc-64", &counts(), 4096);
        assert_eq!(s.slab_bytes, 9 * 4096);
        assert_eq!(s.free_partial, 30);
        assert_eq!(s.loss, 9 * 4096 - 546 * 64);
        // slabinfo.c: partial * 100 / slabs, objects * size * 100 / bytes.
        assert_eq!(s.partial_pct(), 11);
        assert_eq!(s.efficiency_pct(), 94);
        let empty = CacheStat::new(Side::Mirror, "x", &SlabStat::default(), 4096);
        assert_eq!((empty.partial_pct(), empty.efficiency_pct()), (100, 100));
        assert!(s.answers_to("kmalloc-64") && !s.answers_to("kmalloc-32"));
    }

    #[test]
    fn slub_stats_only_where_present() {
        assert_eq!(SlubStats::from_attrs(|_| None), None);
        let s = SlubStats::from_attrs(|n| (n == "barn_get").then_some(7)).unwrap();
        assert_eq!((s.barn_get, s.sheaf_refill), (7, 0));
        // All 26 STAT_ATTRs of 7.2, under their own names.
        let v = serde_json::to_value(SlubStats::default()).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 26);
        assert_eq!(v["sheaf_prefill_oversize"], 0);
    }

    #[test]
    fn json_names_the_side_and_keeps_none() {
        let s = CacheStat::new(Side::Mirror, "kmalloc-64", &counts(), 4096);
        let v: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert_eq!(v["side"], "mirror");
        assert_eq!(v["free_partial"], 30);
        assert!(v["sheaf_fill"].is_null());
        let back: CacheStat = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }
}
