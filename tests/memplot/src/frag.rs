//! `frag.json` (written by `memlabctl frag`) and the fragmentation figure:
//! the unusable free space index at orders 3 and 9 over steps (top), and
//! the free-block counts per order over steps, one panel per backend on a
//! shared log axis (bottom).

use crate::legend::{self, Swatch};
use crate::{DrawResult, Figure, InputError, MIRROR_COLOR, REAL_COLOR};
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Deserialize;
use std::path::Path;

/// Image size in pixels.
pub const FRAG_SIZE: (u32, u32) = (1200, 900);
/// The legend column's width, at the right of both rows of panels.
const LEGEND_W: u32 = 240;
/// Where zero counts sit on the log axis (labelled "0").
const ZERO: f64 = 0.5;

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct FragFile {
    /// What ran the guest (`tcg`, `kvm`, `uml`); empty in older files.
    #[serde(default)]
    pub engine: String,
    #[serde(default)]
    pub host_cpu: String,
    pub zone: String,
    #[serde(default)]
    pub steps: u64,
    #[serde(default)]
    pub sample_every: u64,
    pub series: Vec<FragSeries>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct FragSeries {
    pub backend: String,
    pub step: Vec<u64>,
    pub unusable_3: Vec<f64>,
    pub unusable_9: Vec<f64>,
    pub free_blocks: Vec<Vec<u64>>,
}

impl FragSeries {
    /// The arena: MiB in free blocks at the first sample (4 KiB pages).
    pub fn arena_mib(&self) -> f64 {
        self.free_blocks.first().map_or(0.0, |c| {
            let pages: u64 = c.iter().enumerate().map(|(o, &n)| n << o).sum();
            pages as f64 / 256.0
        })
    }
}

impl FragFile {
    pub fn load(path: &Path) -> Result<Self, InputError> {
        let text = std::fs::read_to_string(path).map_err(|e| InputError::io(path, e))?;
        let f: FragFile = serde_json::from_str(&text).map_err(|e| InputError::json(path, e))?;
        f.check().map_err(|m| InputError::whole(path, m))?;
        Ok(f)
    }

    /// The checks serde cannot make: one value per step everywhere, and an
    /// index within 0..=1.
    pub fn check(&self) -> Result<(), String> {
        if self.series.is_empty() {
            return Err("\"series\" is empty".into());
        }
        for (i, s) in self.series.iter().enumerate() {
            let at = format!("series[{i}] ({})", s.backend);
            let n = s.step.len();
            for (field, len) in [
                ("unusable_3", s.unusable_3.len()),
                ("unusable_9", s.unusable_9.len()),
                ("free_blocks", s.free_blocks.len()),
            ] {
                if len != n {
                    return Err(format!("{at}: {field} has {len} values, step has {n}"));
                }
            }
            if let Some(v) = s
                .unusable_3
                .iter()
                .chain(&s.unusable_9)
                .find(|v| !(0.0..=1.0).contains(*v))
            {
                return Err(format!("{at}: unusable index {v} is outside 0..1"));
            }
        }
        Ok(())
    }

    fn orders(&self) -> usize {
        self.series
            .iter()
            .flat_map(|s| s.free_blocks.iter().map(Vec::len))
            .max()
            .unwrap_or(0)
    }
}

fn backend_color(name: &str) -> RGBColor {
    match name {
        "real" => REAL_COLOR,
        "mirror" => MIRROR_COLOR,
        _ => RGBColor(120, 120, 120),
    }
}

/// A colour per order, red (order 0) through violet (the largest).
fn order_color(o: usize, orders: usize) -> HSLColor {
    HSLColor(
        0.8 * o as f64 / orders.max(2).saturating_sub(1) as f64,
        0.85,
        0.42,
    )
}

pub struct FragFigure {
    pub frag: FragFile,
}

impl Figure for FragFigure {
    fn size(&self) -> (u32, u32) {
        FRAG_SIZE
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let f = &self.frag;
        let mut title = format!("Fragmentation over time: zone {}", f.zone);
        if f.steps > 0 {
            title += &format!(", {} steps", f.steps);
        }
        if f.sample_every > 0 {
            title += &format!(", sampled every {}", f.sample_every);
        }
        if !f.engine.is_empty() {
            title += &format!(" ({})", f.engine.to_uppercase());
        }
        let root = root.titled(&title, ("sans-serif", 24))?;
        let (top, bottom) = root.split_vertically((FRAG_SIZE.1 - 40) * 45 / 100);
        let x_max = f
            .series
            .iter()
            .flat_map(|s| s.step.iter())
            .copied()
            .max()
            .unwrap_or(1)
            .max(1) as f64;

        let (top_plot, top_legend) = top.split_horizontally(FRAG_SIZE.0 - LEGEND_W);
        let mut chart = ChartBuilder::on(&top_plot)
            .margin(10)
            .x_label_area_size(42)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, 0.0..1.0)?;
        chart
            .configure_mesh()
            .x_desc("step")
            .x_label_formatter(&|v| format!("{v:.0}"))
            .light_line_style(BLACK.mix(0.04))
            .y_desc("unusable free space index")
            .axis_desc_style(("sans-serif", 16))
            .label_style(("sans-serif", 13))
            .draw()?;
        let mut entries = vec![("Unusable index (top)".to_string(), Swatch::Text)];
        for s in &f.series {
            let c = backend_color(&s.backend);
            let pts = |v: &[f64]| -> Vec<(f64, f64)> {
                s.step
                    .iter()
                    .map(|&x| x as f64)
                    .zip(v.iter().copied())
                    .collect()
            };
            chart.draw_series(LineSeries::new(pts(&s.unusable_3), c.stroke_width(2)))?;
            chart.draw_series(DashedLineSeries::new(
                pts(&s.unusable_9),
                8,
                5,
                c.stroke_width(2),
            ))?;
            entries.push((format!("{}, order 3", s.backend), Swatch::Line(c, false)));
            entries.push((format!("{}, order 9", s.backend), Swatch::Line(c, true)));
        }
        entries.push((String::new(), Swatch::Text));
        entries.push(("0 = all free memory is in".into(), Swatch::Text));
        entries.push(("blocks of that order or more;".into(), Swatch::Text));
        entries.push(("1 = none of it is.".into(), Swatch::Text));
        legend::draw(&top_legend, (6, 16), &entries)?;

        // Bottom: one panel per backend, one y range for all (comparable).
        let orders = f.orders();
        let y_max = f
            .series
            .iter()
            .flat_map(|s| s.free_blocks.iter().flatten())
            .copied()
            .max()
            .unwrap_or(1)
            .max(1) as f64
            * 2.0;
        let (panels, bottom_legend) = bottom.split_horizontally(FRAG_SIZE.0 - LEGEND_W);
        let areas = panels.split_evenly((1, f.series.len()));
        for (s, area) in f.series.iter().zip(areas.iter()) {
            let mut chart = ChartBuilder::on(area)
                .caption(
                    format!(
                        "{}: free blocks per order ({:.0} MiB free at the start)",
                        s.backend,
                        s.arena_mib()
                    ),
                    ("sans-serif", 17),
                )
                .margin(10)
                .x_label_area_size(42)
                .y_label_area_size(60)
                .build_cartesian_2d(0.0..x_max, (ZERO..y_max).log_scale())?;
            chart
                .configure_mesh()
                .x_desc("step")
                .x_labels(4)
                .x_label_formatter(&|v| format!("{v:.0}"))
                .light_line_style(BLACK.mix(0.04))
                .y_desc("free blocks (log; 0 at the bottom)")
                .axis_desc_style(("sans-serif", 15))
                .label_style(("sans-serif", 13))
                .y_label_formatter(&|v| {
                    if *v < 1.0 {
                        "0".to_string()
                    } else {
                        format!("{v:.0}")
                    }
                })
                .draw()?;
            for o in 0..orders {
                let pts: Vec<(f64, f64)> = s
                    .step
                    .iter()
                    .zip(&s.free_blocks)
                    .map(|(&x, counts)| {
                        let n = counts.get(o).copied().unwrap_or(0);
                        (x as f64, if n == 0 { ZERO } else { n as f64 })
                    })
                    .collect();
                chart.draw_series(LineSeries::new(pts, order_color(o, orders).stroke_width(2)))?;
            }
        }
        let mut entries = vec![("Free blocks (bottom)".to_string(), Swatch::Text)];
        for o in 0..orders {
            let (r, g, b) = order_color(o, orders).to_backend_color().rgb;
            entries.push((format!("order {o}"), Swatch::Line(RGBColor(r, g, b), false)));
        }
        legend::draw(&bottom_legend, (6, 30), &entries)?;
        Ok(())
    }
}
