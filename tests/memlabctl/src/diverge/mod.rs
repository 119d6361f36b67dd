// SPDX-License-Identifier: GPL-2.0

//! `memlabctl diverge`: one operation stream on both sides, sampled, and
//! where the two part.
//!
//! The stream (a trace, e.g. from `trace record`, or a seeded synthetic
//! one sized to the arena, `stream.rs`) runs in a replay session
//! (`MEMLAB_IOC_SESSION`) on the real allocators, then in one on the
//! mirror, in chunks of `--sample-every` steps; after each chunk, with the
//! stream's objects live, one sample of that side (`sample.rs`): the
//! session's own caches, zone Normal's free lists and per-CPU pages, two
//! high-order probes. The report (`score.rs`) compares the two series of
//! every metric: real and mirror at the end, the largest gap along the way
//! and its step, a score, and for every large gap a line naming the
//! mechanism; the steps where each side's order-3 and order-9 probes first
//! fail, with both sides' free lists then. Text, or JSON with `--json`;
//! `--out FILE` writes the JSON (what `memplot` draws) too.
//!
//! Like `frag`, the two sides compare only on arenas of equal size (the
//! free memory of zone Normal at step 0): the command fails when they
//! differ by more than a tenth, unless `--unequal-arenas`.

mod report;
pub(crate) mod sample;
mod score;
pub(crate) mod stream;

use crate::args::{DivergeArgs, StreamKind};
use crate::cli::{fail, json_line};
use crate::dev::Memlab;
use crate::replay::{encode, parse_trace, Step};
use crate::slabstat::Side;
pub use report::DivergeReport;
use sample::Sample;
use std::process::ExitCode;

/// One side's run of the stream.
pub struct SideRun {
    pub side: Side,
    /// The session's number (its caches are `memlab_s<n>_*`).
    pub session: u32,
    /// The session's counts at CLOSE.
    pub end: crate::dev::uapi::MemlabSession,
    pub samples: Vec<Sample>,
}

/// Closes the session when dropped, so an error leaves nothing behind
/// (closing the file would too).
struct Open<'a> {
    d: &'a Memlab,
    session: u32,
    closed: bool,
}

impl Open<'_> {
    fn close(mut self) -> Result<crate::dev::uapi::MemlabSession, String> {
        self.closed = true;
        self.d
            .session_close(self.session)
            .map_err(|e| format!("SESSION CLOSE {}: {e}", self.session))
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        if !self.closed {
            let _ = self.d.session_close(self.session);
        }
    }
}

/// Runs `steps` on `side` in chunks of `every`, sampling before the first
/// chunk and after each.
fn run_side(
    d: &Memlab,
    side: Side,
    steps: &[crate::dev::uapi::MemlabReplayStep],
    every: usize,
    ids: u32,
    max_bytes: u64,
    progress: &dyn Fn(&str),
) -> Result<SideRun, String> {
    let name = side.name();
    let o = d
        .session_open(sample::backend(side), ids, max_bytes)
        .map_err(|e| format!("SESSION OPEN on {name} ({max_bytes} bytes, {ids} ids): {e}"))?;
    let open = Open {
        d,
        session: o.session,
        closed: false,
    };
    let mut samples = vec![sample::take(d, side, o.session, 0, 0)?];
    let chunks = steps.chunks(every.max(1));
    let n = chunks.len();
    for (i, chunk) in chunks.enumerate() {
        let q = d
            .session_run(o.session, chunk)
            .map_err(|e| format!("SESSION RUN on {name}, chunk {}: {e}", i + 1))?;
        samples.push(sample::take(d, side, o.session, q.steps_done, q.failed)?);
        if (i + 1) % 20 == 0 || i + 1 == n {
            progress(&format!("{name}: {}/{} steps", q.steps_done, steps.len()));
        }
    }
    let end = open.close()?;
    Ok(SideRun {
        side,
        session: o.session,
        end,
        samples,
    })
}

/// The stream `a` asks for, a synthetic one sized to `arena_pages`, and
/// how it was made.
fn stream(a: &DivergeArgs, arena_pages: u64) -> Result<(Vec<Step>, report::StreamInfo), String> {
    if let Some(path) = &a.trace {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let steps = parse_trace(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let info = report::StreamInfo::trace(path, steps.len());
        return Ok((steps, info));
    }
    let mix = match a.stream {
        StreamKind::Fragment => stream::FRAGMENT,
        StreamKind::Mixed => stream::MIXED,
    };
    let mix = stream::Mix {
        fill: a.fill.map_or(mix.fill, |f| f64::from(f) / 100.0),
        ..mix
    };
    let steps = stream::generate(a.steps, a.seed, arena_pages * 4096, mix);
    let name = match a.stream {
        StreamKind::Fragment => "fragment",
        StreamKind::Mixed => "mixed",
    };
    let info = report::StreamInfo::synthetic(name, a.seed, mix.fill, steps.len());
    Ok((steps, info))
}

/// `memlabctl diverge`.
pub fn diverge(a: &DivergeArgs) -> ExitCode {
    match run(a) {
        Ok(code) => code,
        Err(e) => fail(format!("diverge: {e}")),
    }
}

fn run(a: &DivergeArgs) -> Result<ExitCode, String> {
    let d = Memlab::open().map_err(|e| format!("{}: {e}", crate::dev::DEV_PATH))?;
    // One CPU for the whole run: every chunk fills that CPU's caches on
    // both sides, and the samples read them there.
    let _saved = crate::bench::SavedAffinity::save().map_err(|e| e.to_string())?;
    crate::bench::pin_to(0).map_err(|e| format!("sched_setaffinity(CPU 0): {e}"))?;
    // A synthetic stream fills the smaller side's usable pages.
    let usable = sample::usable_pages_now(Side::Real)?.min(sample::usable_pages_now(Side::Mirror)?);
    let (steps, mut info) = stream(a, usable)?;
    info.usable_pages = usable;
    let (bin, _) = encode(&steps)?;
    // The real arena is the memory the rest of the guest leaves: give back
    // what only the encoding needed.
    drop(steps);
    let mut live = vec![0u64; memlab_core::request::replay::ids_needed(&bin)];
    let plan = memlab_core::request::replay::plan(&bin, &mut live).map_err(|r| r.to_string())?;
    info.peak_bytes = plan.peak_bytes;
    let ids = (live.len() as u32).max(1);
    drop(live);
    let quiet = a.json;
    let progress = |m: &str| {
        if !quiet {
            eprintln!("memlabctl diverge: {m}");
        }
    };
    let every = a.sample_every as usize;
    let mut sides = Vec::new();
    for side in [Side::Real, Side::Mirror] {
        sides.push(run_side(
            &d,
            side,
            &bin,
            every,
            ids,
            plan.peak_bytes.max(1),
            &progress,
        )?);
    }
    let r = DivergeReport::new(info, a.sample_every, &sides);
    let json = json_line(&r);
    if let Some(path) = &a.out {
        std::fs::write(path, format!("{json}\n"))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if a.json {
        println!("{json}");
    } else {
        print!("{}", r.text(a.all));
    }
    if !r.arenas_equal() && !a.unequal_arenas {
        return Err(
            "the arenas differ by more than a tenth, so the two sides do not compare \
                    (--unequal-arenas runs anyway)"
                .into(),
        );
    }
    Ok(ExitCode::SUCCESS)
}
