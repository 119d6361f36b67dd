// SPDX-License-Identifier: GPL-2.0

//! `memlabctl pagemap --real`: the kernel's own free-area map, from
//! `/proc/kpageflags` over each zone's PFN range (`/proc/zoneinfo`), in the
//! text format of debugfs `mirror/pagemap` (src/mirror/pagemap.rs):
//!
//! ```text
//! # memlab real/pagemap 1
//! # zone start_pfn pages kind [detail]
//! Normal 0x100000 512 free order=9
//! ```
//!
//! One line per run of consecutive blocks of the same kind and detail.
//! Kinds (from the flags of the block's first page):
//!
//! - `free order=N`: free buddy blocks. In 7.2, kpageflags sets KPF_BUDDY
//!   on *every* page of a free block (`set_ps_flags` asks
//!   `is_free_buddy_page` for refcount-0 pages), but not the order. A run of
//!   KPF_BUDDY pages is cut greedily into the largest naturally aligned
//!   blocks of at most MAX_PAGE_ORDER: that is the buddy's own split,
//!   because two free buddies of one order always merge. Limits: the buddy
//!   does not merge across MIGRATE_ISOLATE/CMA/HIGHATOMIC pageblocks (there
//!   the derived order can be too high), and pages change while they are
//!   read one by one.
//! - `slab order=N`: KPF_SLAB (N from the compound head and its tails);
//! - `pages DETAIL order=N`: in use and recognisable: `anon`, `file` (LRU,
//!   mapped or page cache), `pgtable`, `thp`, `hugetlb`, `zero`, `compound`
//!   (another __GFP_COMP block, e.g. a large kmalloc);
//! - `reserved`: KPF_RESERVED (memblock, firmware, unavailable ranges);
//! - `nopage`: no memory there (outside /proc/iomem's System RAM, or
//!   KPF_NOPAGE): the holes a zone spans;
//! - `other unflagged`: no flag at all: allocated kernel pages that carry no
//!   marker (vmalloc, module memory, non-compound alloc_pages blocks), pages
//!   on the per-CPU lists (which are not in the buddy), pages in transit;
//!   `other offline`, `other flags=0x..` for the rest.
//!
//! `/proc/kpagecount` is not used: it holds the *map* count, zero for every
//! kernel page, so it cannot tell a free page from an allocated one.

use crate::cli::fail;
use crate::dev::DEBUGFS;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::ExitCode;

/// Bits of /proc/kpageflags (include/uapi/linux/kernel-page-flags.h and
/// include/linux/kernel-page-flags.h).
pub mod kpf {
    pub const SLAB: u64 = 1 << 7;
    pub const BUDDY: u64 = 1 << 10;
    pub const UPTODATE: u64 = 1 << 3;
    pub const LRU: u64 = 1 << 5;
    pub const MMAP: u64 = 1 << 11;
    pub const ANON: u64 = 1 << 12;
    pub const COMPOUND_HEAD: u64 = 1 << 15;
    pub const COMPOUND_TAIL: u64 = 1 << 16;
    pub const HUGE: u64 = 1 << 17;
    pub const NOPAGE: u64 = 1 << 20;
    pub const THP: u64 = 1 << 22;
    pub const OFFLINE: u64 = 1 << 23;
    pub const ZERO_PAGE: u64 = 1 << 24;
    pub const PGTABLE: u64 = 1 << 26;
    pub const RESERVED: u64 = 1 << 32;
}

/// MAX_PAGE_ORDER of x86-64 (the VERSION ioctl reports the module's).
pub const MAX_ORDER: u32 = 10;

/// One zone's PFN range, from /proc/zoneinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub name: String,
    pub start_pfn: u64,
    pub spanned: u64,
}

/// The zones of /proc/zoneinfo that span pages.
pub fn zones(zoneinfo: &str) -> Vec<Zone> {
    let mut out: Vec<Zone> = Vec::new();
    for l in zoneinfo.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        match w.as_slice() {
            ["Node", _, "zone", name] => out.push(Zone {
                name: name.to_string(),
                start_pfn: 0,
                spanned: 0,
            }),
            ["spanned", n] => {
                if let (Some(z), Ok(n)) = (out.last_mut(), n.parse()) {
                    z.spanned = n;
                }
            }
            ["start_pfn:", n] => {
                if let (Some(z), Ok(n)) = (out.last_mut(), n.parse()) {
                    z.start_pfn = n;
                }
            }
            _ => {}
        }
    }
    out.retain(|z| z.spanned > 0);
    out
}

/// PFN ranges `[start, end)` of /proc/iomem's top-level "System RAM".
pub fn ram_ranges(iomem: &str) -> Vec<(u64, u64)> {
    iomem
        .lines()
        .filter(|l| !l.starts_with(' ') && l.ends_with(" : System RAM"))
        .filter_map(|l| {
            let (a, b) = l.split(" : ").next()?.split_once('-')?;
            let a = u64::from_str_radix(a, 16).ok()?;
            let b = u64::from_str_radix(b, 16).ok()?;
            Some((a >> 12, (b >> 12) + 1))
        })
        .collect()
}

/// One run of the map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub start: u64,
    pub pages: u64,
    /// Kind and detail, as printed.
    pub what: String,
}

impl Run {
    pub fn kind(&self) -> &str {
        self.what.split(' ').next().unwrap_or("")
    }
}

/// What an in-use block is, from its first page's flags.
fn in_use(f: u64, order: u32) -> String {
    let pages = |d: &str| format!("pages {d} order={order}");
    if f & kpf::SLAB != 0 {
        format!("slab order={order}")
    } else if f & kpf::RESERVED != 0 {
        "reserved".into()
    } else if f & kpf::PGTABLE != 0 {
        pages("pgtable")
    } else if f & kpf::HUGE != 0 {
        pages("hugetlb")
    } else if f & kpf::THP != 0 {
        pages("thp")
    } else if f & kpf::ZERO_PAGE != 0 {
        pages("zero")
    } else if f & kpf::ANON != 0 {
        pages("anon")
    } else if f & (kpf::LRU | kpf::MMAP | kpf::UPTODATE) != 0 {
        pages("file")
    } else if f & kpf::COMPOUND_HEAD != 0 {
        pages("compound")
    } else if f & kpf::OFFLINE != 0 {
        "other offline".into()
    } else if f == 0 {
        "other unflagged".into()
    } else {
        format!("other flags={f:#x}")
    }
}

/// Largest order `o <= MAX_ORDER` with `pfn` aligned to `2^o` and
/// `2^o <= room`.
fn fit_order(pfn: u64, room: u64) -> u32 {
    let align = if pfn == 0 {
        MAX_ORDER
    } else {
        pfn.trailing_zeros().min(MAX_ORDER)
    };
    let fits = 63 - room.max(1).leading_zeros();
    align.min(fits)
}

/// The runs of one zone: `flags[i]` is the kpageflags word of PFN
/// `start + i`; `ram(pfn)` says whether the PFN is memory at all.
pub fn derive_runs(start: u64, flags: &[u64], ram: impl Fn(u64) -> bool) -> Vec<Run> {
    let n = flags.len();
    let mut runs: Vec<Run> = Vec::new();
    let mut i = 0;
    // End of the KPF_BUDDY run the cursor is in (found once per run).
    let mut buddy_end = 0;
    while i < n {
        let pfn = start + i as u64;
        let f = flags[i];
        let (len, what) = if !ram(pfn) || f & kpf::NOPAGE != 0 {
            (1, "nopage".to_string())
        } else if f & kpf::BUDDY != 0 {
            if buddy_end <= i {
                buddy_end = i + flags[i..]
                    .iter()
                    .enumerate()
                    .take_while(|&(j, g)| g & kpf::BUDDY != 0 && ram(pfn + j as u64))
                    .count();
            }
            let o = fit_order(pfn, (buddy_end - i) as u64);
            (1usize << o, format!("free order={o}"))
        } else if f & kpf::COMPOUND_HEAD != 0 {
            let tails = flags[i + 1..]
                .iter()
                .take_while(|&&g| g & kpf::COMPOUND_TAIL != 0 && g & kpf::COMPOUND_HEAD == 0)
                .count();
            let len = tails + 1;
            (len, in_use(f, len.ilog2()))
        } else {
            (1, in_use(f & !kpf::COMPOUND_TAIL, 0))
        };
        match runs.last_mut() {
            Some(r) if r.what == what && r.start + r.pages == pfn => r.pages += len as u64,
            _ => runs.push(Run {
                start: pfn,
                pages: len as u64,
                what,
            }),
        }
        i += len;
    }
    runs
}

/// Reads `count` words of /proc/kpageflags from PFN `start` (KPF_NOPAGE
/// past the end of what the kernel dumps).
fn read_flags(f: &File, start: u64, count: u64) -> io::Result<Vec<u64>> {
    // Filled, so every page of it is faulted in before the scan starts:
    // the scan then moves no page between the buddy and this process.
    let mut out = vec![kpf::NOPAGE; count as usize];
    let mut buf = vec![0u8; 8 << 16];
    let mut done = 0usize;
    while done < out.len() {
        let want = (out.len() - done).min(buf.len() / 8);
        let got = f.read_at(&mut buf[..want * 8], (start + done as u64) * 8)? / 8;
        if got == 0 {
            break;
        }
        for (k, w) in buf[..got * 8].chunks_exact(8).enumerate() {
            out[done + k] = u64::from_ne_bytes(w.try_into().unwrap_or_default());
        }
        done += got;
    }
    Ok(out)
}

/// The real map of `zones` (each zone's runs, in order).
pub fn real_map(zone: Option<&str>) -> Result<Vec<(Zone, Vec<Run>)>, String> {
    let rd = |p: &str| fs::read_to_string(p).map_err(|e| format!("{p}: {e}"));
    let all = zones(&rd("/proc/zoneinfo")?);
    let mut ram = ram_ranges(&rd("/proc/iomem")?);
    // User-Mode Linux lists no System RAM in /proc/iomem: its memory is
    // one flat range with no holes, which its zones span exactly.
    if ram.is_empty() && crate::dev::is_uml() {
        ram = all
            .iter()
            .map(|z| (z.start_pfn, z.start_pfn + z.spanned))
            .collect();
    }
    if ram.is_empty() {
        return Err("/proc/iomem shows no System RAM (not root?)".into());
    }
    let file = File::open("/proc/kpageflags")
        .map_err(|e| format!("/proc/kpageflags: {e} (CONFIG_PROC_PAGE_MONITOR)"))?;
    let picked: Vec<Zone> = all
        .into_iter()
        .filter(|z| zone.is_none_or(|n| n.eq_ignore_ascii_case(&z.name)))
        .collect();
    if picked.is_empty() {
        return Err(format!(
            "no zone {} with pages in /proc/zoneinfo",
            zone.unwrap_or("")
        ));
    }
    picked
        .into_iter()
        .map(|z| {
            let flags = read_flags(&file, z.start_pfn, z.spanned)
                .map_err(|e| format!("/proc/kpageflags: {e}"))?;
            let runs = derive_runs(z.start_pfn, &flags, |p| {
                ram.iter().any(|&(a, b)| (a..b).contains(&p))
            });
            Ok((z, runs))
        })
        .collect()
}

/// The map as text.
pub fn format_map(map: &[(Zone, Vec<Run>)]) -> String {
    let mut s = String::from("# memlab real/pagemap 1\n# zone start_pfn pages kind [detail]\n");
    for (z, runs) in map {
        for r in runs {
            s.push_str(&format!(
                "{} {:#x} {} {}\n",
                z.name, r.start, r.pages, r.what
            ));
        }
    }
    s
}

/// `memlabctl pagemap --real|--mirror [--zone NAME] [-o FILE]`.
pub fn pagemap_cmd(mirror: bool, zone: Option<&str>, out: Option<&PathBuf>) -> ExitCode {
    let text = if mirror {
        let p = format!("{DEBUGFS}/mirror/pagemap");
        match fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) => return fail(format!("{p}: {e}")),
        }
    } else {
        match real_map(zone) {
            Ok(m) => format_map(&m),
            Err(e) => return fail(format!("pagemap --real: {e}")),
        }
    };
    let r = match out {
        Some(p) => fs::write(p, &text).map_err(|e| format!("{}: {e}", p.display())),
        None => io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .map_err(|e| e.to_string()),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(format!("pagemap: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(runs: &[Run]) -> Vec<String> {
        runs.iter()
            .map(|r| format!("{:#x} {} {}", r.start, r.pages, r.what))
            .collect()
    }

    #[test]
    fn buddy_runs_split_into_aligned_blocks() {
        // PFN 0x100..0x200: 0x100 in use, 0x101..0x110 free (15 pages:
        // orders 0,1,2,3 by alignment), then a reserved page, then 0x111..
        let mut f = vec![0u64; 0x100];
        f[0] = kpf::SLAB;
        for x in &mut f[1..0x10] {
            *x = kpf::BUDDY;
        }
        f[0x10] = kpf::RESERVED;
        for x in &mut f[0x11..0x100] {
            *x = kpf::BUDDY;
        }
        let runs = derive_runs(0x100, &f, |_| true);
        assert_eq!(
            lines(&runs),
            [
                "0x100 1 slab order=0",
                "0x101 1 free order=0",
                "0x102 2 free order=1",
                "0x104 4 free order=2",
                "0x108 8 free order=3",
                "0x110 1 reserved",
                "0x111 1 free order=0",
                "0x112 2 free order=1",
                "0x114 4 free order=2",
                "0x118 8 free order=3",
                "0x120 32 free order=5",
                "0x140 64 free order=6",
                "0x180 128 free order=7",
            ]
        );
        assert_eq!(runs.iter().map(|r| r.pages).sum::<u64>(), 0x100);
    }

    #[test]
    fn big_runs_stop_at_max_order_and_merge() {
        let f = vec![kpf::BUDDY; 4096 + 3];
        let runs = derive_runs(0x4000, &f, |_| true);
        assert_eq!(
            lines(&runs),
            [
                "0x4000 4096 free order=10",
                "0x5000 2 free order=1",
                "0x5002 1 free order=0"
            ]
        );
    }

    #[test]
    fn compounds_holes_and_kinds() {
        let head = kpf::COMPOUND_HEAD;
        let tail = kpf::COMPOUND_TAIL;
        let f = [
            head | kpf::SLAB,
            tail | kpf::SLAB,
            tail | kpf::SLAB,
            tail | kpf::SLAB,
            head | kpf::SLAB, // next slab of the same order: same run
            tail | kpf::SLAB,
            tail | kpf::SLAB,
            tail | kpf::SLAB,
            kpf::ANON | kpf::LRU | kpf::MMAP,
            head,
            tail,
            0,
            0,
            kpf::BUDDY, // hole from here: not RAM
            0,
            kpf::PGTABLE,
        ];
        let runs = derive_runs(0x10, &f, |p| p < 0x10 + 13);
        assert_eq!(
            lines(&runs),
            [
                "0x10 8 slab order=2",
                "0x18 1 pages anon order=0",
                "0x19 2 pages compound order=1",
                "0x1b 2 other unflagged",
                "0x1d 3 nopage",
            ]
        );
    }

    #[test]
    fn proc_files_parse() {
        let zi = "Node 0, zone      DMA\n  pages free     3584\n        spanned  4095\n  start_pfn:           1\n\
                  Node 0, zone   Normal\n        spanned  524288\n  start_pfn:           1048576\n\
                  Node 0, zone  Movable\n        spanned  0\n";
        assert_eq!(
            zones(zi),
            [
                Zone {
                    name: "DMA".into(),
                    start_pfn: 1,
                    spanned: 4095
                },
                Zone {
                    name: "Normal".into(),
                    start_pfn: 1 << 20,
                    spanned: 1 << 19
                },
            ]
        );
        let iomem = "00000000-00000fff : Reserved\n00001000-0009fbff : System RAM\n\
                     00100000-bffdffff : System RAM\n  01000000-01ffffff : Kernel code\n";
        assert_eq!(ram_ranges(iomem), [(1, 0xa0), (0x100, 0xbffe0)]);
        assert_eq!(fit_order(0, 5), 2);
        assert_eq!(fit_order(0x100, 1 << 20), 8);
        assert_eq!(fit_order(0x400, 1 << 20), MAX_ORDER);
    }
}
