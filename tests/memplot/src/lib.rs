//! memplot: draws memlab's bench data (see the data contract in the
//! README) as PNG and SVG with plotters. Every figure is drawn once by a
//! generic `Figure::draw` onto both backends, so the two files agree.

pub mod class;
pub mod diverge;
pub mod font;
pub mod frag;
pub mod latency;
pub mod legend;
pub mod pagemap;
pub mod pagemap_plot;
pub mod run;

use plotters::coord::Shift;
use plotters::prelude::*;
use std::error::Error;
use std::fmt;
use std::path::{Path, PathBuf};

/// What a drawing returns; plotters' errors are boxed.
pub type DrawResult = Result<(), Box<dyn Error>>;

/// A malformed or unreadable input: the file, the line when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub msg: String,
}

impl InputError {
    pub fn at(path: &Path, line: usize, msg: impl Into<String>) -> Self {
        InputError {
            path: path.to_path_buf(),
            line: Some(line),
            msg: msg.into(),
        }
    }

    pub fn whole(path: &Path, msg: impl Into<String>) -> Self {
        InputError {
            path: path.to_path_buf(),
            line: None,
            msg: msg.into(),
        }
    }

    pub fn io(path: &Path, e: std::io::Error) -> Self {
        Self::whole(path, e.to_string())
    }

    /// A serde_json error, with its line (and column in the message).
    pub fn json(path: &Path, e: serde_json::Error) -> Self {
        if e.line() == 0 {
            return Self::whole(path, e.to_string());
        }
        Self::at(path, e.line(), e.to_string())
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.path.display(), self.msg),
            None => write!(f, "{}: {}", self.path.display(), self.msg),
        }
    }
}

impl Error for InputError {}

/// One picture, drawn the same way on any plotters backend.
pub trait Figure {
    /// Width and height in pixels (the same for PNG and SVG).
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static;
}

/// Writes `DIR/STEM.png` and `DIR/STEM.svg`; returns both paths.
pub fn save(fig: &impl Figure, dir: &Path, stem: &str) -> Result<[PathBuf; 2], Box<dyn Error>> {
    font::init()?;
    std::fs::create_dir_all(dir)?;
    let png = dir.join(format!("{stem}.png"));
    let svg = dir.join(format!("{stem}.svg"));
    {
        let root = BitMapBackend::new(&png, fig.size()).into_drawing_area();
        root.fill(&WHITE)?;
        fig.draw(&root)?;
        root.present()?;
    }
    {
        let root = SVGBackend::new(&svg, fig.size()).into_drawing_area();
        root.fill(&WHITE)?;
        fig.draw(&root)?;
        root.present()?;
    }
    Ok([png, svg])
}

/// The two sides' colours, the same in every figure.
pub const REAL_COLOR: RGBColor = RGBColor(31, 90, 180);
pub const MIRROR_COLOR: RGBColor = RGBColor(214, 96, 24);

/// `1234567` -> `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A latency in ns, to 3 significant digits.
pub fn fmt_ns(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0} ns")
    } else if v.abs() >= 10.0 {
        format!("{v:.1} ns")
    } else {
        format!("{v:.2} ns")
    }
}
