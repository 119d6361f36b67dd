//! `latency.json` (written by `memlabctl bench`) and one CDF figure per
//! workload: real and mirror on the same log-x axes, medians and p99
//! marked. Percentiles are nearest-rank over the raw samples.

use crate::legend::{self, Swatch};
use crate::{fmt_ns, DrawResult, Figure, InputError, MIRROR_COLOR, REAL_COLOR};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::Deserialize;
use std::path::Path;

/// Image size in pixels (one image per workload).
pub const LATENCY_SIZE: (u32, u32) = (1100, 700);
/// Where the plot ends and the legend column starts.
const PLOT_W: u32 = 820;
/// Most points drawn per curve (the percentiles use every sample).
const MAX_POINTS: usize = 2000;

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct LatencyFile {
    #[serde(default)]
    pub kernel: String,
    /// What ran the guest (`tcg`, `kvm`, `uml`); empty in older files.
    #[serde(default)]
    pub engine: String,
    #[serde(default)]
    pub host_cpu: String,
    pub workloads: Vec<Workload>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Workload {
    pub name: String,
    #[serde(default)]
    pub op: Option<String>,
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default)]
    pub ops_per_sample: Option<u64>,
    pub real_ns: Vec<f64>,
    pub mirror_ns: Vec<f64>,
}

impl LatencyFile {
    pub fn load(path: &Path) -> Result<Self, InputError> {
        let text = std::fs::read_to_string(path).map_err(|e| InputError::io(path, e))?;
        let f: LatencyFile = serde_json::from_str(&text).map_err(|e| InputError::json(path, e))?;
        if f.workloads.is_empty() {
            return Err(InputError::whole(path, "\"workloads\" is empty"));
        }
        Ok(f)
    }
}

impl LatencyFile {
    /// `UML, AMD EPYC` for the titles; empty for files without an engine.
    pub fn engine_title(&self) -> String {
        match (self.engine.as_str(), self.host_cpu.as_str()) {
            ("", _) => String::new(),
            (e, "") => e.to_uppercase(),
            (e, cpu) => format!("{}, {cpu}", e.to_uppercase()),
        }
    }
}

impl Workload {
    /// The file-name part: name and op, lower case, `-` between words
    /// (`kmalloc 64 B` + alloc -> `kmalloc-64-b-alloc`).
    pub fn slug(&self) -> String {
        let full = match &self.op {
            Some(op) => format!("{} {op}", self.name),
            None => self.name.clone(),
        };
        let mut s = String::new();
        for c in full.chars() {
            if c.is_ascii_alphanumeric() {
                s.push(c.to_ascii_lowercase());
            } else if !s.ends_with('-') && !s.is_empty() {
                s.push('-');
            }
        }
        s.trim_end_matches('-').to_string()
    }
}

/// Nearest-rank percentile `q` (0..=1) of sorted samples.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// One side's samples, sorted, with their median and p99.
struct Side {
    name: &'static str,
    color: RGBColor,
    sorted: Vec<f64>,
    p50: f64,
    p99: f64,
}

impl Side {
    fn new(name: &'static str, color: RGBColor, samples: &[f64]) -> Option<Side> {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Side {
            p50: percentile(&sorted, 0.5)?,
            p99: percentile(&sorted, 0.99)?,
            name,
            color,
            sorted,
        })
    }

    /// The CDF as a step line, at most MAX_POINTS samples; values below
    /// `lo` (non-positive ones cannot go on a log axis) are drawn at `lo`.
    fn steps(&self, lo: f64) -> Vec<(f64, f64)> {
        let n = self.sorted.len();
        let stride = n.div_ceil(MAX_POINTS).max(1);
        let mut pts = Vec::with_capacity(2 * n / stride + 2);
        let mut prev = 0.0;
        for i in (0..n).step_by(stride).chain(std::iter::once(n - 1)) {
            let x = self.sorted[i].max(lo);
            let y = (i + 1) as f64 / n as f64;
            pts.push((x, prev));
            pts.push((x, y));
            prev = y;
        }
        pts
    }
}

/// The CDF figure of one workload.
pub struct LatencyFigure {
    pub kernel: String,
    /// `UML, AMD EPYC`: engine and host CPU for the title; empty if unknown.
    pub engine: String,
    pub workload: Workload,
}

impl LatencyFigure {
    fn sides(&self) -> Vec<Side> {
        [
            Side::new("real", REAL_COLOR, &self.workload.real_ns),
            Side::new("mirror", MIRROR_COLOR, &self.workload.mirror_ns),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    fn title(&self) -> String {
        let w = &self.workload;
        let what: Vec<&str> = [w.op.as_deref(), w.pattern.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        let mut t = if what.is_empty() {
            format!("Latency CDF: {}", w.name)
        } else {
            format!("Latency CDF: {} ({})", w.name, what.join(", "))
        };
        if !self.engine.is_empty() {
            t += &format!(" on {}", self.engine);
        }
        t
    }
}

impl Figure for LatencyFigure {
    fn size(&self) -> (u32, u32) {
        LATENCY_SIZE
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let sides = self.sides();
        let positive = sides
            .iter()
            .flat_map(|s| s.sorted.iter())
            .filter(|&&v| v > 0.0);
        let lo = positive.clone().copied().fold(f64::INFINITY, f64::min);
        let hi = positive.copied().fold(0.0, f64::max);
        let (lo, hi) = if lo.is_finite() {
            (lo / 1.5, (hi * 2.0).max(lo * 10.0))
        } else {
            (1.0, 10.0)
        };
        let (plot, side_col) = root.split_horizontally(PLOT_W);
        let mut chart = ChartBuilder::on(&plot)
            .caption(self.title(), ("sans-serif", 24))
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d((lo..hi).log_scale(), 0.0..1.05)?;
        chart
            .configure_mesh()
            .x_desc("ns per operation (log scale)")
            .y_desc("fraction of samples ≤ x")
            .axis_desc_style(("sans-serif", 17))
            .label_style(("sans-serif", 14))
            .x_labels(8)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .light_line_style(BLACK.mix(0.04))
            .draw()?;
        let label = ("sans-serif", 14).into_font();
        for (k, s) in sides.iter().enumerate() {
            chart.draw_series(LineSeries::new(s.steps(lo), s.color.stroke_width(2)))?;
            // Labels point away from the other side's marker, so the two
            // sides' labels do not overlap when their values are close.
            let other = sides.get(1 - k.min(1)).filter(|_| sides.len() == 2);
            for (q, v) in [(0.5, s.p50), (0.99, s.p99)] {
                let x = v.max(lo);
                chart.draw_series(DashedLineSeries::new(
                    vec![(x, 0.0), (x, q)],
                    6,
                    4,
                    s.color.stroke_width(1),
                ))?;
                chart.draw_series(std::iter::once(Circle::new((x, q), 5, s.color.filled())))?;
                let left = other.is_some_and(|o| {
                    let ov = if q < 0.9 { o.p50 } else { o.p99 };
                    v < ov || (v == ov && k == 0)
                });
                let (pos, dx) = if left {
                    (Pos::new(HPos::Right, VPos::Bottom), -8)
                } else {
                    (Pos::new(HPos::Left, VPos::Bottom), 8)
                };
                let name = if q < 0.9 { "median" } else { "p99" };
                chart.draw_series(std::iter::once(
                    EmptyElement::at((x, q))
                        + Text::new(
                            format!("{name} {}", fmt_ns(v)),
                            (dx, -4),
                            TextStyle::from(label.clone()).pos(pos),
                        ),
                ))?;
            }
        }
        let mut entries: Vec<(String, Swatch)> = vec![(String::new(), Swatch::Text)];
        for s in &sides {
            entries.push((
                format!("{} (n={})", s.name, s.sorted.len()),
                Swatch::Line(s.color, false),
            ));
            entries.push((format!("median {}", fmt_ns(s.p50)), Swatch::Text));
            entries.push((format!("p99 {}", fmt_ns(s.p99)), Swatch::Text));
            entries.push((String::new(), Swatch::Text));
        }
        for (name, empty) in [
            ("real", self.workload.real_ns.is_empty()),
            ("mirror", self.workload.mirror_ns.is_empty()),
        ] {
            if empty {
                entries.push((format!("{name}: no samples"), Swatch::Text));
            }
        }
        if let [r, m] = &sides[..] {
            entries.push(("mirror / real:".into(), Swatch::Text));
            entries.push((format!("median {:.2}x", m.p50 / r.p50), Swatch::Text));
            entries.push((format!("p99 {:.2}x", m.p99 / r.p99), Swatch::Text));
            entries.push((String::new(), Swatch::Text));
        }
        entries.push(("dashed line and dot:".into(), Swatch::Text));
        entries.push(("median and p99".into(), Swatch::Text));
        entries.push(("(nearest rank)".into(), Swatch::Text));
        if let Some(k) = self.workload.ops_per_sample {
            entries.push((format!("{k} ops per sample"), Swatch::Text));
        }
        let clipped = sides
            .iter()
            .flat_map(|s| s.sorted.iter())
            .filter(|&&v| v <= 0.0)
            .count();
        if clipped > 0 {
            entries.push((format!("{clipped} samples ≤ 0 ns"), Swatch::Text));
            entries.push(("drawn at the left edge".into(), Swatch::Text));
        }
        if !self.kernel.is_empty() {
            entries.push((String::new(), Swatch::Text));
            entries.push((format!("kernel {}", self.kernel), Swatch::Text));
        }
        legend::draw(&side_col, (8, 50), &entries)?;
        Ok(())
    }
}
