//! The colour classes of the free-area map: what a pixel shows, its
//! colour and its legend label. Kinds are matched as text; one this tool
//! does not know is `Unknown` (grey), never an error.

use plotters::style::{RGBColor, WHITE};

/// Highest free order with its own shade (x86 MAX_PAGE_ORDER).
pub const MAX_ORDER: u32 = 10;

/// What a map pixel shows: the kind covering most of its pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    Free(u32),
    /// Free with no order given.
    FreeAny,
    Pcp,
    Pages,
    Slab,
    KmallocLarge,
    Reserved,
    NoPage,
    Other,
    Unknown,
    /// No record covers these PFNs.
    Hole,
}

pub(crate) const NCLASS: usize = MAX_ORDER as usize + 1 + 10;

impl Class {
    /// Maps a kind word (and its `order=`) to a colour class. Unknown kinds
    /// are `Unknown` (grey), never an error.
    pub fn of(kind: &str, order: Option<u32>) -> Class {
        match kind {
            "free" => order.map_or(Class::FreeAny, |o| Class::Free(o.min(MAX_ORDER))),
            "pcp" => Class::Pcp,
            "pages" => Class::Pages,
            "slab" => Class::Slab,
            "reserved" => Class::Reserved,
            "nopage" => Class::NoPage,
            "other" => Class::Other,
            // dma-kmalloc-large is the DMA flavour of the same thing.
            k if k.ends_with("kmalloc-large") => Class::KmallocLarge,
            _ => Class::Unknown,
        }
    }

    pub(crate) fn index(self) -> usize {
        let m = MAX_ORDER as usize;
        match self {
            Class::Free(o) => o.min(MAX_ORDER) as usize,
            Class::FreeAny => m + 1,
            Class::Pcp => m + 2,
            Class::Pages => m + 3,
            Class::Slab => m + 4,
            Class::KmallocLarge => m + 5,
            Class::Reserved => m + 6,
            Class::NoPage => m + 7,
            Class::Other => m + 8,
            Class::Unknown => m + 9,
            Class::Hole => m + 10,
        }
    }

    pub(crate) fn from_index(i: usize) -> Class {
        let m = MAX_ORDER as usize;
        match i {
            i if i <= m => Class::Free(i as u32),
            i if i == m + 1 => Class::FreeAny,
            i if i == m + 2 => Class::Pcp,
            i if i == m + 3 => Class::Pages,
            i if i == m + 4 => Class::Slab,
            i if i == m + 5 => Class::KmallocLarge,
            i if i == m + 6 => Class::Reserved,
            i if i == m + 7 => Class::NoPage,
            i if i == m + 8 => Class::Other,
            i if i == m + 9 => Class::Unknown,
            _ => Class::Hole,
        }
    }

    pub fn color(self) -> RGBColor {
        match self {
            // Light to dark green: the darker, the larger the free block.
            Class::Free(o) => {
                let t = f64::from(o.min(MAX_ORDER)) / f64::from(MAX_ORDER);
                let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t) as u8;
                RGBColor(mix(205, 0), mix(238, 88), mix(195, 40))
            }
            Class::FreeAny => RGBColor(90, 180, 100),
            Class::Pcp => RGBColor(0, 180, 200),
            Class::Pages => RGBColor(60, 100, 210),
            Class::Slab => RGBColor(245, 150, 20),
            Class::KmallocLarge => RGBColor(150, 60, 180),
            Class::Reserved => RGBColor(60, 60, 60),
            Class::NoPage => RGBColor(245, 222, 179),
            Class::Other => RGBColor(150, 90, 40),
            Class::Unknown => RGBColor(150, 150, 150),
            Class::Hole => WHITE,
        }
    }

    pub(crate) fn label(self) -> String {
        match self {
            Class::Free(o) => format!("free, order {o}"),
            Class::FreeAny => "free, order not given".into(),
            Class::Pcp => "pcp (per-CPU list)".into(),
            Class::Pages => "pages (alloc_pages)".into(),
            Class::Slab => "slab".into(),
            Class::KmallocLarge => "kmalloc-large".into(),
            Class::Reserved => "reserved".into(),
            Class::NoPage => "nopage (no struct page)".into(),
            Class::Other => "other (in use)".into(),
            Class::Unknown => "unknown kind".into(),
            Class::Hole => "no record (hole)".into(),
        }
    }
}
