//! `diverge-<stream>.json` (written by `memlabctl diverge --out`) and its
//! figure: the same stream on both sides over time, side by side, in four
//! panels: partial slabs, free objects in slabs, free pages by order
//! (three groups), and what the CPUs hold (sheaf fill and barn sheaves on
//! the mirror, which the kernel does not expose, and per-CPU pages on
//! both). Real is blue, the mirror orange, as in every figure.

use crate::legend::{self, Swatch};
use crate::{thousands, DrawResult, Figure, InputError, MIRROR_COLOR, REAL_COLOR};
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Deserialize;
use std::path::Path;

/// Image size in pixels.
pub const DIVERGE_SIZE: (u32, u32) = (1300, 960);
const LEGEND_W: u32 = 250;

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct DivergeFile {
    #[serde(default)]
    pub engine: String,
    #[serde(default)]
    pub kernel: String,
    pub zone: String,
    pub sample_every: u64,
    pub stream: Stream,
    pub sides: Vec<Side>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Stream {
    pub name: String,
    pub source: String,
    pub steps: u64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Side {
    pub side: String,
    pub samples: Vec<Sample>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Sample {
    pub step: u64,
    pub free_blocks: Vec<u64>,
    pub pcp_pages: Option<u64>,
    pub partial: u64,
    pub free_objects: u64,
    pub sheaf_fill: Option<u64>,
    pub barn_full: Option<u64>,
    pub barn_empty: Option<u64>,
}

/// The order groups of the free-pages panel: (label, orders).
const GROUPS: [(&str, std::ops::Range<usize>); 3] = [
    ("orders 0-3", 0..4),
    ("orders 4-8", 4..9),
    ("orders 9-10", 9..11),
];

impl Sample {
    /// Free pages in blocks of the orders `r`.
    fn pages_in(&self, r: std::ops::Range<usize>) -> f64 {
        let r = r.start.min(self.free_blocks.len())..r.end.min(self.free_blocks.len());
        self.free_blocks[r.clone()]
            .iter()
            .zip(r)
            .map(|(&n, o)| (n << o) as f64)
            .sum()
    }
}

impl DivergeFile {
    pub fn load(path: &Path) -> Result<Self, InputError> {
        let text = std::fs::read_to_string(path).map_err(|e| InputError::io(path, e))?;
        let f: DivergeFile = serde_json::from_str(&text).map_err(|e| InputError::json(path, e))?;
        f.check().map_err(|m| InputError::whole(path, m))?;
        Ok(f)
    }

    /// The checks serde cannot make: two sides, each with samples, and
    /// eleven orders per sample.
    pub fn check(&self) -> Result<(), String> {
        if self.sides.len() != 2 {
            return Err(format!(
                "{} sides, expected real and mirror",
                self.sides.len()
            ));
        }
        for s in &self.sides {
            if s.samples.is_empty() {
                return Err(format!("side {}: no samples", s.side));
            }
            if let Some(x) = s.samples.iter().find(|x| x.free_blocks.len() != 11) {
                return Err(format!(
                    "side {}, step {}: {} free-block counts, expected 11",
                    s.side,
                    x.step,
                    x.free_blocks.len()
                ));
            }
        }
        Ok(())
    }

    /// The file name's part after `diverge-`, for the figure's name.
    pub fn stem(path: &Path) -> Option<String> {
        let name = path.file_name()?.to_str()?;
        let s = name.strip_prefix("diverge-")?.strip_suffix(".json")?;
        (!s.is_empty()).then(|| format!("diverge-{s}"))
    }
}

fn side_color(name: &str) -> RGBColor {
    if name == "mirror" {
        MIRROR_COLOR
    } else {
        REAL_COLOR
    }
}

/// One series of a panel: points, colour, dashed, width.
type Line = (Vec<(f64, f64)>, RGBColor, bool, u32);

pub struct DivergeFigure {
    pub file: DivergeFile,
}

impl DivergeFigure {
    fn x_max(&self) -> f64 {
        let last = self.file.sides.iter().flat_map(|s| s.samples.last());
        last.map(|x| x.step).max().unwrap_or(1).max(1) as f64
    }

    /// The points of `f` over each side's samples, `None`s left out.
    fn lines(&self, f: impl Fn(&Sample) -> Option<f64>, dashed: bool) -> Vec<Line> {
        self.file
            .sides
            .iter()
            .map(|s| {
                let pts = s
                    .samples
                    .iter()
                    .filter_map(|x| Some((x.step as f64, f(x)?)))
                    .collect();
                (pts, side_color(&s.side), dashed, 2)
            })
            .collect()
    }

    fn panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        caption: &str,
        y_desc: &str,
        lines: &[Line],
    ) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let y_max = lines
            .iter()
            .flat_map(|(p, ..)| p.iter().map(|&(_, y)| y))
            .fold(0.0, f64::max)
            .max(1.0)
            * 1.1;
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 17))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..self.x_max(), 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc("step")
            .x_labels(5)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| thousands(*v as u64))
            .light_line_style(BLACK.mix(0.04))
            .y_desc(y_desc)
            .axis_desc_style(("sans-serif", 15))
            .label_style(("sans-serif", 13))
            .draw()?;
        for (pts, c, dashed, w) in lines {
            if *dashed {
                chart.draw_series(DashedLineSeries::new(pts.clone(), 8, 5, c.stroke_width(*w)))?;
            } else {
                chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(*w)))?;
            }
        }
        Ok(())
    }
}

/// How the free-pages groups are told apart: thin, thick, dashed.
const GROUP_STYLE: [(bool, u32); 3] = [(false, 1), (false, 4), (true, 2)];

impl Figure for DivergeFigure {
    fn size(&self) -> (u32, u32) {
        DIVERGE_SIZE
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let f = &self.file;
        let mut title = format!(
            "One stream on both sides: {} ({}, {} steps), zone {}, sampled every {}",
            f.stream.name, f.stream.source, f.stream.steps, f.zone, f.sample_every
        );
        if !f.engine.is_empty() {
            title += &format!(" ({}, {})", f.engine.to_uppercase(), f.kernel);
        }
        let root = root.titled(&title, ("sans-serif", 21))?;
        let (plots, side) = root.split_horizontally(DIVERGE_SIZE.0 - LEGEND_W);
        let areas = plots.split_evenly((2, 2));
        self.panel(
            &areas[0],
            "partial slabs (the session's caches)",
            "slabs",
            &self.lines(|x| Some(x.partial as f64), false),
        )?;
        self.panel(
            &areas[1],
            "free objects in slabs",
            "objects",
            &self.lines(|x| Some(x.free_objects as f64), false),
        )?;
        let mut pages = Vec::new();
        for ((_, r), (dashed, w)) in GROUPS.iter().zip(GROUP_STYLE) {
            for (pts, c, ..) in self.lines(|x| Some(x.pages_in(r.clone())), false) {
                pages.push((pts, c, dashed, w));
            }
        }
        self.panel(&areas[2], "free pages by block order", "pages", &pages)?;
        let mut held = self.lines(|x| x.pcp_pages.map(|v| v as f64), false);
        held.extend(self.lines(|x| x.sheaf_fill.map(|v| v as f64), true));
        self.panel(
            &areas[3],
            "per-CPU pages (solid), objects on sheaves (dashed)",
            "pages / objects",
            &held,
        )?;
        let barns: Vec<String> = f
            .sides
            .iter()
            .filter_map(|s| {
                let last = s.samples.last()?;
                Some(format!(
                    "{}: {} full, {} empty",
                    s.side, last.barn_full?, last.barn_empty?
                ))
            })
            .collect();
        let mut entries = vec![("Sides".to_string(), Swatch::Text)];
        for s in &f.sides {
            entries.push((s.side.clone(), Swatch::Line(side_color(&s.side), false)));
        }
        entries.push((String::new(), Swatch::Text));
        entries.push(("Free pages (bottom left)".into(), Swatch::Text));
        for ((label, _), (dashed, w)) in GROUPS.iter().zip(GROUP_STYLE) {
            let how = match (dashed, w) {
                (true, _) => "dashed",
                (_, 1) => "thin",
                _ => "thick",
            };
            entries.push((format!("{label}: {how}"), Swatch::Text));
        }
        entries.push((String::new(), Swatch::Text));
        entries.push(("Sheaves and barns: the".into(), Swatch::Text));
        entries.push(("kernel keeps them private,".into(), Swatch::Text));
        entries.push(("so only the mirror's show.".into(), Swatch::Text));
        entries.push(("Barn sheaves at the end:".into(), Swatch::Text));
        for b in barns {
            entries.push((b, Swatch::Text));
        }
        legend::draw(&side, (6, 30), &entries)?;
        Ok(())
    }
}
