// SPDX-License-Identifier: GPL-2.0

//! `memlabctl bench`: the same work on the real
//! allocators and on memlab's mirror, in one VM run, compared as ratios.

use crate::args::BenchArgs;
use crate::cli::fail;
use crate::dev::{uapi, Memlab, DEBUGFS};
use crate::names;
// The trace format lives with the replay; its old home still names it.
pub use crate::replay::{parse_trace, replay_on, Step};
use serde::Serialize;
use std::fs;
use std::process::ExitCode;

/// One row of the standard workload table.
pub struct Spec {
    pub name: &'static str,
    pub family: u32,
    pub pattern: u32,
    pub count: u32,
    pub size: u64,
    pub order: u32,
}

/// The standard workloads: `make bench` runs each on both backends.
pub fn standard(scale: u32) -> Vec<Spec> {
    use uapi::*;
    let n = |c: u32| (c / scale).max(10);
    vec![
        Spec {
            name: "kmem_cache_alloc 64 B",
            family: MEMLAB_FAMILY_KMEM_CACHE,
            pattern: MEMLAB_PATTERN_PAIRS,
            count: n(20000),
            size: 64,
            order: 0,
        },
        Spec {
            name: "kmem_cache_alloc 64 B",
            family: MEMLAB_FAMILY_KMEM_CACHE,
            pattern: MEMLAB_PATTERN_BATCH,
            count: n(10000),
            size: 64,
            order: 0,
        },
        Spec {
            name: "kmalloc 64 B",
            family: MEMLAB_FAMILY_KMALLOC,
            pattern: MEMLAB_PATTERN_PAIRS,
            count: n(20000),
            size: 64,
            order: 0,
        },
        Spec {
            name: "kmalloc 64 B",
            family: MEMLAB_FAMILY_KMALLOC,
            pattern: MEMLAB_PATTERN_BATCH,
            count: n(10000),
            size: 64,
            order: 0,
        },
        Spec {
            name: "kmalloc 8..4096 B",
            family: MEMLAB_FAMILY_KMALLOC,
            pattern: MEMLAB_PATTERN_RANDOM,
            count: n(20000),
            size: 4096,
            order: 0,
        },
        Spec {
            name: "alloc_pages order 0",
            family: MEMLAB_FAMILY_PAGES,
            pattern: MEMLAB_PATTERN_PAIRS,
            count: n(20000),
            size: 0,
            order: 0,
        },
        Spec {
            name: "alloc_pages order 0",
            family: MEMLAB_FAMILY_PAGES,
            pattern: MEMLAB_PATTERN_BATCH,
            count: n(2000),
            size: 0,
            order: 0,
        },
        Spec {
            name: "alloc_pages order 0..3",
            family: MEMLAB_FAMILY_PAGES,
            pattern: MEMLAB_PATTERN_RANDOM,
            count: n(4000),
            size: 0,
            order: 3,
        },
    ]
}

pub fn pattern_name(p: u32) -> &'static str {
    match p {
        uapi::MEMLAB_PATTERN_PAIRS => "pairs",
        uapi::MEMLAB_PATTERN_BATCH => "batch",
        _ => "random",
    }
}

/// Runs `spec` on `backend`.
pub fn run_spec(d: &Memlab, s: &Spec, backend: u32) -> std::io::Result<uapi::MemlabWorkload> {
    d.workload(&uapi::MemlabWorkload {
        backend,
        family: s.family,
        pattern: s.pattern,
        count: s.count,
        size: s.size,
        order: s.order,
        seed: 0x5eed,
        ..Default::default()
    })
}

fn ratio(m: u64, r: u64) -> Option<f64> {
    (r != 0).then(|| m as f64 / r as f64)
}

fn ratio_text(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{x:.2}x"))
}

/// The mirror's unusable index at orders 9 and 10 in one zone.
#[derive(Serialize, Debug, PartialEq)]
pub struct HighOrderUnusable {
    pub zone: String,
    pub order_9: Option<f64>,
    pub order_10: Option<f64>,
}

/// The unusable index of each zone at orders 9 and 10, from
/// `mirror/unusable_index` ("Node 0, zone DMA32 0.000 ..."); `None` if the
/// file cannot be read.
fn high_order_unusable() -> Option<Vec<HighOrderUnusable>> {
    let s = fs::read_to_string(format!("{DEBUGFS}/mirror/unusable_index")).ok()?;
    Some(parse_high_order_unusable(&s))
}

fn parse_high_order_unusable(s: &str) -> Vec<HighOrderUnusable> {
    s.lines()
        .filter_map(|l| {
            let rest = l.split(" zone ").nth(1)?;
            let mut w = rest.split_whitespace();
            let zone = w.next()?.to_string();
            let v: Vec<&str> = w.collect();
            Some(HighOrderUnusable {
                zone,
                order_9: v.get(9)?.parse().ok(),
                order_10: v.get(10)?.parse().ok(),
            })
        })
        .collect()
}

fn high_order_text(rows: &Option<Vec<HighOrderUnusable>>) -> String {
    let Some(rows) = rows else {
        return "?".into();
    };
    let f = |x: Option<f64>| x.map_or_else(|| "?".into(), |x| format!("{x:.3}"));
    rows.iter()
        .map(|r| {
            format!(
                "{}: order 9 {} order 10 {}",
                r.zone,
                f(r.order_9),
                f(r.order_10)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Free pages per order summed over zones, from a buddyinfo-format file.
fn free_per_order(path: &str) -> Vec<u64> {
    let mut sum = vec![0u64; 11];
    if let Ok(s) = fs::read_to_string(path) {
        for l in s.lines() {
            if let Some(rest) = l.split(" zone ").nth(1) {
                for (o, c) in rest.split_whitespace().skip(1).enumerate().take(11) {
                    sum[o] += c.parse::<u64>().unwrap_or(0);
                }
            }
        }
    }
    sum
}

/// What one workload did on one backend, or why it could not run.
#[derive(Serialize, Debug, PartialEq)]
#[serde(untagged)]
pub enum Side {
    Ran {
        ops: u64,
        failed: u64,
        median_ns: u64,
        p99_ns: u64,
    },
    Error {
        error: String,
    },
}

impl Side {
    fn of(r: std::io::Result<uapi::MemlabWorkload>) -> Self {
        match r {
            Ok(w) => Side::Ran {
                ops: w.ops,
                failed: w.failed,
                median_ns: w.median_ns,
                p99_ns: w.p99_ns,
            },
            Err(e) => Side::Error {
                error: e.to_string(),
            },
        }
    }
}

/// One standard workload on both backends.
#[derive(Serialize, Debug, PartialEq)]
pub struct BenchRow {
    pub workload: &'static str,
    /// The kernel function it times (the mirror's of the same name).
    pub call: &'static str,
    pub pattern: &'static str,
    pub count: u32,
    pub real: Side,
    pub mirror: Side,
    /// mirror / real; below 1 the mirror is faster.
    pub median_ratio: Option<f64>,
    pub p99_ratio: Option<f64>,
}

/// `memlabctl bench --json`.
#[derive(Serialize, Debug, PartialEq)]
pub struct BenchReport {
    pub scale: u32,
    pub workloads: Vec<BenchRow>,
    pub mirror_unusable_high_orders: Option<Vec<HighOrderUnusable>>,
    /// Free blocks per order 0..=10 after minus before, real buddyinfo.
    pub real_buddyinfo_delta: Vec<i64>,
}

impl BenchRow {
    fn human(&self) -> String {
        let head = format!("{:<22} {:<7}", self.workload, self.pattern);
        match (&self.real, &self.mirror) {
            (
                Side::Ran {
                    ops,
                    failed: rf,
                    median_ns: rm,
                    p99_ns: rp,
                },
                Side::Ran {
                    failed: mf,
                    median_ns: mm,
                    p99_ns: mp,
                    ..
                },
            ) => format!(
                "{head} {ops:>7} {rm:>10} {rp:>10} {mm:>10} {mp:>10} {:>8} {:>8}{}",
                ratio_text(self.median_ratio),
                ratio_text(self.p99_ratio),
                if rf + mf > 0 {
                    format!("  (failed: real {rf}, mirror {mf})")
                } else {
                    String::new()
                }
            ),
            (r, m) => format!("{head} real {r:?} mirror {m:?}"),
        }
    }

    fn ok(&self) -> bool {
        matches!(
            (&self.real, &self.mirror),
            (Side::Ran { failed: 0, .. }, Side::Ran { failed: 0, .. })
        )
    }
}

/// `memlabctl bench [--scale N] [--json]`: the standard workloads on both
/// backends.
pub fn bench(a: &BenchArgs) -> ExitCode {
    let d = match crate::cli::open() {
        Ok(d) => d,
        Err(code) => return code,
    };
    if !a.json {
        println!(
            "memlab bench: the same workloads on the real allocators and on the mirror, one VM run"
        );
        println!("(latency per sample in ns, measured in the kernel; ratio = mirror / real, < 1 means the mirror is faster)");
        println!(
            "{:<22} {:<7} {:>7} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8}",
            "workload",
            "pattern",
            "samples",
            "real med",
            "real p99",
            "mirr med",
            "mirr p99",
            "med x",
            "p99 x"
        );
    }
    let before_real = free_per_order("/proc/buddyinfo");
    let mut rows = Vec::new();
    for s in standard(a.scale) {
        let r = run_spec(&d, &s, uapi::MEMLAB_BACKEND_REAL);
        let m = run_spec(&d, &s, uapi::MEMLAB_BACKEND_MIRROR);
        let (median_ratio, p99_ratio) = match (&r, &m) {
            (Ok(r), Ok(m)) => (ratio(m.median_ns, r.median_ns), ratio(m.p99_ns, r.p99_ns)),
            _ => (None, None),
        };
        let row = BenchRow {
            workload: s.name,
            call: names::family_api(s.family, uapi::MEMLAB_BACKEND_REAL),
            pattern: pattern_name(s.pattern),
            count: s.count,
            real: Side::of(r),
            mirror: Side::of(m),
            median_ratio,
            p99_ratio,
        };
        if !a.json {
            println!("{}", row.human());
        }
        rows.push(row);
    }
    let after_real = free_per_order("/proc/buddyinfo");
    let report = BenchReport {
        scale: a.scale,
        mirror_unusable_high_orders: high_order_unusable(),
        real_buddyinfo_delta: before_real
            .iter()
            .zip(&after_real)
            .map(|(b, a)| *a as i64 - *b as i64)
            .collect(),
        workloads: rows,
    };
    if a.json {
        println!("{}", crate::cli::json_line(&report));
    } else {
        println!("\nfragmentation after the workloads:");
        println!(
            "  mirror unusable index at high orders: {}",
            high_order_text(&report.mirror_unusable_high_orders)
        );
        let delta: Vec<String> = report
            .real_buddyinfo_delta
            .iter()
            .map(|d| format!("{d:+}"))
            .collect();
        println!(
            "  real buddyinfo free-block delta per order 0..10: {}",
            delta.join(" ")
        );
    }
    if report.workloads.iter().all(BenchRow::ok) {
        ExitCode::SUCCESS
    } else {
        fail("bench: some workloads failed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_json_shape() {
        let report = BenchReport {
            scale: 100,
            workloads: vec![BenchRow {
                workload: "kmalloc 64 B",
                call: "kmalloc",
                pattern: "pairs",
                count: 200,
                real: Side::Ran {
                    ops: 200,
                    failed: 0,
                    median_ns: 100,
                    p99_ns: 400,
                },
                mirror: Side::Error {
                    error: "Invalid argument (os error 22)".into(),
                },
                median_ratio: Some(0.5),
                p99_ratio: None,
            }],
            mirror_unusable_high_orders: Some(parse_high_order_unusable(
                "Node 0, zone    DMA32 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.250 1.000 \n",
            )),
            real_buddyinfo_delta: vec![-1, 2],
        };
        let v: serde_json::Value = serde_json::from_str(&crate::cli::json_line(&report)).unwrap();
        let w = &v["workloads"][0];
        assert_eq!(w["call"], "kmalloc");
        assert_eq!(w["real"]["median_ns"], 100);
        assert_eq!(w["mirror"]["error"], "Invalid argument (os error 22)");
        assert_eq!(w["median_ratio"], 0.5);
        assert!(w["p99_ratio"].is_null());
        assert_eq!(
            v["mirror_unusable_high_orders"],
            serde_json::json!([{"zone": "DMA32", "order_9": 0.25, "order_10": 1.0}])
        );
        assert_eq!(v["real_buddyinfo_delta"], serde_json::json!([-1, 2]));
        assert!(!report.workloads[0].ok());
        assert_eq!(
            high_order_text(&report.mirror_unusable_high_orders),
            "DMA32: order 9 0.250 order 10 1.000"
        );
    }

    #[test]
    fn standard_workloads_scale_down() {
        assert!(standard(1000).iter().all(|s| s.count >= 10));
        assert_eq!(standard(1)[0].count, 20000);
    }
}
