// SPDX-License-Identifier: GPL-2.0

//! `memlabctl bench` and `memlabctl replay`: the same work on the real
//! allocators and on memlab's mirror, in one VM run, compared as ratios.

use crate::dev::{uapi, Memlab, DEBUGFS};
use crate::names;
use std::collections::HashMap;
use std::fs;
use std::process::ExitCode;

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("memlabctl: {msg}");
    ExitCode::FAILURE
}

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
            name: "kmem_cache 64 B",
            family: MEMLAB_FAMILY_KMEM_CACHE,
            pattern: MEMLAB_PATTERN_PAIRS,
            count: n(20000),
            size: 64,
            order: 0,
        },
        Spec {
            name: "kmem_cache 64 B",
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
            name: "pages order 0",
            family: MEMLAB_FAMILY_PAGES,
            pattern: MEMLAB_PATTERN_PAIRS,
            count: n(20000),
            size: 0,
            order: 0,
        },
        Spec {
            name: "pages order 0",
            family: MEMLAB_FAMILY_PAGES,
            pattern: MEMLAB_PATTERN_BATCH,
            count: n(2000),
            size: 0,
            order: 0,
        },
        Spec {
            name: "pages order 0..3",
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

fn ratio(m: u64, r: u64) -> String {
    if r == 0 {
        "-".into()
    } else {
        format!("{:.2}x", m as f64 / r as f64)
    }
}

/// Sum over orders >= 9 of the unusable index of each zone, per zone, from
/// `mirror/unusable_index` ("Node 0, zone DMA32 0.000 ...").
fn high_order_unusable() -> String {
    let Ok(s) = fs::read_to_string(format!("{DEBUGFS}/mirror/unusable_index")) else {
        return "?".into();
    };
    s.lines()
        .filter_map(|l| {
            let rest = l.split(" zone ").nth(1)?;
            let mut w = rest.split_whitespace();
            let zone = w.next()?;
            let v: Vec<&str> = w.collect();
            Some(format!(
                "{zone}: order 9 {} order 10 {}",
                v.get(9)?,
                v.get(10)?
            ))
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

/// `memlabctl bench [scale=N]`: the standard workloads on both backends.
pub fn bench(args: &[String]) -> ExitCode {
    let mut scale = 1;
    for a in args {
        match a.strip_prefix("scale=").and_then(|v| v.parse().ok()) {
            Some(n) if n > 0 => scale = n,
            _ => return fail(format!("bench: bad argument '{a}'")),
        }
    }
    let d = match Memlab::open() {
        Ok(d) => d,
        Err(e) => return fail(format!("{}: {e}", crate::dev::DEV_PATH)),
    };
    println!(
        "memlab bench: the same workloads on the real allocators and on the mirror, one VM run"
    );
    println!("(latency per sample in ns, measured in the kernel; ratio = mirror / real, < 1 means the mirror is faster)");
    println!(
        "{:<20} {:<7} {:>7} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8}",
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
    let before_real = free_per_order("/proc/buddyinfo");
    let mut ok = true;
    for s in standard(scale) {
        let r = run_spec(&d, &s, uapi::MEMLAB_BACKEND_REAL);
        let m = run_spec(&d, &s, uapi::MEMLAB_BACKEND_MIRROR);
        match (r, m) {
            (Ok(r), Ok(m)) => {
                ok &= r.failed == 0 && m.failed == 0;
                println!(
                    "{:<20} {:<7} {:>7} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8}{}",
                    s.name,
                    pattern_name(s.pattern),
                    r.ops,
                    r.median_ns,
                    r.p99_ns,
                    m.median_ns,
                    m.p99_ns,
                    ratio(m.median_ns, r.median_ns),
                    ratio(m.p99_ns, r.p99_ns),
                    if r.failed + m.failed > 0 {
                        format!("  (failed: real {}, mirror {})", r.failed, m.failed)
                    } else {
                        String::new()
                    }
                );
            }
            (r, m) => {
                ok = false;
                println!(
                    "{:<20} {:<7} real {:?} mirror {:?}",
                    s.name,
                    pattern_name(s.pattern),
                    r.err(),
                    m.err()
                );
            }
        }
    }
    let after_real = free_per_order("/proc/buddyinfo");
    println!("\nfragmentation after the workloads:");
    println!(
        "  mirror unusable index at high orders: {}",
        high_order_unusable()
    );
    let delta: Vec<String> = before_real
        .iter()
        .zip(&after_real)
        .map(|(b, a)| format!("{:+}", *a as i64 - *b as i64))
        .collect();
    println!(
        "  real buddyinfo free-block delta per order 0..10: {}",
        delta.join(" ")
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        fail("bench: some workloads failed")
    }
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
                let arg = crate::cli::parse_size(w[3]).ok_or_else(bad)?;
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

/// `memlabctl replay FILE [--backend real|mirror|both]`.
pub fn replay(args: &[String]) -> ExitCode {
    let mut file = None;
    let mut backends = vec![
        ("real", uapi::MEMLAB_BACKEND_REAL),
        ("mirror", uapi::MEMLAB_BACKEND_MIRROR),
    ];
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--backend" {
            match it.next().map(String::as_str) {
                Some("real") => backends.truncate(1),
                Some("mirror") => {
                    backends.remove(0);
                }
                Some("both") => {}
                _ => return fail("replay: --backend takes real, mirror or both"),
            }
        } else {
            file = Some(a.clone());
        }
    }
    let Some(file) = file else {
        return fail("usage: memlabctl replay FILE [--backend real|mirror|both]");
    };
    let steps = match fs::read_to_string(&file)
        .map_err(|e| e.to_string())
        .and_then(|t| parse_trace(&t))
    {
        Ok(s) => s,
        Err(e) => return fail(format!("replay {file}: {e}")),
    };
    println!(
        "{:<8} {:<11} {:>7} {:>10} {:>10}",
        "backend", "family", "allocs", "median_ns", "p99_ns"
    );
    for (bname, backend) in backends {
        match replay_on(&steps, backend) {
            Ok(lat) => {
                let mut fams: Vec<_> = lat.into_iter().collect();
                fams.sort_by_key(|(f, _)| *f);
                for (f, mut v) in fams {
                    let n = v.len();
                    let med = percentile(&mut v, 50);
                    let p99 = percentile(&mut v, 99);
                    println!(
                        "{bname:<8} {:<11} {n:>7} {med:>10} {p99:>10}",
                        names::name_of(names::FAMILIES, f)
                    );
                }
            }
            Err(e) => return fail(format!("replay on {bname}: {e}")),
        }
    }
    println!(
        "mirror unusable index at high orders after replay: {}",
        high_order_unusable()
    );
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
    fn standard_workloads_scale_down() {
        assert!(standard(1000).iter().all(|s| s.count >= 10));
        assert_eq!(standard(1)[0].count, 20000);
    }
}
