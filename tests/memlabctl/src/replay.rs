// SPDX-License-Identifier: GPL-2.0

//! Traces and `memlabctl replay`.
//!
//! The text trace format, one step a line, `#` starts a comment:
//!
//! ```text
//! a ID FAMILY ARG [gfp=GFP]   allocate: FAMILY kmalloc|pages|kmem_cache
//!                             (vmalloc, dma: per-step path only), ARG bytes
//!                             (pages: the order), GFP as memlabctl prints it
//!                             (GFP_KERNEL when absent, GFP_X|__GFP_ZERO)
//! f ID                        free what ID allocated
//! ```
//!
//! By default a trace is replayed inside the kernel by one
//! `MEMLAB_IOC_REPLAY` (ids renumbered into the kernel's id table, only the
//! allocator calls timed); `--per-step` keeps the old path, one ALLOC or
//! FREE ioctl per step with INSPECT's latency; `--compare` runs both and
//! prints the ratio.

use crate::args::{ReplayArgs, ReplayBackend};
use crate::cli::{fail, json_line};
use crate::dev::{uapi, Memlab};
use crate::names;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs;
use std::process::ExitCode;
use std::time::Instant;

/// One step of a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Alloc {
        id: u64,
        family: u32,
        arg: u64,
        /// A gfp field: selector, maybe `| MEMLAB_GFP_ZERO`.
        gfp: u32,
    },
    Free {
        id: u64,
    },
}

/// Parses `GFP_X` or `GFP_X|__GFP_ZERO` (also memlabctl's `+zero` form).
fn parse_gfp(s: &str) -> Option<u32> {
    match s.strip_suffix("|__GFP_ZERO") {
        Some(base) => names::parse_gfp(base).map(|g| g | uapi::MEMLAB_GFP_ZERO),
        None => names::parse_gfp(s),
    }
}

/// Parses a trace (see the module documentation).
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
            (Some("a"), 4 | 5) => {
                let family = names::lookup(names::FAMILIES, w[2]).ok_or_else(bad)?;
                let arg = crate::args::size_of(w[3]).ok_or_else(bad)?;
                let gfp = match w.get(4) {
                    Some(g) => g.strip_prefix("gfp=").and_then(parse_gfp).ok_or_else(bad)?,
                    None => uapi::MEMLAB_GFP_KERNEL,
                };
                steps.push(Step::Alloc {
                    id,
                    family,
                    arg,
                    gfp,
                });
            }
            (Some("f"), 2) => steps.push(Step::Free { id }),
            _ => return Err(bad()),
        }
    }
    Ok(steps)
}

/// Writes `steps` as a trace; `gfp=` only where it is not GFP_KERNEL, so
/// an old trace reads back as it was.
pub fn trace_text(steps: &[Step]) -> String {
    let mut out = String::new();
    for s in steps {
        match *s {
            Step::Alloc {
                id,
                family,
                arg,
                gfp,
            } => {
                let fam = names::name_of(names::FAMILIES, family);
                out += &format!("a {id} {fam} {arg}");
                if gfp != uapi::MEMLAB_GFP_KERNEL {
                    out += &format!(" gfp={}", names::gfp_name(gfp));
                }
                out.push('\n');
            }
            Step::Free { id } => out += &format!("f {id}\n"),
        }
    }
    out
}

/// The steps as `struct memlab_replay_step` records. Trace ids become the
/// lowest free slot of the kernel's id table (so only the live set is
/// bounded, not the ids a trace uses); `__GFP_ZERO` is dropped (the ioctl
/// takes selectors only: zeroing would be timed on one side only) and
/// counted in the second value.
pub fn encode(steps: &[Step]) -> Result<(Vec<uapi::MemlabReplayStep>, usize), String> {
    let mut out = Vec::with_capacity(steps.len());
    let mut slots: HashMap<u64, u32> = HashMap::new();
    let mut free: BinaryHeap<Reverse<u32>> = BinaryHeap::new();
    let mut next = 0u32;
    let mut zeroed = 0;
    for (i, s) in steps.iter().enumerate() {
        let at = |m: String| format!("step {}: {m}", i + 1);
        match *s {
            Step::Alloc {
                id,
                family,
                arg,
                gfp,
            } => {
                if ![
                    uapi::MEMLAB_FAMILY_KMALLOC,
                    uapi::MEMLAB_FAMILY_PAGES,
                    uapi::MEMLAB_FAMILY_KMEM_CACHE,
                ]
                .contains(&family)
                {
                    let fam = names::name_of(names::FAMILIES, family);
                    return Err(at(format!(
                        "{fam} is not replayed in the kernel (use --per-step)"
                    )));
                }
                let slot = match free.pop() {
                    Some(Reverse(s)) => s,
                    None => {
                        next += 1;
                        next - 1
                    }
                };
                if slot >= uapi::MEMLAB_REPLAY_MAX_IDS {
                    return Err(at(format!(
                        "more than {} objects live at once",
                        uapi::MEMLAB_REPLAY_MAX_IDS
                    )));
                }
                if slots.insert(id, slot).is_some() {
                    return Err(at(format!("id {id} allocated twice")));
                }
                zeroed += usize::from(gfp & uapi::MEMLAB_GFP_ZERO != 0);
                out.push(uapi::MemlabReplayStep {
                    op: uapi::MEMLAB_REPLAY_ALLOC,
                    family,
                    gfp: gfp & 0xff,
                    id: slot,
                    arg,
                });
            }
            Step::Free { id } => {
                let slot = slots
                    .remove(&id)
                    .ok_or_else(|| at(format!("free of unknown id {id}")))?;
                free.push(Reverse(slot));
                out.push(uapi::MemlabReplayStep {
                    op: uapi::MEMLAB_REPLAY_FREE,
                    id: slot,
                    ..Default::default()
                });
            }
        }
    }
    Ok((out, zeroed))
}

/// Replays `steps` on `backend` through ALLOC/FREE, one ioctl a step;
/// returns per-family allocation latencies (from INSPECT's in-kernel
/// measurement).
pub fn replay_on(steps: &[Step], backend: u32) -> Result<HashMap<u32, Vec<u64>>, String> {
    let d = Memlab::open().map_err(|e| e.to_string())?;
    let mut live: HashMap<u64, u32> = HashMap::new();
    let mut lat: HashMap<u32, Vec<u64>> = HashMap::new();
    for (i, s) in steps.iter().enumerate() {
        match *s {
            Step::Alloc {
                id,
                family,
                arg,
                gfp,
            } => {
                let mut req = uapi::MemlabAlloc {
                    family,
                    backend,
                    gfp,
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

/// Median and 99th percentile of `v`.
fn percentiles(mut v: Vec<u64>) -> (u64, u64) {
    v.sort_unstable();
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    (at(v.len() / 2), at(v.len() * 99 / 100))
}

/// An unusable index in ppm as a fraction of 1.
pub fn fraction(ppm: u32) -> f64 {
    f64::from(ppm) / f64::from(uapi::MEMLAB_UNUSABLE_SCALE)
}

/// One replay of the trace on one backend by one path.
#[derive(Serialize, Debug, PartialEq)]
pub struct ReplayRun {
    pub backend: &'static str,
    /// `ioctl` (MEMLAB_IOC_REPLAY) or `per-step` (ALLOC/FREE per step).
    pub path: &'static str,
    pub steps: u64,
    pub allocs: u64,
    pub frees: u64,
    pub failed: u64,
    pub alloc_median_ns: u64,
    pub alloc_p99_ns: u64,
    /// Not measured on the per-step path.
    pub free_median_ns: Option<u64>,
    pub free_p99_ns: Option<u64>,
    /// The whole replay, seen from user space.
    pub wall_ns: u64,
    /// Zone Normal after the last step, 0..1 (ioctl path only).
    pub unusable_3: Option<f64>,
    pub unusable_9: Option<f64>,
    /// Bytes requested by the live slab objects after the last step.
    pub live_bytes: Option<u64>,
    /// Sum of ksize minus requested over them.
    pub ksize_waste: Option<u64>,
    /// Mirror only: bytes in its slabs minus the live bytes.
    pub slab_waste: Option<i64>,
}

impl ReplayRun {
    fn ioctl(backend: &'static str, q: &uapi::MemlabReplay, wall_ns: u64) -> Self {
        let mirror = backend == "mirror";
        ReplayRun {
            backend,
            path: "ioctl",
            steps: q.steps_done,
            allocs: q.allocs,
            frees: q.frees,
            failed: q.failed,
            alloc_median_ns: q.alloc_median_ns,
            alloc_p99_ns: q.alloc_p99_ns,
            free_median_ns: Some(q.free_median_ns),
            free_p99_ns: Some(q.free_p99_ns),
            wall_ns,
            unusable_3: Some(fraction(q.unusable_3)),
            unusable_9: Some(fraction(q.unusable_9)),
            live_bytes: Some(q.live_bytes),
            ksize_waste: Some(q.ksize_waste),
            slab_waste: mirror.then(|| q.slab_bytes as i64 - q.live_bytes as i64),
        }
    }

    fn human(&self) -> String {
        let opt = |x: Option<u64>| x.map_or_else(|| "-".into(), |v| v.to_string());
        let idx = |x: Option<f64>| x.map_or_else(|| "-".into(), |v| format!("{v:.3}"));
        format!(
            "{:<7} {:<8} {:>7} {:>7} {:>7} {:>6} {:>9} {:>9} {:>9} {:>9} {:>11} {:>6} {:>6} {:>9} {:>9}",
            self.backend,
            self.path,
            self.steps,
            self.allocs,
            self.frees,
            self.failed,
            self.alloc_median_ns,
            self.alloc_p99_ns,
            opt(self.free_median_ns),
            opt(self.free_p99_ns),
            self.wall_ns / 1000,
            idx(self.unusable_3),
            idx(self.unusable_9),
            opt(self.ksize_waste),
            self.slab_waste.map_or_else(|| "-".into(), |v| v.to_string()),
        )
    }
}

const HEADER: &str = "backend path       steps  allocs   frees failed alloc_med alloc_p99  free_med  free_p99     wall_us unus_3 unus_9 ksize_wst slab_wst";

/// per-step / ioctl for one backend, from `--compare`.
#[derive(Serialize, Debug, PartialEq)]
pub struct Ratio {
    pub backend: &'static str,
    /// Median allocation latency, per-step path over ioctl path.
    pub alloc_median: Option<f64>,
    /// Whole replay, wall clock, per-step path over ioctl path.
    pub wall: Option<f64>,
}

/// `memlabctl replay --json`.
#[derive(Serialize, Debug, PartialEq)]
pub struct ReplayReport {
    pub file: String,
    /// Allocations whose `__GFP_ZERO` the ioctl path dropped.
    pub zero_dropped: usize,
    pub runs: Vec<ReplayRun>,
    pub per_step_over_ioctl: Vec<Ratio>,
}

/// One replay by the ioctl.
fn run_ioctl(
    d: &Memlab,
    bin: &[uapi::MemlabReplayStep],
    name: &'static str,
    backend: u32,
) -> Result<ReplayRun, String> {
    let t0 = Instant::now();
    let (q, _) = d
        .replay(bin, backend, 0, uapi::MEMLAB_ZONE_NORMAL)
        .map_err(|e| {
            let why = crate::explain::replay_explained(&e, bin);
            format!("MEMLAB_IOC_REPLAY on {name}: {why}")
        })?;
    Ok(ReplayRun::ioctl(name, &q, t0.elapsed().as_nanos() as u64))
}

/// One replay by ALLOC/FREE per step.
fn run_per_step(steps: &[Step], name: &'static str, backend: u32) -> Result<ReplayRun, String> {
    let t0 = Instant::now();
    let lat = replay_on(steps, backend).map_err(|e| format!("per-step on {name}: {e}"))?;
    let wall_ns = t0.elapsed().as_nanos() as u64;
    let all: Vec<u64> = lat.into_values().flatten().collect();
    let allocs = all.len() as u64;
    let (alloc_median_ns, alloc_p99_ns) = percentiles(all);
    Ok(ReplayRun {
        backend: name,
        path: "per-step",
        steps: steps.len() as u64,
        allocs,
        frees: steps
            .iter()
            .filter(|s| matches!(s, Step::Free { .. }))
            .count() as u64,
        failed: 0,
        alloc_median_ns,
        alloc_p99_ns,
        free_median_ns: None,
        free_p99_ns: None,
        wall_ns,
        unusable_3: None,
        unusable_9: None,
        live_bytes: None,
        ksize_waste: None,
        slab_waste: None,
    })
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b != 0).then(|| a as f64 / b as f64)
}

/// `memlabctl replay FILE [--backend B] [--per-step | --compare] [--json]`.
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
    let (bin, zero_dropped) = if a.per_step {
        (Vec::new(), 0)
    } else {
        match encode(&steps) {
            Ok(b) => b,
            Err(e) => return fail(format!("replay {file}: {e}")),
        }
    };
    let d = match crate::cli::open() {
        Ok(d) => d,
        Err(code) => return code,
    };
    if !a.json {
        println!("{HEADER}");
    }
    let mut report = ReplayReport {
        file,
        zero_dropped,
        runs: Vec::new(),
        per_step_over_ioctl: Vec::new(),
    };
    for &(name, backend) in backends {
        let mut runs = Vec::new();
        if !a.per_step {
            runs.push(run_ioctl(&d, &bin, name, backend));
        }
        if a.per_step || a.compare {
            runs.push(run_per_step(&steps, name, backend));
        }
        for r in runs {
            match r {
                Ok(r) => {
                    if !a.json {
                        println!("{}", r.human());
                    }
                    report.runs.push(r);
                }
                Err(e) => return fail(e),
            }
        }
        if a.compare {
            if let [.., io, ps] = report.runs.as_slice() {
                report.per_step_over_ioctl.push(Ratio {
                    backend: name,
                    alloc_median: ratio(ps.alloc_median_ns, io.alloc_median_ns),
                    wall: ratio(ps.wall_ns, io.wall_ns),
                });
            }
        }
    }
    if a.json {
        println!("{}", json_line(&report));
    } else {
        let text = |x: Option<f64>| x.map_or_else(|| "-".into(), |v| format!("{v:.2}x"));
        for r in &report.per_step_over_ioctl {
            println!(
                "{}: per-step / ioctl: alloc median {}, wall clock {}",
                r.backend,
                text(r.alloc_median),
                text(r.wall)
            );
        }
        if zero_dropped != 0 {
            println!("({zero_dropped} allocations replayed without __GFP_ZERO: the ioctl takes selectors only)");
        }
        println!("(latencies in ns, in the kernel, allocator calls only; unusable index of zone Normal after the last step; ksize_wst = sum of ksize - requested over live slab objects; slab_wst = mirror slab bytes - live bytes)");
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_parse() {
        let t = "# a comment\na 1 kmalloc 100\na 2 pages 3 # order\nf 1\n\na 3 kmem_cache 64K\n\
                 a 4 kmalloc 8 gfp=GFP_ATOMIC\na 5 pages 0 gfp=GFP_DMA32|__GFP_ZERO\n";
        let kernel = uapi::MEMLAB_GFP_KERNEL;
        assert_eq!(
            parse_trace(t).unwrap(),
            vec![
                Step::Alloc {
                    id: 1,
                    family: uapi::MEMLAB_FAMILY_KMALLOC,
                    arg: 100,
                    gfp: kernel
                },
                Step::Alloc {
                    id: 2,
                    family: uapi::MEMLAB_FAMILY_PAGES,
                    arg: 3,
                    gfp: kernel
                },
                Step::Free { id: 1 },
                Step::Alloc {
                    id: 3,
                    family: uapi::MEMLAB_FAMILY_KMEM_CACHE,
                    arg: 65536,
                    gfp: kernel
                },
                Step::Alloc {
                    id: 4,
                    family: uapi::MEMLAB_FAMILY_KMALLOC,
                    arg: 8,
                    gfp: uapi::MEMLAB_GFP_ATOMIC
                },
                Step::Alloc {
                    id: 5,
                    family: uapi::MEMLAB_FAMILY_PAGES,
                    arg: 0,
                    gfp: uapi::MEMLAB_GFP_DMA32 | uapi::MEMLAB_GFP_ZERO
                },
            ]
        );
        for bad in [
            "a 1 kmalloc",
            "a x kmalloc 5",
            "f 1 2",
            "z 1",
            "a 1 bogus 5",
            "a 1 kmalloc 5 gfp=GFP_BOGUS",
            "a 1 kmalloc 5 GFP_KERNEL",
            "a 1 kmalloc 5 gfp=GFP_KERNEL extra",
        ] {
            assert!(parse_trace(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn traces_round_trip() {
        let t = "a 1 kmalloc 100\na 2 pages 3 gfp=GFP_DMA\nf 1\na 7 kmem_cache 64 gfp=GFP_NOIO|__GFP_ZERO\nf 7\nf 2\n";
        let steps = parse_trace(t).unwrap();
        assert_eq!(trace_text(&steps), t);
        assert_eq!(parse_trace(&trace_text(&steps)).unwrap(), steps);
    }

    #[test]
    fn steps_encode_with_dense_ids() {
        let steps =
            parse_trace("a 900 kmalloc 64\na 5 pages 2 gfp=GFP_DMA32\nf 900\na 77 kmem_cache 24 gfp=GFP_ATOMIC|__GFP_ZERO\nf 5\nf 77\n")
                .unwrap();
        let (bin, zero) = encode(&steps).unwrap();
        use uapi::*;
        let alloc = |family, gfp, id, arg| MemlabReplayStep {
            op: MEMLAB_REPLAY_ALLOC,
            family,
            gfp,
            id,
            arg,
        };
        let free = |id| MemlabReplayStep {
            op: MEMLAB_REPLAY_FREE,
            id,
            ..Default::default()
        };
        assert_eq!(
            bin,
            [
                alloc(MEMLAB_FAMILY_KMALLOC, MEMLAB_GFP_KERNEL, 0, 64),
                alloc(MEMLAB_FAMILY_PAGES, MEMLAB_GFP_DMA32, 1, 2),
                free(0),
                // Slot 0 is free again: the lowest free slot is reused.
                alloc(MEMLAB_FAMILY_KMEM_CACHE, MEMLAB_GFP_ATOMIC, 0, 24),
                free(1),
                free(0),
            ]
        );
        assert_eq!(zero, 1);
        // The record is the C struct, byte for byte.
        assert_eq!(std::mem::size_of::<MemlabReplayStep>(), 24);
        assert_eq!(std::mem::offset_of!(MemlabReplayStep, arg), 16);
        assert!(encode(&parse_trace("f 3").unwrap())
            .unwrap_err()
            .contains("unknown id 3"));
        assert!(
            encode(&parse_trace("a 1 kmalloc 8\na 1 kmalloc 8").unwrap())
                .unwrap_err()
                .contains("allocated twice")
        );
        assert!(encode(&parse_trace("a 1 vmalloc 8192").unwrap())
            .unwrap_err()
            .contains("--per-step"));
    }

    #[test]
    fn replay_json_shape() {
        let q = uapi::MemlabReplay {
            steps_done: 10,
            allocs: 6,
            frees: 4,
            alloc_median_ns: 100,
            unusable_3: 250_000,
            unusable_9: 1_000_000,
            live_bytes: 64,
            slab_bytes: 4096,
            ..Default::default()
        };
        let r = ReplayReport {
            file: "t".into(),
            zero_dropped: 0,
            runs: vec![ReplayRun::ioctl("mirror", &q, 5000)],
            per_step_over_ioctl: vec![Ratio {
                backend: "mirror",
                alloc_median: Some(2.5),
                wall: None,
            }],
        };
        let v: serde_json::Value = serde_json::from_str(&json_line(&r)).unwrap();
        let run = &v["runs"][0];
        assert_eq!(run["path"], "ioctl");
        assert_eq!(run["unusable_3"], 0.25);
        assert_eq!(run["unusable_9"], 1.0);
        assert_eq!(run["slab_waste"], 4032);
        assert_eq!(v["per_step_over_ioctl"][0]["alloc_median"], 2.5);
        assert!(v["per_step_over_ioctl"][0]["wall"].is_null());
        let real = ReplayRun::ioctl("real", &q, 1);
        assert_eq!(real.slab_waste, None);
        assert_eq!(
            HEADER.split_whitespace().count(),
            real.human().split_whitespace().count()
        );
    }
}
