//! Text needs a font file: plotters is built with its pure-Rust `ab_glyph`
//! text path (no fontconfig/freetype at build or run time), which draws only
//! fonts registered by the program. memplot reads DejaVu Sans (Debian's
//! fonts-dejavu-core, installed by scripts/setup-toolchain.sh) or the TTF
//! named by `MEMPLOT_FONT`, once per process.

use plotters::style::{register_font, FontStyle};
use std::path::PathBuf;
use std::sync::OnceLock;

/// Where DejaVu Sans lives on Debian and on a few other distributions.
const CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
];

static INIT: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// Registers the font as plotters' "sans-serif" (every text here uses it);
/// the error says what to install.
pub fn init() -> Result<PathBuf, String> {
    INIT.get_or_init(load).clone()
}

fn load() -> Result<PathBuf, String> {
    let path = match std::env::var_os("MEMPLOT_FONT") {
        Some(p) => PathBuf::from(p),
        None => CANDIDATES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or_else(|| {
                format!(
                    "no font: install fonts-dejavu-core (scripts/setup-toolchain.sh does) \
                     or set MEMPLOT_FONT to a .ttf file (looked in {})",
                    CANDIDATES.join(", ")
                )
            })?,
    };
    let bytes = std::fs::read(&path).map_err(|e| format!("font {}: {e}", path.display()))?;
    // plotters keeps fonts for the life of the process ('static): one
    // leaked copy, read once.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| format!("font {}: not a TrueType/OpenType file", path.display()))?;
    Ok(path)
}
