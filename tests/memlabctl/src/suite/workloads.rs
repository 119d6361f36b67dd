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
        "WORKLOAD: K ops per sample, raw samples, floor and kconfig reported",
        workload_samples,
    );
    s.case(
        "WORKLOAD THROUGHPUT: one window per pass, every op run, no samples; with a buffer EINVAL",
        workload_throughput,
    );
    s.case(
        "WORKLOAD: bad input fails with EINVAL, too much memory with E2BIG",
        workload_bad_input,
    );
    s.case(
        "WORKLOAD KEEP then FREE_KEPT: alloc on CPU 0, free on CPU 1; misuse fails; close frees",
        keep_and_free_kept,
    );
    s.case(
        "trace replay runs the same trace on both backends",
        replay_both,
    );
    s.case(
        "mirror SMP stress: 4 processes at once on every online CPU, then invariants hold and no page or object leaks",
        smp_stress,
    );
}

fn workloads_run() -> Outcome {
    let d = open()?;
    // One operation a sample, floor subtracted: under TCG every operation
    // takes longer than the two clock reads around it, so every median is
    // above 0. On a real CPU (UML, KVM) a sheaf or per-CPU-list hit is as
    // quick as the clock's own jitter, and its median after the floor can
    // be 0; there the p99 must still be above it.
    let emulated = crate::engine::Engine::current().engine == "tcg";
    for spec in bench::standard(100) {
        for (backend, bn) in BACKENDS {
            let pattern = bench::pattern_name(spec.pattern);
            let what = format!("{} {pattern} {bn}", spec.name);
            let w = bench::run_spec(&d, &spec, backend).map_err(|e| format!("{what}: {e}"))?;
            // PAIRS and BATCH: `count` allocs and `count` frees; RANDOM:
            // `count` steps, each an alloc or a free (K = 1: a sample each).
            let want = if spec.pattern == MEMLAB_PATTERN_RANDOM {
                spec.count
            } else {
                2 * spec.count
            };
            let allocs: u32 = w.zone_allocs.iter().sum();
            // RANDOM: what the kernel's step generator must give for this
            // seed, worked out here on its own (see `random_model`).
            let (peak, want_allocs) = match spec.pattern {
                MEMLAB_PATTERN_PAIRS => (1, spec.count),
                MEMLAB_PATTERN_BATCH => (spec.count, spec.count),
                _ => {
                    let r = bench::request(&spec, backend);
                    random_model(r.family, r.count, r.size, r.order, r.seed)
                }
            };
            check(w.alloc_samples == want_allocs, || {
                format!(
                    "{what}: {} allocations, the step generator's rule gives {want_allocs}",
                    w.alloc_samples
                )
            })?;
            check(
                w.ops == u64::from(want)
                    && w.failed == 0
                    && u64::from(w.alloc_samples + w.free_samples) == w.ops
                    && allocs == w.alloc_samples
                    && w.peak_live == peak
                    && w.peak_live >= 1
                    && (w.alloc_median_ps > 0 || !emulated)
                    && (w.free_median_ps > 0 || !emulated)
                    && w.alloc_p99_ps > 0
                    && w.free_p99_ps > 0
                    && w.alloc_median_ps <= w.alloc_p99_ps
                    && w.free_median_ps <= w.free_p99_ps
                    && w.clock_khz > 0
                    && w.elapsed_ticks > 0,
                || format!("{what}: {w:?}"),
            )?;
        }
    }
    // vmalloc: 4 KiB and 64 KiB areas, pages and mapping in the window.
    for size in [4096, 65536] {
        for (backend, bn) in BACKENDS {
            let w = d
                .workload(&MemlabWorkload {
                    backend,
                    family: MEMLAB_FAMILY_VMALLOC,
                    pattern: MEMLAB_PATTERN_PAIRS,
                    count: 20,
                    size,
                    ops_per_sample: 1,
                    ..Default::default()
                })
                .map_err(|e| format!("vmalloc {size} {bn}: {e}"))?;
            check(
                w.ops == 40 && w.failed == 0 && w.alloc_median_ps > 0 && w.free_median_ps > 0,
                || format!("vmalloc {size} {bn}: {w:?}"),
            )?;
        }
    }
    check(mirror_file("check")? == "ok\n", || {
        "mirror/check after workloads".into()
    })
}

/// The RANDOM pattern of src/workload/steps.rs, replayed apart from it:
/// `(most objects live at once, allocations)` for a workload of `count`
/// steps. xorshift32 seeded with `seed | 1`; at most `max(count / 2, 1)`
/// live; a step allocates when nothing is live, or when below the bound and
/// the next number is even (an allocation then draws its order or size:
/// pages `0..=order`, kmalloc `8 + below(size - 8)`, a kmem_cache nothing),
/// else frees a live object chosen by the next number.
fn random_model(family: u32, count: u32, size: u64, order: u32, seed: u32) -> (u32, u32) {
    let mut x = seed | 1;
    let mut below = |n: u32| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x % n.max(1)
    };
    let bound = (count / 2).max(1);
    let (mut live, mut peak, mut allocs) = (0u32, 0u32, 0u32);
    for _ in 0..count {
        if live == 0 || (live < bound && below(2) == 0) {
            match family {
                MEMLAB_FAMILY_PAGES => {
                    below(order + 1);
                }
                MEMLAB_FAMILY_KMALLOC => {
                    below(u32::try_from(size).unwrap_or(u32::MAX).saturating_sub(8));
                }
                _ => {}
            }
            live += 1;
            allocs += 1;
            peak = peak.max(live);
        } else {
            below(live);
            live -= 1;
        }
    }
    (peak, allocs)
}

/// K operations per sample, raw samples fetched: their number, the floor,
/// and the kernel options the module reports match this kernel.
fn workload_samples() -> Outcome {
    let d = open()?;
    let w = MemlabWorkload {
        backend: MEMLAB_BACKEND_MIRROR,
        family: MEMLAB_FAMILY_KMALLOC,
        pattern: MEMLAB_PATTERN_PAIRS,
        count: 101,
        size: 64,
        ops_per_sample: 4,
        warmup: 20,
        ..Default::default()
    };
    for (backend, bn) in BACKENDS {
        let r = bench::run_sampled(&d, &MemlabWorkload { backend, ..w })
            .map_err(|e| format!("{bn}: {e}"))?;
        // 101 allocs in samples of 4: 25 samples, the partial one dropped.
        check(
            r.w.alloc_samples == 25
                && r.w.free_samples == 25
                && r.alloc.len() == 25
                && r.free.len() == 25
                && r.w.floor_ticks > 0
                && r.alloc.iter().chain(&r.free).all(|&t| t > 0),
            || {
                format!(
                    "{bn}: {:?}, {} + {} samples",
                    r.w,
                    r.alloc.len(),
                    r.free.len()
                )
            },
        )?;
        let test_kernel = std::fs::read_to_string("/proc/cmdline")
            .map_err(|e| e.to_string())?
            .contains("memlab.flavour=test");
        check(
            (r.w.kconfig & MEMLAB_KCONFIG_KASAN != 0) == test_kernel,
            || format!("kconfig {:#x}, test kernel {test_kernel}", r.w.kconfig),
        )?;
    }
    Ok(())
}

fn workload_throughput() -> Outcome {
    let d = open()?;
    let w = MemlabWorkload {
        family: MEMLAB_FAMILY_KMALLOC,
        pattern: MEMLAB_PATTERN_BATCH,
        count: 200,
        size: 64,
        ops_per_sample: 4,
        warmup: 50,
        flags: MEMLAB_WORKLOAD_THROUGHPUT,
        ..Default::default()
    };
    for (backend, bn) in BACKENDS {
        for family in [
            MEMLAB_FAMILY_KMALLOC,
            MEMLAB_FAMILY_PAGES,
            MEMLAB_FAMILY_KMEM_CACHE,
        ] {
            let size = if family == MEMLAB_FAMILY_PAGES { 0 } else { 64 };
            let q = MemlabWorkload {
                backend,
                family,
                size,
                ..w
            };
            let r = d
                .workload(&q)
                .map_err(|e| format!("{bn} family {family}: {e}"))?;
            // BATCH of 200: 200 allocs then 200 frees, all run, none timed
            // alone.
            check(
                r.ops == 400
                    && r.failed == 0
                    && r.elapsed_ticks > 0
                    && r.clock_khz > 0
                    && r.alloc_samples == 0
                    && r.free_samples == 0
                    && r.floor_ticks == 0
                    && r.alloc_median_ps == 0,
                || format!("{bn} family {family}: {r:?}"),
            )?;
        }
        let mut buf = [0u64; 200];
        let with_buf = MemlabWorkload {
            backend,
            samples_ptr: buf.as_mut_ptr() as u64,
            samples_cap: buf.len() as u32,
            ..w
        };
        super::expect_errno(d.workload(&with_buf), libc::EINVAL)
            .map_err(|e| format!("{bn}: THROUGHPUT with a samples buffer: {e}"))?;
        super::expect_errno(
            d.workload(&MemlabWorkload {
                backend,
                flags: MEMLAB_WORKLOAD_THROUGHPUT | MEMLAB_WORKLOAD_KEEP,
                ..w
            }),
            libc::EINVAL,
        )
        .map_err(|e| format!("{bn}: THROUGHPUT | KEEP: {e}"))?;
    }
    check(mirror_file("check")? == "ok\n", || {
        "mirror/check after THROUGHPUT runs".into()
    })
}

fn workload_bad_input() -> Outcome {
    let d = open()?;
    let ok = MemlabWorkload {
        family: MEMLAB_FAMILY_KMALLOC,
        count: 10,
        size: 64,
        ops_per_sample: 2,
        ..Default::default()
    };
    d.workload(&ok)
        .map_err(|e| format!("a good workload failed: {e}"))?;
    let mut buf = [0u64; 10];
    let with_buf = MemlabWorkload {
        samples_ptr: buf.as_mut_ptr() as u64,
        samples_cap: 10,
        ..ok
    };
    d.workload(&with_buf)
        .map_err(|e| format!("a good workload with samples failed: {e}"))?;
    let bad: [(&str, MemlabWorkload, i32); 18] = [
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
            "dma family",
            MemlabWorkload {
                family: MEMLAB_FAMILY_DMA,
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
            "an output (page_meta_bytes) not zero",
            MemlabWorkload {
                page_meta_bytes: 1,
                ..ok
            },
            libc::EINVAL,
        ),
        (
            "order above MAX_PAGE_ORDER",
            MemlabWorkload {
                family: MEMLAB_FAMILY_PAGES,
                // The decoder's limit, memlab's own (src/core), which the
                // module's build holds equal to the kernel's.
                order: memlab_core::buddy::MAX_PAGE_ORDER + 1,
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
        (
            "K = 0",
            MemlabWorkload {
                ops_per_sample: 0,
                ..ok
            },
            libc::EINVAL,
        ),
        (
            "K above MEMLAB_WORKLOAD_MAX_K",
            MemlabWorkload {
                ops_per_sample: MEMLAB_WORKLOAD_MAX_K + 1,
                ..ok
            },
            libc::EINVAL,
        ),
        (
            "warm-up longer than the run",
            MemlabWorkload { warmup: 11, ..ok },
            libc::EINVAL,
        ),
        (
            "unknown flags",
            MemlabWorkload { flags: 1, ..ok },
            libc::EINVAL,
        ),
        (
            "a sample buffer without room",
            MemlabWorkload {
                samples_cap: 0,
                ..with_buf
            },
            libc::EINVAL,
        ),
        (
            "room without a sample buffer",
            MemlabWorkload {
                samples_ptr: 0,
                ..with_buf
            },
            libc::EINVAL,
        ),
        (
            "a sample buffer too small (needs 2 * ceil(10 / 2))",
            MemlabWorkload {
                samples_cap: 9,
                ..with_buf
            },
            libc::EINVAL,
        ),
        (
            "a sample buffer claimed above 2 * MAX_COUNT",
            MemlabWorkload {
                samples_cap: 2 * MEMLAB_WORKLOAD_MAX_COUNT + 1,
                ..with_buf
            },
            libc::E2BIG,
        ),
    ];
    for (what, w, errno) in bad {
        super::expect_errno(d.workload(&w), errno).map_err(|e| format!("{what}: {e}"))?;
    }
    // A buffer the kernel cannot write: EFAULT, and nothing stays allocated
    // (mirror/check then counts every object back).
    let unmapped = MemlabWorkload {
        backend: MEMLAB_BACKEND_MIRROR,
        samples_ptr: 8,
        ..with_buf
    };
    super::expect_errno(d.workload(&unmapped), libc::EFAULT)
        .map_err(|e| format!("unwritable sample buffer: {e}"))?;
    check(mirror_file("check")? == "ok\n", || {
        "mirror/check after the EFAULT run".into()
    })
}

/// Cross-CPU free through KEEP and FREE_KEPT on both backends, the
/// misuses of it, and a file closed with objects kept.
fn keep_and_free_kept() -> Outcome {
    let keep = MemlabWorkload {
        family: MEMLAB_FAMILY_KMALLOC,
        pattern: MEMLAB_PATTERN_BATCH,
        count: 100,
        size: 64,
        ops_per_sample: 4,
        flags: MEMLAB_WORKLOAD_KEEP,
        ..Default::default()
    };
    let free = MemlabWorkload {
        flags: MEMLAB_WORKLOAD_FREE_KEPT,
        ..keep
    };
    let other_cpu = usize::from(bench::online_cpus() >= 2);
    // The pins below end with this case: the mask is set again on return
    // (early or not), so the cases after it, and the processes they fork,
    // run on every CPU.
    let _unpin = bench::SavedAffinity::save().map_err(|e| format!("sched_getaffinity: {e}"))?;
    // Reading mirror/check drains the CPU caches: the count then holds
    // every live object.
    check(mirror_file("check")? == "ok\n", || {
        "mirror/check before".into()
    })?;
    let (objs_before, _) = slab_usage(&mirror_file("slabinfo")?);
    for (backend, bn) in BACKENDS {
        let d = open()?;
        let (keep, free) = (
            MemlabWorkload { backend, ..keep },
            MemlabWorkload { backend, ..free },
        );
        super::expect_errno(d.workload(&free), libc::EINVAL)
            .map_err(|e| format!("{bn}: FREE_KEPT with nothing kept: {e}"))?;
        bench::pin_to(0).map_err(|e| e.to_string())?;
        let k = d.workload(&keep).map_err(|e| format!("{bn}: KEEP: {e}"))?;
        check(
            k.ops == 100 && k.alloc_samples == 25 && k.free_samples == 0 && k.failed == 0,
            || format!("{bn}: KEEP {k:?}"),
        )?;
        for (what, w, errno) in [
            ("a second KEEP", keep, libc::EBUSY),
            (
                "FREE_KEPT of another count",
                MemlabWorkload { count: 99, ..free },
                libc::EINVAL,
            ),
            (
                "KEEP and FREE_KEPT at once",
                MemlabWorkload {
                    flags: MEMLAB_WORKLOAD_KEEP | MEMLAB_WORKLOAD_FREE_KEPT,
                    ..free
                },
                libc::EINVAL,
            ),
            (
                "FREE_KEPT with a warm-up",
                MemlabWorkload { warmup: 1, ..free },
                libc::EINVAL,
            ),
        ] {
            super::expect_errno(d.workload(&w), errno).map_err(|e| format!("{bn}: {what}: {e}"))?;
        }
        bench::pin_to(other_cpu).map_err(|e| e.to_string())?;
        let f = d
            .workload(&free)
            .map_err(|e| format!("{bn}: FREE_KEPT: {e}"));
        bench::pin_to(0).map_err(|e| e.to_string())?;
        let f = f?;
        // Natively, four mirror frees can take less than the clock's floor:
        // a median of 0 (as in the table above); the window still ran.
        let emulated = crate::engine::Engine::current().engine == "tcg";
        check(
            f.ops == 100
                && f.free_samples == 25
                && f.alloc_samples == 0
                && (f.free_median_ps > 0 || !emulated)
                && f.elapsed_ticks > 0,
            || format!("{bn}: FREE_KEPT on CPU {other_cpu}: {f:?}"),
        )?;
        check(f.cpu as usize == other_cpu, || {
            format!("{bn}: freed on CPU {}, not {other_cpu}", f.cpu)
        })?;
        super::expect_errno(d.workload(&free), libc::EINVAL)
            .map_err(|e| format!("{bn}: FREE_KEPT twice: {e}"))?;
        // Kept, then the file closed: the objects go back with it.
        d.workload(&keep)
            .map_err(|e| format!("{bn}: KEEP again: {e}"))?;
    }
    for (what, w) in [
        (
            "KEEP of PAIRS",
            MemlabWorkload {
                pattern: MEMLAB_PATTERN_PAIRS,
                ..keep
            },
        ),
        (
            "KEEP of a kmem_cache",
            MemlabWorkload {
                family: MEMLAB_FAMILY_KMEM_CACHE,
                ..keep
            },
        ),
        ("unknown flag", MemlabWorkload { flags: 8, ..keep }),
    ] {
        super::expect_errno(open()?.workload(&w), libc::EINVAL)
            .map_err(|e| format!("{what}: {e}"))?;
    }
    check(mirror_file("check")? == "ok\n", || {
        "mirror/check after KEEP".into()
    })?;
    let (objs_after, _) = slab_usage(&mirror_file("slabinfo")?);
    check(objs_after == objs_before, || {
        format!("live mirror kmalloc objects {objs_before} -> {objs_after} after closing with objects kept")
    })
}

/// Several processes hammer the mirror at once (kmalloc workloads, page
/// handles, caches), on every online CPU: each reports the CPUs it ran on
/// (`sched_getcpu` after each ioctl), the TAP line names them, and fewer CPUs
/// than online (up to two) fails. Afterwards the mirror's invariant checkers
/// pass and every page is free again.
fn smp_stress() -> Outcome {
    let online = bench::online_cpus();
    let allowed = bench::allowed_cpus().map_err(|e| format!("sched_getaffinity: {e}"))?;
    check(allowed.len() >= online, || {
        format!(
            "the harness may run on CPUs {allowed:?} only, {online} online: a pin was left behind"
        )
    })?;
    // Reading mirror/check drains the per-CPU caches: the counts that follow
    // then hold every page and object.
    check(mirror_file("check")? == "ok\n", || {
        "mirror/check before".into()
    })?;
    let free_before = free_pages_in(&mirror_file("buddyinfo")?);
    let (objs_before, slab_pages_before) = slab_usage(&mirror_file("slabinfo")?);
    let (kids, cpus) = run_stress_children(4)?;
    let ran_on: Vec<String> = (0..64)
        .filter(|c| cpus & (1 << c) != 0)
        .map(|c| c.to_string())
        .collect();
    crate::tap::note(format!("ran on CPUs {}", ran_on.join(",")));
    check(kids.failed == 0 && kids.lost == 0, || {
        format!(
            "of 4 stress processes {} failed and {} were lost (waitpid)",
            kids.failed, kids.lost
        )
    })?;
    let want = online.min(2);
    check(ran_on.len() >= want, || {
        format!(
            "the stress processes ran on CPUs {{{}}}: fewer than {want} with {online} online",
            ran_on.join(",")
        )
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

/// How the stress children ended.
struct Children {
    failed: u32,
    lost: u32,
}

/// Forks `n` children running [`stress_child`] at once and waits for them;
/// returns how they ended and the union of the CPUs they report (a bit per
/// CPU) through a pipe.
fn run_stress_children(n: u32) -> Result<(Children, u64), String> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe writes two descriptors into the two-element array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    let [rd, wr] = fds;
    let mut kids = Vec::new();
    for k in 0..n {
        // SAFETY: single-threaded harness; the child only runs `stress_child`,
        // writes to the pipe and `_exit`s.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            let e = std::io::Error::last_os_error();
            // SAFETY: our own descriptors, closed once; the children
            // forked so far end on their own and are reaped by init.
            unsafe {
                libc::close(rd);
                libc::close(wr);
            }
            return Err(format!("fork: {e}"));
        }
        if pid == 0 {
            let mut cpus = 0u64;
            let code = match stress_child(k, &mut cpus) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("stress child {k}: {e}");
                    1
                }
            };
            let bytes = cpus.to_ne_bytes();
            // SAFETY: writes 8 bytes from a local array (atomic on a pipe),
            // then ends the forked child without running the parent's
            // destructors.
            unsafe {
                libc::write(wr, bytes.as_ptr().cast(), bytes.len());
                libc::_exit(code);
            }
        }
        kids.push(pid);
    }
    // SAFETY: the parent's copy of the write end, closed once, so that the
    // read below ends when the last child has exited.
    unsafe { libc::close(wr) };
    let mut ended = Children { failed: 0, lost: 0 };
    for pid in kids {
        let mut status = 0;
        // SAFETY: waiting for our own child.
        if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
            ended.lost += 1;
        } else if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
            ended.failed += 1;
        }
    }
    let mut cpus = 0u64;
    let mut buf = [0u8; 8];
    loop {
        // SAFETY: reads at most 8 bytes into a local array.
        let got = unsafe { libc::read(rd, buf.as_mut_ptr().cast(), buf.len()) };
        if got != 8 {
            break;
        }
        cpus |= u64::from_ne_bytes(buf);
    }
    // SAFETY: our own descriptor, closed once.
    unsafe { libc::close(rd) };
    Ok((ended, cpus))
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

/// The CPU the caller runs on now, as a bit (0 if unknown or above 63).
fn cpu_bit() -> u64 {
    // SAFETY: sched_getcpu takes no arguments.
    let cpu = unsafe { libc::sched_getcpu() };
    u32::try_from(cpu)
        .ok()
        .and_then(|c| 1u64.checked_shl(c))
        .unwrap_or(0)
}

/// One stress process's work; `cpus` gathers the CPUs it ran on, read
/// after every ioctl.
fn stress_child(k: u32, cpus: &mut u64) -> Result<(), String> {
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
            ops_per_sample: 8,
            ..Default::default()
        };
        let r = d.workload(&w).map_err(|e| format!("workload: {e}"))?;
        *cpus |= cpu_bit();
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
            *cpus |= cpu_bit();
        }
        for h in handles.into_iter().rev() {
            d.free(h).map_err(|e| format!("free: {e}"))?;
            *cpus |= cpu_bit();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_model_keeps_its_bound() {
        // One step: an allocation. Two: the bound is 1, so a free follows.
        assert_eq!(random_model(MEMLAB_FAMILY_KMEM_CACHE, 1, 64, 0, 7), (1, 1));
        assert_eq!(random_model(MEMLAB_FAMILY_KMEM_CACHE, 2, 64, 0, 7), (1, 1));
        for (family, size, order) in [
            (MEMLAB_FAMILY_KMALLOC, 4096, 0),
            (MEMLAB_FAMILY_PAGES, 0, 3),
            (MEMLAB_FAMILY_KMEM_CACHE, 64, 0),
        ] {
            let (peak, allocs) = random_model(family, 1000, size, order, 0x5eed);
            assert!(peak > 1 && peak <= 500, "{family}: peak {peak}");
            assert!(allocs >= peak && allocs <= 1000, "{family}: {allocs}");
            // Seeded: the same numbers again, others for another seed.
            assert_eq!(
                random_model(family, 1000, size, order, 0x5eed),
                (peak, allocs)
            );
        }
        // The draws for a size or an order move the sequence along.
        assert_ne!(
            random_model(MEMLAB_FAMILY_KMALLOC, 1000, 4096, 0, 0x5eed),
            random_model(MEMLAB_FAMILY_KMEM_CACHE, 1000, 4096, 0, 0x5eed)
        );
    }
}
