// SPDX-License-Identifier: GPL-2.0

//! `memlabctl frag`: fragmentation over time. A long seeded random workload
//! (kmalloc of mixed sizes and pages of orders 0..=3, a bounded live set) is
//! replayed inside the kernel (MEMLAB_IOC_REPLAY) on the real allocators and
//! on the mirror, sampling zone Normal every S steps: the unusable free
//! index at orders 3 and 9, the free blocks per order, and probes: whether
//! one order-3 and one order-9 block of the zone could be had. The result is
//! `frag.json` (the format `memplot` reads):
//!
//! ```text
//! {"zone": "Normal", "steps": N, "sample_every": S, "series": [
//!   {"backend": "real"|"mirror", "arena_pages": P,
//!    "allocs": A, "frees": F, "failed": X, "step": [..],
//!    "unusable_3": [..], "unusable_9": [..], "free_blocks": [[u64; 11], ..],
//!    "probe_failed_3": [bool, ..], "probe_failed_9": [bool, ..]}]}
//! ```
//!
//! The indexes compare only on arenas of equal size: `arena_pages` is the
//! zone's free pages at step 0, and the summary says when the two differ by
//! more than a tenth; the command then fails (after writing its output)
//! unless `--unequal-arenas` asks for such a run. In a VM with the default memory the real zone Normal
//! is gigabytes and the mirror's a pool share, so `make bench` runs this in
//! a VM whose zone Normal is sized to the pool (scripts/bench.sh).

use crate::args::FragArgs;
use crate::cli::{fail, json_line};
use crate::dev::uapi;
use crate::replay::{encode, fraction, trace_text, Step};
use serde::Serialize;
use std::process::ExitCode;

/// xorshift32: cheap and seeded (the in-kernel workloads use the same);
/// `frag`'s workload and `diverge`'s streams draw from it.
pub struct Rng(pub u32);

impl Rng {
    /// The next number.
    pub fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }

    /// A number below `n` (0 for 0).
    pub fn below(&mut self, n: u32) -> u32 {
        self.next() % n.max(1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        f64::from(self.next()) < p * f64::from(u32::MAX)
    }
}

/// `steps` steps over at most `live` objects: allocs (3 in 5 while below
/// the bound) of kmalloc 8..8192 bytes (log-uniform) or pages of order
/// 0..=3, half each, and frees of a random live object. Objects left live
/// at the end are left for the kernel to free.
pub fn workload(steps: u32, live: u32, seed: u32) -> Vec<Step> {
    let mut rng = Rng(seed | 1);
    let mut out = Vec::with_capacity(steps as usize);
    let mut held: Vec<u64> = Vec::new();
    let mut next = 0u64;
    for _ in 0..steps {
        let alloc = held.is_empty() || (held.len() < live as usize && rng.below(5) < 3);
        if alloc {
            let (family, arg) = if rng.below(2) == 0 {
                (uapi::MEMLAB_FAMILY_PAGES, u64::from(rng.below(4)))
            } else {
                let base = 8u64 << rng.below(10);
                let size = base + u64::from(rng.below(base as u32));
                (uapi::MEMLAB_FAMILY_KMALLOC, size.min(8192))
            };
            out.push(Step::Alloc {
                id: next,
                family,
                arg,
                gfp: uapi::MEMLAB_GFP_KERNEL,
            });
            held.push(next);
            next += 1;
        } else {
            let i = rng.below(held.len() as u32) as usize;
            out.push(Step::Free {
                id: held.swap_remove(i),
            });
        }
    }
    out
}

/// One backend's samples.
#[derive(Serialize, Debug, PartialEq)]
pub struct Series {
    pub backend: &'static str,
    /// Free pages of the zone at step 0: the arena the workload runs in.
    pub arena_pages: u64,
    /// Allocations and frees the replay did, and allocations that failed.
    pub allocs: u64,
    pub frees: u64,
    pub failed: u64,
    pub step: Vec<u64>,
    pub unusable_3: Vec<f64>,
    pub unusable_9: Vec<f64>,
    pub free_blocks: Vec<[u64; uapi::MEMLAB_NR_ORDERS]>,
    /// Per sample: whether the order-3 / order-9 probe failed.
    pub probe_failed_3: Vec<bool>,
    pub probe_failed_9: Vec<bool>,
}

impl Series {
    pub fn new(
        backend: &'static str,
        q: &uapi::MemlabReplay,
        samples: &[uapi::MemlabFragSample],
    ) -> Self {
        Series {
            backend,
            arena_pages: samples.first().map_or(0, |s| free_pages(&s.free_blocks)),
            allocs: q.allocs,
            frees: q.frees,
            failed: q.failed,
            step: samples.iter().map(|s| s.step).collect(),
            unusable_3: samples.iter().map(|s| fraction(s.unusable_3)).collect(),
            unusable_9: samples.iter().map(|s| fraction(s.unusable_9)).collect(),
            free_blocks: samples.iter().map(|s| s.free_blocks).collect(),
            probe_failed_3: probes(samples, uapi::MEMLAB_PROBE_ORDER3),
            probe_failed_9: probes(samples, uapi::MEMLAB_PROBE_ORDER9),
        }
    }
}

/// Pages in free blocks counted by order.
fn free_pages(blocks: &[u64; uapi::MEMLAB_NR_ORDERS]) -> u64 {
    blocks.iter().enumerate().map(|(o, &n)| n << o).sum()
}

/// The second arena over the first, if there are two and the first is not
/// empty.
fn arena_ratio(series: &[Series]) -> Option<f64> {
    match series {
        [a, b] if a.arena_pages > 0 => Some(b.arena_pages as f64 / a.arena_pages as f64),
        _ => None,
    }
}

/// Whether the two arenas are within a tenth of each other, so that their
/// indexes compare (no ratio, say one arena was empty: they do not).
fn arenas_equal(series: &[Series]) -> bool {
    arena_ratio(series).is_some_and(|r| (0.9..=1.1).contains(&r))
}

/// Arenas within a tenth of each other compare; the summary's line on them.
fn arenas_line(series: &[Series]) -> String {
    let mib = |p: u64| p as f64 * 4096.0 / (1 << 20) as f64;
    let mut line = String::from("arenas (free pages of zone Normal at step 0):");
    for s in series {
        line += &format!(" {} {:.1} MiB", s.backend, mib(s.arena_pages));
    }
    if let (Some(r), [a, b]) = (arena_ratio(series), series) {
        line += &format!(", {}/{} {r:.2}", b.backend, a.backend);
    }
    if !arenas_equal(series) {
        line += "\n(the arenas differ by more than a tenth, so their indexes do not compare: size the VM's zone Normal to the pool, as scripts/bench.sh does)";
    }
    line
}

/// Samples whose probe failed, of one order's column.
fn failures(column: &[bool]) -> usize {
    column.iter().filter(|&&f| f).count()
}

fn probes(samples: &[uapi::MemlabFragSample], bit: u32) -> Vec<bool> {
    samples.iter().map(|s| s.probe_failed & bit != 0).collect()
}

/// `frag.json`.
#[derive(Serialize, Debug, PartialEq)]
pub struct FragReport {
    /// What ran the guest (`tcg`, `kvm`, `uml`), and on which host CPU.
    pub engine: String,
    pub host_cpu: String,
    pub zone: &'static str,
    pub steps: u64,
    pub sample_every: u32,
    pub series: Vec<Series>,
}

/// `memlabctl frag [--steps N] [--sample-every S] [--seed X] [--live N]
/// [--out FILE] [--trace FILE] [--json]`.
pub fn frag(a: &FragArgs) -> ExitCode {
    let steps = workload(a.steps, a.live, a.seed);
    if let Some(path) = &a.trace {
        let head = format!(
            "# memlabctl frag --steps {} --seed {} --live {}\n",
            a.steps, a.seed, a.live
        );
        if let Err(e) = std::fs::write(path, head + &trace_text(&steps)) {
            return fail(format!("{}: {e}", path.display()));
        }
    }
    let bin = match encode(&steps) {
        Ok((b, _)) => b,
        Err(e) => return fail(format!("frag: {e}")),
    };
    let d = match crate::cli::open() {
        Ok(d) => d,
        Err(code) => return code,
    };
    let engine = crate::engine::Engine::current();
    let mut report = FragReport {
        engine: engine.engine.clone(),
        host_cpu: engine.host_cpu.clone(),
        zone: "Normal",
        steps: u64::from(a.steps),
        sample_every: a.sample_every,
        series: Vec::new(),
    };
    let mut lines = Vec::new();
    for (name, backend) in [
        ("real", uapi::MEMLAB_BACKEND_REAL),
        ("mirror", uapi::MEMLAB_BACKEND_MIRROR),
    ] {
        let (q, samples) = match d.replay(&bin, backend, a.sample_every, uapi::MEMLAB_ZONE_NORMAL) {
            Ok(r) => r,
            Err(e) => {
                let why = crate::explain::replay_explained(&e, &bin);
                return fail(format!("frag: MEMLAB_IOC_REPLAY on {name}: {why}"));
            }
        };
        let s = Series::new(name, &q, &samples);
        let last = |v: &[f64]| v.last().map_or_else(|| "-".into(), |x| format!("{x:.3}"));
        lines.push(format!(
            "{name:<7} {:>7} {:>7} {:>6} {:>8} {:>10} {:>10} {:>8} {:>8} {:>10}",
            q.allocs,
            q.frees,
            q.failed,
            samples.len(),
            last(&s.unusable_3),
            last(&s.unusable_9),
            failures(&s.probe_failed_3),
            failures(&s.probe_failed_9),
            q.alloc_median_ns
        ));
        report.series.push(s);
    }
    let json = json_line(&report);
    if let Some(path) = &a.out {
        if let Err(e) = std::fs::write(path, format!("{json}\n")) {
            return fail(format!("{}: {e}", path.display()));
        }
    }
    if a.json {
        println!("{json}");
    } else {
        println!(
            "memlab frag: {} steps (seed {}, at most {} live), zone Normal sampled every {} steps",
            a.steps, a.seed, a.live, a.sample_every
        );
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        println!("{}", engine.describe(release.trim()));
        println!(
            "backend  allocs   frees failed  samples   unus_3_end unus_9_end  probe3_x probe9_x  alloc_med"
        );
        for l in lines {
            println!("{l}");
        }
        println!("{}", arenas_line(&report.series));
        println!(
            "(probeN_x: samples at which one GFP_NOWAIT block of order N from zone Normal, freed at once, could not be had)"
        );
        if let Some(path) = &a.out {
            println!("(frag.json written to {})", path.display());
        }
    }
    if !arenas_equal(&report.series) && !a.unequal_arenas {
        return fail(
            "frag: the arenas differ by more than a tenth, so the two sides do not compare \
             (--unequal-arenas runs anyway)",
        );
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_is_seeded_bounded_and_encodes() {
        let w = workload(5000, 64, 7);
        assert_eq!(w.len(), 5000);
        assert_eq!(w, workload(5000, 64, 7));
        assert_ne!(w, workload(5000, 64, 8));
        let mut live = 0i64;
        let mut most = 0;
        for s in &w {
            match *s {
                Step::Alloc { family, arg, .. } => {
                    live += 1;
                    if family == uapi::MEMLAB_FAMILY_PAGES {
                        assert!(arg <= 3);
                    } else {
                        assert!((8..=8192).contains(&arg));
                    }
                }
                Step::Free { .. } => live -= 1,
            }
            assert!(live >= 0);
            most = most.max(live);
        }
        assert_eq!(most, 64, "the live set reaches its bound and stays in it");
        let (bin, _) = encode(&w).unwrap();
        assert!(bin.iter().all(|s| s.id < 64));
    }

    #[test]
    fn frag_json_shape() {
        let sample = uapi::MemlabFragSample {
            step: 200,
            unusable_3: 500_000,
            unusable_9: 1_000_000,
            free_blocks: [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            probe_failed: uapi::MEMLAB_PROBE_ORDER9,
            reserved: 0,
        };
        let r = FragReport {
            engine: "uml".into(),
            host_cpu: "AMD EPYC".into(),
            zone: "Normal",
            steps: 400,
            sample_every: 200,
            series: vec![Series::new(
                "mirror",
                &uapi::MemlabReplay {
                    allocs: 300,
                    frees: 100,
                    failed: 7,
                    ..Default::default()
                },
                &[sample],
            )],
        };
        let v: serde_json::Value = serde_json::from_str(&json_line(&r)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"engine": "uml", "host_cpu": "AMD EPYC", "zone": "Normal", "steps": 400, "sample_every": 200, "series": [
                {"backend": "mirror", "arena_pages": 2049, "allocs": 300, "frees": 100, "failed": 7, "step": [200], "unusable_3": [0.5], "unusable_9": [1.0],
                 "free_blocks": [[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]],
                 "probe_failed_3": [false], "probe_failed_9": [true]}]})
        );
    }

    fn arena(backend: &'static str, pages: u64) -> Series {
        Series {
            backend,
            arena_pages: pages,
            allocs: 0,
            frees: 0,
            failed: 0,
            step: vec![],
            unusable_3: vec![],
            unusable_9: vec![],
            free_blocks: vec![],
            probe_failed_3: vec![],
            probe_failed_9: vec![],
        }
    }

    #[test]
    fn arenas_line_says_when_they_do_not_compare() {
        let even = arenas_line(&[arena("real", 25600), arena("mirror", 24320)]);
        assert_eq!(
            even,
            "arenas (free pages of zone Normal at step 0): real 100.0 MiB mirror 95.0 MiB, mirror/real 0.95"
        );
        let uneven = arenas_line(&[arena("real", 300_000), arena("mirror", 7168)]);
        assert!(
            uneven.contains("mirror/real 0.02\n(the arenas differ"),
            "{uneven}"
        );
        assert!(arenas_equal(&[
            arena("real", 25600),
            arena("mirror", 24320)
        ]));
        assert!(!arenas_equal(&[
            arena("real", 300_000),
            arena("mirror", 7168)
        ]));
        assert!(!arenas_equal(&[
            arena("real", 7168),
            arena("mirror", 300_000)
        ]));
        assert!(!arenas_equal(&[arena("real", 0), arena("mirror", 7168)]));
        assert!(arenas_line(&[arena("real", 0), arena("mirror", 7168)]).contains("differ"));
    }
}
