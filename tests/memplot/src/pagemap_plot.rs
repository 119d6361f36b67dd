//! The free-area map: one strip per zone per side, real and mirror at one
//! scale. A pixel column is `P` pages (a power of two, the same for every
//! strip) and a strip's pixels wrap into rows of `MAP_W` pixels, so a
//! GiB-sized real zone and a 16 MiB mirror pool share the picture honestly:
//! the mirror is small because it is small. The title states `P`.

use crate::class::NCLASS;
pub use crate::class::{Class, MAX_ORDER};
use crate::legend::{self, Swatch};
use crate::pagemap::Pagemap;
use crate::{thousands, DrawResult, Figure};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Image size in pixels.
pub const PAGEMAP_SIZE: (u32, u32) = (1600, 1200);
/// The map's left edge, width (pixels per row), top and lowest row bottom.
pub const MAP_X: i32 = 200;
pub const MAP_W: u64 = 1024;
const MAP_TOP: i32 = 96;
const MAP_BOTTOM: i32 = 1110;
const LEGEND_X: i32 = 1262;
/// A strip's title line above its rows, and the space below it.
const STRIP_HEAD: i32 = 24;
const STRIP_GAP: i32 = 10;
const MAX_ROW_H: i32 = 40;

/// One zone of one side, reduced to pixels.
#[derive(Clone, Debug)]
pub struct Strip {
    pub side: &'static str,
    pub zone: String,
    pub start_pfn: u64,
    pub end_pfn: u64,
    /// Pages covered by records, and of those free.
    pub pages: u64,
    pub free: u64,
    pub pixels: Vec<Class>,
}

impl Strip {
    fn rows(&self) -> u64 {
        (self.pixels.len() as u64).div_ceil(MAP_W).max(1)
    }
}

/// Pixels needed for `span` pages at `p` pages per pixel, as rows.
fn rows_for(span: u64, p: u64) -> u64 {
    span.div_ceil(p).div_ceil(MAP_W).max(1)
}

/// Picks pages per pixel `P` (a power of two) and the row height for
/// strips of these PFN spans: the most pixel area per page that fits.
pub fn choose_scale(spans: &[u64]) -> (u64, i32) {
    let fixed = spans.len() as i64 * i64::from(STRIP_HEAD + STRIP_GAP);
    let avail = (i64::from(MAP_BOTTOM - MAP_TOP) - fixed).max(1);
    let mut best: Option<(u64, i32)> = None;
    let mut p = 1u64;
    loop {
        let rows: u64 = spans.iter().map(|&s| rows_for(s, p)).sum();
        let row_h = (avail / rows.max(1) as i64).min(i64::from(MAX_ROW_H)) as i32;
        if row_h >= 1 {
            let better = match best {
                None => true,
                Some((bp, bh)) => f64::from(row_h) / p as f64 > f64::from(bh) / bp as f64,
            };
            if better {
                best = Some((p, row_h));
            }
        }
        // One row per strip: a larger P only shrinks everything.
        if rows == spans.len() as u64 || p >= 1 << 40 {
            break;
        }
        p *= 2;
    }
    best.unwrap_or((p, 1))
}

/// Reduces one zone's runs to pixels of `p` pages: each pixel shows the
/// class covering most of its pages (holes lose to any record).
pub fn reduce(map: &Pagemap, zone: &str, side: &'static str, p: u64) -> Strip {
    let runs: Vec<_> = map.zone_runs(zone).collect();
    let start = runs.first().map_or(0, |r| r.start_pfn);
    let end = runs.iter().map(|r| r.end_pfn()).max().unwrap_or(start);
    let npix = (end - start).div_ceil(p) as usize;
    let mut pixels = vec![Class::Hole; npix];
    // Page counts per class of the one pixel that runs only partly cover.
    let mut partial: Option<(usize, [u64; NCLASS])> = None;
    let flush = |partial: &mut Option<(usize, [u64; NCLASS])>, pixels: &mut Vec<Class>| {
        if let Some((px, counts)) = partial.take() {
            let (best, _) = counts
                .iter()
                .enumerate()
                .max_by_key(|&(i, &c)| (c, std::cmp::Reverse(i)))
                .unwrap_or((Class::Hole.index(), &0));
            pixels[px] = Class::from_index(best);
        }
    };
    let (mut pages, mut free) = (0, 0);
    for r in &runs {
        let class = Class::of(&r.kind, r.order());
        pages += r.pages;
        if r.kind == "free" {
            free += r.pages;
        }
        let (mut s, e) = (r.start_pfn - start, r.end_pfn() - start);
        while s < e {
            let px = (s / p) as usize;
            let px_end = (px as u64 + 1) * p;
            if s % p == 0 && e >= px_end {
                // Whole pixels: no counting needed.
                let last = (e / p) as usize;
                flush(&mut partial, &mut pixels);
                pixels[px..last].fill(class);
                s = last as u64 * p;
                continue;
            }
            let take = e.min(px_end) - s;
            if partial.as_ref().is_some_and(|(q, _)| *q != px) {
                flush(&mut partial, &mut pixels);
            }
            let entry = partial.get_or_insert((px, [0; NCLASS]));
            entry.1[class.index()] += take;
            s += take;
        }
    }
    flush(&mut partial, &mut pixels);
    Strip {
        side,
        zone: zone.to_string(),
        start_pfn: start,
        end_pfn: end,
        pages,
        free,
        pixels,
    }
}

/// The free-area map figure.
pub struct PagemapFigure {
    pub strips: Vec<Strip>,
    pub pages_per_px: u64,
    pub row_h: i32,
    /// Sides given (for the summary lines), in drawing order.
    pub sides: Vec<&'static str>,
    pub unknown_kinds: Vec<String>,
}

impl PagemapFigure {
    /// Builds the strips for whichever sides are present.
    pub fn new(real: Option<&Pagemap>, mirror: Option<&Pagemap>) -> Self {
        let sides: Vec<(&'static str, &Pagemap)> = [("real", real), ("mirror", mirror)]
            .into_iter()
            .filter_map(|(s, m)| m.map(|m| (s, m)))
            .collect();
        // Zone by zone, real above mirror, so each zone's pair is adjacent.
        let mut zones: Vec<String> = Vec::new();
        for (_, m) in &sides {
            for z in m.zones() {
                if !zones.contains(&z) {
                    zones.push(z);
                }
            }
        }
        crate::pagemap::sort_zones(&mut zones);
        let mut spans = Vec::new();
        let mut order = Vec::new();
        let mut unknown_kinds: Vec<String> = Vec::new();
        let summaries: Vec<_> = sides.iter().map(|(_, m)| m.summary()).collect();
        for z in &zones {
            for ((side, m), s) in sides.iter().zip(&summaries) {
                if let Some(zs) = s.get(z) {
                    spans.push(zs.end_pfn - zs.first_pfn);
                    order.push((*side, *m, z.clone()));
                }
            }
        }
        for (_, m) in &sides {
            for r in &m.runs {
                if Class::of(&r.kind, None) == Class::Unknown && !unknown_kinds.contains(&r.kind) {
                    unknown_kinds.push(r.kind.clone());
                }
            }
        }
        let (p, row_h) = choose_scale(&spans);
        let strips = order
            .into_iter()
            .map(|(side, m, z)| reduce(m, &z, side, p))
            .collect();
        PagemapFigure {
            strips,
            pages_per_px: p,
            row_h,
            sides: sides.iter().map(|(s, _)| *s).collect(),
            unknown_kinds,
        }
    }

    fn legend_entries(&self) -> Vec<(String, Swatch)> {
        let mut e = vec![("Page kinds (colour)".to_string(), Swatch::Text)];
        let present = |c: Class| self.strips.iter().any(|s| s.pixels.contains(&c));
        let mut classes: Vec<Class> = (0..=MAX_ORDER).map(Class::Free).collect();
        if present(Class::FreeAny) {
            classes.push(Class::FreeAny);
        }
        classes.extend([
            Class::Pcp,
            Class::Pages,
            Class::Slab,
            Class::KmallocLarge,
            Class::Reserved,
            Class::NoPage,
            Class::Other,
        ]);
        for c in classes {
            e.push((c.label(), Swatch::Box(c.color())));
        }
        if !self.unknown_kinds.is_empty() {
            let mut names = self.unknown_kinds.clone();
            names.truncate(3);
            e.push((
                format!("unknown: {}", names.join(", ")),
                Swatch::Box(Class::Unknown.color()),
            ));
        }
        e.push((Class::Hole.label(), Swatch::Box(Class::Hole.color())));
        e.push((String::new(), Swatch::Text));
        e.push(("A pixel shows the kind of most".into(), Swatch::Text));
        e.push((
            format!("of its {} page(s).", self.pages_per_px),
            Swatch::Text,
        ));
        if self.sides.contains(&"real") {
            e.push(("real: /proc/kpageflags; free".into(), Swatch::Text));
            e.push(("orders derived from KPF_BUDDY".into(), Swatch::Text));
            e.push(("spans (not in kpageflags).".into(), Swatch::Text));
        }
        if self.sides.contains(&"mirror") {
            e.push(("mirror: debugfs mirror/pagemap.".into(), Swatch::Text));
        }
        e.push((String::new(), Swatch::Text));
        for side in &self.sides {
            let (pages, free) = self
                .strips
                .iter()
                .filter(|s| s.side == *side)
                .fold((0, 0), |(p, f), s| (p + s.pages, f + s.free));
            let pct = if pages == 0 {
                0.0
            } else {
                100.0 * free as f64 / pages as f64
            };
            e.push((format!("{side}: {} pages,", thousands(pages)), Swatch::Text));
            e.push((format!("  {pct:.1}% free"), Swatch::Text));
        }
        e
    }
}

fn mib(pages: u64) -> String {
    let m = pages as f64 * 4096.0 / (1024.0 * 1024.0);
    if m >= 1024.0 {
        format!("{:.1} GiB", m / 1024.0)
    } else {
        format!("{m:.1} MiB")
    }
}

impl Figure for PagemapFigure {
    fn size(&self) -> (u32, u32) {
        PAGEMAP_SIZE
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let p = self.pages_per_px;
        let title = ("sans-serif", 26).into_font();
        let small = ("sans-serif", 15).into_font();
        let head = ("sans-serif", 16).into_font();
        root.draw(&Text::new(
            format!(
                "Free-area map: {} at one scale, 1 pixel column = {p} page{} of 4 KiB",
                self.sides.join(" and "),
                if p == 1 { "" } else { "s" }
            ),
            (MAP_X - 180, 14),
            title,
        ))?;
        root.draw(&Text::new(
            format!(
                "One strip per zone and side; each row is {} pages ({}), wrapping left to right, top to bottom.",
                thousands(MAP_W * p),
                mib(MAP_W * p)
            ),
            (MAP_X - 180, 50),
            ("sans-serif", 17).into_font(),
        ))?;
        root.draw(&Text::new(
            "row start PFN",
            (MAP_X - 8, MAP_TOP - 14),
            TextStyle::from(small.clone()).pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
        let mut y = MAP_TOP;
        let label_every = (18 / self.row_h + 1) as u64;
        for s in &self.strips {
            root.draw(&Text::new(
                format!(
                    "{} · {}   PFN {:#x}-{:#x}   {} pages in records ({})",
                    s.side,
                    s.zone,
                    s.start_pfn,
                    s.end_pfn.saturating_sub(1),
                    thousands(s.pages),
                    mib(s.pages)
                ),
                (MAP_X, y + STRIP_HEAD / 2),
                TextStyle::from(head.clone()).pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
            y += STRIP_HEAD;
            let rows = s.rows();
            for (r, row) in s.pixels.chunks(MAP_W as usize).enumerate() {
                let ry = y + r as i32 * self.row_h;
                let mut c0 = 0;
                while c0 < row.len() {
                    let class = row[c0];
                    let c1 = row[c0..]
                        .iter()
                        .position(|&c| c != class)
                        .map_or(row.len(), |n| c0 + n);
                    if class != Class::Hole {
                        root.draw(&Rectangle::new(
                            [
                                (MAP_X + c0 as i32, ry),
                                (MAP_X + c1 as i32, ry + self.row_h),
                            ],
                            class.color().filled(),
                        ))?;
                    }
                    c0 = c1;
                }
                if (r as u64).is_multiple_of(label_every) {
                    root.draw(&Text::new(
                        format!("{:#x}", s.start_pfn + r as u64 * MAP_W * p),
                        (MAP_X - 8, ry + self.row_h / 2),
                        TextStyle::from(small.clone()).pos(Pos::new(HPos::Right, VPos::Center)),
                    ))?;
                }
            }
            let h = rows as i32 * self.row_h;
            // The strip's frame shows where its rows end, holes included.
            root.draw(&Rectangle::new(
                [(MAP_X - 1, y - 1), (MAP_X + MAP_W as i32 + 1, y + h + 1)],
                BLACK.mix(0.5).stroke_width(1),
            ))?;
            y += h + STRIP_GAP;
        }
        // The x axis: offset within a row, in pages.
        let ay = y + 2;
        root.draw(&PathElement::new(
            vec![(MAP_X, ay), (MAP_X + MAP_W as i32, ay)],
            BLACK.stroke_width(1),
        ))?;
        for k in 0..=4u64 {
            let x = MAP_X + (k * MAP_W / 4) as i32;
            root.draw(&PathElement::new(vec![(x, ay), (x, ay + 6)], BLACK))?;
            root.draw(&Text::new(
                format!("+{}", thousands(k * MAP_W / 4 * p)),
                (x, ay + 9),
                TextStyle::from(small.clone()).pos(Pos::new(HPos::Center, VPos::Top)),
            ))?;
        }
        root.draw(&Text::new(
            "PFN offset within a row (pages); PFN = row start + offset",
            (MAP_X + MAP_W as i32 / 2, ay + 32),
            TextStyle::from(("sans-serif", 17).into_font()).pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
        legend::draw(root, (LEGEND_X, MAP_TOP - 24), &self.legend_entries())?;
        Ok(())
    }
}
