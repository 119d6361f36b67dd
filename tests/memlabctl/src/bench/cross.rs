// SPDX-License-Identifier: GPL-2.0

//! Cross-CPU free: kmalloc objects allocated on CPU 0 (WORKLOAD KEEP) and
//! freed on CPU 1 (FREE_KEPT), against the same frees on CPU 0, on both
//! backends in ABBA rounds. Objects stranded: what the slab layer still
//! counts as allocated after every object was freed (objects parked in a
//! CPU's cache), from `/proc/slabinfo` and `mirror/slabinfo`.

use super::abba::{run_sampled, Method, Sampled};
use super::extra::pin_to;
use super::stats::{per_op_ns, percentile, ratio, Failed, Spread};
use crate::dev::{uapi, Memlab, DEBUGFS};
use serde::Serialize;
use std::{fs, io};

/// `active_objs` of cache `name` in a slabinfo text.
pub fn active_objs(slabinfo: &str, name: &str) -> Option<i64> {
    slabinfo.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next()? == name).then(|| w.next()?.parse().ok())?
    })
}

/// A `name value` counter of `mirror/counters`.
pub fn counter(text: &str, name: &str) -> Option<i64> {
    text.lines().find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then(|| v.trim().parse().ok())?
    })
}

fn slabinfo(backend: u32) -> String {
    let path = if backend == uapi::MEMLAB_BACKEND_REAL {
        "/proc/slabinfo".to_string()
    } else {
        format!("{DEBUGFS}/mirror/slabinfo")
    };
    fs::read_to_string(path).unwrap_or_default()
}

fn mirror_counters() -> String {
    fs::read_to_string(format!("{DEBUGFS}/mirror/counters")).unwrap_or_default()
}

/// One backend's figures over the rounds.
#[derive(Serialize, Debug, Default)]
pub struct CrossSide {
    /// Median free ns per operation, freed on CPU 0 and on CPU 1, per round.
    pub same_cpu_free_ns: Vec<f64>,
    pub cross_cpu_free_ns: Vec<f64>,
    /// kmalloc-64 objects still counted allocated after the cross-CPU
    /// free, per round (active_objs after minus before).
    pub stranded: Vec<i64>,
}

/// `memlabctl bench`'s cross-CPU free section.
#[derive(Serialize, Debug)]
pub struct CrossFree {
    pub objects: u32,
    pub real: CrossSide,
    pub mirror: CrossSide,
    /// Allocations that failed in the KEEP runs; if any did, the ratios
    /// are withheld (null).
    pub failed: Failed,
    /// mirror / real median free latency, spread across rounds.
    pub cross_cpu_ratio: Option<Spread>,
    pub same_cpu_ratio: Option<Spread>,
    /// Mirror per-CPU object-cache refills and flushes per 1000 operations
    /// of the cross-CPU runs (the real SLUB counts need CONFIG_SLUB_STATS).
    pub mirror_refills_per_1000: Option<f64>,
    pub mirror_flushes_per_1000: Option<f64>,
}

/// KEEP on CPU 0, then FREE_KEPT on `free_cpu`; returns the free run and
/// the allocations of the KEEP run that failed.
fn keep_then_free(
    d: &Memlab,
    req: &uapi::MemlabWorkload,
    free_cpu: usize,
) -> io::Result<(Sampled, u64)> {
    pin_to(0)?;
    let kept = run_sampled(
        d,
        &uapi::MemlabWorkload {
            flags: uapi::MEMLAB_WORKLOAD_KEEP,
            ..*req
        },
    )?;
    pin_to(free_cpu)?;
    let r = run_sampled(
        d,
        &uapi::MemlabWorkload {
            flags: uapi::MEMLAB_WORKLOAD_FREE_KEPT,
            warmup: 0,
            ..*req
        },
    );
    pin_to(0)?;
    Ok((r?, kept.w.failed))
}

fn free_median(r: &Sampled) -> f64 {
    let (ns, _) = per_op_ns(&r.free, r.w.floor_ticks, r.w.clock_khz, r.w.ops_per_sample);
    percentile(&ns, 0.5)
}

/// Cross-CPU free of `objects` kmalloc-64 objects, ABBA over `m.rounds`.
pub fn cross_free(d: &Memlab, m: &Method, objects: u32) -> io::Result<CrossFree> {
    let req = |backend| uapi::MemlabWorkload {
        backend,
        family: uapi::MEMLAB_FAMILY_KMALLOC,
        pattern: uapi::MEMLAB_PATTERN_BATCH,
        count: objects,
        size: 64,
        seed: 0x5eed,
        ops_per_sample: m.ops_per_sample.min(objects).max(1),
        ..Default::default()
    };
    let (mut real, mut mirror) = (CrossSide::default(), CrossSide::default());
    let (mut ops, mut refills, mut flushes) = (0i64, Some(0i64), Some(0i64));
    let mut failed = Failed::default();
    for _ in 0..m.rounds.max(1) {
        for backend in [
            uapi::MEMLAB_BACKEND_REAL,
            uapi::MEMLAB_BACKEND_MIRROR,
            uapi::MEMLAB_BACKEND_MIRROR,
            uapi::MEMLAB_BACKEND_REAL,
        ] {
            let mirror_side = backend == uapi::MEMLAB_BACKEND_MIRROR;
            let side = if mirror_side { &mut mirror } else { &mut real };
            // Two ABBA slots per side a round: the first frees on CPU 0,
            // the second on CPU 1.
            let cross = side.same_cpu_free_ns.len() > side.cross_cpu_free_ns.len();
            let before = active_objs(&slabinfo(backend), "kmalloc-64");
            let c0 = mirror_counters();
            let (r, f) = keep_then_free(d, &req(backend), usize::from(cross))?;
            failed.add(backend, f + r.w.failed);
            if cross {
                side.cross_cpu_free_ns.push(free_median(&r));
                let after = active_objs(&slabinfo(backend), "kmalloc-64");
                if let (Some(b), Some(a)) = (before, after) {
                    side.stranded.push(a - b);
                }
                if mirror_side {
                    let c1 = mirror_counters();
                    let delta = |n| Some(counter(&c1, n)? - counter(&c0, n)?);
                    ops += 2 * i64::from(objects);
                    refills = refills.zip(delta("obj_refill")).map(|(a, b)| a + b);
                    flushes = flushes.zip(delta("obj_flush")).map(|(a, b)| a + b);
                }
            } else {
                side.same_cpu_free_ns.push(free_median(&r));
            }
        }
    }
    let per = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| ratio(*x, *y))
            .collect::<Vec<_>>()
    };
    let per_1000 = |n: Option<i64>| {
        n.filter(|_| ops > 0)
            .map(|n| n as f64 * 1000.0 / ops as f64)
    };
    Ok(CrossFree {
        objects,
        failed,
        cross_cpu_ratio: failed.gate(Spread::of(&per(
            &mirror.cross_cpu_free_ns,
            &real.cross_cpu_free_ns,
        ))),
        same_cpu_ratio: failed.gate(Spread::of(&per(
            &mirror.same_cpu_free_ns,
            &real.same_cpu_free_ns,
        ))),
        real,
        mirror,
        mirror_refills_per_1000: per_1000(refills),
        mirror_flushes_per_1000: per_1000(flushes),
    })
}

impl CrossFree {
    pub fn human(&self) -> Vec<String> {
        let med = |v: &[f64]| percentile(v, 0.5);
        let st = |v: &[i64]| {
            let mut s = v.to_vec();
            s.sort_unstable();
            s.get(s.len() / 2).map_or("?".into(), |x| x.to_string())
        };
        let opt = |x: Option<f64>| x.map_or("?".into(), |x| format!("{x:.1}"));
        vec![
            format!(
                "  free on CPU 1 (alloc on CPU 0): real {:.1} ns, mirror {:.1} ns, x {}",
                med(&self.real.cross_cpu_free_ns),
                med(&self.mirror.cross_cpu_free_ns),
                self.failed.ratio_text(self.cross_cpu_ratio)
            ),
            format!(
                "  free on CPU 0 (same CPU):     real {:.1} ns, mirror {:.1} ns, x {}",
                med(&self.real.same_cpu_free_ns),
                med(&self.mirror.same_cpu_free_ns),
                self.failed.ratio_text(self.same_cpu_ratio)
            ) + &self.failed.note(),
            format!(
                "  objects stranded after the cross-CPU free (kmalloc-64 active_objs delta, median): real {}, mirror {}",
                st(&self.real.stranded),
                st(&self.mirror.stranded)
            ),
            format!(
                "  mirror object-cache refills / flushes per 1000 ops: {} / {} (real: needs CONFIG_SLUB_STATS)",
                opt(self.mirror_refills_per_1000),
                opt(self.mirror_flushes_per_1000)
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slabinfo_and_counters_parse() {
        let s = "slabinfo - version: 2.1\nkmalloc-64 640 704 64 64 1 : tunables 0 0 0 : slabdata 11 11 0\n\
                 kmalloc-640 3 3 640 12 2 : tunables 0 0 0 : slabdata 1 1 0\n";
        assert_eq!(active_objs(s, "kmalloc-64"), Some(640));
        assert_eq!(active_objs(s, "kmalloc-640"), Some(3));
        assert_eq!(active_objs(s, "kmalloc-6"), None);
        let c = "obj_hit 10\nobj_refill 3\n";
        assert_eq!(counter(c, "obj_refill"), Some(3));
        assert_eq!(counter(c, "obj_flush"), None);
    }
}
