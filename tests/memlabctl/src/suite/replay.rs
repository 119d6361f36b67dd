// SPDX-License-Identifier: GPL-2.0

//! MEMLAB_IOC_REPLAY: a known trace on both backends, every bad buffer with
//! its errno and nothing left allocated, a replay whose allocations fail
//! midway, and fragmentation sampling.

use super::hostile::{mirror_check, pinned_back, pinned_total};
use super::{errno_name, free_pages_in, mirror_file, open, BACKENDS};
use crate::dev::uapi;
use crate::replay::{encode, parse_trace};
use crate::tap::{check, Outcome, Suite};
use uapi::*;

pub fn cases(s: &mut Suite) {
    s.case(
        "REPLAY: a known trace on both backends: counts, latencies, waste, nothing left pinned",
        known_trace,
    );
    s.table(
        bad_buffers(),
        |b| {
            format!(
                "REPLAY: {} -> {}, nothing allocated",
                b.what,
                errno_name(b.errno)
            )
        },
        refused,
    );
    s.case(
        "REPLAY: allocations failing midway (mirror pool exhausted) are counted, fail the order-9 probe, and are all freed",
        exhausted,
    );
    s.case(
        "REPLAY: fragmentation samples, as many as asked, indexes in [0,1], probes",
        samples,
    );
}

/// 31 allocations of three families (pages with a gfp= token), 29 frees;
/// a kmalloc of 100 B and a kmem_cache object of 24 B stay live at the end
/// (the kernel frees them).
fn known_text() -> String {
    let mut t = String::from("# known trace\n");
    for i in 0..10 {
        t += &format!("a {} kmalloc {}\n", 3 * i, 8 + 40 * i);
        t += &format!("a {} pages {} gfp=GFP_NOIO\n", 3 * i + 1, i % 4);
        t += &format!("a {} kmem_cache 24\n", 3 * i + 2);
    }
    for i in 0..10 {
        t += &format!("f {}\n", 3 * i + 1);
        if i != 0 {
            t += &format!("f {}\n", 3 * i + 2);
        }
        if i < 9 {
            t += &format!("f {}\n", 3 * (i + 1));
        }
    }
    t + "f 0\na 100 kmalloc 100\n"
}

fn known_trace() -> Outcome {
    let steps = parse_trace(&known_text())?;
    let (bin, _) = encode(&steps)?;
    let d = open()?;
    let pinned = pinned_total()?;
    for (backend, bn) in BACKENDS {
        let (q, s) = d
            .replay(&bin, backend, 0, MEMLAB_ZONE_NORMAL)
            .map_err(|e| format!("{bn}: {e}"))?;
        let err = || format!("{bn}: {q:?}");
        check(s.is_empty() && q.nr_samples == 0, err)?;
        check(q.steps_done == bin.len() as u64 && q.steps_done == 60, err)?;
        check(q.allocs == 31 && q.frees == 29 && q.failed == 0, err)?;
        check(
            q.alloc_median_ns > 0 && q.alloc_median_ns <= q.alloc_p99_ns,
            err,
        )?;
        check(
            q.free_median_ns > 0 && q.free_median_ns <= q.free_p99_ns,
            err,
        )?;
        check(q.unusable_3 <= MEMLAB_UNUSABLE_SCALE, err)?;
        check(q.unusable_9 <= MEMLAB_UNUSABLE_SCALE, err)?;
        // Live after the last step: kmalloc 100 (ksize 128) and a 24-byte
        // kmem_cache object (its cache's own size).
        check(q.live_bytes == 124 && q.ksize_waste == 28, err)?;
        if backend == MEMLAB_BACKEND_MIRROR {
            check(q.slab_bytes >= q.live_bytes, err)?;
        } else {
            check(q.slab_bytes == 0, err)?;
        }
        check(q.charged > 0, err)?;
        pinned_back(bn, pinned)?;
    }
    Ok(())
}

/// A replay the kernel must refuse before allocating anything.
pub struct Bad {
    what: &'static str,
    q: MemlabReplay,
    steps: Vec<MemlabReplayStep>,
    errno: i32,
}

fn step(op: u32, family: u32, gfp: u32, id: u32, arg: u64) -> MemlabReplayStep {
    MemlabReplayStep {
        op,
        family,
        gfp,
        id,
        arg,
    }
}

fn kmalloc(id: u32, size: u64) -> MemlabReplayStep {
    step(MEMLAB_REPLAY_ALLOC, MEMLAB_FAMILY_KMALLOC, 0, id, size)
}

fn pages(id: u32, order: u64) -> MemlabReplayStep {
    step(MEMLAB_REPLAY_ALLOC, MEMLAB_FAMILY_PAGES, 0, id, order)
}

fn free(id: u32) -> MemlabReplayStep {
    step(MEMLAB_REPLAY_FREE, 0, 0, id, 0)
}

/// Good steps with `last` at the end: the bad one comes after allocations
/// the kernel must never have made.
fn after_good(last: MemlabReplayStep) -> Vec<MemlabReplayStep> {
    let mut v: Vec<_> = (0..8).map(|i| kmalloc(i, 256)).collect();
    v.push(pages(8, 2));
    v.push(last);
    v
}

fn bad_buffers() -> Vec<Bad> {
    let q = MemlabReplay {
        backend: MEMLAB_BACKEND_MIRROR,
        zone: MEMLAB_ZONE_NORMAL,
        ..Default::default()
    };
    let real = MemlabReplay {
        backend: MEMLAB_BACKEND_REAL,
        ..q
    };
    let good = after_good(free(0));
    let b = |what, q, steps, errno| Bad {
        what,
        q,
        steps,
        errno,
    };
    // The decoder's limits are memlab's own (src/core), which the module's
    // build holds equal to the kernel's (src/platform/phys.rs).
    use memlab_core::{buddy::MAX_PAGE_ORDER, sizeclass::KMALLOC_MAX_SIZE};
    let big: Vec<_> = (0..32).map(|i| pages(i, MAX_PAGE_ORDER.into())).collect();
    vec![
        b("a truncated buffer", q, good.clone(), libc::EINVAL),
        b("an empty buffer", q, Vec::new(), libc::EINVAL),
        b(
            "an unknown op",
            q,
            after_good(step(7, 0, 0, 9, 0)),
            libc::EINVAL,
        ),
        b(
            "an unknown family",
            real,
            after_good(step(MEMLAB_REPLAY_ALLOC, 42, 0, 9, 64)),
            libc::EINVAL,
        ),
        b(
            "an unknown GFP selector",
            q,
            after_good(step(MEMLAB_REPLAY_ALLOC, 0, MEMLAB_NR_GFP, 9, 64)),
            libc::EINVAL,
        ),
        b(
            "a free of an unknown id",
            real,
            after_good(free(9)),
            libc::EINVAL,
        ),
        b(
            "an alloc of a live id",
            q,
            after_good(kmalloc(3, 8)),
            libc::EINVAL,
        ),
        b(
            "an id past the id table",
            q,
            after_good(kmalloc(MEMLAB_REPLAY_MAX_IDS, 8)),
            libc::EINVAL,
        ),
        b("too many steps", q, good.clone(), libc::E2BIG),
        b(
            "a kmalloc past KMALLOC_MAX_SIZE",
            real,
            after_good(kmalloc(9, KMALLOC_MAX_SIZE as u64 + 1)),
            libc::E2BIG,
        ),
        b(
            "an order past MAX_PAGE_ORDER",
            q,
            after_good(pages(9, u64::from(MAX_PAGE_ORDER) + 1)),
            libc::E2BIG,
        ),
        b(
            "32 live blocks of MAX_PAGE_ORDER past max_pinned_mb",
            real,
            big,
            libc::E2BIG,
        ),
        b(
            "an unknown backend",
            MemlabReplay { backend: 2, ..q },
            good.clone(),
            libc::EINVAL,
        ),
        b(
            "an unknown zone",
            MemlabReplay { zone: 9, ..q },
            good.clone(),
            libc::EINVAL,
        ),
        b(
            "outputs not zero",
            MemlabReplay { allocs: 1, ..q },
            good.clone(),
            libc::EINVAL,
        ),
        b(
            "a sample buffer too small",
            MemlabReplay {
                sample_every: 2,
                samples_len: 5 * std::mem::size_of::<MemlabFragSample>() as u64,
                ..q
            },
            good.clone(),
            libc::EINVAL,
        ),
        b(
            "a bad sample pointer, found after the run",
            MemlabReplay {
                sample_every: 5,
                samples: 8,
                samples_len: 3 * std::mem::size_of::<MemlabFragSample>() as u64,
                ..real
            },
            good.clone(),
            libc::EFAULT,
        ),
        b("a bad step pointer", q, good, libc::EFAULT),
    ]
}

/// Issues `b`, expects its errno, and checks nothing stayed allocated.
fn refused(b: Bad) -> Outcome {
    let d = open()?;
    let pinned = pinned_total()?;
    let mirror_free = mirror_free_pages()?;
    let mut q = b.q;
    q.steps = b.steps.as_ptr() as u64;
    q.steps_len = std::mem::size_of_val(b.steps.as_slice()) as u64;
    match b.what {
        "a truncated buffer" => q.steps_len -= 1,
        "too many steps" => {
            q.steps_len = (u64::from(MEMLAB_REPLAY_MAX_STEPS) + 1) * 24;
        }
        "a bad step pointer" => q.steps = 16,
        _ => {}
    }
    super::expect_errno(d.replay_raw(&mut q), b.errno)?;
    left_nothing(pinned, mirror_free)
}

/// The mirror's free pages once its per-CPU caches are drained.
fn mirror_free_pages() -> Result<u64, String> {
    mirror_check()?;
    Ok(free_pages_in(&mirror_file("buddyinfo")?))
}

fn left_nothing(pinned: u64, mirror_free: u64) -> Outcome {
    let now = pinned_total()?;
    check(now == pinned, || {
        format!("pinned_total_bytes {pinned} before, {now} after")
    })?;
    let free = mirror_free_pages()?;
    check(free == mirror_free, || {
        format!("mirror free pages {mirror_free} before, {free} after")
    })
}

/// More order-10 blocks than the mirror's pool holds: the failures are
/// counted, the run goes on, and every block it got is freed.
fn exhausted() -> Outcome {
    let d = open()?;
    let pinned = pinned_total()?;
    let mirror_free = mirror_free_pages()?;
    let pool: u32 = mirror_file("pool")?
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .ok_or("no page count in mirror/pool")?;
    // Free blocks of orders 9 and 10 over the mirror's zones, from its
    // buddyinfo ("Node 0, zone Normal c0 .. c10"), with the per-CPU lists
    // drained first (reading mirror/check does that).
    mirror_file("check")?;
    let (mut free9, mut free10) = (0u32, 0u32);
    let mut zones = 0u32;
    for line in mirror_file("buddyinfo")?.lines() {
        let w: Vec<u32> = line
            .split_whitespace()
            .skip(4)
            .filter_map(|x| x.parse().ok())
            .collect();
        if let [.., c9, c10] = w.as_slice() {
            free9 += c9;
            free10 += c10;
            zones += 1;
        }
    }
    // Two order-10 blocks more than the zones have, then order-9 ones for
    // what is left of that size: the free order-9 blocks, two for each
    // zone's order-10 block a watermark may keep back, and two more (about
    // 40 MiB for the default 16 MiB pool). One REPLAY is charged to one
    // file, so a pool whose exhaustion takes more than the per-file cap
    // cannot be exhausted here.
    let n = free10 + 2;
    let m = free9 + 2 * zones + 2;
    let cap_mb = super::params::params().max_pinned_mb;
    if u64::from(n * 4 + m * 2) > cap_mb {
        return Err(format!(
            "{}exhausting a pool of {pool} pages takes {} MiB, above max_pinned_mb={cap_mb}",
            crate::tap::SKIP,
            n * 4 + m * 2
        ));
    }
    let mut steps: Vec<_> = (0..n).map(|i| pages(i, 10)).collect();
    steps.extend((n..n + m).map(|i| pages(i, 9)));
    steps.extend((0..n / 2).map(free));
    // Samples before the first step and after the allocations.
    let (q, s) = d
        .replay(&steps, MEMLAB_BACKEND_MIRROR, n + m, MEMLAB_ZONE_NORMAL)
        .map_err(|e| e.to_string())?;
    check(
        q.failed > 0
            && q.allocs + q.failed == u64::from(n + m)
            && q.steps_done == steps.len() as u64,
        || {
            format!("{n} + {m} blocks from a pool of {pool} pages ({free10} free of order 10, {free9} of order 9): {q:?}")
        },
    )?;
    // The order-9 probe finds a block while the zone has some, and none
    // once no block of order 9 or 10 is left.
    let (before, full) = match s.as_slice() {
        [b, f, ..] => (b, f),
        _ => return Err(format!("{} samples", s.len())),
    };
    check(
        before.free_blocks[9] + before.free_blocks[10] > 0
            && before.probe_failed & MEMLAB_PROBE_ORDER9 == 0,
        || format!("before: {before:?}"),
    )?;
    // The default pool's zone Normal ends with no block of order 9 or 10.
    // A larger pool's zone may keep one that the watermark holds back:
    // taking it would leave the zone below its reserve. Only there is one
    // allowed; and on UML, whose whole pool is zone Normal, laid out so
    // that it can end so too.
    let strict = super::params::params().pool_mb == super::params::DEFAULTS.pool_mb
        && !super::kernel::is_uml();
    let reserve = normal_reserve(&mirror_file("pool")?)?;
    let free_pages: u64 = full
        .free_blocks
        .iter()
        .enumerate()
        .map(|(o, &c)| c << o)
        .sum();
    let left = full.free_blocks[9] + full.free_blocks[10];
    check(
        (left == 0 || (!strict && free_pages < reserve + 512))
            && full.probe_failed & MEMLAB_PROBE_ORDER9 != 0,
        || format!("after the allocations (zone Normal's reserve {reserve} pages): {full:?}"),
    )?;
    left_nothing(pinned, mirror_free)
}

/// Zone Normal's reserve in `mirror/pool` (`zone Normal managed M free F
/// reserve R ...`).
fn normal_reserve(pool: &str) -> Result<u64, String> {
    crate::bench::parse_pool(pool)
        .into_iter()
        .find(|z| z.zone == "Normal")
        .and_then(|z| z.reserve_pages)
        .ok_or_else(|| format!("no reserve of zone Normal in mirror/pool: {pool:?}"))
}

fn samples() -> Outcome {
    let steps = crate::frag::workload(2000, 128, 5);
    let (bin, _) = encode(&steps)?;
    let d = open()?;
    for (backend, bn) in BACKENDS {
        let (q, s) = d
            .replay(&bin, backend, 100, MEMLAB_ZONE_NORMAL)
            .map_err(|e| format!("{bn}: {e}"))?;
        check(s.len() == 21 && q.nr_samples == 21, || {
            format!("{bn}: {} samples", s.len())
        })?;
        for (i, x) in s.iter().enumerate() {
            check(x.step == 100 * i as u64, || format!("{bn}: {x:?}"))?;
            check(
                x.unusable_3 <= MEMLAB_UNUSABLE_SCALE
                    && x.unusable_9 <= MEMLAB_UNUSABLE_SCALE
                    && x.unusable_3 <= x.unusable_9,
                || format!("{bn}: {x:?}"),
            )?;
            check(x.free_blocks.iter().any(|&n| n > 0), || {
                format!("{bn}: no free block in zone Normal: {x:?}")
            })?;
            check(
                x.probe_failed & !(MEMLAB_PROBE_ORDER3 | MEMLAB_PROBE_ORDER9) == 0
                    && x.reserved == 0,
                || format!("{bn}: {x:?}"),
            )?;
            // The VM's own zone Normal keeps hundreds of MiB in order-10
            // blocks under 128 live objects: its probes never fail.
            if backend == MEMLAB_BACKEND_REAL {
                check(x.probe_failed == 0, || format!("{bn}: {x:?}"))?;
            }
        }
        let last = s.last().ok_or("no sample")?;
        check(
            (last.unusable_3, last.unusable_9) == (q.unusable_3, q.unusable_9),
            || format!("{bn}: last sample {last:?} vs final {q:?}"),
        )?;
    }
    mirror_check()
}
