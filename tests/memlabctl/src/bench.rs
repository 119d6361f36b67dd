// SPDX-License-Identifier: GPL-2.0

//! `memlabctl bench` and `memlabctl replay`: the same work on the real
//! allocators and on memlab's mirror, in one VM run, compared as ratios.
//! The benchmark itself is in `bench/`: `abba` (rounds and raw samples),
//! `stats`, `report` (table and JSON), `extra` (sweep and scaling), `run`.

mod abba;
mod cross;
pub use abba::run_sampled;
pub use extra::{online_cpus, pin_to};
mod extra;
mod overhead;
mod report;
mod run;
mod stats;

use crate::args::ReplayArgs;
use crate::args::ReplayBackend;
use crate::cli::fail;
use crate::dev::{uapi, Memlab, DEBUGFS};
use crate::names;
pub use run::bench;
use serde::Serialize;
use std::collections::HashMap;
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

/// The standard workloads: `make bench` runs each on both backends. Sized
/// for a 64 MiB pool (`pool_mb=64`, 7168 Normal pages): no live set is
/// above a quarter of the mirror's Normal zone (BATCH of 1024 pages;
/// RANDOM's peak live set is reported).
pub fn standard(scale: u32) -> Vec<Spec> {
    use uapi::*;
    let n = |c: u32| (c / scale).max(10);
    let spec = |name, family, pattern, count, size, order| Spec {
        name,
        family,
        pattern,
        count: n(count),
        size,
        order,
    };
    vec![
        spec(
            "kmem_cache_alloc 64 B",
            MEMLAB_FAMILY_KMEM_CACHE,
            MEMLAB_PATTERN_PAIRS,
            20000,
            64,
            0,
        ),
        spec(
            "kmem_cache_alloc 64 B",
            MEMLAB_FAMILY_KMEM_CACHE,
            MEMLAB_PATTERN_BATCH,
            10000,
            64,
            0,
        ),
        spec(
            "kmalloc 64 B",
            MEMLAB_FAMILY_KMALLOC,
            MEMLAB_PATTERN_PAIRS,
            20000,
            64,
            0,
        ),
        spec(
            "kmalloc 64 B",
            MEMLAB_FAMILY_KMALLOC,
            MEMLAB_PATTERN_BATCH,
            10000,
            64,
            0,
        ),
        spec(
            "kmalloc 8..4096 B",
            MEMLAB_FAMILY_KMALLOC,
            MEMLAB_PATTERN_RANDOM,
            20000,
            4096,
            0,
        ),
        spec(
            "alloc_pages order 0",
            MEMLAB_FAMILY_PAGES,
            MEMLAB_PATTERN_PAIRS,
            20000,
            0,
            0,
        ),
        spec(
            "alloc_pages order 0",
            MEMLAB_FAMILY_PAGES,
            MEMLAB_PATTERN_BATCH,
            1024,
            0,
            0,
        ),
        spec(
            "alloc_pages order 0..3",
            MEMLAB_FAMILY_PAGES,
            MEMLAB_PATTERN_RANDOM,
            4000,
            0,
            3,
        ),
    ]
}

pub fn pattern_name(p: u32) -> &'static str {
    match p {
        uapi::MEMLAB_PATTERN_PAIRS => "pairs",
        uapi::MEMLAB_PATTERN_BATCH => "batch",
        _ => "random",
    }
}

/// Runs `spec` on `backend` once, K = 1, no samples fetched.
pub fn run_spec(d: &Memlab, s: &Spec, backend: u32) -> std::io::Result<uapi::MemlabWorkload> {
    let m = abba::Method {
        ops_per_sample: 1,
        rounds: 1,
        warmup_div: 4,
    };
    d.workload(&abba::request(s, backend, &m))
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

/// One step of a trace: `a ID FAMILY SIZE_OR_ORDER` or `f ID`.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Alloc { id: u64, family: u32, arg: u64 },
    Free { id: u64 },
}

/// Parses a trace: one step per line, `#` starts a comment. FAMILY is
/// kmalloc, pages or kmem_cache; the argument is a size in bytes (pages: an
/// order).
pub fn parse_trace(text: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let w: Vec<&str> = line.split_whitespace().collect();
        let bad = || format!("line {}: cannot parse {raw:?}", n + 1);
        let id = w.get(1).and_then(|v| v.parse().ok()).ok_or_else(bad)?;
        match (w.first().copied(), w.len()) {
            (Some("a"), 4) => {
                let family = names::lookup(names::FAMILIES, w[2]).ok_or_else(bad)?;
                let arg = crate::args::size_of(w[3]).ok_or_else(bad)?;
                steps.push(Step::Alloc { id, family, arg });
            }
            (Some("f"), 2) => steps.push(Step::Free { id }),
            _ => return Err(bad()),
        }
    }
    Ok(steps)
}

/// Replays `steps` on `backend` through ALLOC/FREE; returns per-family
/// allocation latencies (from INSPECT's in-kernel measurement).
pub fn replay_on(steps: &[Step], backend: u32) -> Result<HashMap<u32, Vec<u64>>, String> {
    let d = Memlab::open().map_err(|e| e.to_string())?;
    let mut live: HashMap<u64, u32> = HashMap::new();
    let mut lat: HashMap<u32, Vec<u64>> = HashMap::new();
    for (i, s) in steps.iter().enumerate() {
        match *s {
            Step::Alloc { id, family, arg } => {
                let mut req = uapi::MemlabAlloc {
                    family,
                    backend,
                    ..Default::default()
                };
                if family == uapi::MEMLAB_FAMILY_PAGES {
                    req.order = arg as u32;
                } else {
                    req.size = arg;
                }
                let h = d
                    .alloc(&req)
                    .map_err(|e| format!("step {}: alloc {id}: {e}", i + 1))?;
                let info = d.inspect(h).map_err(|e| e.to_string())?;
                lat.entry(family).or_default().push(info.alloc_ns);
                if live.insert(id, h).is_some() {
                    return Err(format!("step {}: id {id} allocated twice", i + 1));
                }
            }
            Step::Free { id } => {
                let h = live
                    .remove(&id)
                    .ok_or_else(|| format!("step {}: free of unknown id {id}", i + 1))?;
                d.free(h)
                    .map_err(|e| format!("step {}: free {id}: {e}", i + 1))?;
            }
        }
    }
    Ok(lat)
}

fn percentile(v: &mut [u64], p: usize) -> u64 {
    v.sort_unstable();
    v.get(v.len() * p / 100).copied().unwrap_or(0)
}

/// Allocation latencies of one family on one backend, from a replay.
#[derive(Serialize, Debug, PartialEq)]
pub struct ReplayRow {
    pub backend: &'static str,
    pub family: &'static str,
    /// The kernel function behind the family on that backend.
    pub call: &'static str,
    pub allocs: usize,
    pub median_ns: u64,
    pub p99_ns: u64,
}

/// `memlabctl replay --json`.
#[derive(Serialize, Debug, PartialEq)]
pub struct ReplayReport {
    pub file: String,
    pub rows: Vec<ReplayRow>,
    pub mirror_unusable_high_orders: Option<Vec<HighOrderUnusable>>,
}

/// `memlabctl replay FILE [--backend real|mirror|both] [--json]`.
pub fn replay(a: &ReplayArgs) -> ExitCode {
    let backends: &[(&'static str, u32)] = match a.backend {
        ReplayBackend::Real => &[("real", uapi::MEMLAB_BACKEND_REAL)],
        ReplayBackend::Mirror => &[("mirror", uapi::MEMLAB_BACKEND_MIRROR)],
        ReplayBackend::Both => &[
            ("real", uapi::MEMLAB_BACKEND_REAL),
            ("mirror", uapi::MEMLAB_BACKEND_MIRROR),
        ],
    };
    let file = a.file.display().to_string();
    let steps = match fs::read_to_string(&a.file)
        .map_err(|e| e.to_string())
        .and_then(|t| parse_trace(&t))
    {
        Ok(s) => s,
        Err(e) => return fail(format!("replay {file}: {e}")),
    };
    if !a.json {
        println!(
            "{:<8} {:<11} {:<18} {:>7} {:>10} {:>10}",
            "backend", "family", "call", "allocs", "median_ns", "p99_ns"
        );
    }
    let mut rows = Vec::new();
    for &(bname, backend) in backends {
        let lat = match replay_on(&steps, backend) {
            Ok(lat) => lat,
            Err(e) => return fail(format!("replay on {bname}: {e}")),
        };
        let mut fams: Vec<_> = lat.into_iter().collect();
        fams.sort_by_key(|(f, _)| *f);
        for (f, mut v) in fams {
            let row = ReplayRow {
                backend: bname,
                family: names::name_of(names::FAMILIES, f),
                call: names::family_api(f, backend),
                allocs: v.len(),
                median_ns: percentile(&mut v, 50),
                p99_ns: percentile(&mut v, 99),
            };
            if !a.json {
                println!(
                    "{:<8} {:<11} {:<18} {:>7} {:>10} {:>10}",
                    row.backend, row.family, row.call, row.allocs, row.median_ns, row.p99_ns
                );
            }
            rows.push(row);
        }
    }
    let report = ReplayReport {
        file,
        rows,
        mirror_unusable_high_orders: high_order_unusable(),
    };
    if a.json {
        println!("{}", crate::cli::json_line(&report));
    } else {
        println!(
            "mirror unusable index at high orders after replay: {}",
            high_order_text(&report.mirror_unusable_high_orders)
        );
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_parse() {
        let t = "# a comment\na 1 kmalloc 100\na 2 pages 3 # order\nf 1\n\na 3 kmem_cache 64K\n";
        assert_eq!(
            parse_trace(t).unwrap(),
            vec![
                Step::Alloc {
                    id: 1,
                    family: uapi::MEMLAB_FAMILY_KMALLOC,
                    arg: 100
                },
                Step::Alloc {
                    id: 2,
                    family: uapi::MEMLAB_FAMILY_PAGES,
                    arg: 3
                },
                Step::Free { id: 1 },
                Step::Alloc {
                    id: 3,
                    family: uapi::MEMLAB_FAMILY_KMEM_CACHE,
                    arg: 65536
                },
            ]
        );
        assert!(parse_trace("a 1 kmalloc").is_err());
        assert!(parse_trace("a x kmalloc 5").is_err());
        assert!(parse_trace("f 1 2").is_err());
        assert!(parse_trace("z 1").is_err());
        assert!(parse_trace("a 1 bogus 5").is_err());
    }

    #[test]
    fn high_order_unusable_parses() {
        let rows = Some(parse_high_order_unusable(
            "Node 0, zone    DMA32 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.250 1.000 \n",
        ));
        assert_eq!(
            high_order_text(&rows),
            "DMA32: order 9 0.250 order 10 1.000"
        );
    }

    #[test]
    fn replay_json_shape() {
        let r = ReplayReport {
            file: "t".into(),
            rows: vec![ReplayRow {
                backend: "mirror",
                family: "pages",
                call: names::family_api(uapi::MEMLAB_FAMILY_PAGES, uapi::MEMLAB_BACKEND_MIRROR),
                allocs: 20,
                median_ns: 3,
                p99_ns: 9,
            }],
            mirror_unusable_high_orders: None,
        };
        let v: serde_json::Value = serde_json::from_str(&crate::cli::json_line(&r)).unwrap();
        assert_eq!(v["rows"][0]["call"], "alloc_pages");
        assert_eq!(v["rows"][0]["allocs"], 20);
        assert!(v["mirror_unusable_high_orders"].is_null());
    }

    #[test]
    fn standard_workloads_scale_down() {
        assert!(standard(1000).iter().all(|s| s.count >= 10));
        assert_eq!(standard(1)[0].count, 20000);
    }
}
