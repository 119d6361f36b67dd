// SPDX-License-Identifier: GPL-2.0

//! `memlabctl slabinfo` against the kernel's own accounts: its real rows
//! (from /sys/kernel/slab) against /proc/slabinfo, its mirror rows (from
//! mirror/slabstat) against mirror/slabinfo, and the command's text and
//! JSON.

use super::req::{kmalloc, kmem_cache, on};
use super::{open, read};
use crate::dev::{uapi, DEBUGFS};
use crate::slabstat::{self, proc::ProcRow, CacheStat, Side};
use crate::tap::{check, note, Outcome, Suite};
use std::path::Path;

pub fn cases(s: &mut Suite) {
    s.case(
        "slabinfo real rows agree with /proc/slabinfo (geometry of every cache, counts of quiet ones and of memlab's own)",
        real_vs_proc,
    );
    s.case(
        "slabinfo mirror rows agree with mirror/slabinfo, with sheaves and barns",
        mirror_vs_slabinfo,
    );
    s.case(
        "slabinfo prints both sides in one table, -T totals per side, --json parses",
        command_output,
    );
}

/// Every /proc/slabinfo row: its geometry must match the sysfs cache it
/// names now; its counts must match when the row did not change across the
/// sysfs read (nothing allocated from it meanwhile). Returns the rows
/// compared on counts, and the names whose counts differed.
fn compare_real(memlab: &[String]) -> Result<(usize, Vec<String>), String> {
    let before = slabstat::proc::parse(&read("/proc/slabinfo")?)?;
    let caches = slabstat::real::read_all(Path::new(slabstat::real::SYSFS_SLAB))?;
    let after = slabstat::proc::parse(&read("/proc/slabinfo")?)?;
    let (mut quiet, mut moved) = (0, Vec::new());
    for r in &before {
        let Some(c) = caches.iter().find(|c| c.answers_to(&r.name)) else {
            // Created after the listing: only the module's own must be there.
            if memlab.contains(&r.name) {
                return Err(format!("{} is in /proc/slabinfo, not in sysfs", r.name));
            }
            continue;
        };
        let diff = ProcRow::of(c).diff(r);
        let geometry = |f: &&String| {
            ["objsize", "objperslab", "pagesperslab"]
                .iter()
                .any(|g| f.starts_with(g))
        };
        if let Some(f) = diff.iter().find(geometry) {
            return Err(format!("{}: {f} (sysfs vs /proc/slabinfo)", r.name));
        }
        if after.iter().any(|a| a == r) {
            quiet += 1;
            if !diff.is_empty() {
                moved.push(format!("{}: {}", r.name, diff.join(", ")));
            }
        }
    }
    Ok((quiet, moved))
}

fn real_vs_proc() -> Outcome {
    let d = open()?;
    // Caches of memlab's own, one object each, that nothing else uses
    // unless SLUB merged them into another.
    for size in [3000, 5000] {
        d.alloc(&kmem_cache(size, 1024))
            .map_err(|e| format!("kmem_cache {size}: {e}"))?;
    }
    let root = Path::new(slabstat::real::SYSFS_SLAB);
    let memlab: Vec<String> = slabstat::real::read_all(root)?
        .iter()
        .flat_map(|c| std::iter::once(&c.name).chain(&c.aliases))
        .filter(|n| n.starts_with("memlab_"))
        .cloned()
        .collect();
    check(memlab.len() >= 2, || {
        format!("memlab's caches in sysfs: {memlab:?}")
    })?;
    // Caches change under a read; a difference must last over 5 tries.
    let mut last = Vec::new();
    for _ in 0..5 {
        let (quiet, moved) = compare_real(&memlab)?;
        check(quiet >= 5, || {
            format!("only {quiet} quiet caches to compare")
        })?;
        if moved.is_empty() {
            note(format!(
                "{quiet} quiet caches equal, memlab's: {}",
                memlab.join(" ")
            ));
            return Ok(());
        }
        last = moved;
    }
    Err(format!("sysfs vs /proc/slabinfo: {}", last.join("; ")))
}

fn mirror_vs_slabinfo() -> Outcome {
    let d = open()?;
    // Objects of three classes held, and some given back to the sheaves.
    let mut held = Vec::new();
    for size in [64, 192, 1000] {
        let r = on(uapi::MEMLAB_BACKEND_MIRROR, kmalloc(size));
        for _ in 0..100 {
            held.push(
                d.alloc(&r)
                    .map_err(|e| format!("mirror kmalloc {size}: {e}"))?,
            );
        }
    }
    for h in held.drain(..).step_by(2) {
        d.free(h).map_err(|e| format!("free: {e}"))?;
    }
    let stats = slabstat::mirror::read()?;
    let rows = slabstat::proc::parse(&read(&format!("{DEBUGFS}/mirror/slabinfo"))?)?;
    check(stats.len() == rows.len(), || {
        format!(
            "{} slabstat rows, {} slabinfo rows",
            stats.len(),
            rows.len()
        )
    })?;
    for (s, r) in stats.iter().zip(&rows) {
        check(s.side == Side::Mirror && s.name == r.name, || {
            format!("{} where slabinfo has {}", s.name, r.name)
        })?;
        let diff = ProcRow::of(s).diff(r);
        check(diff.is_empty(), || {
            format!("{}: {}", s.name, diff.join(", "))
        })?;
        mirror_sheaves_sane(s)?;
    }
    let k64 = stats
        .iter()
        .find(|s| s.name == "kmalloc-64")
        .ok_or("no kmalloc-64")?;
    check(k64.objects >= 50 && k64.sheaf_fill > Some(0), || {
        format!("kmalloc-64 after 100 allocations and 50 frees: {k64:?}")
    })?;
    // Where the two sides lay objects out alike, their sheaves match too.
    let real = slabstat::real::read_cache(Path::new(slabstat::real::SYSFS_SLAB), "kmalloc-64")?;
    if real.slab_size == k64.slab_size {
        check(real.sheaf_capacity == k64.sheaf_capacity, || {
            format!(
                "sheaf_capacity real {:?}, mirror {:?}",
                real.sheaf_capacity, k64.sheaf_capacity
            )
        })?;
    }
    note(format!(
        "kmalloc-64: {} objects, {} on sheaves, barn {}/{}",
        k64.objects,
        k64.sheaf_fill.unwrap_or(0),
        k64.barn_full.unwrap_or(0),
        k64.barn_empty.unwrap_or(0)
    ));
    // Closing frees the rest onto the sheaves; reading mirror/check drains
    // every CPU's sheaves and the barns' full ones, so the next tests start
    // from empty sheaves: the counts must say so.
    drop(d);
    let ok = super::mirror_file("check")?;
    check(ok.trim() == "ok", || format!("mirror/check: {ok}"))?;
    let after = slabstat::mirror::read()?;
    let left: u64 = after.iter().filter_map(|s| s.sheaf_fill).sum();
    let full: u64 = after.iter().filter_map(|s| s.barn_full).sum();
    check(left == 0 && full == 0, || {
        format!("{left} objects on sheaves, {full} full sheaves in barns after a drain")
    })
}

/// Sheaf numbers that hold for any mirror cache.
fn mirror_sheaves_sane(s: &CacheStat) -> Outcome {
    let (cap, fill) = (s.sheaf_capacity.unwrap_or(0), s.sheaf_fill.unwrap_or(0));
    let (full, empty) = (s.barn_full.unwrap_or(0), s.barn_empty.unwrap_or(0));
    check(fill + full * cap <= s.objects, || {
        format!(
            "{}: {fill} on sheaves, {full} full sheaves, {} objects",
            s.name, s.objects
        )
    })?;
    check(full + empty <= 10, || {
        format!("{}: barn {full}/{empty}", s.name)
    })?;
    check(cap != 0 || (fill, full, empty) == (0, 0, 0), || {
        format!(
            "{}: no sheaves but fill {fill}, barn {full}/{empty}",
            s.name
        )
    })
}

/// Runs `memlabctl ARGS` (this binary) and returns its stdout.
fn memlabctl(args: &[&str]) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let out = std::process::Command::new(exe)
        .args(args)
        .output()
        .map_err(|e| format!("memlabctl {}: {e}", args.join(" ")))?;
    check(out.status.success(), || {
        format!(
            "memlabctl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    String::from_utf8(out.stdout).map_err(|e| format!("memlabctl {}: {e}", args.join(" ")))
}

fn command_output() -> Outcome {
    let d = open()?;
    let r = on(uapi::MEMLAB_BACKEND_MIRROR, kmalloc(96));
    let _h = d.alloc(&r).map_err(|e| format!("mirror kmalloc 96: {e}"))?;
    let text = memlabctl(&["slabinfo", "kmalloc-96"])?;
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    check(
        header.starts_with("Name ") && header.contains("Slabs/Part") && header.contains("Barn"),
        || format!("header {header:?}"),
    )?;
    let sides: Vec<&str> = lines.filter_map(|l| l.split_whitespace().nth(1)).collect();
    check(sides.contains(&"real") && sides.contains(&"mirror"), || {
        format!("sides of kmalloc-96 rows: {sides:?}\n{text}")
    })?;
    let json = memlabctl(&["slabinfo", "--json", "-z"])?;
    let all: Vec<CacheStat> =
        serde_json::from_str(&json).map_err(|e| format!("slabinfo --json: {e}"))?;
    let mirror = all.iter().filter(|c| c.side == Side::Mirror).count();
    let real = all.iter().filter(|c| c.side == Side::Real);
    // 13 kmalloc and 13 dma-kmalloc caches, as mirror/slabinfo lists.
    check(mirror == 26, || format!("{mirror} mirror caches"))?;
    check(
        real.clone().count() > 20 && real.clone().all(|c| c.sheaf_fill.is_none()),
        || "real rows: too few, or a sheaf fill the kernel does not expose".into(),
    )?;
    let totals = memlabctl(&["slabinfo", "-T"])?;
    for needle in [
        "Slabcache Totals (real)",
        "Slabcache Totals (mirror)",
        "# Sheaved  :",
    ] {
        check(totals.contains(needle), || {
            format!("{needle:?} not in -T:\n{totals}")
        })?;
    }
    Ok(())
}
