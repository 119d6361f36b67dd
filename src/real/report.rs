// SPDX-License-Identifier: GPL-2.0

//! The report of one exercise run: one row per case, buddyinfo around the
//! run, rendered as a text table (`real/report`) and as JSON
//! (`real/report.json`). Built per run, replaced by the next run of the same
//! exercise, so its memory is bounded by the largest exercise.

use crate::platform::phys::{BuddyInfo, Placement};
use crate::request::Zone;
use core::fmt::{self, Write};
use kernel::prelude::*;

/// Names of the exercises, indexed by `MEMLAB_EX_*`.
pub(crate) const EXERCISE_NAMES: [&str; crate::uapi::MEMLAB_NR_EXERCISES as usize] =
    ["kmalloc", "vmalloc", "pages", "kmem_cache", "dma", "gfp"];

/// Latency of a case's main operation over its repetitions.
#[derive(Clone, Copy, Default)]
pub(crate) struct Latency {
    /// Repetitions measured.
    pub(crate) reps: u32,
    /// Fastest, ns.
    pub(crate) min: u64,
    /// Median, ns.
    pub(crate) median: u64,
    /// 99th percentile, ns.
    pub(crate) p99: u64,
}

impl Latency {
    /// Sorts `samples` and takes min, median and p99, by the one rule of
    /// every figure (`crate::stats`).
    pub(crate) fn from_samples(samples: &mut [u64]) -> Self {
        // Called under the atomic-GFP spinlock too: must not sleep.
        crate::platform::sort::sort_atomic(samples);
        let Some(&min) = samples.first() else {
            return Latency::default();
        };
        let (median, p99) = crate::stats::median_p99(samples);
        Latency {
            reps: samples.len() as u32,
            min,
            median,
            p99,
        }
    }
}

/// One case of an exercise.
pub(crate) struct Row {
    /// The API exercised, e.g. `kmalloc`, `alloc_pages`, `GFP_NOIO`.
    pub(crate) what: &'static str,
    /// Name of the parameter (`size`, `order`, ...).
    pub(crate) arg_name: &'static str,
    /// Its value.
    pub(crate) arg: u64,
    /// Whether the allocation succeeded.
    pub(crate) ok: bool,
    /// Whether it was expected to.
    pub(crate) expect_ok: bool,
    /// Whether every check of the case held.
    pub(crate) pass: bool,
    /// Repetitions of a case expected to succeed that failed (any fails it).
    pub(crate) failed_reps: u32,
    /// `MEMLAB_ZONE_*` of the memory.
    pub(crate) zone: u32,
    /// Pages spanned.
    pub(crate) nr_pages: u64,
    /// Physically contiguous runs.
    pub(crate) phys_runs: u64,
    /// log2 alignment of the physical address.
    pub(crate) align_log2: u32,
    /// `Some(zero?)` when zeroing was requested and checked.
    pub(crate) zeroed: Option<bool>,
    /// Family-specific facts, `("", _)` for none.
    pub(crate) extra: [(&'static str, u64); 4],
    /// Latency of the allocation call.
    pub(crate) lat: Latency,
}

impl Row {
    /// Records whether memory asked zeroed read zero; returns it.
    pub(crate) fn check_zero(&mut self, zeroed: bool) -> bool {
        self.zeroed = Some(zeroed);
        zeroed
    }

    /// Records where the memory of a successful case sits.
    pub(crate) fn place(&mut self, at: Placement) {
        self.zone = at.zone;
        self.nr_pages = at.nr_pages;
        self.phys_runs = at.runs;
        self.align_log2 = at.align_log2;
    }

    /// A row for `what` with parameter `arg_name = arg`, failed until filled.
    pub(crate) fn new(
        what: &'static str,
        arg_name: &'static str,
        arg: u64,
        expect_ok: bool,
    ) -> Self {
        Row {
            what,
            arg_name,
            arg,
            ok: false,
            expect_ok,
            pass: false,
            failed_reps: 0,
            zone: crate::uapi::MEMLAB_ZONE_MIXED,
            nr_pages: 0,
            phys_runs: 0,
            align_log2: 0,
            zeroed: None,
            extra: [("", 0); 4],
            lat: Latency::default(),
        }
    }

    /// Records a family-specific fact in the first free slot.
    pub(crate) fn note(&mut self, name: &'static str, value: u64) {
        if let Some(slot) = self.extra.iter_mut().find(|(n, _)| n.is_empty()) {
            *slot = (name, value);
        }
    }
}

/// The last run of one exercise.
pub(crate) struct Report {
    /// `MEMLAB_EX_*`.
    pub(crate) id: u32,
    /// Repetitions asked for per case.
    pub(crate) reps: u32,
    /// Free lists before the run.
    pub(crate) before: BuddyInfo,
    /// Free lists after the run (everything freed again).
    pub(crate) after: BuddyInfo,
    /// The cases.
    pub(crate) rows: KVec<Row>,
    /// Median over all samples of all cases, ns.
    pub(crate) median_ns: u64,
    /// p99 over all samples of all cases, ns.
    pub(crate) p99_ns: u64,
}

impl Report {
    /// Cases whose checks held.
    pub(crate) fn passed(&self) -> usize {
        self.rows.iter().filter(|r| r.pass).count()
    }

    /// The exercise's name.
    pub(crate) fn name(&self) -> &'static str {
        EXERCISE_NAMES.get(self.id as usize).copied().unwrap_or("?")
    }

    /// Writes the readable table.
    pub(crate) fn write_text(&self, f: &mut impl Write) -> fmt::Result {
        writeln!(
            f,
            "== {} (exercise {}, reps {}): {}/{} cases passed, median {} ns, p99 {} ns ==",
            self.name(),
            self.id,
            self.reps,
            self.passed(),
            self.rows.len(),
            self.median_ns,
            self.p99_ns
        )?;
        writeln!(f, "buddyinfo before:")?;
        self.before.write_text(f, "  ")?;
        writeln!(f, "buddyinfo after:")?;
        self.after.write_text(f, "  ")?;
        writeln!(
            f,
            "{:<18} {:>16} {:>4} {:>6} {:>4} {:>7} {:>6} {:>5} {:>5} {:>6} {:>4} {:>4} {:>9} {:>9} {:>9}  extra",
            "what", "arg", "ok", "expect", "pass", "zone", "pages", "runs", "align", "zeroed", "reps",
            "fail", "min_ns", "median_ns", "p99_ns"
        )?;
        for r in self.rows.iter() {
            let mut arg = ArgBuf::new();
            let _ = write!(arg, "{}={}", r.arg_name, r.arg);
            writeln!(
                f,
                "{:<18} {:>16} {:>4} {:>6} {:>4} {:>7} {:>6} {:>5} {:>5} {:>6} {:>4} {:>4} {:>9} {:>9} {:>9} {}",
                r.what,
                arg.as_str(),
                yes(r.ok),
                yes(r.expect_ok),
                yes(r.pass),
                if r.ok { Zone::name_of_uapi(r.zone) } else { "-" },
                r.nr_pages,
                r.phys_runs,
                r.align_log2,
                match r.zeroed {
                    None => "-",
                    Some(z) => yes(z),
                },
                r.lat.reps,
                r.failed_reps,
                r.lat.min,
                r.lat.median,
                r.lat.p99,
                Extra(&r.extra),
            )?;
        }
        writeln!(f)
    }

    /// Writes the JSON object of this report.
    pub(crate) fn write_json(&self, f: &mut impl Write) -> fmt::Result {
        write!(
            f,
            "{{\"name\":\"{}\",\"id\":{},\"reps\":{},\"cases\":{},\"passed\":{},\"median_ns\":{},\"p99_ns\":{},\"buddyinfo_before\":",
            self.name(),
            self.id,
            self.reps,
            self.rows.len(),
            self.passed(),
            self.median_ns,
            self.p99_ns
        )?;
        self.before.write_json(f)?;
        write!(f, ",\"buddyinfo_after\":")?;
        self.after.write_json(f)?;
        write!(f, ",\"rows\":[")?;
        for (i, r) in self.rows.iter().enumerate() {
            if i > 0 {
                write!(f, ",")?;
            }
            write!(
                f,
                "{{\"what\":\"{}\",\"{}\":{},\"ok\":{},\"expect_ok\":{},\"pass\":{},\"zone\":\"{}\",\"nr_pages\":{},\"phys_runs\":{},\"align_log2\":{},\"zeroed\":{},\"reps\":{},\"failed_reps\":{},\"min_ns\":{},\"median_ns\":{},\"p99_ns\":{}",
                r.what,
                r.arg_name,
                r.arg,
                r.ok,
                r.expect_ok,
                r.pass,
                if r.ok { Zone::name_of_uapi(r.zone) } else { "-" },
                r.nr_pages,
                r.phys_runs,
                r.align_log2,
                match r.zeroed {
                    None => "null",
                    Some(true) => "true",
                    Some(false) => "false",
                },
                r.lat.reps,
                r.failed_reps,
                r.lat.min,
                r.lat.median,
                r.lat.p99
            )?;
            for (name, value) in r.extra.iter().filter(|(n, _)| !n.is_empty()) {
                write!(f, ",\"{name}\":{value}")?;
            }
            write!(f, "}}")?;
        }
        write!(f, "]}}")
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// The extra facts as `name=value` pairs.
struct Extra<'a>(&'a [(&'static str, u64); 4]);

impl fmt::Display for Extra<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in self.0.iter().filter(|(n, _)| !n.is_empty()) {
            write!(f, " {name}={value}")?;
        }
        Ok(())
    }
}

/// A small stack buffer to pad a formatted `name=value` as one column.
struct ArgBuf {
    buf: [u8; 40],
    len: usize,
}

impl ArgBuf {
    fn new() -> Self {
        ArgBuf {
            buf: [0; 40],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }
}

impl Write for ArgBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}
