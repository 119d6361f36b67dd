// SPDX-License-Identifier: GPL-2.0

//! One sample of one side, taken the same way on both between two chunks
//! of a replay session:
//!
//! - the session's caches ([`CacheStat`], the shared readers of
//!   `crate::slabstat`): the real ones from `/sys/kernel/slab/<cache>/`,
//!   the mirror's from debugfs `mirror/slabstat`;
//! - zone Normal: free blocks per order (`/proc/buddyinfo`,
//!   `mirror/buddyinfo`) and the pages on the CPUs' page lists
//!   (`/proc/zoneinfo`'s pagesets, `mirror/pool`'s `pcp_count`);
//! - two probes: one GFP_NOWAIT block of order 3 and one of order 9 from
//!   zone Normal (ALLOC, INSPECT, FREE), after the counts.
//!
//! The fragmentation indexes are computed from the free blocks with
//! mm/vmstat.c's formulas (`memlab_core::render`, the same code the
//! mirror's debugfs uses): these kernels have no `CONFIG_COMPACTION`, so
//! no `/sys/kernel/debug/extfrag`.

use crate::dev::{uapi, Memlab, DEBUGFS};
use crate::slabstat::{self, CacheStat, Side};
use memlab_core::render::{fragmentation_index, unusable_free_index, ContigPageInfo};
use serde::Serialize;
use std::fs;
use std::path::Path;

/// Orders of a free-block count.
pub const NR_ORDERS: usize = uapi::MEMLAB_NR_ORDERS;

/// The zone every sample describes.
pub const ZONE: &str = "Normal";

/// What one side looked like after `step` steps.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Sample {
    pub step: u64,
    /// Free blocks of zone Normal per order.
    pub free_blocks: [u64; NR_ORDERS],
    /// Pages on the CPUs' page lists of zone Normal.
    pub pcp_pages: Option<u64>,
    /// Whether one GFP_NOWAIT block of order 3 / 9 could not be had from
    /// zone Normal (taken after the counts, freed at once).
    pub probe_failed_3: bool,
    pub probe_failed_9: bool,
    /// Allocations of the stream that failed so far.
    pub failed: u64,
    /// The session's caches, each under the name it has in every session
    /// (`kmalloc-64`, `cache-192`: the `memlab_s<n>_` prefix cut).
    pub caches: Vec<CacheStat>,
}

impl Sample {
    /// Free pages of the zone.
    pub fn free_pages(&self) -> u64 {
        self.free_blocks
            .iter()
            .enumerate()
            .map(|(o, &n)| n << o)
            .sum()
    }

    /// mm/vmstat.c's unusable free index at `order`, 0..1.
    pub fn unusable(&self, order: u32) -> f64 {
        let i = unusable_free_index(order, &ContigPageInfo::new(&self.free_blocks, order));
        f64::from(i) / 1000.0
    }

    /// mm/vmstat.c's fragmentation (extfrag) index at `order`: -1 when a
    /// block of the order is free, else 0..1.
    pub fn extfrag(&self, order: u32) -> f64 {
        let i = fragmentation_index(order, &ContigPageInfo::new(&self.free_blocks, order));
        f64::from(i) / 1000.0
    }
}

/// The `memlab_s<n>_` prefix of session `n`'s caches.
pub fn prefix(session: u32) -> String {
    format!("memlab_s{session}_")
}

/// Zone `zone`'s free blocks per order in a buddyinfo-format text.
pub fn zone_free_blocks(buddyinfo: &str, zone: &str) -> Option<[u64; NR_ORDERS]> {
    buddyinfo.lines().find_map(|l| {
        let (_, rest) = l.split_once(" zone ")?;
        let mut w = rest.split_whitespace();
        if w.next()? != zone {
            return None;
        }
        let v: Vec<u64> = w.map(|x| x.parse().ok()).collect::<Option<_>>()?;
        v.try_into().ok()
    })
}

fn read(path: &str) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

/// The session's caches on `side`, named without their prefix, sorted.
fn caches(side: Side, prefix: &str) -> Result<Vec<CacheStat>, String> {
    let mut out = match side {
        Side::Real => {
            let root = Path::new(slabstat::real::SYSFS_SLAB);
            let mut v = Vec::new();
            let dir = fs::read_dir(root).map_err(|e| format!("{}: {e}", root.display()))?;
            for entry in dir.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(prefix) {
                    v.push(slabstat::real::read_cache(root, &name)?);
                }
            }
            v
        }
        Side::Mirror => slabstat::mirror::read()?
            .into_iter()
            .filter(|c| c.name.starts_with(prefix))
            .collect(),
    };
    for c in &mut out {
        c.name = c.name[prefix.len()..].to_string();
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Zone Normal's free blocks and per-CPU pages on `side`.
fn zone(side: Side) -> Result<([u64; NR_ORDERS], Option<u64>), String> {
    let (buddyinfo, pcp) = match side {
        Side::Real => {
            let z = read("/proc/zoneinfo")?;
            (
                read("/proc/buddyinfo")?,
                crate::bench::zoneinfo_pcp_count(&z, ZONE),
            )
        }
        Side::Mirror => {
            let pool = read(&format!("{DEBUGFS}/mirror/pool"))?;
            let count = crate::bench::parse_pool(&pool)
                .into_iter()
                .find(|z| z.zone == ZONE)
                .and_then(|z| z.pcp_count);
            (read(&format!("{DEBUGFS}/mirror/buddyinfo"))?, count)
        }
    };
    let blocks = zone_free_blocks(&buddyinfo, ZONE)
        .ok_or_else(|| format!("{}: no zone {ZONE} line", side.name()))?;
    Ok((blocks, pcp))
}

/// Zone Normal's free pages on `side` now.
pub fn free_pages_now(side: Side) -> Result<u64, String> {
    let (blocks, _) = zone(side)?;
    Ok(blocks.iter().enumerate().map(|(o, &n)| n << o).sum())
}

/// Zone Normal's pages a GFP_KERNEL stream may fill on `side` now without
/// starving the rest of the kernel: its free pages and those on the CPUs'
/// page lists, less the high watermark (real, boost included: below it
/// kswapd wakes, and below min every other allocation fails) or the
/// reserve only GFP_ATOMIC may take (mirror), less what the page lists may
/// grow to (the kernel's `high_max` of each CPU, which it tunes `high` up
/// to at run time; the mirror's fixed `pcp_high` on each CPU). Pages held
/// on the lists are not free pages to the watermarks: a stream that fills
/// the zone while the lists are full leaves the kernel below min.
pub fn usable_pages_now(side: Side) -> Result<u64, String> {
    let free = free_pages_now(side)?;
    let missing = || format!("{}: no watermark of zone {ZONE}", side.name());
    let (count, keep, reach) = match side {
        Side::Real => {
            let z = read("/proc/zoneinfo")?;
            let sum = |f| crate::bench::zoneinfo_pcp_sum(&z, ZONE, f).unwrap_or(0);
            let high = crate::bench::zoneinfo_high(&z, ZONE).ok_or_else(missing)?;
            (sum("count:"), high, sum("high_max:"))
        }
        Side::Mirror => {
            let pool = read(&format!("{DEBUGFS}/mirror/pool"))?;
            let z = crate::bench::parse_pool(&pool)
                .into_iter()
                .find(|z| z.zone == ZONE)
                .ok_or_else(missing)?;
            let cpus = crate::bench::online_cpus().max(1) as u64;
            (
                z.pcp_count.unwrap_or(0),
                z.reserve_pages.ok_or_else(missing)?,
                z.pcp.map_or(0, |p| p.high * cpus),
            )
        }
    };
    Ok((free + count).saturating_sub(keep + reach))
}

/// Whether one GFP_NOWAIT block of `order` from zone Normal could not be
/// had on `backend` (a block from another zone is a failure too).
fn probe_fails(d: &Memlab, backend: u32, order: u32) -> bool {
    let req = uapi::MemlabAlloc {
        family: uapi::MEMLAB_FAMILY_PAGES,
        gfp: uapi::MEMLAB_GFP_NOWAIT,
        order,
        backend,
        ..Default::default()
    };
    let Ok(h) = d.alloc(&req) else {
        return true;
    };
    let zone = d.inspect(h).map(|i| i.zone);
    let _ = d.free(h);
    zone.ok() != Some(uapi::MEMLAB_ZONE_NORMAL)
}

/// The backend number of `side`.
pub fn backend(side: Side) -> u32 {
    match side {
        Side::Real => uapi::MEMLAB_BACKEND_REAL,
        Side::Mirror => uapi::MEMLAB_BACKEND_MIRROR,
    }
}

/// Takes a sample of `side` after `step` steps of session `session`,
/// whose allocations failed `failed` times so far.
pub fn take(
    d: &Memlab,
    side: Side,
    session: u32,
    step: u64,
    failed: u64,
) -> Result<Sample, String> {
    let caches = caches(side, &prefix(session))?;
    let (free_blocks, pcp_pages) = zone(side)?;
    let b = backend(side);
    Ok(Sample {
        step,
        free_blocks,
        pcp_pages,
        probe_failed_3: probe_fails(d, b, 3),
        probe_failed_9: probe_fails(d, b, 9),
        failed,
        caches,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buddyinfo_lines_by_zone() {
        let t = "Node 0, zone   Normal     10      5      3      2      1      0      0      0      0      1      7 \n\
                 Node 0, zone  Movable      0      0      0      0      0      0      0      0      0      0      0 \n";
        assert_eq!(
            zone_free_blocks(t, "Normal"),
            Some([10, 5, 3, 2, 1, 0, 0, 0, 0, 1, 7])
        );
        assert_eq!(zone_free_blocks(t, "DMA"), None);
        assert_eq!(
            zone_free_blocks("Node 0, zone Normal 1 2\n", "Normal"),
            None
        );
    }

    #[test]
    fn indexes_are_vmstats() {
        let s = Sample {
            step: 0,
            // 8 free pages as order 0 and one order-3 block: 16 pages.
            free_blocks: [8, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
            pcp_pages: None,
            probe_failed_3: false,
            probe_failed_9: false,
            failed: 0,
            caches: vec![],
        };
        assert_eq!(s.free_pages(), 16);
        assert_eq!(s.unusable(3), 0.5);
        assert_eq!(s.unusable(9), 1.0);
        assert_eq!(s.extfrag(3), -1.0);
        // No order-9 block: 1 - (1 + 16/512) / 9 blocks, in thousandths.
        assert_eq!(s.extfrag(9), 0.886);
    }
}
