// SPDX-License-Identifier: GPL-2.0

//! The kmem tracepoints' text (tracefs `trace`) turned into memlab's trace
//! format (`a ID FAMILY ARG [gfp=NAME]` / `f ID`, see [`crate::bench::parse_trace`]).
//!
//! Pairing: an allocation gets the next ID; a free finds it by pointer
//! (kmalloc and kmem_cache share one table, since `kfree` takes
//! kmem_cache objects and the reverse) or by PFN (pages). What does not pair:
//!
//! - a free of something allocated before recording: dropped, counted as
//!   `unmatched_frees`;
//! - an allocation at an address that is still live in the table: the old
//!   object was freed by a path without a tracepoint (`kmem_cache_free_bulk`,
//!   `kfree_bulk`, the kfree_rcu sheaves of SLUB 7.2), so an `f` is written
//!   for it first, marked `# implied`, counted as `implied_frees`;
//! - `kfree(NULL)`, `kfree(ZERO_SIZE_PTR)` and failed allocations (pointer
//!   or PFN 0): dropped, counted;
//! - objects still allocated when CMD ends stay allocated: the trace ends
//!   with them live, as the kernel did (`live_at_end`).

use crate::names;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

/// The tracepoints recorded, in tracefs' `events/kmem/` names.
pub const EVENTS: [&str; 6] = [
    "kmalloc",
    "kfree",
    "kmem_cache_alloc",
    "kmem_cache_free",
    "mm_page_alloc",
    "mm_page_free",
];

/// One event of interest, from one line of tracefs' `trace`.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum Event {
    /// `kmalloc` (`cache == false`) or `kmem_cache_alloc`.
    Slab {
        cache: bool,
        ptr: u64,
        bytes_req: u64,
        bytes_alloc: u64,
        gfp: Option<u32>,
    },
    /// `kfree` or `kmem_cache_free`.
    SlabFree {
        ptr: u64,
    },
    PageAlloc {
        pfn: u64,
        order: u32,
        gfp: Option<u32>,
    },
    PageFree {
        pfn: u64,
        order: u32,
    },
}

/// A `key=value` field of an event line.
fn field<'a>(fields: &'a str, key: &str) -> Option<&'a str> {
    fields
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).ok()
}

fn num<T: std::str::FromStr>(fields: &str, key: &str) -> Option<T> {
    field(fields, key)?.parse().ok()
}

/// Parses one line of tracefs' `trace` (`TASK-PID [CPU] FLAGS TS: EVENT:
/// FIELDS`). `Ok(None)`: a comment or an event of no interest; `Err`: a kmem
/// event whose fields do not parse.
pub fn parse_line(line: &str) -> Result<Option<(&'static str, Event)>, String> {
    if line.starts_with('#') || line.trim().is_empty() {
        return Ok(None);
    }
    let Some((name, fields)) = EVENTS.iter().find_map(|&e| {
        let at = line.find(&format!(": {e}: "))?;
        Some((e, &line[at + e.len() + 4..]))
    }) else {
        return Ok(None);
    };
    let bad = || format!("cannot parse {name} event: {line:?}");
    let ptr = || field(fields, "ptr").and_then(hex).ok_or_else(bad);
    let ev = match name {
        "kmalloc" | "kmem_cache_alloc" => Event::Slab {
            cache: name == "kmem_cache_alloc",
            ptr: ptr()?,
            bytes_req: num(fields, "bytes_req").ok_or_else(bad)?,
            bytes_alloc: num(fields, "bytes_alloc").ok_or_else(bad)?,
            gfp: field(fields, "gfp_flags").and_then(gfp_of),
        },
        "kfree" | "kmem_cache_free" => Event::SlabFree { ptr: ptr()? },
        "mm_page_alloc" => Event::PageAlloc {
            pfn: field(fields, "pfn").and_then(hex).ok_or_else(bad)?,
            order: num(fields, "order").ok_or_else(bad)?,
            gfp: field(fields, "gfp_flags").and_then(gfp_of),
        },
        _ => Event::PageFree {
            pfn: field(fields, "pfn").and_then(hex).ok_or_else(bad)?,
            order: num(fields, "order").ok_or_else(bad)?,
        },
    };
    Ok(Some((name, ev)))
}

/// memlab's GFP selector for a tracepoint's `gfp_flags` text
/// (`GFP_KERNEL|__GFP_ZERO`, ...): a zone modifier wins (GFP_DMA, GFP_DMA32),
/// else the leading composite; GFP_KERNEL_ACCOUNT counts as GFP_KERNEL (memlab
/// has no memcg) and GFP_HIGHUSER_MOVABLE as GFP_HIGHUSER (no movable
/// selector). `None` when memlab has no equivalent (GFP_TRANSHUGE, bare
/// `__GFP_*` lists, `none`).
pub fn gfp_of(text: &str) -> Option<u32> {
    use crate::dev::uapi::*;
    let flags: Vec<&str> = text.split('|').collect();
    let has = |f: &str| flags.contains(&f);
    let base = if has("GFP_DMA") || has("__GFP_DMA") {
        MEMLAB_GFP_DMA
    } else if has("GFP_DMA32") || has("__GFP_DMA32") {
        MEMLAB_GFP_DMA32
    } else {
        match flags.first().copied()? {
            "GFP_KERNEL" | "GFP_KERNEL_ACCOUNT" => MEMLAB_GFP_KERNEL,
            "GFP_HIGHUSER" | "GFP_HIGHUSER_MOVABLE" => MEMLAB_GFP_HIGHUSER,
            other => names::lookup(names::GFPS, other)?,
        }
    };
    Some(
        base | if has("__GFP_ZERO") {
            MEMLAB_GFP_ZERO
        } else {
            0
        },
    )
}

/// What a recording saw, printed as the summary (`--json-stats`: JSON).
#[derive(Serialize, Debug, Default, PartialEq)]
pub struct Stats {
    /// kmem events read, all types.
    pub events: u64,
    /// Events read per tracepoint.
    pub per_event: BTreeMap<&'static str, u64>,
    /// `a` lines written.
    pub allocs: u64,
    /// Traced frees that found their allocation (pairs matched).
    pub pairs_matched: u64,
    /// Traced frees of something allocated before recording (dropped).
    pub unmatched_frees: u64,
    /// pairs_matched / (pairs_matched + unmatched_frees), in percent.
    pub frees_matched_pct: f64,
    /// `f` lines added because an address was handed out again while live.
    pub implied_frees: u64,
    /// Page frees whose order differs from the allocation's (split pages).
    pub order_mismatches: u64,
    /// kfree(NULL) / kfree(ZERO_SIZE_PTR), dropped.
    pub null_frees: u64,
    /// Allocations that returned NULL (or PFN 0), dropped.
    pub failed_allocs: u64,
    /// Allocations still live when the command ended (left allocated).
    pub live_at_end: u64,
    /// Sum of bytes_req and of bytes_alloc over kmalloc events.
    pub kmalloc_bytes_req: u64,
    pub kmalloc_bytes_alloc: u64,
    /// Events the ring buffer lost (per_cpu/*/stats overrun + dropped).
    pub lost_events: u64,
    /// Lines naming a kmem event that did not parse.
    pub unparsed: u64,
}

/// Builds the trace, event by event.
#[derive(Default)]
pub struct Pairer {
    next_id: u64,
    slab: HashMap<u64, u64>,
    /// PFN -> (ID, order).
    pages: HashMap<u64, (u64, u32)>,
    pub out: String,
    pub stats: Stats,
}

/// kfree() returns at once for these (ZERO_OR_NULL_PTR).
const ZERO_SIZE_PTR: u64 = 16;

impl Pairer {
    fn alloc(&mut self, family: &str, arg: u64, gfp: Option<u32>) -> u64 {
        self.next_id += 1;
        self.stats.allocs += 1;
        let _ = write!(self.out, "a {} {family} {arg}", self.next_id);
        if let Some(g) = gfp {
            let _ = write!(self.out, " gfp={}", names::gfp_name(g));
        }
        self.out.push('\n');
        self.next_id
    }

    fn free(&mut self, id: Option<u64>, implied: bool) {
        match id {
            Some(id) if implied => {
                self.stats.implied_frees += 1;
                let _ = writeln!(self.out, "f {id} # implied: address reused");
            }
            Some(id) => {
                self.stats.pairs_matched += 1;
                let _ = writeln!(self.out, "f {id}");
            }
            None => self.stats.unmatched_frees += 1,
        }
    }

    /// Adds one event.
    pub fn push(&mut self, name: &'static str, ev: Event) {
        self.stats.events += 1;
        *self.stats.per_event.entry(name).or_default() += 1;
        match ev {
            Event::Slab {
                cache,
                ptr,
                bytes_req,
                bytes_alloc,
                gfp,
            } => {
                if !cache {
                    self.stats.kmalloc_bytes_req += bytes_req;
                    self.stats.kmalloc_bytes_alloc += bytes_alloc;
                }
                if ptr <= ZERO_SIZE_PTR {
                    self.stats.failed_allocs += 1;
                    return;
                }
                let old = self.slab.remove(&ptr);
                if old.is_some() {
                    self.free(old, true);
                }
                let family = if cache { "kmem_cache" } else { "kmalloc" };
                let id = self.alloc(family, bytes_req, gfp);
                self.slab.insert(ptr, id);
            }
            Event::SlabFree { ptr } if ptr <= ZERO_SIZE_PTR => self.stats.null_frees += 1,
            Event::SlabFree { ptr } => {
                let id = self.slab.remove(&ptr);
                self.free(id, false);
            }
            Event::PageAlloc { pfn: 0, .. } => self.stats.failed_allocs += 1,
            Event::PageAlloc { pfn, order, gfp } => {
                if let Some((old, _)) = self.pages.remove(&pfn) {
                    self.free(Some(old), true);
                }
                let id = self.alloc("pages", order.into(), gfp);
                self.pages.insert(pfn, (id, order));
            }
            Event::PageFree { pfn, order } => {
                let found = self.pages.remove(&pfn);
                if found.is_some_and(|(_, o)| o != order) {
                    self.stats.order_mismatches += 1;
                }
                self.free(found.map(|(id, _)| id), false);
            }
        }
    }

    /// Closes the trace: counts what is still live and the match rate.
    pub fn finish(mut self) -> (String, Stats) {
        let s = &mut self.stats;
        s.live_at_end = (self.slab.len() + self.pages.len()) as u64;
        let frees = s.pairs_matched + s.unmatched_frees;
        s.frees_matched_pct = if frees == 0 {
            0.0
        } else {
            100.0 * s.pairs_matched as f64 / frees as f64
        };
        (self.out, self.stats)
    }
}

/// Turns tracefs' whole `trace` text into (steps, stats).
pub fn convert(trace: &str) -> (String, Stats) {
    let mut p = Pairer::default();
    for line in trace.lines() {
        match parse_line(line) {
            Ok(Some((name, ev))) => p.push(name, ev),
            Ok(None) => {}
            Err(_) => p.stats.unparsed += 1,
        }
    }
    p.finish()
}

impl Stats {
    /// The summary for people, several lines.
    pub fn human(&self) -> String {
        let per: Vec<String> = self
            .per_event
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        format!(
            "trace record: {} kmem events ({})\n\
             \x20 {} allocations written; {} frees paired ({:.1}% of traced frees), \
             {} frees of objects allocated before recording dropped\n\
             \x20 {} implied frees (address reused: freed by an untraced bulk/RCU path), \
             {} page order mismatches, {} NULL frees, {} failed allocations\n\
             \x20 {} allocations still live at the end (left allocated)\n\
             \x20 kmalloc bytes requested {} / allocated {}\n\
             \x20 lost events (ring buffer overrun): {}{}",
            self.events,
            per.join(", "),
            self.allocs,
            self.pairs_matched,
            self.frees_matched_pct,
            self.unmatched_frees,
            self.implied_frees,
            self.order_mismatches,
            self.null_frees,
            self.failed_allocs,
            self.live_at_end,
            self.kmalloc_bytes_req,
            self.kmalloc_bytes_alloc,
            self.lost_events,
            if self.unparsed > 0 {
                format!("\n  {} kmem lines did not parse", self.unparsed)
            } else {
                String::new()
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{parse_trace, Step};
    use crate::dev::uapi::*;

    /// Lines captured from a tracefs instance (hash-ptr off) on the bench
    /// kernel (7.2.13), one per event type, after a header line.
    const FIXTURE: &str = include_str!("testdata/kmem-trace-bench.txt");

    #[test]
    fn real_lines_parse() {
        let mut seen = BTreeMap::new();
        for l in FIXTURE.lines() {
            if let Some((name, ev)) = parse_line(l).unwrap() {
                seen.insert(name, ev);
            }
        }
        assert_eq!(seen.len(), 6, "{seen:?}");
        assert_eq!(
            seen["kmalloc"],
            Event::Slab {
                cache: false,
                ptr: 0xffff888100cc5d80,
                bytes_req: 60,
                bytes_alloc: 64,
                gfp: Some(MEMLAB_GFP_NOFS | MEMLAB_GFP_ZERO)
            }
        );
        assert!(matches!(
            seen["kmem_cache_alloc"],
            Event::Slab {
                cache: true,
                bytes_req: 192,
                bytes_alloc: 192,
                gfp: Some(MEMLAB_GFP_KERNEL),
                ..
            }
        ));
        assert_eq!(
            seen["mm_page_alloc"],
            Event::PageAlloc {
                pfn: 0x100ddc,
                order: 0,
                gfp: Some(MEMLAB_GFP_KERNEL | MEMLAB_GFP_ZERO)
            }
        );
        assert_eq!(
            seen["mm_page_free"],
            Event::PageFree {
                pfn: 0x1051b7,
                order: 0
            }
        );
        assert_eq!(
            seen["kfree"],
            Event::SlabFree {
                ptr: 0xffff888101d30140
            }
        );
        assert!(parse_line("  sh-1 [000] ..... 1.0: kmalloc: ptr=zz bytes_req=1").is_err());
        assert_eq!(
            parse_line("  sh-1 [000] ..... 1.0: rss_stat: mm_id=1").unwrap(),
            None
        );
    }

    #[test]
    fn gfp_names() {
        assert_eq!(gfp_of("GFP_KERNEL_ACCOUNT"), Some(MEMLAB_GFP_KERNEL));
        assert_eq!(
            gfp_of("GFP_HIGHUSER_MOVABLE|__GFP_ZERO"),
            Some(MEMLAB_GFP_HIGHUSER | MEMLAB_GFP_ZERO)
        );
        assert_eq!(gfp_of("GFP_KERNEL|GFP_DMA32"), Some(MEMLAB_GFP_DMA32));
        assert_eq!(gfp_of("GFP_ATOMIC|__GFP_NOWARN"), Some(MEMLAB_GFP_ATOMIC));
        assert_eq!(gfp_of("GFP_TRANSHUGE"), None);
        assert_eq!(gfp_of("__GFP_HIGH|__GFP_NOWARN"), None);
        assert_eq!(gfp_of("none"), None);
    }

    fn ev_slab(cache: bool, ptr: u64, size: u64) -> Event {
        Event::Slab {
            cache,
            ptr,
            bytes_req: size,
            bytes_alloc: size.next_power_of_two(),
            gfp: Some(MEMLAB_GFP_KERNEL | MEMLAB_GFP_ZERO),
        }
    }

    #[test]
    fn pairing_rules() {
        let mut p = Pairer::default();
        p.push("kmalloc", ev_slab(false, 0x1000, 100));
        p.push("kmem_cache_alloc", ev_slab(true, 0x2000, 40));
        p.push("kfree", Event::SlabFree { ptr: 0x9999 }); // before recording
        p.push("kfree", Event::SlabFree { ptr: 0x2000 }); // kfree of a cache object
        p.push("kfree", Event::SlabFree { ptr: 0 });
        p.push("kmalloc", ev_slab(false, 0x1000, 8)); // 0x1000 freed untraced
        p.push("kmalloc", ev_slab(false, 0, 8)); // failed
        let alloc = |pfn, order| Event::PageAlloc {
            pfn,
            order,
            gfp: None,
        };
        p.push("mm_page_alloc", alloc(0x100, 2));
        p.push(
            "mm_page_free",
            Event::PageFree {
                pfn: 0x100,
                order: 0,
            },
        );
        p.push("mm_page_alloc", alloc(0x200, 0));
        let (text, s) = p.finish();
        assert_eq!(
            text,
            "a 1 kmalloc 100 gfp=GFP_KERNEL|__GFP_ZERO\n\
             a 2 kmem_cache 40 gfp=GFP_KERNEL|__GFP_ZERO\n\
             f 2\n\
             f 1 # implied: address reused\n\
             a 3 kmalloc 8 gfp=GFP_KERNEL|__GFP_ZERO\n\
             a 4 pages 2\n\
             f 4\n\
             a 5 pages 0\n"
        );
        assert_eq!(s.events, 10);
        assert_eq!(s.per_event["kfree"], 3);
        assert_eq!(
            (
                s.allocs,
                s.pairs_matched,
                s.unmatched_frees,
                s.implied_frees
            ),
            (5, 2, 1, 1)
        );
        assert_eq!(
            (s.null_frees, s.failed_allocs, s.order_mismatches),
            (1, 1, 1)
        );
        assert_eq!(s.live_at_end, 2);
        assert!((s.frees_matched_pct - 200.0 / 3.0).abs() < 1e-9);
        assert_eq!(s.kmalloc_bytes_req, 116);
        // memlab's parser reads it back, gfp included.
        let steps = parse_trace(&text).unwrap();
        assert_eq!(steps.len(), 8);
        assert_eq!(steps[2], Step::Free { id: 2 });
    }

    #[test]
    fn fixture_converts_and_parses() {
        let (text, s) = convert(FIXTURE);
        assert_eq!(s.events, 6);
        assert_eq!(s.unparsed, 0);
        assert!(parse_trace(&text).is_ok(), "{text}");
        assert!(s.human().contains("6 kmem events"));
    }
}
