// SPDX-License-Identifier: GPL-2.0

//! In-VM tests of the mirror allocators running in the module: their
//! debugfs files have exactly the kernel's layouts, their pool is what the
//! module parameter asked for, and allocations through the ioctl ABI behave
//! like the real allocators' (zones, sizes, alignment, zeroing, watermarks).

use crate::dev::{uapi, Memlab, DEBUGFS};
use crate::tap::{check, Case, Outcome};
use std::fs;

fn read(path: &str) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

fn mirror_file(name: &str) -> Result<String, String> {
    read(&format!("{DEBUGFS}/mirror/{name}"))
}

/// Re-renders a per-zone line ("Node N, zone %8s " then fields) with the
/// kernel's widths; the line must come out byte-identical.
fn check_zone_lines(text: &str, what: &str, field: impl Fn(&str) -> Option<String>) -> Outcome {
    check(!text.is_empty(), || format!("{what} is empty"))?;
    for line in text.lines() {
        let (head, rest) = line
            .split_once(" zone ")
            .ok_or_else(|| format!("{what}: no ' zone ' in {line:?}"))?;
        let node = head
            .strip_prefix("Node ")
            .and_then(|n| n.strip_suffix(','))
            .and_then(|n| n.parse::<u32>().ok())
            .ok_or_else(|| format!("{what}: bad node in {line:?}"))?;
        let mut words = rest.split_whitespace();
        let zone = words
            .next()
            .ok_or_else(|| format!("{what}: no zone in {line:?}"))?;
        let mut again = format!("Node {node}, zone {zone:>8} ");
        let mut n = 0;
        for w in words {
            again += &field(w).ok_or_else(|| format!("{what}: bad field {w:?} in {line:?}"))?;
            n += 1;
        }
        check(n == 11, || {
            format!("{what}: {n} orders, not 11, in {line:?}")
        })?;
        check(again == line, || {
            format!("{what}: layout differs:\n got  {line:?}\n want {again:?}")
        })?;
    }
    Ok(())
}

fn count_field(w: &str) -> Option<String> {
    w.parse::<u64>().ok().map(|v| format!("{v:>6} "))
}

/// mm/vmstat.c prints indexes as "%2d.%03d " (extfrag) or "%d.%03d "
/// (unusable), from `index / 1000` and `index % 1000`: a negative index that
/// is not -1000 comes out as e.g. " 0.-500", and so must ours.
fn index_field(wide: bool) -> impl Fn(&str) -> Option<String> {
    move |w: &str| {
        let (i, f) = w.split_once('.')?;
        let (i, f) = (i.trim().parse::<i32>().ok()?, f.parse::<i32>().ok()?);
        Some(if wide {
            format!("{i:2}.{f:03} ")
        } else {
            format!("{i}.{f:03} ")
        })
    }
}

/// The fields of one slabinfo line, re-rendered as mm/slab_common.c does.
fn slabinfo_line_again(line: &str) -> Option<String> {
    let w: Vec<&str> = line.split_whitespace().collect();
    if w.len() != 16 || w[6] != ":" || w[7] != "tunables" || w[11] != ":" || w[12] != "slabdata" {
        return None;
    }
    let n = |i: usize| w[i].parse::<u64>().ok();
    Some(format!(
        "{:<17} {:>6} {:>6} {:>6} {:>4} {:>4} : tunables {:>4} {:>4} {:>4} : slabdata {:>6} {:>6} {:>6}",
        w[0], n(1)?, n(2)?, n(3)?, n(4)?, n(5)?, n(8)?, n(9)?, n(10)?, n(13)?, n(14)?, n(15)?
    ))
}

fn free_pages_in(buddyinfo: &str) -> u64 {
    buddyinfo
        .lines()
        .flat_map(|l| {
            l.split(" zone ")
                .nth(1)
                .map(|r| r.split_whitespace().skip(1).collect::<Vec<_>>())
        })
        .map(|v| {
            v.iter()
                .enumerate()
                .map(|(o, c)| c.parse::<u64>().unwrap_or(0) << o)
                .sum::<u64>()
        })
        .sum()
}

fn mirror_req(family: u32) -> uapi::MemlabAlloc {
    uapi::MemlabAlloc {
        family,
        backend: uapi::MEMLAB_BACKEND_MIRROR,
        ..Default::default()
    }
}

fn alloc_inspect(d: &Memlab, req: &uapi::MemlabAlloc) -> Result<uapi::MemlabBlockInfo, String> {
    d.alloc(req)
        .and_then(|h| d.inspect(h))
        .map_err(|e| format!("{req:?}: {e}"))
}

pub fn cases() -> Vec<Case> {
    let mut v: Vec<Case> = Vec::new();
    macro_rules! case {
        ($name:expr, $body:expr) => {
            v.push(Case {
                name: $name,
                run: Box::new($body),
            })
        };
    }
    case!(
        "mirror/buddyinfo has /proc/buddyinfo's exact layout",
        || {
            // The checker must accept the kernel's own file, or it proves nothing.
            check_zone_lines(&read("/proc/buddyinfo")?, "/proc/buddyinfo", count_field)?;
            check_zone_lines(&mirror_file("buddyinfo")?, "mirror/buddyinfo", count_field)
        }
    );
    case!(
        "mirror/extfrag_index and unusable_index have mm/vmstat.c's layouts",
        || {
            check_zone_lines(
                &mirror_file("extfrag_index")?,
                "extfrag_index",
                index_field(true),
            )?;
            check_zone_lines(
                &mirror_file("unusable_index")?,
                "unusable_index",
                index_field(false),
            )
        }
    );
    case!(
        "mirror/slabinfo has /proc/slabinfo's exact header and line layout",
        || {
            let real = read("/proc/slabinfo")?;
            let mine = mirror_file("slabinfo")?;
            let head = |s: &str| s.lines().take(2).collect::<Vec<_>>().join("\n");
            check(head(&real) == head(&mine), || {
                format!("headers differ:\n{}\n---\n{}", head(&real), head(&mine))
            })?;
            for (file, text) in [("/proc/slabinfo", &real), ("mirror/slabinfo", &mine)] {
                for line in text.lines().skip(2) {
                    let again = slabinfo_line_again(line)
                        .ok_or_else(|| format!("{file}: cannot parse {line:?}"))?;
                    check(again == line, || {
                        format!("{file}: layout differs:\n got  {line:?}\n want {again:?}")
                    })?;
                }
            }
            for class in ["kmalloc-8", "kmalloc-96", "kmalloc-192", "kmalloc-8k"] {
                check(
                    mine.lines()
                        .any(|l| l.split_whitespace().next() == Some(class)),
                    || format!("no {class} in mirror/slabinfo"),
                )?;
            }
            Ok(())
        }
    );
    case!(
        "mirror pool holds pool_mb (16 MiB) of pages across its zones",
        || {
            let pool = mirror_file("pool")?;
            let total: u64 = pool
                .lines()
                .filter_map(|l| l.strip_prefix("zone "))
                .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok())
                .sum();
            check(total == 4096, || {
                format!("zones manage {total} pages, want 4096:\n{pool}")
            })?;
            check(free_pages_in(&mirror_file("buddyinfo")?) <= 4096, || {
                "more free than managed".into()
            })
        }
    );
    case!(
        "mirror pages: order 3 is 8 aligned pages and shows in mirror/buddyinfo",
        || {
            let d = Memlab::open().map_err(|e| e.to_string())?;
            let before = free_pages_in(&mirror_file("buddyinfo")?);
            let i = alloc_inspect(
                &d,
                &uapi::MemlabAlloc {
                    order: 3,
                    ..mirror_req(uapi::MEMLAB_FAMILY_PAGES)
                },
            )?;
            check(
                i.nr_pages == 8 && i.first_pfn % 8 == 0 && i.phys_runs == 1 && i.usable == 8 << 12,
                || format!("{i:?}"),
            )?;
            let during = free_pages_in(&mirror_file("buddyinfo")?);
            check(before - during == 8, || {
                format!("free pages {before} -> {during}, want -8")
            })?;
            d.free(i.handle).map_err(|e| e.to_string())?;
            let after = free_pages_in(&mirror_file("buddyinfo")?);
            check(after == before, || {
                format!("free pages {before} -> {after} after FREE")
            })
        }
    );
    case!(
        "mirror kmalloc: ksize is the size class; above KMALLOC_MAX_SIZE is ENOMEM",
        || {
            let d = Memlab::open().map_err(|e| e.to_string())?;
            for (size, class) in [
                (1u64, 8u64),
                (100, 128),
                (150, 192),
                (4097, 8192),
                (8193, 12288),
            ] {
                let i = alloc_inspect(
                    &d,
                    &uapi::MemlabAlloc {
                        size,
                        ..mirror_req(uapi::MEMLAB_FAMILY_KMALLOC)
                    },
                )?;
                // Above 8 KiB kmalloc takes whole pages: 8193 B is an order-2 block.
                let want = if size > 8192 { 16384 } else { class };
                check(i.usable == want, || {
                    format!("kmalloc({size}): usable {} want {want}", i.usable)
                })?;
            }
            let big = uapi::MemlabAlloc {
                size: (4 << 20) + 1,
                ..mirror_req(uapi::MEMLAB_FAMILY_KMALLOC)
            };
            match d.alloc(&big) {
                Err(e) if e.raw_os_error() == Some(libc::ENOMEM) => Ok(()),
                other => Err(format!("kmalloc(4 MiB + 1): {other:?}, want ENOMEM")),
            }
        }
    );
    case!("mirror kmem_cache honours a 256-byte alignment", || {
        let d = Memlab::open().map_err(|e| e.to_string())?;
        let req = uapi::MemlabAlloc {
            size: 100,
            align: 256,
            ..mirror_req(uapi::MEMLAB_FAMILY_KMEM_CACHE)
        };
        for _ in 0..4 {
            let i = alloc_inspect(&d, &req)?;
            check(i.align_log2 >= 8, || {
                format!("object at 2^{} alignment", i.align_log2)
            })?;
        }
        Ok(())
    });
    case!(
        "mirror GFP: DMA from ZONE_DMA, DMA32 below 4 GiB, __GFP_ZERO zeroes",
        || {
            let d = Memlab::open().map_err(|e| e.to_string())?;
            let page = |gfp| uapi::MemlabAlloc {
                gfp,
                ..mirror_req(uapi::MEMLAB_FAMILY_PAGES)
            };
            let i = alloc_inspect(&d, &page(uapi::MEMLAB_GFP_DMA))?;
            check(i.zone == uapi::MEMLAB_ZONE_DMA, || {
                format!("GFP_DMA zone {}", i.zone)
            })?;
            let i = alloc_inspect(&d, &page(uapi::MEMLAB_GFP_DMA32))?;
            check(
                i.zone <= uapi::MEMLAB_ZONE_DMA32 && i.first_pfn < 1 << 20,
                || format!("GFP_DMA32: {i:?}"),
            )?;
            let i = alloc_inspect(&d, &page(uapi::MEMLAB_GFP_KERNEL | uapi::MEMLAB_GFP_ZERO))?;
            check(i.zeroed == 1, || format!("GFP_KERNEL|__GFP_ZERO: {i:?}"))
        }
    );
    case!(
        "mirror watermark: GFP_NOWAIT stops at the reserve, GFP_ATOMIC dips into it",
        || {
            let count_until_enomem = |d: &Memlab, gfp| -> Result<u32, String> {
                let req = uapi::MemlabAlloc {
                    gfp,
                    order: 4,
                    ..mirror_req(uapi::MEMLAB_FAMILY_PAGES)
                };
                for n in 0..1024 {
                    match d.alloc(&req) {
                        Ok(_) => {}
                        Err(e) if e.raw_os_error() == Some(libc::ENOMEM) => return Ok(n),
                        Err(e) => return Err(format!("after {n}: {e}")),
                    }
                }
                Err("no ENOMEM after 1024 order-4 blocks".into())
            };
            let n1 = {
                let d = Memlab::open().map_err(|e| e.to_string())?;
                let n = count_until_enomem(&d, uapi::MEMLAB_GFP_NOWAIT)?;
                // Order 1: not served from a per-CPU list, so it must come
                // out of a zone's reserve.
                let atomic = uapi::MemlabAlloc {
                    gfp: uapi::MEMLAB_GFP_ATOMIC,
                    order: 1,
                    ..mirror_req(uapi::MEMLAB_FAMILY_PAGES)
                };
                d.alloc(&atomic)
                    .map_err(|e| format!("GFP_ATOMIC below the watermark: {e}"))?;
                n
            };
            // Closing the file gave everything back: the same count again.
            let d = Memlab::open().map_err(|e| e.to_string())?;
            let n2 = count_until_enomem(&d, uapi::MEMLAB_GFP_NOWAIT)?;
            check(n1 > 100 && n1 == n2, || {
                format!("order-4 blocks before ENOMEM: {n1} then {n2}")
            })
        }
    );
    case!(
        "WORKLOAD: every family and pattern runs on both backends",
        workloads_run
    );
    case!(
        "WORKLOAD: bad input fails with EINVAL, too much memory with E2BIG",
        workload_bad_input
    );
    case!(
        "trace replay runs the same trace on both backends",
        replay_both
    );
    case!(
        "mirror SMP stress: 4 processes at once, then invariants hold and no page or object leaks",
        smp_stress
    );
    v
}

fn workloads_run() -> Outcome {
    let d = Memlab::open().map_err(|e| e.to_string())?;
    for spec in crate::bench::standard(100) {
        for backend in [uapi::MEMLAB_BACKEND_REAL, uapi::MEMLAB_BACKEND_MIRROR] {
            let w = crate::bench::run_spec(&d, &spec, backend)
                .map_err(|e| format!("{} {} backend {backend}: {e}", spec.name, spec.pattern))?;
            // PAIRS: one sample per step; BATCH: an alloc and a free per
            // step; RANDOM: one sample per step.
            let want = if spec.pattern == uapi::MEMLAB_PATTERN_BATCH {
                2 * spec.count
            } else {
                spec.count
            };
            check(
                w.ops == u64::from(want) && w.failed == 0 && w.median_ns <= w.p99_ns,
                || {
                    format!(
                        "{} {} backend {backend}: {w:?}",
                        spec.name,
                        crate::bench::pattern_name(spec.pattern)
                    )
                },
            )?;
        }
    }
    check(mirror_file("check")? == "ok\n", || {
        "mirror/check after workloads".into()
    })
}

fn workload_bad_input() -> Outcome {
    use uapi::*;
    let d = Memlab::open().map_err(|e| e.to_string())?;
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
        match d.workload(&w) {
            Err(e) if e.raw_os_error() == Some(errno) => {}
            other => return Err(format!("{what}: {other:?}, want errno {errno}")),
        }
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
            "free {free_before} + slab {slab_pages_before} pages before, free {free_after} + slab {slab_pages_after} after"
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
    let d = Memlab::open().map_err(|e| e.to_string())?;
    for round in 0..5u32 {
        let w = uapi::MemlabWorkload {
            backend: uapi::MEMLAB_BACKEND_MIRROR,
            family: if round % 2 == 0 {
                uapi::MEMLAB_FAMILY_KMALLOC
            } else {
                uapi::MEMLAB_FAMILY_PAGES
            },
            pattern: uapi::MEMLAB_PATTERN_RANDOM,
            count: 400,
            size: if round % 2 == 0 { 2048 } else { 0 },
            order: if round % 2 == 0 { 0 } else { 2 },
            seed: k * 31 + round,
            ..Default::default()
        };
        let r = d.workload(&w).map_err(|e| format!("workload: {e}"))?;
        if r.failed != 0 {
            return Err(format!("{} allocations failed", r.failed));
        }
        let mut handles = Vec::new();
        for i in 0..32u64 {
            let req = uapi::MemlabAlloc {
                backend: uapi::MEMLAB_BACKEND_MIRROR,
                family: [
                    uapi::MEMLAB_FAMILY_KMALLOC,
                    uapi::MEMLAB_FAMILY_PAGES,
                    uapi::MEMLAB_FAMILY_KMEM_CACHE,
                ][(i % 3) as usize],
                size: if i % 3 == 1 { 0 } else { 24 + i * 40 },
                order: if i % 3 == 1 { (i % 4) as u32 } else { 0 },
                ..Default::default()
            };
            handles.push(d.alloc(&req).map_err(|e| format!("alloc {req:?}: {e}"))?);
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
    use crate::bench::{parse_trace, replay_on};
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
    for backend in [uapi::MEMLAB_BACKEND_REAL, uapi::MEMLAB_BACKEND_MIRROR] {
        let lat = replay_on(&steps, backend)?;
        let counts: Vec<usize> = [
            uapi::MEMLAB_FAMILY_KMALLOC,
            uapi::MEMLAB_FAMILY_PAGES,
            uapi::MEMLAB_FAMILY_KMEM_CACHE,
        ]
        .iter()
        .map(|f| lat.get(f).map_or(0, Vec::len))
        .collect();
        check(counts == [20, 20, 20], || {
            format!("backend {backend}: allocations per family {counts:?}")
        })?;
    }
    let bad = parse_trace("a 1 kmalloc 64\nf 2\n")?;
    check(
        replay_on(&bad, uapi::MEMLAB_BACKEND_MIRROR).is_err(),
        || "a free of an unknown id was accepted".into(),
    )
}
