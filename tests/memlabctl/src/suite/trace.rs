// SPDX-License-Identifier: GPL-2.0

//! The real side of the pictures: `trace record` around a known command,
//! that trace replayed in the kernel on both backends, and the real
//! free-area map (`pagemap --real`) against /proc/buddyinfo and
//! /proc/zoneinfo.

use super::hostile::{pinned_back, pinned_total};
use super::{free_pages_in, open, read, BACKENDS};
use crate::bench::{parse_trace, Step};
use crate::dev::uapi::MEMLAB_ZONE_NORMAL;
use crate::kpage;
use crate::replay::encode;
use crate::tap::{check, Outcome, Suite};
use crate::tracefs::{record, Recording};
use std::process::Stdio;
use std::sync::Mutex;

/// The trace `trace_of_tar` recorded, for the replay case after it.
static RECORDED: Mutex<Option<String>> = Mutex::new(None);

/// The command traced: short (a `find /` takes 10 minutes on the test
/// kernel under TCG), and it allocates and frees through kmalloc,
/// kmem_cache and the page allocator.
const CMD: [&str; 4] = ["tar", "-cf", "/dev/null", "/bin"];

/// Least share of traced frees that must find their allocation. The misses
/// are frees, in the same window, of objects from before the recording
/// (kworkers, RCU callbacks, per-CPU page list drains): a few to a few dozen
/// per run, a large share of a short trace. Measured (README): this tar
/// 96.1-99.7% on the bench kernel (3 runs) and 98.3% on the test kernel;
/// `find /` 99.98% on the bench kernel and 99.96% on the test kernel.
const MIN_FREES_MATCHED_PCT: f64 = 90.0;

/// Free pages the real map and /proc/buddyinfo may differ by, read back to
/// back, per zone. The allocator runs meanwhile: the per-CPU page lists
/// refill from the buddy and drain to it in batches (63 pages in this VM),
/// for this test's own allocations and for the kernel's, which come from
/// zone Normal first. Measured (README): DMA and DMA32 0 apart on both
/// kernels; Normal 0-63 on a quiet bench kernel, 441 inside this suite, and
/// 497 on the test kernel, whose scan of Normal takes tens of seconds under
/// KASAN while kmemleak runs. So DMA and DMA32 get one batch (63 pages: a
/// single refill or drain that would fall between the two reads), Normal
/// 2048 pages (8 MiB, under 1% of its free pages here), four times its
/// worst.
fn free_pages_tolerance(zone: &str) -> u64 {
    match zone {
        "Normal" => 2048,
        _ => 63,
    }
}

pub fn cases(s: &mut Suite) {
    s.case(
        "trace record -- tar -cf /dev/null /bin writes a parseable trace with kmalloc/kfree events and paired frees",
        trace_of_tar,
    );
    s.case(
        "REPLAY of that recorded trace on both backends: every step run, no allocation failed, nothing left pinned",
        replay_of_tar,
    );
    s.table(
        ["DMA", "DMA32", "Normal"],
        |z| format!("real pagemap of zone {z}: runs cover its span, free pages agree with /proc/buddyinfo"),
        zone_map,
    );
}

fn trace_of_tar() -> Outcome {
    let cmd = CMD.map(String::from);
    let (text, st, _status) = record(Recording {
        cmd: &cmd,
        buffer_kb: 32768,
        child_stdout: Stdio::null(),
    })?;
    let summary = || st.human();
    println!(
        "# trace of {}: {}",
        cmd.join(" "),
        crate::cli::json_line(&st)
    );
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
    if let Ok(mut r) = RECORDED.lock() {
        *r = Some(text.clone());
    }
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

/// The kernel's own allocation stream, replayed in the kernel: what the
/// tar trace allocates (kmalloc, a kmem_cache per object size, pages) must
/// all succeed on both backends and leave nothing charged or allocated.
fn replay_of_tar() -> Outcome {
    let text = RECORDED
        .lock()
        .ok()
        .and_then(|r| r.clone())
        .ok_or("no trace: the trace record case before this one failed")?;
    let steps = parse_trace(&text)?;
    let allocs = steps
        .iter()
        .filter(|s| matches!(s, Step::Alloc { .. }))
        .count() as u64;
    let (bin, _) = encode(&steps)?;
    let d = open()?;
    let pinned = pinned_total()?;
    for (backend, bn) in BACKENDS {
        let (q, _) = d
            .replay(&bin, backend, 0, MEMLAB_ZONE_NORMAL)
            .map_err(|e| format!("{bn}: REPLAY of {} steps: {e}", bin.len()))?;
        println!(
            "# {bn}: {} steps, {} allocs, {} frees, alloc median {} ns, free median {} ns",
            q.steps_done, q.allocs, q.frees, q.alloc_median_ns, q.free_median_ns
        );
        let err = || format!("{bn}: {allocs} allocs in the trace; {q:?}");
        check(q.steps_done == bin.len() as u64, err)?;
        check(q.allocs == allocs && q.failed == 0, err)?;
        pinned_back(bn, pinned)?;
    }
    Ok(())
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

/// One zone's real map: its runs tile `[start_pfn, start_pfn + spanned)`
/// of /proc/zoneinfo exactly, and its free pages are buddyinfo's, read just
/// before and just after.
fn zone_map(zone: &'static str) -> Outcome {
    super::kernel::need_zone(zone)?;
    let before = buddy_free(zone)?;
    let map = kpage::real_map(Some(zone))?;
    let after = buddy_free(zone)?;
    let [(z, runs)] = map.as_slice() else {
        return Err(format!("{} zones named {zone}", map.len()));
    };
    let mut next = z.start_pfn;
    for r in runs {
        check(r.start == next && r.pages > 0, || {
            format!(
                "run at {:#x} ({} pages), expected one at {next:#x}",
                r.start, r.pages
            )
        })?;
        next += r.pages;
    }
    check(next - z.start_pfn == z.spanned, || {
        format!(
            "runs cover {} pages, zoneinfo spans {}",
            next - z.start_pfn,
            z.spanned
        )
    })?;
    let mapped: u64 = runs
        .iter()
        .filter(|r| r.kind() == "free")
        .map(|r| r.pages)
        .sum();
    let diff = mapped.abs_diff(before).min(mapped.abs_diff(after));
    println!("# zone {zone}: map {mapped} free pages, buddyinfo {before} before, {after} after");
    let tolerance = free_pages_tolerance(zone);
    check(diff <= tolerance, || {
        format!(
            "map {mapped} free pages, buddyinfo {before} before and {after} after: \
             more than {tolerance} apart"
        )
    })
}
