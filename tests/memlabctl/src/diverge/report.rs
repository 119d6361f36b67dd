// SPDX-License-Identifier: GPL-2.0

//! The divergence report: `diverge.json` (what `memplot` draws) and its
//! text form.
//!
//! ```text
//! {"engine", "host_cpu", "kernel", "kernel_source", "flavour", "zone": "Normal", "sample_every",
//!  "stream": {"name", "source": "trace"|"synthetic", "seed", "fill", "steps", "peak_bytes"},
//!  "sides": [{"side": "real"|"mirror", "session", "arena_pages", "allocs", "frees",
//!             "failed", "samples": [{"step", "free_pages", "free_blocks": [11],
//!             "pcp_pages", "probe_failed_3", "probe_failed_9", "failed", "objects",
//!             "slabs", "partial", "free_objects", "loss", "slab_bytes", "sheaf_fill",
//!             "barn_full", "barn_empty"}, ..], "caches_end": [CacheStat, ..]}, ..],
//!  "first_failures": [{"order", "real_step", "mirror_step", "at_step",
//!                      "real_free_blocks", "mirror_free_blocks"}, ..],
//!  "metrics": [{"metric", "unit", "real_end", "mirror_end",
//!               "gap": {"max_gap", "max_gap_step", "max_gap_share", "score",
//!                       "since_step"} | null, "why"}, ..]}
//! ```
//!
//! A sample's slab fields are the session's caches summed; `null` where a
//! side does not expose one (the kernel's sheaf fill and barns).

use super::sample::{Sample, NR_ORDERS, ZONE};
use super::score::{gap_over, mechanism, metrics, peak, scored, Gap, Kind, Scale, State};
use super::SideRun;
use crate::slabstat::{CacheStat, Side};
use serde::Serialize;
use std::path::Path;

/// One side's values of a metric, per sample (`None`: not exposed).
type Series = Vec<Option<f64>>;

/// Where the stream came from.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct StreamInfo {
    /// The trace's file name, or the synthetic stream's kind.
    pub name: String,
    /// `trace` or `synthetic`.
    pub source: &'static str,
    pub seed: Option<u32>,
    /// Live memory at the peak as a share of the arena (synthetic only).
    pub fill: Option<f64>,
    pub steps: usize,
    /// The most bytes live at once, in the replay's measure.
    pub peak_bytes: u64,
    /// The pages the fill is a share of: zone Normal's free pages above
    /// the real high watermark or the mirror's reserve, the smaller side's.
    pub usable_pages: u64,
}

impl StreamInfo {
    pub fn trace(path: &Path, steps: usize) -> Self {
        StreamInfo {
            name: path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into(),
            ),
            source: "trace",
            seed: None,
            fill: None,
            steps,
            peak_bytes: 0,
            usable_pages: 0,
        }
    }

    pub fn synthetic(name: &str, seed: u32, fill: f64, steps: usize) -> Self {
        StreamInfo {
            name: name.into(),
            source: "synthetic",
            seed: Some(seed),
            fill: Some(fill),
            steps,
            peak_bytes: 0,
            usable_pages: 0,
        }
    }

    fn describe(&self) -> String {
        let mib = self.peak_bytes as f64 / f64::from(1 << 20);
        match (self.seed, self.fill) {
            (Some(seed), Some(fill)) => format!(
                "stream {} (synthetic, seed {seed}, {} steps, {mib:.1} MiB live at the peak: {:.0}% of the {:.1} MiB usable)",
                self.name,
                self.steps,
                fill * 100.0,
                self.usable_pages as f64 / 256.0
            ),
            _ => format!(
                "stream {} (a trace, {} steps, {mib:.1} MiB live at the peak)",
                self.name, self.steps
            ),
        }
    }
}

/// One sample of one side, the session's caches summed.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct SampleRow {
    pub step: u64,
    pub free_pages: u64,
    pub free_blocks: [u64; NR_ORDERS],
    pub pcp_pages: Option<u64>,
    pub probe_failed_3: bool,
    pub probe_failed_9: bool,
    pub failed: u64,
    pub objects: u64,
    pub slabs: u64,
    pub partial: u64,
    pub free_objects: u64,
    pub loss: u64,
    pub slab_bytes: u64,
    pub sheaf_fill: Option<u64>,
    pub barn_full: Option<u64>,
    pub barn_empty: Option<u64>,
}

impl SampleRow {
    fn of(s: &Sample) -> Self {
        let sum = |f: fn(&CacheStat) -> u64| s.caches.iter().map(f).sum();
        let opt = |f: fn(&CacheStat) -> Option<u64>| s.caches.iter().map(f).sum();
        SampleRow {
            step: s.step,
            free_pages: s.free_pages(),
            free_blocks: s.free_blocks,
            pcp_pages: s.pcp_pages,
            probe_failed_3: s.probe_failed_3,
            probe_failed_9: s.probe_failed_9,
            failed: s.failed,
            objects: sum(|c| c.objects),
            slabs: sum(|c| c.slabs),
            partial: sum(|c| c.partial),
            free_objects: sum(|c| c.free_partial),
            loss: sum(|c| c.loss),
            slab_bytes: sum(|c| c.slab_bytes),
            sheaf_fill: opt(|c| c.sheaf_fill),
            barn_full: opt(|c| c.barn_full),
            barn_empty: opt(|c| c.barn_empty),
        }
    }
}

/// One side of the report.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct SideReport {
    pub side: Side,
    pub session: u32,
    /// Free pages of zone Normal at step 0.
    pub arena_pages: u64,
    pub allocs: u64,
    pub frees: u64,
    pub failed: u64,
    pub samples: Vec<SampleRow>,
    /// The session's caches at the last sample.
    pub caches_end: Vec<CacheStat>,
}

/// Where one order's probes first failed on each side, and both sides'
/// free lists at the first step either failed.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct FirstFailure {
    pub order: u32,
    pub real_step: Option<u64>,
    pub mirror_step: Option<u64>,
    pub at_step: Option<u64>,
    pub real_free_blocks: Option<[u64; NR_ORDERS]>,
    pub mirror_free_blocks: Option<[u64; NR_ORDERS]>,
}

/// One metric compared.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct MetricRow {
    pub metric: String,
    pub unit: &'static str,
    pub real_end: Option<f64>,
    pub mirror_end: Option<f64>,
    pub gap: Option<Gap>,
    /// For a large gap: the line naming its mechanism.
    pub why: Option<String>,
    /// For a metric with a state value (extfrag's -1, "block free"): how
    /// many samples each side (real, mirror) read it at; those samples are
    /// not in the gap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_samples: Option<[u64; 2]>,
    #[serde(skip)]
    kind: Option<Kind>,
    #[serde(skip)]
    state: Option<State>,
}

/// `diverge.json`.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct DivergeReport {
    pub engine: String,
    pub host_cpu: String,
    pub kernel: String,
    /// Where the kernel came from (a Debian package, or a tree and commit).
    pub kernel_source: String,
    pub flavour: String,
    pub zone: &'static str,
    pub sample_every: u32,
    pub stream: StreamInfo,
    pub sides: Vec<SideReport>,
    pub first_failures: Vec<FirstFailure>,
    pub metrics: Vec<MetricRow>,
}

/// The first step at which `failed` holds in `samples`.
fn first(samples: &[Sample], failed: fn(&Sample) -> bool) -> Option<u64> {
    samples.iter().find(|s| failed(s)).map(|s| s.step)
}

/// A probe's order and whether it failed in a sample.
type Probe = (u32, fn(&Sample) -> bool);

fn first_failures(real: &[Sample], mirror: &[Sample]) -> Vec<FirstFailure> {
    let probes: [Probe; 2] = [(3, |s| s.probe_failed_3), (9, |s| s.probe_failed_9)];
    probes
        .into_iter()
        .map(|(order, failed)| {
            let (r, m) = (first(real, failed), first(mirror, failed));
            let at = match (r, m) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let blocks = |v: &[Sample]| {
                at.and_then(|t| v.iter().find(|s| s.step == t).map(|s| s.free_blocks))
            };
            FirstFailure {
                order,
                real_step: r,
                mirror_step: m,
                at_step: at,
                real_free_blocks: blocks(real),
                mirror_free_blocks: blocks(mirror),
            }
        })
        .collect()
}

/// The line for a large gap of `row`.
fn why(row: &MetricRow, kind: Kind) -> Option<String> {
    let g = row.gap.as_ref().filter(|g| g.is_large())?;
    let higher = g.max_gap > 0.0;
    let rel = match (row.real_end, row.mirror_end) {
        (Some(r), Some(m)) if (m - r).abs() <= r.abs() * 0.01 => format!(
            "mirror {} real along the way, the two agree at the end",
            if higher { "above" } else { "below" }
        ),
        (Some(r), Some(m)) if r != 0.0 => {
            let p = (m - r) / r.abs() * 100.0;
            format!(
                "mirror {:.0}% {} real at the end",
                p.abs(),
                if p >= 0.0 { "above" } else { "below" }
            )
        }
        _ => format!("mirror {} real", if higher { "above" } else { "below" }),
    };
    let since = g
        .since_step
        .map_or_else(String::new, |s| format!(", apart from step {s} on"));
    Some(format!(
        "{}: {rel}{since} (largest gap {} {} at step {}, {:.0}% of the scale): {}",
        row.metric,
        num(g.max_gap),
        row.unit,
        g.max_gap_step,
        g.max_gap_share * 100.0,
        mechanism(kind, higher)
    ))
}

/// A value as the table prints it.
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

impl DivergeReport {
    /// The report of the runs `sides` (real, then mirror) of `stream`.
    pub fn new(stream: StreamInfo, sample_every: u32, sides: &[SideRun]) -> Self {
        let engine = crate::engine::Engine::current();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let empty: &[Sample] = &[];
        let of = |side| {
            sides
                .iter()
                .find(|r| r.side == side)
                .map_or(empty, |r| &r.samples[..])
        };
        let (real, mirror) = (of(Side::Real), of(Side::Mirror));
        let mut names: Vec<String> = real
            .iter()
            .chain(mirror)
            .flat_map(|s| s.caches.iter().map(|c| c.name.clone()))
            .collect();
        names.sort();
        names.dedup();
        let steps: Vec<u64> = real.iter().map(|s| s.step).collect();
        let all = metrics(&names);
        let series: Vec<[Series; 2]> = all
            .iter()
            .map(|m| {
                let r = real.iter().map(|s| (m.get)(s)).collect();
                let v = mirror.iter().map(|s| (m.get)(s)).collect();
                [r, v]
            })
            .collect();
        let peak_of = |name: &str| {
            all.iter()
                .zip(&series)
                .find(|(m, _)| m.name == name)
                .map_or(0.0, |(_, [r, v])| peak(&steps, r, v))
        };
        let metrics = all
            .iter()
            .zip(&series)
            .map(|(m, [r, v])| {
                let (sr, sv, at) = match m.state {
                    Some(st) => scored(r, v, st.value),
                    None => (r.clone(), v.clone(), [0, 0]),
                };
                let scale = match m.scale {
                    Scale::Peak => peak(&steps, &sr, &sv),
                    Scale::Of(whole) => peak_of(whole),
                    Scale::Full(x) => x,
                };
                let mut row = MetricRow {
                    metric: m.name.clone(),
                    unit: m.unit,
                    real_end: r.last().copied().flatten(),
                    mirror_end: v.last().copied().flatten(),
                    gap: gap_over(&steps, &sr, &sv, scale),
                    why: None,
                    state_samples: m.state.map(|_| at),
                    kind: Some(m.kind),
                    state: m.state,
                };
                row.why = why(&row, m.kind);
                row
            })
            .collect();
        DivergeReport {
            engine: engine.engine,
            host_cpu: engine.host_cpu,
            kernel_source: engine.kernel_source,
            kernel: kernel.trim().into(),
            flavour: engine.flavour,
            zone: ZONE,
            sample_every,
            stream,
            sides: sides.iter().map(side_report).collect(),
            first_failures: first_failures(real, mirror),
            metrics,
        }
    }

    /// Whether the two arenas are within a tenth of each other.
    pub fn arenas_equal(&self) -> bool {
        match self.sides.as_slice() {
            [a, b] if a.arena_pages > 0 => {
                (0.9..=1.1).contains(&(b.arena_pages as f64 / a.arena_pages as f64))
            }
            _ => false,
        }
    }

    /// The report for people; `all` lists every cache's metrics too.
    pub fn text(&self, all: bool) -> String {
        let mut t = format!(
            "memlab diverge: {}, zone {} sampled every {} steps\n",
            self.stream.describe(),
            self.zone,
            self.sample_every
        );
        let e = crate::engine::Engine {
            engine: self.engine.clone(),
            flavour: self.flavour.clone(),
            host_cpu: self.host_cpu.clone(),
            kernel_source: self.kernel_source.clone(),
        };
        t += &format!("{}\n", e.describe(&self.kernel));
        t += &self.arenas_line();
        t += "side    session   allocs    frees   failed  samples\n";
        for s in &self.sides {
            t += &format!(
                "{:<7} {:>7} {:>8} {:>8} {:>8} {:>8}\n",
                s.side.name(),
                s.session,
                s.allocs,
                s.frees,
                s.failed,
                s.samples.len()
            );
        }
        t += &self.failures_text();
        t += &format!(
            "{:<34} {:<11} {:>12} {:>12} {:>11} {:>9} {:>5} {:>6}\n",
            "metric", "unit", "real_end", "mirror_end", "max_gap", "at_step", "gap%", "score%"
        );
        for m in self.metrics.iter().filter(|m| all || shown(&m.metric)) {
            t += &row_text(m);
        }
        t += &self.large_text();
        t += "(gap% = the largest |mirror - real| as a share of the metric's peak on either side \
              (a part's: of its whole's, zone.free_pages or the slab.* sum; an index's: of 1); \
              score% = the mean of |mirror - real| over the samples, the same share; \
              indexes from the free blocks with mm/vmstat.c's formulas; \
              extfrag 'block free' (mm/vmstat.c's -1): a block of the order is free, so the \
              request would succeed and the index does not apply: samples where either side \
              reads it are not scored, and its row ends with how many samples each side read it at; \
              '-': the side does not expose it)\n";
        t
    }

    fn arenas_line(&self) -> String {
        let mib = |p: u64| p as f64 * 4096.0 / f64::from(1 << 20);
        let mut line = String::from("arenas (free pages of zone Normal at step 0):");
        for s in &self.sides {
            line += &format!(" {} {:.1} MiB", s.side.name(), mib(s.arena_pages));
        }
        if let [a, b] = self.sides.as_slice() {
            if a.arena_pages > 0 {
                line += &format!(
                    ", mirror/real {:.2}",
                    b.arena_pages as f64 / a.arena_pages as f64
                );
            }
        }
        if !self.arenas_equal() {
            line += "\n(the arenas differ by more than a tenth: the sides do not compare; size the VM's zone Normal to the pool, as scripts/bench.sh does)";
        }
        line + "\n"
    }

    fn failures_text(&self) -> String {
        let step = |s: Option<u64>| s.map_or_else(|| "never".into(), |s| format!("step {s}"));
        let mut t = String::from("first failed probe (one GFP_NOWAIT block from zone Normal):");
        for f in &self.first_failures {
            t += &format!(
                " order {}: real {}, mirror {};",
                f.order,
                step(f.real_step),
                step(f.mirror_step)
            );
        }
        t.pop();
        t.push('\n');
        for f in &self.first_failures {
            if let (Some(at), Some(r), Some(m)) =
                (f.at_step, f.real_free_blocks, f.mirror_free_blocks)
            {
                t += &format!(
                    "  free blocks per order 0..10 at step {at}, where order {} first failed: real {r:?}, mirror {m:?}\n",
                    f.order
                );
            }
        }
        t
    }

    fn large_text(&self) -> String {
        let large: Vec<&MetricRow> = self
            .metrics
            .iter()
            .filter(|m| m.why.is_some() && m.kind != Some(Kind::Sheaves))
            .collect();
        if large.is_empty() {
            return format!(
                "no large gap: every metric's largest gap is below {:.0}% of its scale\n",
                super::score::LARGE * 100.0
            );
        }
        let mut t = format!(
            "large gaps (the largest |mirror - real| at least {:.0}% of the metric's scale):\n",
            super::score::LARGE * 100.0
        );
        for m in large {
            if let Some(w) = &m.why {
                t += &format!("  {w}\n");
            }
        }
        t
    }
}

/// Whether the table shows `metric` without `--all`: zone Normal's, the
/// stream's and the caches summed.
fn shown(metric: &str) -> bool {
    ["zone.", "slab.", "stream."]
        .iter()
        .any(|p| metric.starts_with(p))
}

fn row_text(m: &MetricRow) -> String {
    let opt = |v: Option<f64>| match (v, m.state) {
        (Some(x), Some(st)) if x == st.value => st.label.to_string(),
        _ => v.map_or_else(|| "-".into(), num),
    };
    let (gap, at, share, score) = match &m.gap {
        Some(g) => (
            num(g.max_gap),
            g.max_gap_step.to_string(),
            format!("{:.0}", g.max_gap_share * 100.0),
            format!("{:.1}", g.score * 100.0),
        ),
        None => ("-".into(), "-".into(), "-".into(), "-".into()),
    };
    let states = match (m.state, m.state_samples) {
        (Some(st), Some([r, v])) if r + v > 0 => {
            format!("  {}: real {r}, mirror {v} samples", st.label)
        }
        _ => String::new(),
    };
    format!(
        "{:<34} {:<11} {:>12} {:>12} {:>11} {:>9} {:>5} {:>6}{states}\n",
        m.metric,
        m.unit,
        opt(m.real_end),
        opt(m.mirror_end),
        gap,
        at,
        share,
        score
    )
}

fn side_report(r: &SideRun) -> SideReport {
    SideReport {
        side: r.side,
        session: r.session,
        arena_pages: r.samples.first().map_or(0, Sample::free_pages),
        allocs: r.end.allocs,
        frees: r.end.frees,
        failed: r.end.failed,
        samples: r.samples.iter().map(SampleRow::of).collect(),
        caches_end: r
            .samples
            .last()
            .map(|s| s.caches.clone())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diverge::score::EXTFRAG_BLOCK_FREE;

    fn row(state: Option<State>, real_end: f64, mirror_end: f64) -> MetricRow {
        MetricRow {
            metric: "zone.extfrag_9".into(),
            unit: "index",
            real_end: Some(real_end),
            mirror_end: Some(mirror_end),
            gap: None,
            why: None,
            state_samples: state.map(|_| [1, 3]),
            kind: Some(Kind::Fragmentation),
            state,
        }
    }

    #[test]
    fn a_state_is_named_and_counted_not_printed_as_a_number() {
        let t = row_text(&row(Some(EXTFRAG_BLOCK_FREE), 0.994, -1.0));
        let cols: Vec<&str> = t.split_whitespace().collect();
        assert_eq!(&cols[2..6], ["0.994", "block", "free", "-"], "{t}");
        assert!(
            t.ends_with("  block free: real 1, mirror 3 samples\n"),
            "{t}"
        );
        // Without a state, -1 is a number like any other.
        let t = row_text(&row(None, 0.994, -1.0));
        assert_eq!(t.split_whitespace().nth(3), Some("-1"), "{t}");
        assert!(!t.contains("block free"), "{t}");
        // The JSON names the counts only where the metric has a state.
        let j = serde_json::to_value(row(Some(EXTFRAG_BLOCK_FREE), 0.5, 0.5)).unwrap();
        assert_eq!(j["state_samples"], serde_json::json!([1, 3]));
        let j = serde_json::to_value(row(None, 0.5, 0.5)).unwrap();
        assert!(j.get("state_samples").is_none());
    }
}
