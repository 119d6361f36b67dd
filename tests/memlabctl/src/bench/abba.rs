// SPDX-License-Identifier: GPL-2.0

//! One workload compared on both backends: rounds of real, mirror, mirror,
//! real (ABBA, so drift over a round falls on both sides alike), each run
//! returning its raw samples; the ratio is taken per round and its spread
//! across rounds reported.

use super::stats::{median_index, per_op_ns, percentile, ratio, Failed, Spread};
use super::Spec;
use crate::dev::{uapi, Memlab};
use serde::Serialize;
use std::io;

/// How a run is asked for: operations per sample and warm-up steps.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Method {
    pub ops_per_sample: u32,
    pub rounds: u32,
    /// Warm-up steps as a fraction of the count (capped at the count).
    pub warmup_div: u32,
}

/// The WORKLOAD request of `s` on `backend`.
pub fn request(s: &Spec, backend: u32, m: &Method) -> uapi::MemlabWorkload {
    let k = m.ops_per_sample.min(s.count).max(1);
    uapi::MemlabWorkload {
        backend,
        family: s.family,
        pattern: s.pattern,
        count: s.count,
        size: s.size,
        order: s.order,
        seed: 0x5eed,
        ops_per_sample: k,
        warmup: (s.count / m.warmup_div.max(1)).min(s.count),
        ..Default::default()
    }
}

/// A run with its raw samples (ticks; alloc and free apart).
pub struct Sampled {
    pub w: uapi::MemlabWorkload,
    pub alloc: Vec<u64>,
    pub free: Vec<u64>,
}

/// Runs `req` and fetches its raw samples.
pub fn run_sampled(d: &Memlab, req: &uapi::MemlabWorkload) -> io::Result<Sampled> {
    let n = req.count.div_ceil(req.ops_per_sample.max(1)) as usize;
    let mut buf = vec![0u64; 2 * n];
    let mut w = *req;
    w.samples_ptr = buf.as_mut_ptr() as u64;
    w.samples_cap = buf.len() as u32;
    let w = d.workload(&w)?;
    let a = (w.alloc_samples as usize).min(buf.len());
    let f = (w.free_samples as usize).min(buf.len() - a);
    Ok(Sampled {
        alloc: buf[..a].to_vec(),
        free: buf[a..a + f].to_vec(),
        w,
    })
}

/// One backend's figures in one round (its two runs pooled).
#[derive(Serialize, Debug, Default, Clone)]
pub struct SideRound {
    pub alloc_median_ns: f64,
    pub free_median_ns: f64,
    pub alloc_p99_ns: f64,
    pub free_p99_ns: f64,
    /// The empty-window floor subtracted, ns per operation.
    pub floor_ns: f64,
    /// Samples that fell below the floor (counted as 0 ns).
    pub below_floor: usize,
    pub ops: u64,
    pub failed: u64,
    /// Timed allocations by zone: DMA, DMA32, Normal, other.
    pub zone_allocs: [u64; 4],
    pub cpus: Vec<u32>,
    #[serde(skip)]
    pub alloc_ns: Vec<f64>,
    #[serde(skip)]
    pub free_ns: Vec<f64>,
}

impl SideRound {
    fn add(&mut self, r: &Sampled) {
        let k = r.w.ops_per_sample;
        let (a, ca) = per_op_ns(&r.alloc, r.w.floor_ticks, r.w.clock_khz, k);
        let (f, cf) = per_op_ns(&r.free, r.w.floor_ticks, r.w.clock_khz, k);
        self.alloc_ns.extend(a);
        self.free_ns.extend(f);
        self.below_floor += ca + cf;
        self.floor_ns = per_op_ns(&[r.w.floor_ticks], 0, r.w.clock_khz, k).0[0];
        self.ops += r.w.ops;
        self.failed += r.w.failed;
        for (z, n) in self.zone_allocs.iter_mut().zip(r.w.zone_allocs) {
            *z += u64::from(n);
        }
        self.cpus.push(r.w.cpu);
    }

    fn finish(&mut self) {
        self.alloc_median_ns = percentile(&self.alloc_ns, 0.5);
        self.free_median_ns = percentile(&self.free_ns, 0.5);
        self.alloc_p99_ns = percentile(&self.alloc_ns, 0.99);
        self.free_p99_ns = percentile(&self.free_ns, 0.99);
    }
}

/// One round: both backends, ABBA.
#[derive(Serialize, Debug, Clone)]
pub struct Round {
    pub real: SideRound,
    pub mirror: SideRound,
}

impl Round {
    fn ratios(&self) -> [f64; 4] {
        let (r, m) = (&self.real, &self.mirror);
        [
            ratio(m.alloc_median_ns, r.alloc_median_ns),
            ratio(m.free_median_ns, r.free_median_ns),
            ratio(m.alloc_p99_ns, r.alloc_p99_ns),
            ratio(m.free_p99_ns, r.free_p99_ns),
        ]
    }
}

/// mirror / real ratios, each with its spread across rounds.
#[derive(Serialize, Debug, Clone, Copy)]
pub struct Ratios {
    pub alloc_median: Option<Spread>,
    pub free_median: Option<Spread>,
    pub alloc_p99: Option<Spread>,
    pub free_p99: Option<Spread>,
}

/// One workload on both backends over every round.
#[derive(Serialize, Debug)]
pub struct Compared {
    pub rounds: Vec<Round>,
    /// Allocations that failed, over every round; if any did, every ratio
    /// is withheld (null).
    pub failed: Failed,
    pub ratios: Ratios,
    /// The round whose alloc ratio is the median one: its raw samples are
    /// the ones saved for the CDF plots.
    pub representative_round: usize,
    pub ops_per_sample: u32,
    pub warmup: u32,
    /// Most objects live at once.
    pub peak_live: u32,
    pub kconfig: u32,
    pub clock_khz: u64,
}

/// Runs `s` for `m.rounds` ABBA rounds.
pub fn compare(d: &Memlab, s: &Spec, m: &Method) -> io::Result<Compared> {
    let real = request(s, uapi::MEMLAB_BACKEND_REAL, m);
    let mirror = request(s, uapi::MEMLAB_BACKEND_MIRROR, m);
    let mut rounds = Vec::new();
    let mut last = real;
    for _ in 0..m.rounds.max(1) {
        let mut round = Round {
            real: SideRound::default(),
            mirror: SideRound::default(),
        };
        for req in [&real, &mirror, &mirror, &real] {
            let r = run_sampled(d, req)?;
            last = r.w;
            if req.backend == uapi::MEMLAB_BACKEND_REAL {
                round.real.add(&r);
            } else {
                round.mirror.add(&r);
            }
        }
        round.real.finish();
        round.mirror.finish();
        rounds.push(round);
    }
    let failed = rounds.iter().fold(Failed::default(), |mut f, r| {
        f.add(uapi::MEMLAB_BACKEND_REAL, r.real.failed);
        f.add(uapi::MEMLAB_BACKEND_MIRROR, r.mirror.failed);
        f
    });
    let per: Vec<[f64; 4]> = rounds.iter().map(Round::ratios).collect();
    let col = |i: usize| failed.gate(Spread::of(&per.iter().map(|r| r[i]).collect::<Vec<_>>()));
    let alloc: Vec<f64> = per.iter().map(|r| r[0]).collect();
    Ok(Compared {
        failed,
        ratios: Ratios {
            alloc_median: col(0),
            free_median: col(1),
            alloc_p99: col(2),
            free_p99: col(3),
        },
        representative_round: median_index(&alloc),
        rounds,
        ops_per_sample: real.ops_per_sample,
        warmup: real.warmup,
        peak_live: last.peak_live,
        kconfig: last.kconfig,
        clock_khz: last.clock_khz,
    })
}

impl Compared {
    /// The representative round.
    pub fn representative(&self) -> Option<&Round> {
        self.rounds.get(self.representative_round)
    }

    /// Median over rounds of one side's figure.
    pub fn median_of(&self, f: impl Fn(&Round) -> f64) -> f64 {
        percentile(&self.rounds.iter().map(f).collect::<Vec<_>>(), 0.5)
    }

    /// Whether no allocation failed on either side.
    pub fn clean(&self) -> bool {
        !self.failed.any()
    }
}
