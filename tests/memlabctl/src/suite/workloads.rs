// SPDX-License-Identifier: GPL-2.0

//! Timed workloads (WORKLOAD ioctl) and trace replay on both backends, and
//! several processes hammering the mirror at once.

use super::{free_pages_in, mirror_file, open, BACKENDS};
use crate::bench;
use crate::dev::uapi;
use crate::tap::{check, Outcome, Suite};
use uapi::*;

pub fn cases(s: &mut Suite) {
    s.case(
        "WORKLOAD: every family and pattern runs on both backends",
        workloads_run,
    );
    s.case(
        "WORKLOAD: bad input fails with EINVAL, too much memory with E2BIG",
        workload_bad_input,
    );
    s.case(
        "trace replay runs the same trace on both backends",
        replay_both,
    );
    s.case(
        "mirror SMP stress: 4 processes at once, then invariants hold and no page or object leaks",
        smp_stress,
    );
}

fn workloads_run() -> Outcome {
    let d = open()?;
    for spec in bench::standard(100) {
        for (backend, bn) in BACKENDS {
            let pattern = bench::pattern_name(spec.pattern);
            let w = bench::run_spec(&d, &spec, backend)
                .map_err(|e| format!("{} {pattern} {bn}: {e}", spec.name))?;
            // PAIRS: one sample per step; BATCH: an alloc and a free per
            // step; RANDOM: one sample per step.
            let want = if spec.pattern == MEMLAB_PATTERN_BATCH {
                2 * spec.count
            } else {
                spec.count
            };
            check(
                w.ops == u64::from(want) && w.failed == 0 && w.median_ns <= w.p99_ns,
                || format!("{} {pattern} {bn}: {w:?}", spec.name),
            )?;
        }
    }
    check(mirror_file("check")? == "ok\n", || {
        "mirror/check after workloads".into()
    })
}

fn workload_bad_input() -> Outcome {
    let d = open()?;
    let ok = MemlabWorkload {
        family: MEMLAB_FAMILY_KMALLOC,
        count: 10,
        size: 64,
        ..Default::default()
    };
    d.workload(&ok)
        .map_err(|e| format!("a good workload failed: {e}"))?;
    let bad: [(&str, MemlabWorkload, i32); 9] = [
        ("count 0", MemlabWorkload { count: 0, ..ok }, libc::EINVAL),
        (
            "count above max",
            MemlabWorkload {
                count: MEMLAB_WORKLOAD_MAX_COUNT + 1,
                ..ok
            },
            libc::EINVAL,
        ),
        (
            "unknown pattern",
            MemlabWorkload {
                pattern: MEMLAB_NR_PATTERNS,
                ..ok
            },
            libc::EINVAL,
        ),
        (
            "unknown backend",
            MemlabWorkload { backend: 2, ..ok },
            libc::EINVAL,
        ),
        (
            "vmalloc family",
            MemlabWorkload {
                family: MEMLAB_FAMILY_VMALLOC,
                ..ok
            },
            libc::EINVAL,
        ),
        (
            "size below 8",
            MemlabWorkload { size: 4, ..ok },
            libc::EINVAL,
        ),
        (
            "outputs not zero",
            MemlabWorkload { ops: 1, ..ok },
            libc::EINVAL,
        ),
        (
            "order above MAX_PAGE_ORDER",
            MemlabWorkload {
                family: MEMLAB_FAMILY_PAGES,
                order: 11,
                ..ok
            },
            libc::EINVAL,
        ),
        (
            "a batch of 100000 x 4 KiB > max_pinned_mb",
            MemlabWorkload {
                count: 100_000,
                size: 4096,
                pattern: MEMLAB_PATTERN_BATCH,
                ..ok
            },
            libc::E2BIG,
        ),
    ];
    for (what, w, errno) in bad {
        super::expect_errno(d.workload(&w), errno).map_err(|e| format!("{what}: {e}"))?;
    }
    Ok(())
}

/// Several processes hammer the mirror at once (kmalloc workloads, page
/// handles, caches); afterwards its invariant checkers pass and every page
/// is free again.
fn smp_stress() -> Outcome {
    // Reading mirror/check drains the per-CPU caches: the counts that follow
    // then hold every page and object.
    check(mirror_file("check")? == "ok\n", || {
        "mirror/check before".into()
    })?;
    let free_before = free_pages_in(&mirror_file("buddyinfo")?);
    let (objs_before, slab_pages_before) = slab_usage(&mirror_file("slabinfo")?);
    let mut kids = Vec::new();
    for k in 0..4u32 {
        // SAFETY: single-threaded harness; the child only runs `stress_child`
        // and `_exit`s.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(format!("fork: {}", std::io::Error::last_os_error()));
        }
        if pid == 0 {
            let code = match stress_child(k) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("stress child {k}: {e}");
                    1
                }
            };
            // SAFETY: ends the forked child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        kids.push(pid);
    }
    let mut failed = 0;
    for pid in kids {
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
            failed += 1;
        }
    }
    check(failed == 0, || {
        format!("{failed} of 4 stress processes failed")
    })?;
    let verdict = mirror_file("check")?;
    check(verdict == "ok\n", || format!("mirror/check: {verdict}"))?;
    let (objs_after, slab_pages_after) = slab_usage(&mirror_file("slabinfo")?);
    let free_after = free_pages_in(&mirror_file("buddyinfo")?);
    // Caches keep empty slabs (as the kernel's do): every page is either
    // free or in a slab, and no object is left live.
    check(objs_after == objs_before, || {
        format!("live kmalloc objects {objs_before} -> {objs_after}")
    })?;
    check(
        free_after + slab_pages_after == free_before + slab_pages_before,
        || {
            format!(
                "free {free_before} + slab {slab_pages_before} pages before, \
                 free {free_after} + slab {slab_pages_after} after"
            )
        },
    )
}

/// (active objects, pages in slabs) over all caches of a slabinfo file.
fn slab_usage(slabinfo: &str) -> (u64, u64) {
    slabinfo.lines().skip(2).fold((0, 0), |(objs, pages), l| {
        let w: Vec<u64> = l
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        // active_objs num_objs objsize objperslab pagesperslab 0 0 0 active_slabs num_slabs 0
        match (w.first(), w.get(4), w.get(9)) {
            (Some(a), Some(pps), Some(slabs)) => (objs + a, pages + pps * slabs),
            _ => (objs, pages),
        }
    })
}

fn stress_child(k: u32) -> Result<(), String> {
    let d = open()?;
    for round in 0..5u32 {
        let even = round % 2 == 0;
        let w = MemlabWorkload {
            backend: MEMLAB_BACKEND_MIRROR,
            family: if even {
                MEMLAB_FAMILY_KMALLOC
            } else {
                MEMLAB_FAMILY_PAGES
            },
            pattern: MEMLAB_PATTERN_RANDOM,
            count: 400,
            size: if even { 2048 } else { 0 },
            order: if even { 0 } else { 2 },
            seed: k * 31 + round,
            ..Default::default()
        };
        let r = d.workload(&w).map_err(|e| format!("workload: {e}"))?;
        if r.failed != 0 {
            return Err(format!("{} allocations failed", r.failed));
        }
        let mut handles = Vec::new();
        for i in 0..32u64 {
            let r = MemlabAlloc {
                backend: MEMLAB_BACKEND_MIRROR,
                family: [
                    MEMLAB_FAMILY_KMALLOC,
                    MEMLAB_FAMILY_PAGES,
                    MEMLAB_FAMILY_KMEM_CACHE,
                ][(i % 3) as usize],
                size: if i % 3 == 1 { 0 } else { 24 + i * 40 },
                order: if i % 3 == 1 { (i % 4) as u32 } else { 0 },
                ..Default::default()
            };
            handles.push(d.alloc(&r).map_err(|e| format!("alloc {r:?}: {e}"))?);
        }
        for h in handles.into_iter().rev() {
            d.free(h).map_err(|e| format!("free: {e}"))?;
        }
    }
    Ok(())
}

/// A generated trace (interleaved allocs and frees of three families) runs
/// on both backends with one latency sample per allocation; a bad trace is
/// refused before it runs.
fn replay_both() -> Outcome {
    use crate::bench::{parse_trace, replay_on, Step};
    let mut text = String::from("# generated\n");
    for i in 0..60u32 {
        let (fam, arg) = match i % 3 {
            0 => ("kmalloc", 8 + i * 37),
            1 => ("pages", i % 4),
            _ => ("kmem_cache", 64),
        };
        text += &format!("a {i} {fam} {arg}\n");
        if i % 4 == 3 {
            text += &format!("f {}\n", i - 2);
        }
    }
    let steps = parse_trace(&text)?;
    let allocs = steps
        .iter()
        .filter(|s| matches!(s, Step::Alloc { .. }))
        .count();
    check(allocs == 60 && steps.len() == 75, || {
        format!("parsed {allocs} allocations in {} steps", steps.len())
    })?;
    for (backend, bn) in BACKENDS {
        let lat = replay_on(&steps, backend)?;
        let counts: Vec<usize> = [
            MEMLAB_FAMILY_KMALLOC,
            MEMLAB_FAMILY_PAGES,
            MEMLAB_FAMILY_KMEM_CACHE,
        ]
        .iter()
        .map(|f| lat.get(f).map_or(0, Vec::len))
        .collect();
        check(counts == [20, 20, 20], || {
            format!("{bn}: allocations per family {counts:?}")
        })?;
    }
    let bad = parse_trace("a 1 kmalloc 64\nf 2\n")?;
    check(replay_on(&bad, MEMLAB_BACKEND_MIRROR).is_err(), || {
        "a free of an unknown id was accepted".into()
    })
}
