//! Legends drawn in their own column beside the data, so a legend never
//! covers what it explains.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// How one legend entry is shown.
#[derive(Clone, Copy, Debug)]
pub enum Swatch {
    /// A filled box (map colours); `outline` for near-white fills.
    Box(RGBColor),
    /// A line, solid or dashed.
    Line(RGBColor, bool),
    /// Plain text (a heading or a note), no swatch.
    Text,
}

pub const TEXT_SIZE: u32 = 15;
pub const ROW: i32 = 20;

/// Draws `entries` top-down from `(x, y)` in `area`'s pixel space; returns
/// the y below the last row.
pub fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x, mut y): (i32, i32),
    entries: &[(String, Swatch)],
) -> Result<i32, Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let font = ("sans-serif", TEXT_SIZE).into_font();
    for (label, sw) in entries {
        let mid = y + ROW / 2;
        let text_x = match *sw {
            Swatch::Box(c) => {
                area.draw(&Rectangle::new(
                    [(x, mid - 6), (x + 22, mid + 6)],
                    c.filled(),
                ))?;
                area.draw(&Rectangle::new(
                    [(x, mid - 6), (x + 22, mid + 6)],
                    BLACK.mix(0.4).stroke_width(1),
                ))?;
                x + 30
            }
            Swatch::Line(c, dashed) => {
                let style = c.stroke_width(3);
                if dashed {
                    for s in (0..22).step_by(8) {
                        area.draw(&PathElement::new(
                            vec![(x + s, mid), (x + (s + 5).min(22), mid)],
                            style,
                        ))?;
                    }
                } else {
                    area.draw(&PathElement::new(vec![(x, mid), (x + 22, mid)], style))?;
                }
                x + 30
            }
            Swatch::Text => x,
        };
        area.draw(&Text::new(
            label.clone(),
            (text_x, mid),
            TextStyle::from(font.clone()).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        y += ROW;
    }
    Ok(y)
}
