// SPDX-License-Identifier: GPL-2.0

//! The real side of the pictures: `trace record` around a known command,
//! and the real free-area map (`pagemap --real`) against /proc/buddyinfo
//! and /proc/zoneinfo. Neither needs the module.

use super::{free_pages_in, read};
use crate::bench::{parse_trace, Step};
use crate::kpage;
use crate::tap::{check, Outcome, Suite};
use crate::tracefs::{record, Recording};
use std::process::Stdio;

/// Least share of traced frees that must find their allocation in a trace
/// of `find /`. Measured: see the README ("trace record"): most frees the
/// command causes are of objects it allocated; the rest are of objects from
/// before (dentries, inodes, pages evicted) and miss.
const MIN_FREES_MATCHED_PCT: f64 = 60.0;

/// Free pages the real map and /proc/buddyinfo may differ by, read back to
/// back (the allocator runs meanwhile: this test's own page faults, the
/// per-CPU lists refilling from the buddy in batches).
const FREE_PAGES_TOLERANCE: u64 = 512;

pub fn cases(s: &mut Suite) {
    s.case(
        "trace record -- find / writes a parseable trace with kmalloc/kfree events and paired frees",
        trace_of_find,
    );
    s.table(
        ["DMA32", "Normal"],
        |z| format!("real pagemap of zone {z}: free pages agree with /proc/buddyinfo"),
        free_pages_agree,
    );
    s.case(
        "real pagemap runs cover every zone's spanned PFN range exactly",
        runs_cover_zones,
    );
}

fn trace_of_find() -> Outcome {
    let cmd = ["find".to_string(), "/".to_string()];
    let (text, st, _status) = record(Recording {
        cmd: &cmd,
        buffer_kb: 32768,
        child_stdout: Stdio::null(),
    })?;
    let summary = || st.human();
    for e in ["kmalloc", "kfree", "kmem_cache_alloc", "kmem_cache_free"] {
        check(st.per_event.get(e).copied().unwrap_or(0) > 0, || {
            format!("no {e} events\n{}", summary())
        })?;
    }
    check(st.lost_events == 0 && st.unparsed == 0, || {
        format!("lost or unparsed events\n{}", summary())
    })?;
    check(st.frees_matched_pct >= MIN_FREES_MATCHED_PCT, || {
        format!(
            "{:.1}% of frees matched, want >= {MIN_FREES_MATCHED_PCT}%\n{}",
            st.frees_matched_pct,
            summary()
        )
    })?;
    let steps = parse_trace(&text)?;
    let allocs = steps
        .iter()
        .filter(|s| matches!(s, Step::Alloc { .. }))
        .count() as u64;
    let frees = steps.len() as u64 - allocs;
    check(
        allocs == st.allocs && frees == st.pairs_matched + st.implied_frees,
        || {
            format!(
                "trace has {allocs} allocs and {frees} frees; stats say {} and {} + {}",
                st.allocs, st.pairs_matched, st.implied_frees
            )
        },
    )
}

/// Free pages of `zone` in /proc/buddyinfo.
fn buddy_free(zone: &str) -> Result<u64, String> {
    let text = read("/proc/buddyinfo")?;
    let line = text
        .lines()
        .find(|l| l.split_whitespace().nth(3) == Some(zone))
        .ok_or_else(|| format!("no zone {zone} in /proc/buddyinfo"))?;
    Ok(free_pages_in(line))
}

fn free_pages_agree(zone: &'static str) -> Outcome {
    let before = buddy_free(zone)?;
    let map = kpage::real_map(Some(zone))?;
    let after = buddy_free(zone)?;
    let mapped: u64 = map
        .iter()
        .flat_map(|(_, runs)| runs)
        .filter(|r| r.kind() == "free")
        .map(|r| r.pages)
        .sum();
    let diff = |b: u64| mapped.abs_diff(b);
    println!("# zone {zone}: map {mapped} free pages, buddyinfo {before} before, {after} after");
    check(
        diff(before).min(diff(after)) <= FREE_PAGES_TOLERANCE,
        || {
            format!(
            "zone {zone}: map {mapped} free pages, buddyinfo {before}/{after}: more than {FREE_PAGES_TOLERANCE} apart"
        )
        },
    )
}

fn runs_cover_zones() -> Outcome {
    let map = kpage::real_map(None)?;
    check(!map.is_empty(), || "no zones".into())?;
    for (z, runs) in &map {
        let mut next = z.start_pfn;
        for r in runs {
            check(r.start == next && r.pages > 0, || {
                format!("zone {}: run at {:#x}, expected {next:#x}", z.name, r.start)
            })?;
            next += r.pages;
        }
        check(next - z.start_pfn == z.spanned, || {
            format!(
                "zone {}: runs cover {} pages, zoneinfo spans {}",
                z.name,
                next - z.start_pfn,
                z.spanned
            )
        })?;
    }
    Ok(())
}
