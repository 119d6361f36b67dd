//! What `memplot INPUT_DIR` does: draw every figure whose input exists.

use crate::diverge::{DivergeFigure, DivergeFile};
use crate::frag::{FragFigure, FragFile};
use crate::latency::{LatencyFigure, LatencyFile};
use crate::pagemap::Pagemap;
use crate::pagemap_plot::PagemapFigure;
use crate::{save, InputError};
use std::path::{Path, PathBuf};

/// The input files of the data contract, in INPUT_DIR.
pub const LATENCY: &str = "latency.json";
pub const FRAG: &str = "frag.json";
pub const PAGEMAP_REAL: &str = "pagemap-real.txt";
pub const PAGEMAP_MIRROR: &str = "pagemap-mirror.txt";
pub const INPUTS: [&str; 4] = [LATENCY, FRAG, PAGEMAP_REAL, PAGEMAP_MIRROR];

/// What a run did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub written: Vec<PathBuf>,
    /// Inputs that do not exist (their figures are skipped).
    pub missing: Vec<PathBuf>,
    /// Malformed inputs and failed drawings, as messages naming the file.
    pub errors: Vec<String>,
}

impl Outcome {
    /// Exit status: failure when any input was malformed or nothing existed.
    pub fn ok(&self) -> bool {
        self.errors.is_empty() && (self.missing.len() < INPUTS.len() || !self.written.is_empty())
    }
}

/// Loads the file if it exists: `None` when missing (recorded), errors
/// recorded too.
fn load<T>(
    dir: &Path,
    name: &str,
    out: &mut Outcome,
    f: impl Fn(&Path) -> Result<T, InputError>,
) -> Option<T> {
    let path = dir.join(name);
    if !path.exists() {
        out.missing.push(path);
        return None;
    }
    match f(&path) {
        Ok(v) => Some(v),
        Err(e) => {
            out.errors.push(e.to_string());
            None
        }
    }
}

/// Draws every figure whose inputs exist and parse, from `input` into `out_dir`.
pub fn run(input: &Path, out_dir: &Path) -> Outcome {
    let mut out = Outcome::default();
    let latency = load(input, LATENCY, &mut out, LatencyFile::load);
    let frag = load(input, FRAG, &mut out, FragFile::load);
    let real = load(input, PAGEMAP_REAL, &mut out, Pagemap::load);
    let mirror = load(input, PAGEMAP_MIRROR, &mut out, Pagemap::load);
    let mut emit = |r: Result<[PathBuf; 2], Box<dyn std::error::Error>>, what: &str| match r {
        Ok(paths) => out.written.extend(paths),
        Err(e) => out.errors.push(format!("drawing {what}: {e}")),
    };
    if let Some(l) = latency {
        let engine = l.engine_title();
        for w in l.workloads {
            let stem = format!("latency-{}", w.slug());
            let fig = LatencyFigure {
                kernel: l.kernel.clone(),
                engine: engine.clone(),
                workload: w,
            };
            emit(save(&fig, out_dir, &stem), &stem);
        }
    }
    if let Some(frag) = frag {
        emit(save(&FragFigure { frag }, out_dir, "frag"), "frag");
    }
    if real.is_some() || mirror.is_some() {
        let fig = PagemapFigure::new(real.as_ref(), mirror.as_ref());
        emit(save(&fig, out_dir, "pagemap"), "pagemap");
    }
    // Any number of divergence reports, each its own figure.
    for path in diverge_files(input) {
        let Some(stem) = DivergeFile::stem(&path) else {
            continue;
        };
        match DivergeFile::load(&path) {
            Ok(file) => emit(save(&DivergeFigure { file }, out_dir, &stem), &stem),
            Err(e) => emit(Err(Box::new(e)), &stem),
        }
    }
    out
}

/// `diverge-*.json` in `dir`, sorted.
pub fn diverge_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| DivergeFile::stem(p).is_some())
        .collect();
    v.sort();
    v
}
