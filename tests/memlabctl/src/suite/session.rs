// SPDX-License-Identifier: GPL-2.0

//! MEMLAB_IOC_SESSION: a stream run in chunks on both backends with its
//! objects live between them, in caches of its own; every bad header or
//! chunk with its errno and nothing left allocated; a file closed with
//! sessions open.

use super::hostile::{pinned_back, pinned_total};
use super::{errno_name, expect_errno, open, BACKENDS};
use crate::dev::uapi;
use crate::tap::{check, Outcome, Suite};
use std::path::Path;
use uapi::*;

pub fn cases(s: &mut Suite) {
    s.case(
        "SESSION: a stream in three chunks on both backends: ids carry over, counts add up, caches of its own, all freed at close",
        chunks,
    );
    s.table(
        bad_sessions(),
        |b| {
            format!(
                "SESSION: {} -> {}, nothing allocated",
                b.what,
                errno_name(b.errno)
            )
        },
        refused,
    );
    s.case(
        "SESSION: closing the file closes its sessions and frees what they held",
        closed_with_the_file,
    );
    s.case(
        "SESSION: a short stream sampled after each chunk on both sides: every sample's caches agree with /proc/slabinfo and mirror/slabinfo and hold what the stream left live",
        samples_agree_with_slabinfo,
    );
}

fn step(op: u32, family: u32, id: u32, arg: u64) -> MemlabReplayStep {
    MemlabReplayStep {
        op,
        family,
        gfp: MEMLAB_GFP_KERNEL,
        id,
        arg,
    }
}

fn alloc(family: u32, id: u32, arg: u64) -> MemlabReplayStep {
    step(MEMLAB_REPLAY_ALLOC, family, id, arg)
}

fn free(id: u32) -> MemlabReplayStep {
    MemlabReplayStep {
        op: MEMLAB_REPLAY_FREE,
        id,
        ..Default::default()
    }
}

/// Chunk 1: 40 kmalloc-100 objects, 10 order-1 blocks, 20 kmem_cache 24 B
/// objects and one 12 KiB kmalloc (a page block); chunk 2 frees half of
/// each from chunk 1; chunk 3 frees the rest of the kmalloc objects.
fn three_chunks() -> [Vec<MemlabReplayStep>; 3] {
    let mut one = Vec::new();
    one.extend((0..40).map(|i| alloc(MEMLAB_FAMILY_KMALLOC, i, 100)));
    one.extend((40..50).map(|i| alloc(MEMLAB_FAMILY_PAGES, i, 1)));
    one.extend((50..70).map(|i| alloc(MEMLAB_FAMILY_KMEM_CACHE, i, 24)));
    one.push(alloc(MEMLAB_FAMILY_KMALLOC, 70, 12 << 10));
    let two: Vec<_> = (0..70).step_by(2).map(free).collect();
    let three: Vec<_> = (1..40).step_by(2).map(free).collect();
    [one, two, three]
}

fn cache_dir(session: u32, what: &str) -> String {
    format!("/sys/kernel/slab/memlab_s{session}_{what}")
}

fn chunks() -> Outcome {
    let d = open()?;
    let pinned = pinned_total()?;
    let [one, two, three] = three_chunks();
    for (backend, bn) in BACKENDS {
        let err = |e: std::io::Error| format!("{bn}: {e}");
        let o = d.session_open(backend, 128, 1 << 20).map_err(err)?;
        let n = o.session;
        check(n != 0 && o.live == 0 && o.charged >= 1 << 20, || {
            format!("{bn}: open: {o:?}")
        })?;
        let q = d.session_run(n, &one).map_err(err)?;
        check(
            q.steps_done == 71 && q.allocs == 71 && q.failed == 0 && q.live == 71,
            || format!("{bn}: chunk 1: {q:?}"),
        )?;
        // kmalloc-128 and cache-24: two caches, named for the session; the
        // real ones in sysfs, unmerged.
        check(q.nr_caches == 2, || format!("{bn}: chunk 1: {q:?}"))?;
        let real_dirs = ["kmalloc-128", "cache-24"].map(|c| cache_dir(n, c));
        if backend == MEMLAB_BACKEND_REAL {
            for dir in &real_dirs {
                let objs = std::fs::read_to_string(format!("{dir}/objects"))
                    .map_err(|e| format!("{dir}/objects: {e}"))?;
                let objs: u64 = objs
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .parse()
                    .unwrap_or(0);
                check(objs >= 20, || format!("{dir}/objects: {objs}"))?;
            }
        }
        let q = d.session_run(n, &two).map_err(err)?;
        check(q.steps_done == 106 && q.frees == 35 && q.live == 36, || {
            format!("{bn}: chunk 2: {q:?}")
        })?;
        let q = d.session_run(n, &three).map_err(err)?;
        check(q.frees == 55 && q.live == 16, || {
            format!("{bn}: chunk 3: {q:?}")
        })?;
        // Live in REPLAY's measure: 5 order-1 blocks, 10 objects of 32 B
        // and the 12 KiB kmalloc's 16 KiB.
        check(q.live_bytes == 5 * 8192 + 10 * 32 + 16384, || {
            format!("{bn}: chunk 3: {q:?}")
        })?;
        let c = d.session_close(n).map_err(err)?;
        check(c.live == 16 && c.allocs == 71, || {
            format!("{bn}: close: {c:?}")
        })?;
        for dir in &real_dirs {
            check(!Path::new(dir).exists(), || format!("{dir} after close"))?;
        }
        expect_errno(d.session_run(n, &one), libc::EINVAL)
            .map_err(|e| format!("{bn}: a run after close: {e}"))?;
        pinned_back(bn, pinned)?;
    }
    Ok(())
}

/// A session op the kernel must refuse before allocating anything.
pub struct Bad {
    what: &'static str,
    errno: i32,
}

fn bad_sessions() -> Vec<Bad> {
    let b = |what, errno| Bad { what, errno };
    vec![
        b("an unknown op", libc::EINVAL),
        b("an unknown backend", libc::EINVAL),
        b("an id table of 0 ids", libc::EINVAL),
        b("an id table past MEMLAB_REPLAY_MAX_IDS", libc::EINVAL),
        b("max_bytes 0", libc::EINVAL),
        b("outputs not zero", libc::EINVAL),
        b("max_bytes past max_pinned_mb", libc::E2BIG),
        b("a fifth session in one file", libc::E2BIG),
        b("a run of an unknown session", libc::EINVAL),
        b("a run of another file's session", libc::EINVAL),
        b("a truncated step buffer", libc::EINVAL),
        b("an id past the session's table", libc::EINVAL),
        b("a free of an id live in no chunk", libc::EINVAL),
        b("an alloc of an id live from the last chunk", libc::EINVAL),
        b("a chunk past the session's max_bytes", libc::E2BIG),
        b("a bad step pointer", libc::EFAULT),
    ]
}

/// Opens a mirror session on `d` for the refusals.
fn mirror_session(d: &crate::dev::Memlab) -> Result<u32, String> {
    d.session_open(MEMLAB_BACKEND_MIRROR, 16, 64 << 10)
        .map(|q| q.session)
        .map_err(|e| format!("open: {e}"))
}

/// The call `b` names, on `d`; its result.
fn issue(d: &crate::dev::Memlab, b: &Bad) -> Result<std::io::Result<()>, String> {
    let open = |backend, ids, max_bytes| MemlabSession {
        op: MEMLAB_SESSION_OPEN,
        backend,
        ids,
        max_bytes,
        ..Default::default()
    };
    let raw = |mut q: MemlabSession| d.session_raw(&mut q);
    let page = |id| alloc(MEMLAB_FAMILY_PAGES, id, 0);
    Ok(match b.what {
        "an unknown op" => raw(MemlabSession {
            op: 3,
            ..open(0, 1, 1)
        }),
        "an unknown backend" => raw(open(2, 1, 1)),
        "an id table of 0 ids" => raw(open(0, 0, 1)),
        "an id table past MEMLAB_REPLAY_MAX_IDS" => raw(open(0, MEMLAB_REPLAY_MAX_IDS + 1, 1)),
        "max_bytes 0" => raw(open(1, 1, 0)),
        "outputs not zero" => raw(MemlabSession {
            live: 1,
            ..open(1, 1, 1)
        }),
        "max_bytes past max_pinned_mb" => {
            let cap = super::params::params().max_pinned_mb << 20;
            raw(open(0, 1, cap + 1))
        }
        "a fifth session in one file" => {
            for _ in 0..MEMLAB_SESSION_MAX {
                mirror_session(d)?;
            }
            d.session_open(MEMLAB_BACKEND_MIRROR, 16, 4096).map(|_| ())
        }
        "a run of an unknown session" => d.session_run(0, &[page(0)]).map(|_| ()),
        "a run of another file's session" => {
            let other = open_file()?;
            let n = mirror_session(&other)?;
            d.session_run(n, &[page(0)]).map(|_| ())
        }
        "a truncated step buffer" => {
            let n = mirror_session(d)?;
            let steps = [page(0)];
            raw(MemlabSession {
                op: MEMLAB_SESSION_RUN,
                session: n,
                steps: steps.as_ptr() as u64,
                steps_len: 23,
                ..Default::default()
            })
        }
        "an id past the session's table" => {
            let n = mirror_session(d)?;
            d.session_run(n, &[page(0), page(16)]).map(|_| ())
        }
        "a free of an id live in no chunk" => {
            let n = mirror_session(d)?;
            d.session_run(n, &[page(0)]).map_err(|e| e.to_string())?;
            d.session_run(n, &[free(0), free(1)]).map(|_| ())
        }
        "an alloc of an id live from the last chunk" => {
            let n = mirror_session(d)?;
            d.session_run(n, &[page(3)]).map_err(|e| e.to_string())?;
            d.session_run(n, &[page(4), page(3)]).map(|_| ())
        }
        "a chunk past the session's max_bytes" => {
            let n = mirror_session(d)?;
            let steps: Vec<_> = (0..16).map(page).collect();
            d.session_run(n, &steps).map_err(|e| e.to_string())?;
            d.session_run(n, &[free(0), alloc(MEMLAB_FAMILY_PAGES, 0, 1)])
                .map(|_| ())
        }
        "a bad step pointer" => {
            let n = mirror_session(d)?;
            raw(MemlabSession {
                op: MEMLAB_SESSION_RUN,
                session: n,
                steps: 16,
                steps_len: 24,
                ..Default::default()
            })
        }
        other => return Err(format!("no such case: {other}")),
    })
}

fn open_file() -> Result<crate::dev::Memlab, String> {
    open()
}

/// Issues `b`, expects its errno; once the file is closed, nothing is left.
fn refused(b: Bad) -> Outcome {
    let pinned = pinned_total()?;
    {
        let d = open()?;
        let r = issue(&d, &b)?;
        expect_errno(r, b.errno)?;
    }
    pinned_back("mirror", pinned)
}

/// A file holding a session on each backend, with live objects, closes.
fn closed_with_the_file() -> Outcome {
    let pinned = pinned_total()?;
    let [one, ..] = three_chunks();
    {
        let d = open()?;
        for (backend, bn) in BACKENDS {
            let o = d
                .session_open(backend, 128, 1 << 20)
                .map_err(|e| format!("{bn}: {e}"))?;
            let q = d.session_run(o.session, &one).map_err(|e| e.to_string())?;
            check(q.live == 71, || format!("{bn}: {q:?}"))?;
            let held = pinned_total()?;
            check(held > pinned, || {
                format!("{bn}: pinned_total_bytes {held} with a session open")
            })?;
        }
    }
    pinned_back("both", pinned)
}

/// Live objects per session cache (named as a sample names them) after
/// each `every` steps of `steps`, as the stream says.
fn live_per_cache(
    steps: &[MemlabReplayStep],
    every: usize,
) -> Vec<std::collections::BTreeMap<String, u64>> {
    use memlab_core::request::replay::{decode, ReplayOp};
    use memlab_core::request::session::SessionAlloc;
    let mut by_id: std::collections::HashMap<u32, String> = Default::default();
    let mut live: std::collections::BTreeMap<String, u64> = Default::default();
    let mut out = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        match decode(s) {
            Ok(ReplayOp::Alloc { id, family, .. }) => {
                if let Some(SessionAlloc::Object(c)) = SessionAlloc::of(family) {
                    // The name without its `memlab_s<n>_` prefix.
                    let full = c.name(0).to_string();
                    let prefix = crate::diverge::sample::prefix(0);
                    let name = full.trim_start_matches(prefix.as_str()).to_string();
                    *live.entry(name.clone()).or_default() += 1;
                    by_id.insert(id, name);
                }
            }
            Ok(ReplayOp::Free { id }) => {
                if let Some(name) = by_id.remove(&id) {
                    *live.entry(name).or_default() -= 1;
                }
            }
            Err(_) => {}
        }
        if (i + 1) % every == 0 || i + 1 == steps.len() {
            out.push(live.clone());
        }
    }
    out
}

/// How the caches of sample `s` differ from their rows in `rows` (a
/// slabinfo read right after it, where they are named `prefix` + name):
/// one entry per cache missing or differing, none when all agree.
fn slabinfo_gaps(
    s: &crate::diverge::sample::Sample,
    rows: &[crate::slabstat::proc::ProcRow],
    prefix: &str,
) -> Vec<String> {
    use crate::slabstat::proc::ProcRow;
    s.caches
        .iter()
        .filter_map(|c| {
            let full = format!("{prefix}{}", c.name);
            let Some(row) = rows.iter().find(|r| r.name == full) else {
                return Some(format!("{full} missing"));
            };
            let mut mine = ProcRow::of(c);
            mine.name = full.clone();
            let diff = mine.diff(row);
            (!diff.is_empty()).then(|| format!("{full}: {}", diff.join(", ")))
        })
        .collect()
}

/// Writes 1 to `shrink` of every real cache named `prefix`*: SLUB frees
/// its empty slabs and flushes its sheaves, and KASAN releases its objects
/// from the quarantine.
fn shrink_caches(prefix: &str) -> Outcome {
    let root = std::path::Path::new(crate::slabstat::real::SYSFS_SLAB);
    let dir = std::fs::read_dir(root).map_err(|e| format!("{}: {e}", root.display()))?;
    for entry in dir.flatten() {
        if entry.file_name().to_string_lossy().starts_with(prefix) {
            let f = entry.path().join("shrink");
            std::fs::write(&f, "1").map_err(|e| format!("{}: {e}", f.display()))?;
        }
    }
    Ok(())
}

/// Issue 21's in-VM check: a short stream in a session on each side,
/// sampled after every chunk as `memlabctl diverge` samples; each sample's
/// caches agree with /proc/slabinfo (real) or mirror/slabinfo (mirror),
/// read right after, line for line, and hold at least the objects the
/// stream left live in them (sheaved ones count as allocated too).
fn samples_agree_with_slabinfo() -> Outcome {
    use crate::diverge::{sample, stream};
    use crate::slabstat::{proc, Side};
    let steps = stream::generate(4000, 3, 8 << 20, stream::MIXED);
    let (bin, _) = crate::replay::encode(&steps)?;
    let every = 500;
    let expect = live_per_cache(&bin, every);
    let mut live = vec![0u64; memlab_core::request::replay::ids_needed(&bin)];
    let plan = memlab_core::request::replay::plan(&bin, &mut live).map_err(|r| r.to_string())?;
    let d = open()?;
    let pinned = pinned_total()?;
    for side in [Side::Real, Side::Mirror] {
        let bn = side.name();
        let slabinfo = match side {
            Side::Real => "/proc/slabinfo".to_string(),
            Side::Mirror => format!("{}/mirror/slabinfo", crate::dev::DEBUGFS),
        };
        let o = d
            .session_open(sample::backend(side), live.len() as u32, plan.peak_bytes)
            .map_err(|e| format!("{bn}: {e}"))?;
        let prefix = sample::prefix(o.session);
        for (k, chunk) in bin.chunks(every).enumerate() {
            let q = d
                .session_run(o.session, chunk)
                .map_err(|e| format!("{bn}: {e}"))?;
            // Under KASAN a freed object waits in its quarantine and leaves
            // it on later allocator activity (the reads themselves
            // allocate), so two reads of the real counts may differ (seen:
            // active_objs 132 vs 125 on the test kernel, and on a busy host
            // still after five reads). So: sample and read again, up to
            // five times, until they agree, each retry on the real side
            // after a shrink of the session's caches, which takes their
            // objects out of the quarantine (kmem_cache_shrink ->
            // kasan_cache_shrink); the checks below judge the last pair.
            let mut tries = 0;
            let (s, gaps, rows) = loop {
                if tries > 0 && side == Side::Real {
                    shrink_caches(&prefix)?;
                }
                let s = sample::take(&d, side, o.session, q.steps_done, q.failed)?;
                let rows = proc::parse(&super::read(&slabinfo)?)?;
                tries += 1;
                let gaps = slabinfo_gaps(&s, &rows, &prefix);
                if gaps.is_empty() || tries == 5 {
                    break (s, gaps, rows);
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            };
            let theirs: Vec<&proc::ProcRow> = rows
                .iter()
                .filter(|r| r.name.starts_with(&prefix))
                .collect();
            let err = |m: String| format!("{bn}, after chunk {}: {m}", k + 1);
            check(
                theirs.len() == s.caches.len() && !s.caches.is_empty(),
                || {
                    err(format!(
                        "{} caches in {slabinfo}, {} sampled",
                        theirs.len(),
                        s.caches.len()
                    ))
                },
            )?;
            check(gaps.is_empty(), || {
                err(format!("sample vs {slabinfo}: {}", gaps.join("; ")))
            })?;
            for c in &s.caches {
                let full = format!("{prefix}{}", c.name);
                let want = expect[k].get(&c.name).copied().unwrap_or(0);
                check(c.objects >= want && c.total_objects >= c.objects, || {
                    err(format!(
                        "{full}: {} objects, {} total, the stream has {want} live",
                        c.objects, c.total_objects
                    ))
                })?;
            }
            check(s.free_pages() > 0, || {
                err("no free page in zone Normal".into())
            })?;
        }
        d.session_close(o.session)
            .map_err(|e| format!("{bn}: {e}"))?;
        let rows = proc::parse(&super::read(&slabinfo)?)?;
        check(!rows.iter().any(|r| r.name.starts_with(&prefix)), || {
            format!("{bn}: {prefix}* still in {slabinfo} after close")
        })?;
    }
    pinned_back("both", pinned)
}

#[cfg(test)]
mod tests {
    use super::slabinfo_gaps;
    use crate::diverge::sample::{Sample, NR_ORDERS};
    use crate::slabstat::{proc::ProcRow, CacheStat, Side, SlabStat};

    fn sample(objects: &[(&str, u64)]) -> Sample {
        let caches = objects
            .iter()
            .map(|&(name, objects)| {
                let c = SlabStat {
                    object_size: 64,
                    slab_size: 64,
                    objs_per_slab: 64,
                    objects,
                    total_objects: 128,
                    slabs: 2,
                    partial: 1,
                    ..Default::default()
                };
                CacheStat::new(Side::Real, name, &c, 4096)
            })
            .collect();
        Sample {
            step: 500,
            free_blocks: [0; NR_ORDERS],
            pcp_pages: None,
            probe_failed_3: false,
            probe_failed_9: false,
            failed: 0,
            caches,
        }
    }

    fn rows(s: &Sample, prefix: &str) -> Vec<ProcRow> {
        s.caches
            .iter()
            .map(|c| ProcRow {
                name: format!("{prefix}{}", c.name),
                ..ProcRow::of(c)
            })
            .collect()
    }

    #[test]
    fn gaps_name_each_cache_missing_or_differing() {
        let s = sample(&[("kmalloc-64", 70), ("cache-24", 5)]);
        let mut r = rows(&s, "memlab_s3_");
        assert!(slabinfo_gaps(&s, &r, "memlab_s3_").is_empty());
        // Another session's rows do not stand in for this one's.
        assert_eq!(slabinfo_gaps(&s, &r, "memlab_s4_").len(), 2);
        r[0].active_objs -= 7;
        r.pop();
        let gaps = slabinfo_gaps(&s, &r, "memlab_s3_");
        assert_eq!(gaps.len(), 2, "{gaps:?}");
        assert!(gaps[0].starts_with("memlab_s3_kmalloc-64: ") && gaps[0].contains("active_objs"));
        assert_eq!(gaps[1], "memlab_s3_cache-24 missing");
    }
}
