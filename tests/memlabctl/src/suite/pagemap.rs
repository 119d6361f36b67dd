// SPDX-License-Identifier: GPL-2.0

//! `mirror/pagemap` against the mirror's other views: its runs cover the
//! pool exactly, its free pages are buddyinfo's, its slab pages are
//! slabinfo's.

use crate::dev::{uapi, Memlab, DEBUGFS};
use crate::tap::{check, Outcome, Suite};

/// The case.
pub fn cases(s: &mut Suite) {
    s.case(
        "mirror/pagemap covers the pool and agrees with buddyinfo and slabinfo",
        pagemap_agrees_with_pool_buddyinfo_and_slabinfo,
    );
}
use std::collections::BTreeMap;
use std::fs;

fn read(name: &str) -> Result<String, String> {
    fs::read_to_string(format!("{DEBUGFS}/mirror/{name}")).map_err(|e| format!("{name}: {e}"))
}

/// One run of `mirror/pagemap`.
struct Run {
    zone: String,
    start: u64,
    pages: u64,
    kind: String,
    detail: Vec<String>,
}

fn runs(text: &str) -> Result<Vec<Run>, String> {
    let mut out = Vec::new();
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let w: Vec<&str> = l.split_whitespace().collect();
        let [zone, start, pages, kind, detail @ ..] = w.as_slice() else {
            return Err(format!("short pagemap line {l:?}"));
        };
        let start = u64::from_str_radix(start.trim_start_matches("0x"), 16)
            .map_err(|e| format!("{l:?}: {e}"))?;
        let pages = pages.parse().map_err(|e| format!("{l:?}: {e}"))?;
        out.push(Run {
            zone: zone.to_string(),
            start,
            pages,
            kind: kind.to_string(),
            detail: detail.iter().map(|d| d.to_string()).collect(),
        });
    }
    Ok(out)
}

/// Checks the map of a quiet mirror: with `held` pages of the pages family
/// allocated by this test, the map shows them, and every count agrees.
fn pagemap_agrees_with_pool_buddyinfo_and_slabinfo() -> Outcome {
    let m = Memlab::open().map_err(|e| e.to_string())?;
    // Something of every kind: an order-3 page block, kmalloc objects, a
    // large kmalloc; then drain the CPU lists (mirror/check does) so the
    // reads below see a quiet mirror.
    let mut r = uapi::MemlabAlloc {
        family: uapi::MEMLAB_FAMILY_PAGES,
        order: 3,
        backend: uapi::MEMLAB_BACKEND_MIRROR,
        ..Default::default()
    };
    let mut handles = vec![m.alloc(&r).map_err(|e| e.to_string())?];
    r.family = uapi::MEMLAB_FAMILY_KMALLOC;
    r.order = 0;
    for size in [64, 64, 1000, 20000] {
        r.size = size;
        handles.push(m.alloc(&r).map_err(|e| e.to_string())?);
    }
    let check_ok = read("check")?;
    check(check_ok.trim() == "ok", || {
        format!("mirror/check: {check_ok}")
    })?;
    let map = runs(&read("pagemap")?)?;
    let pool = read("pool")?;
    let buddyinfo = read("buddyinfo")?;
    let slabinfo = read("slabinfo")?;
    for h in handles {
        m.free(h).map_err(|e| e.to_string())?;
    }

    // Runs are in order and do not overlap; their pages add up to the pool.
    let mut total = 0;
    let mut last_end: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &map {
        let end = last_end.entry(&r.zone).or_insert(0);
        check(r.start >= *end, || {
            format!("run at {:#x} overlaps", r.start)
        })?;
        *end = r.start + r.pages;
        total += r.pages;
    }
    let pool_pages: u64 = pool
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("pool: ")?.split(' ').next()?.parse().ok())
        .ok_or_else(|| format!("no page count in mirror/pool: {pool}"))?;
    check(total == pool_pages, || {
        format!("pagemap covers {total} pages, the pool has {pool_pages}")
    })?;

    // Free pages per zone are what buddyinfo counts.
    for l in buddyinfo.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        let zone = w.get(3).ok_or("short buddyinfo line")?;
        let counted: u64 = w[4..]
            .iter()
            .enumerate()
            .map(|(o, n)| n.parse::<u64>().unwrap_or(0) << o)
            .sum();
        let mapped: u64 = map
            .iter()
            .filter(|r| r.zone == *zone && r.kind == "free")
            .map(|r| r.pages)
            .sum();
        check(mapped == counted, || {
            format!("zone {zone}: pagemap {mapped} free pages, buddyinfo {counted}")
        })?;
    }

    // Slab pages per kmalloc cache are slabinfo's num_slabs x pagesperslab.
    for l in slabinfo.lines().skip(2) {
        let w: Vec<&str> = l.split_whitespace().collect();
        let (Some(name), Some(per), Some(slabs)) = (w.first(), w.get(5), w.get(14)) else {
            return Err(format!("short slabinfo line {l:?}"));
        };
        let want = per.parse::<u64>().unwrap_or(0) * slabs.parse::<u64>().unwrap_or(0);
        let mapped: u64 = map
            .iter()
            .filter(|r| r.kind == "slab" && r.detail.first().map(String::as_str) == Some(*name))
            .map(|r| r.pages)
            .sum();
        check(mapped == want, || {
            format!("{name}: pagemap {mapped} slab pages, slabinfo {want}")
        })?;
    }
    check(map.iter().any(|r| r.kind == "kmalloc-large"), || {
        "no kmalloc-large run while a 20000 B kmalloc was live".into()
    })?;
    check(
        map.iter()
            .any(|r| r.kind == "pages" && r.detail == ["order=3"]),
        || "no order-3 pages run while an order-3 block was live".into(),
    )
}
