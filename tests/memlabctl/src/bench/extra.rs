// SPDX-License-Identifier: GPL-2.0

//! The benchmarks beyond the main table: a size sweep over every kmalloc
//! class and page order, vmalloc latency against size, and 2-CPU scaling.

use super::abba::{compare, request, Compared, Method, Ratios};
use super::stats::{percentile, ratio, Failed, Spread};
use super::Spec;
use crate::dev::{uapi, Memlab};
use serde::Serialize;
use std::io;
use std::sync::Barrier;

/// Every kmalloc size class of the kernel (KMALLOC_MIN_SIZE 8 on x86-64,
/// with the 96 and 192 classes, up to KMALLOC_MAX_CACHE_SIZE 8 KiB).
pub const KMALLOC_CLASSES: [u64; 13] = [
    8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192,
];

/// One point of the sweep.
#[derive(Serialize, Debug)]
pub struct SweepPoint {
    pub family: &'static str,
    /// Bytes (kmalloc) or order (pages).
    pub arg: u64,
    pub real_alloc_median_ns: f64,
    pub mirror_alloc_median_ns: f64,
    pub real_free_median_ns: f64,
    pub mirror_free_median_ns: f64,
    /// Allocations that failed, over every round; if any did, the ratios
    /// are withheld (null).
    pub failed: Failed,
    /// As [`super::report::Row::unequal_pcp`]: a page point whose two
    /// sides' per-CPU page lists have different batches.
    pub unequal_pcp: bool,
    pub ratios: Ratios,
}

impl SweepPoint {
    /// The medians over rounds and the ratios of `c`.
    fn of(family: &'static str, arg: u64, c: &Compared) -> Self {
        SweepPoint {
            family,
            arg,
            real_alloc_median_ns: c.median_of(|r| r.real.alloc_median_ns),
            mirror_alloc_median_ns: c.median_of(|r| r.mirror.alloc_median_ns),
            real_free_median_ns: c.median_of(|r| r.real.free_median_ns),
            mirror_free_median_ns: c.median_of(|r| r.mirror.free_median_ns),
            failed: c.failed,
            unequal_pcp: false,
            ratios: c.ratios,
        }
    }

    /// One line: medians real/mirror, ratios with their spread.
    pub fn human(&self) -> String {
        format!(
            "  {:<12} {:>8}  alloc {:>8.1}/{:<8.1} {:>20}  free {:>8.1}/{:<8.1} {:>20}{}{}",
            self.family,
            self.arg,
            self.real_alloc_median_ns,
            self.mirror_alloc_median_ns,
            self.failed.ratio_text(self.ratios.alloc_median),
            self.real_free_median_ns,
            self.mirror_free_median_ns,
            self.failed.ratio_text(self.ratios.free_median),
            self.failed.note(),
            if self.unequal_pcp {
                "  (per-CPU page list batches differ: not like for like)"
            } else {
                ""
            }
        )
    }
}

/// PAIRS at every kmalloc class and page order 0..=10, each ABBA over
/// `m.rounds` rounds.
pub fn sweep(d: &Memlab, m: &Method, count: u32) -> io::Result<Vec<SweepPoint>> {
    let mut out = Vec::new();
    let points = KMALLOC_CLASSES
        .iter()
        .map(|&s| ("kmalloc", uapi::MEMLAB_FAMILY_KMALLOC, s, 0))
        .chain((0..=10u32).map(|o| ("alloc_pages", uapi::MEMLAB_FAMILY_PAGES, 0, o)));
    for (family, fam, size, order) in points {
        let spec = Spec {
            name: family,
            family: fam,
            pattern: uapi::MEMLAB_PATTERN_PAIRS,
            count,
            size,
            order,
        };
        let arg = if fam == uapi::MEMLAB_FAMILY_PAGES {
            u64::from(order)
        } else {
            size
        };
        out.push(SweepPoint::of(family, arg, &compare(d, &spec, m)?));
    }
    Ok(out)
}

/// vmalloc area sizes of the latency-against-size curve (lib/test_vmalloc.c
/// style: one page to 4 MiB), each with its PAIRS count.
pub const VMALLOC_SIZES: [(u64, u32); 6] = [
    (4 << 10, 512),
    (16 << 10, 512),
    (64 << 10, 256),
    (256 << 10, 128),
    (1 << 20, 64),
    (4 << 20, 32),
];

/// vmalloc latency against size: PAIRS of `__vmalloc`/`vfree` against the
/// mirror's pages + `vm_map_ram`, each ABBA over `m.rounds` rounds.
pub fn vmalloc_sweep(d: &Memlab, m: &Method, scale: u32) -> io::Result<Vec<SweepPoint>> {
    let mut out = Vec::new();
    for (size, count) in VMALLOC_SIZES {
        let spec = Spec {
            name: "vmalloc",
            family: uapi::MEMLAB_FAMILY_VMALLOC,
            pattern: uapi::MEMLAB_PATTERN_PAIRS,
            count: (count / scale).max(8),
            size,
            order: 0,
        };
        let k = Method {
            ops_per_sample: m.ops_per_sample.min(spec.count / 8).max(1),
            ..*m
        };
        out.push(SweepPoint::of("vmalloc", size, &compare(d, &spec, &k)?));
    }
    Ok(out)
}

/// Pins the calling thread to `cpu`.
pub fn pin_to(cpu: usize) -> io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET writes inside it;
    // sched_setaffinity(0, ..) reads it for the calling thread.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The calling thread's CPU affinity mask as it was when saved; dropping it
/// sets that mask again, so a pinned stretch of code leaves no pin behind
/// (children forked later inherit the mask).
pub struct SavedAffinity(libc::cpu_set_t);

impl SavedAffinity {
    /// Saves the calling thread's mask.
    pub fn save() -> io::Result<Self> {
        affinity().map(SavedAffinity)
    }

    /// Sets the saved mask again.
    pub fn restore(&self) -> io::Result<()> {
        // SAFETY: sched_setaffinity(0, ..) reads the set for the calling thread.
        let rc =
            unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &self.0) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

impl Drop for SavedAffinity {
    fn drop(&mut self) {
        let _ = self.restore();
    }
}

/// The calling thread's affinity mask.
fn affinity() -> io::Result<libc::cpu_set_t> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set;
    // sched_getaffinity(0, ..) writes at most its size into it.
    let (rc, set) = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let rc = libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
        (rc, set)
    };
    if rc == 0 {
        Ok(set)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// CPUs the calling thread may run on (its affinity mask).
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    let set = affinity()?;
    Ok((0..libc::CPU_SETSIZE as usize)
        // SAFETY: CPU_ISSET reads inside the set, and `c` is below its size.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// CPUs online, from `/sys/devices/system/cpu/online` ("0-1,3"): not from
/// sysconf, which musl answers from this thread's (pinned) affinity.
pub fn online_cpus() -> usize {
    let s = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    cpulist_count(&s).map_or(1, |n| n.max(1) as usize)
}

/// CPUs in a kernel CPU list such as `0-1,3` (sysfs `online`, `present`).
pub fn cpulist_count(list: &str) -> Result<u32, String> {
    let mut n = 0;
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u32, u32) = (
            a.parse().map_err(|e| format!("{list:?}: {e}"))?,
            b.parse().map_err(|e| format!("{list:?}: {e}"))?,
        );
        n += b.checked_sub(a).ok_or_else(|| format!("{list:?}"))? + 1;
    }
    Ok(n)
}

/// Operations per second of one run's timed pass.
fn ops_per_s(w: &uapi::MemlabWorkload) -> f64 {
    if w.elapsed_ticks == 0 {
        return f64::NAN;
    }
    w.ops as f64 * w.clock_khz as f64 * 1e3 / w.elapsed_ticks as f64
}

/// Aggregate ops/s of `req` run at once on CPUs `0..n` (one thread each,
/// pinned, started together; each thread's own rate, summed), each run a
/// THROUGHPUT pass timed as a whole; and the allocations that failed (a
/// failed attempt counts as an operation in the rate).
fn aggregate(req: &uapi::MemlabWorkload, n: usize) -> io::Result<(f64, u64)> {
    let barrier = Barrier::new(n);
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..n)
            .map(|cpu| {
                let barrier = &barrier;
                s.spawn(move || -> io::Result<(f64, u64)> {
                    pin_to(cpu)?;
                    let d = Memlab::open()?;
                    // One window around the whole pass: no clock read per
                    // operation, so only the allocators are shared.
                    let req = uapi::MemlabWorkload {
                        flags: uapi::MEMLAB_WORKLOAD_THROUGHPUT,
                        ..*req
                    };
                    barrier.wait();
                    let w = d.workload(&req)?;
                    Ok((ops_per_s(&w), w.failed))
                })
            })
            .collect();
        let (mut sum, mut failed) = (0.0, 0);
        for t in threads {
            let (rate, f) = t
                .join()
                .map_err(|_| io::Error::other("thread panicked"))??;
            sum += rate;
            failed += f;
        }
        Ok((sum, failed))
    })
}

/// One workload's 2-CPU scaling on both backends.
#[derive(Serialize, Debug)]
pub struct Scaling {
    pub workload: &'static str,
    pub pattern: &'static str,
    /// Aggregate ops/s on 1 and 2 CPUs, median over rounds.
    pub real_ops_per_s: [f64; 2],
    pub mirror_ops_per_s: [f64; 2],
    /// ops/s on 2 CPUs over ops/s on 1, median over rounds.
    pub real_factor: f64,
    pub mirror_factor: f64,
    /// Allocations that failed in every run; if any did, the two ratios
    /// below are withheld (null).
    pub failed: Failed,
    /// mirror factor / real factor, spread across rounds.
    pub factor_ratio: Option<Spread>,
    /// mirror / real aggregate ops/s on 2 CPUs (above 1: the mirror does
    /// more), spread across rounds.
    pub throughput_ratio_2cpu: Option<Spread>,
}

/// 2-CPU scaling of `s`: rounds of real, mirror, mirror, real, each side
/// measured on 1 CPU then on 2.
pub fn scaling(s: &Spec, m: &Method) -> io::Result<Scaling> {
    let real = request(s, uapi::MEMLAB_BACKEND_REAL, m);
    let mirror = request(s, uapi::MEMLAB_BACKEND_MIRROR, m);
    let (mut r1, mut r2, mut m1, mut m2) = (vec![], vec![], vec![], vec![]);
    let mut failed = Failed::default();
    for _ in 0..m.rounds.max(1) {
        let mut acc = [0.0f64; 4];
        for req in [&real, &mirror, &mirror, &real] {
            let (one, f1) = aggregate(req, 1)?;
            let (two, f2) = aggregate(req, 2)?;
            failed.add(req.backend, f1 + f2);
            let i = if req.backend == uapi::MEMLAB_BACKEND_REAL {
                0
            } else {
                2
            };
            acc[i] += one / 2.0;
            acc[i + 1] += two / 2.0;
        }
        r1.push(acc[0]);
        r2.push(acc[1]);
        m1.push(acc[2]);
        m2.push(acc[3]);
    }
    pin_to(0)?;
    let per = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| ratio(*x, *y))
            .collect::<Vec<_>>()
    };
    let (rf, mf) = (per(&r2, &r1), per(&m2, &m1));
    Ok(Scaling {
        workload: s.name,
        pattern: super::pattern_name(s.pattern),
        real_ops_per_s: [percentile(&r1, 0.5), percentile(&r2, 0.5)],
        mirror_ops_per_s: [percentile(&m1, 0.5), percentile(&m2, 0.5)],
        real_factor: percentile(&rf, 0.5),
        mirror_factor: percentile(&mf, 0.5),
        failed,
        factor_ratio: failed.gate(Spread::of(&per(&mf, &rf))),
        throughput_ratio_2cpu: failed.gate(Spread::of(&per(&m2, &r2))),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_lists_count() {
        assert_eq!(super::cpulist_count("0-1\n"), Ok(2));
        assert_eq!(super::cpulist_count("0,2-3"), Ok(3));
        assert_eq!(super::cpulist_count("0"), Ok(1));
        assert_eq!(super::cpulist_count(""), Ok(0));
    }
}
