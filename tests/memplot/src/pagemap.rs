//! The pagemap text format (`mirror/pagemap`, `memlabctl pagemap --real`):
//!
//! ```text
//! # memlab mirror/pagemap 1
//! # zone start_pfn pages kind [detail]
//! Normal 0x140000 512 free order=9
//! ```
//!
//! A small strict parser: every data line has a zone, a hex start PFN with
//! `0x`, a decimal page count above zero and a kind; the rest of the line is
//! the detail. Runs of one zone must come in PFN order without overlap (both
//! writers walk PFNs upwards; anything else means a broken file). Kinds are
//! kept as text: a kind this tool does not know is drawn grey, not refused.

use crate::InputError;
use std::collections::BTreeMap;
use std::path::Path;

/// One line: `pages` pages from `start_pfn` are all `kind`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub zone: String,
    pub start_pfn: u64,
    pub pages: u64,
    pub kind: String,
    pub detail: String,
    /// 1-based line number in the file, for messages.
    pub line: usize,
}

impl Run {
    /// One past the last PFN.
    pub fn end_pfn(&self) -> u64 {
        self.start_pfn + self.pages
    }

    /// The `order=N` of the detail, if any.
    pub fn order(&self) -> Option<u32> {
        self.detail
            .split_whitespace()
            .find_map(|w| w.strip_prefix("order="))
            .and_then(|o| o.parse().ok())
    }
}

/// A whole pagemap: runs in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pagemap {
    pub runs: Vec<Run>,
}

/// What one zone of a pagemap adds up to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZoneSummary {
    /// Pages per kind (the kind word as written, unknown kinds included).
    pub pages_by_kind: BTreeMap<String, u64>,
    /// Free pages per block order (`free order=N` runs); what buddyinfo
    /// counts as blocks is `pages >> order`.
    pub free_pages_by_order: BTreeMap<u32, u64>,
    /// Pages covered by runs (holes between runs not counted).
    pub pages: u64,
    pub first_pfn: u64,
    /// One past the last PFN.
    pub end_pfn: u64,
}

impl ZoneSummary {
    /// Free blocks of `order`, as /proc/buddyinfo would count them.
    pub fn free_blocks(&self, order: u32) -> u64 {
        self.free_pages_by_order.get(&order).copied().unwrap_or(0) >> order
    }

    /// Pages of `kind` (0 when absent).
    pub fn kind(&self, kind: &str) -> u64 {
        self.pages_by_kind.get(kind).copied().unwrap_or(0)
    }
}

impl Pagemap {
    /// Reads and parses `path`; errors name the file and line.
    pub fn load(path: &Path) -> Result<Self, InputError> {
        let text = std::fs::read_to_string(path).map_err(|e| InputError::io(path, e))?;
        let map = Self::parse(&text).map_err(|(line, msg)| InputError::at(path, line, msg))?;
        // Every zone has pages: a map without records is a writer that failed.
        if map.runs.is_empty() {
            return Err(InputError::whole(
                path,
                "no records (only comments or blank lines)",
            ));
        }
        Ok(map)
    }

    /// Parses the text; an error is `(line, message)`.
    pub fn parse(text: &str) -> Result<Self, (usize, String)> {
        let mut runs: Vec<Run> = Vec::new();
        // Where each zone's last run ended, for the order/overlap check.
        let mut zone_end: BTreeMap<String, u64> = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let body = raw.trim();
            if body.is_empty() || body.starts_with('#') {
                continue;
            }
            let run = parse_line(body, line)?;
            if let Some(&end) = zone_end.get(&run.zone) {
                if run.start_pfn < end {
                    return Err((
                        line,
                        format!(
                            "zone {} run at {:#x} overlaps or precedes the previous run (ended at {end:#x})",
                            run.zone, run.start_pfn
                        ),
                    ));
                }
            }
            zone_end.insert(run.zone.clone(), run.end_pfn());
            runs.push(run);
        }
        Ok(Pagemap { runs })
    }

    /// Zone names in drawing order: DMA, DMA32, Normal, Movable, then the
    /// rest by name.
    pub fn zones(&self) -> Vec<String> {
        let mut z: Vec<String> = Vec::new();
        for r in &self.runs {
            if !z.contains(&r.zone) {
                z.push(r.zone.clone());
            }
        }
        sort_zones(&mut z);
        z
    }

    /// The runs of one zone, in PFN order.
    pub fn zone_runs<'a>(&'a self, zone: &'a str) -> impl Iterator<Item = &'a Run> + 'a {
        self.runs.iter().filter(move |r| r.zone == zone)
    }

    /// Pages per kind (and free pages per order) for every zone.
    pub fn summary(&self) -> BTreeMap<String, ZoneSummary> {
        let mut out: BTreeMap<String, ZoneSummary> = BTreeMap::new();
        for r in &self.runs {
            let s = out.entry(r.zone.clone()).or_insert_with(|| ZoneSummary {
                first_pfn: r.start_pfn,
                ..ZoneSummary::default()
            });
            *s.pages_by_kind.entry(r.kind.clone()).or_default() += r.pages;
            if r.kind == "free" {
                if let Some(o) = r.order() {
                    *s.free_pages_by_order.entry(o).or_default() += r.pages;
                }
            }
            s.pages += r.pages;
            s.first_pfn = s.first_pfn.min(r.start_pfn);
            s.end_pfn = s.end_pfn.max(r.end_pfn());
        }
        out
    }
}

/// Sorts zone names into drawing order (see `Pagemap::zones`).
pub fn sort_zones(z: &mut [String]) {
    z.sort_by_key(|n| (zone_rank(n), n.clone()));
}

fn zone_rank(name: &str) -> usize {
    ["DMA", "DMA32", "Normal", "Movable", "HighMem", "Device"]
        .iter()
        .position(|z| *z == name)
        .unwrap_or(usize::MAX)
}

fn parse_line(body: &str, line: usize) -> Result<Run, (usize, String)> {
    let mut words = body.split_whitespace();
    let mut field = |what: &str| {
        words.next().ok_or_else(|| {
            (
                line,
                format!("missing {what}: expected `zone start_pfn pages kind [detail]`"),
            )
        })
    };
    let zone = field("zone")?.to_string();
    let pfn = field("start_pfn")?;
    let pages = field("pages")?;
    let kind = field("kind")?.to_string();
    let start_pfn = pfn
        .strip_prefix("0x")
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .ok_or_else(|| {
            (
                line,
                format!("start_pfn `{pfn}` is not a 0x-prefixed hex number"),
            )
        })?;
    let pages: u64 = match pages.parse() {
        Ok(n) if n > 0 => n,
        _ => {
            return Err((
                line,
                format!("pages `{pages}` is not a decimal count above zero"),
            ))
        }
    };
    if start_pfn.checked_add(pages).is_none() {
        return Err((line, "start_pfn + pages overflows".to_string()));
    }
    let detail = words.collect::<Vec<_>>().join(" ");
    Ok(Run {
        zone,
        start_pfn,
        pages,
        kind,
        detail,
        line,
    })
}
