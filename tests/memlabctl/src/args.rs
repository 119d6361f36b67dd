// SPDX-License-Identifier: GPL-2.0

//! The command line, parsed with clap (derive).
//!
//! Every option is a `--key value` (or `--key=value`) option, and may also
//! be written `key=value`, the form the docs and scripts use
//! (`memlabctl alloc pages order=3 gfp=GFP_DMA32+zero count=4 --json`):
//! [`normalize`] rewrites a `key=value` word into `--key=value` when `key`
//! is a long option of the subcommand at hand, before clap sees it.

use crate::dev::uapi;
use crate::names;
use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;

const KEY_VALUE_NOTE: &str =
    "Every option may also be written key=value: `order=3` is `--order 3`, `backend=mirror` is `--backend mirror`.";

/// Drives /dev/memlab inside the memlab VM: allocate on the real allocators
/// or on memlab's mirror, run the exercises, benchmarks and the in-VM tests.
#[derive(Parser, Debug, PartialEq)]
#[command(
    name = "memlabctl",
    version,
    arg_required_else_help = true,
    after_help = KEY_VALUE_NOTE
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug, PartialEq)]
pub enum Cmd {
    /// Print the ABI version of the loaded module
    Version {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Show what the module exposes, for people: every exercise, the same
    /// requests on both backends, the mirror's debugfs files
    Demo,
    /// Run the in-VM tests, TAP on stdout; the last ones unload the module
    Test {
        /// Add a test that fails, to prove the host notices
        #[arg(long)]
        inject_failure: bool,
        /// List the tests in the order they run, without running them
        #[arg(long)]
        list: bool,
        /// Run only the tests whose name contains TEXT (for a quick check
        /// by hand; the module stays loaded unless the unload tests match)
        #[arg(long, value_name = "TEXT")]
        only: Option<String>,
    },
    /// Allocate, print what the kernel handed out (INSPECT), free on exit
    #[command(after_help = KEY_VALUE_NOTE)]
    Alloc(AllocArgs),
    /// Run exercises of the real allocators; the full report goes to debugfs
    #[command(after_help = KEY_VALUE_NOTE)]
    Exercise(ExerciseArgs),
    /// Print the last run of each exercise (debugfs real/report)
    Report {
        /// Print the module's real/report.json (validated, with the kernel
        /// call of each row added)
        #[arg(long)]
        json: bool,
    },
    /// Run the standard workloads on the real allocators and on the mirror
    #[command(after_help = KEY_VALUE_NOTE)]
    Bench(BenchArgs),
    /// Replay an allocation trace on one or both backends, inside the
    /// kernel (MEMLAB_IOC_REPLAY) or one ioctl per step
    #[command(after_help = concat!(
        "Trace format, one step a line, '#' starts a comment:\n",
        "  a ID FAMILY ARG [gfp=GFP]   allocate: FAMILY kmalloc|pages|kmem_cache (vmalloc|dma: --per-step only),\n",
        "                              ARG bytes (pages: order), GFP e.g. GFP_ATOMIC (default GFP_KERNEL)\n",
        "  f ID                        free what ID allocated\n\n",
        "Every option may also be written key=value: `backend=mirror` is `--backend mirror`."
    ))]
    Replay(ReplayArgs),
    /// Fragmentation over time: a long seeded random workload replayed in
    /// the kernel on the real allocators and on the mirror, sampling zone
    /// Normal's unusable index (orders 3 and 9) and free blocks per order
    #[command(after_help = KEY_VALUE_NOTE)]
    Frag(FragArgs),
    /// Record the kernel's own allocations (kmem tracepoints) as a memlab trace
    #[command(subcommand)]
    Trace(TraceCmd),
    /// Print a free-area map: the real one (/proc/kpageflags) or the mirror's
    #[command(
        after_help = "Format: '# zone start_pfn pages kind [detail]', one line per run; \
kinds free order=N, slab, pages DETAIL, reserved, nopage, other (see the README)."
    )]
    Pagemap(PagemapArgs),
    /// tools/mm/slabinfo's cache table for the kernel's caches
    /// (/sys/kernel/slab) and the mirror's, with the sheaf state of 7.x
    #[command(after_help = crate::slabinfo::AFTER_HELP)]
    Slabinfo(crate::slabinfo::SlabinfoArgs),
    /// On the host: compare two kernels from the bench.json of boots made
    /// in ABBA order (scripts/bench.sh with KSRC_B or KVER_B)
    Ab {
        /// Write the comparison as JSON to FILE
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// The boots in the order they ran: A:DIR or B:DIR, DIR holding
        /// that boot's bench.json
        #[arg(required = true, value_name = "LABEL:DIR")]
        boots: Vec<String>,
    },
    /// One operation stream on the real allocators and on the mirror, in
    /// chunks, sampled alike (slab caches, zone Normal's free lists and
    /// per-CPU pages, high-order probes): where the two part, and why
    #[command(after_help = KEY_VALUE_NOTE)]
    Diverge(DivergeArgs),
}

#[derive(Subcommand, Debug, PartialEq)]
pub enum TraceCmd {
    /// Run CMD with the kmem tracepoints on and write what it allocated and
    /// freed in memlab's trace format (a summary goes to stderr)
    #[command(after_help = "Example: memlabctl trace record -o /share/find.trace -- find /")]
    Record(TraceRecordArgs),
}

#[derive(Args, Debug, PartialEq)]
pub struct TraceRecordArgs {
    /// Write the trace to FILE (default: stdout; CMD's output then goes to stderr)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print the summary on stderr as one JSON line
    #[arg(long)]
    pub json_stats: bool,
    /// Ring buffer per CPU, KiB (events past it are lost and counted)
    #[arg(long, value_name = "KIB", default_value_t = 32768, value_parser = clap::value_parser!(u32).range(64..=1048576))]
    pub buffer_kb: u32,
    /// The command to trace, after `--`
    #[arg(required = true, last = true, value_name = "CMD")]
    pub cmd: Vec<String>,
}

#[derive(Args, Debug, PartialEq)]
#[group(required = true, multiple = false)]
pub struct PagemapSide {
    /// The kernel's map, from /proc/kpageflags over /proc/zoneinfo's zones
    #[arg(long)]
    pub real: bool,
    /// The mirror's map (debugfs mirror/pagemap, copied)
    #[arg(long)]
    pub mirror: bool,
}

#[derive(Args, Debug, PartialEq)]
pub struct PagemapArgs {
    #[command(flatten)]
    pub side: PagemapSide,
    /// Only this zone (DMA, DMA32, Normal; real map only)
    #[arg(long, value_name = "NAME", conflicts_with = "mirror")]
    pub zone: Option<String>,
    /// Write the map to FILE instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Allocator families, as `alloc` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Family {
    /// kmalloc (SIZE bytes)
    Kmalloc,
    /// vmalloc (SIZE bytes)
    Vmalloc,
    /// alloc_pages (--order)
    Pages,
    /// one object from a new kmem_cache (SIZE bytes, --align)
    #[value(name = "kmem_cache")]
    KmemCache,
    /// dma_alloc_coherent on memlab's device for the GFP selector (SIZE bytes)
    Dma,
}

impl Family {
    pub fn id(self) -> u32 {
        match self {
            Family::Kmalloc => uapi::MEMLAB_FAMILY_KMALLOC,
            Family::Vmalloc => uapi::MEMLAB_FAMILY_VMALLOC,
            Family::Pages => uapi::MEMLAB_FAMILY_PAGES,
            Family::KmemCache => uapi::MEMLAB_FAMILY_KMEM_CACHE,
            Family::Dma => uapi::MEMLAB_FAMILY_DMA,
        }
    }
}

/// Which allocators serve a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// the kernel's own allocators
    Real,
    /// memlab's mirror allocators, on the module's pool
    Mirror,
}

impl Backend {
    pub fn id(self) -> u32 {
        match self {
            Backend::Real => uapi::MEMLAB_BACKEND_REAL,
            Backend::Mirror => uapi::MEMLAB_BACKEND_MIRROR,
        }
    }
}

#[derive(Args, Debug, PartialEq)]
pub struct AllocArgs {
    /// Allocator family
    #[arg(value_enum, ignore_case = true)]
    pub family: Family,
    /// Bytes, optionally with a K, M or G suffix (all families but pages)
    #[arg(value_parser = parse_size)]
    pub size: Option<u64>,
    /// Page order, 0..=MAX_PAGE_ORDER (pages only)
    #[arg(long, value_name = "N")]
    pub order: Option<u32>,
    /// GFP selector, e.g. GFP_KERNEL, atomic, GFP_DMA32+zero
    #[arg(long, value_name = "GFP", default_value = "GFP_KERNEL", value_parser = parse_gfp)]
    pub gfp: u32,
    /// Object alignment in bytes, a power of two (kmem_cache only)
    #[arg(long, value_name = "BYTES", value_parser = parse_align)]
    pub align: Option<u32>,
    /// kmem_cache only: create the cache with SLAB_CACHE_DMA (its objects
    /// come from ZONE_DMA, whatever the GFP)
    #[arg(long)]
    pub cache_dma: bool,
    /// kmem_cache only: create the cache with SLAB_HWCACHE_ALIGN
    #[arg(long)]
    pub hwcache_align: bool,
    /// How many blocks to allocate (all held until exit)
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub count: u32,
    /// Which allocators serve the request
    #[arg(long, value_enum, default_value = "real")]
    pub backend: Backend,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

impl AllocArgs {
    /// The ALLOC request.
    pub fn request(&self) -> uapi::MemlabAlloc {
        uapi::MemlabAlloc {
            family: self.family.id(),
            gfp: self.gfp,
            size: self.size.unwrap_or(0),
            order: self.order.unwrap_or(0),
            align: self.align.unwrap_or(0),
            handle: 0,
            backend: self.backend.id(),
            cache_flags: if self.cache_dma {
                uapi::MEMLAB_CACHE_DMA
            } else {
                0
            } | if self.hwcache_align {
                uapi::MEMLAB_CACHE_HWCACHE_ALIGN
            } else {
                0
            },
            reserved: 0,
        }
    }
}

/// Exercises, as `exercise` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExerciseName {
    /// kmalloc size sweep, ksize, the KMALLOC_MAX_SIZE limit
    Kmalloc,
    /// vmalloc sizes, PFNs, physically discontiguous runs
    Vmalloc,
    /// alloc_pages of every order and the first failing one
    Pages,
    /// kmem_cache with a constructor and alignments
    #[value(name = "kmem_cache")]
    KmemCache,
    /// dma_alloc_coherent and dma_map_single per DMA mask
    Dma,
    /// the GFP flag matrix, the atomic ones under a spinlock
    Gfp,
    /// all of the above
    All,
}

#[derive(Args, Debug, PartialEq)]
pub struct ExerciseArgs {
    /// Exercises to run, in order
    #[arg(value_enum, ignore_case = true, required = true, value_name = "NAME")]
    pub names: Vec<ExerciseName>,
    /// Repetitions per case for the latency figures (0: the module's default)
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub reps: u32,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

impl ExerciseArgs {
    /// (name, MEMLAB_EX_*) of the exercises named, `all` expanded.
    pub fn exercises(&self) -> Vec<(&'static str, u32)> {
        let mut out = Vec::new();
        for n in &self.names {
            if *n == ExerciseName::All {
                out.extend_from_slice(names::EXERCISES);
            } else {
                let name = n.to_possible_value().map(|v| v.get_name().to_owned());
                if let Some(id) = name.and_then(|n| names::lookup(names::EXERCISES, &n)) {
                    out.push((names::name_of(names::EXERCISES, id), id));
                }
            }
        }
        out
    }
}

#[derive(Args, Debug, PartialEq)]
pub struct BenchArgs {
    /// Divide every workload's step count by N (at least 10 steps remain)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub scale: u32,
    /// Print the full report as JSON instead of a table
    #[arg(long)]
    pub json: bool,
    /// ABBA rounds (real, mirror, mirror, real) per workload
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub rounds: u32,
    /// Operations per latency sample (K)
    #[arg(long, value_name = "K", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub k: u32,
    /// Write bench.json and latency.json into DIR
    #[arg(long, value_name = "DIR")]
    pub out: Option<std::path::PathBuf>,
    /// Print bench.json and latency.json between MEMLAB-DATA markers
    #[arg(long)]
    pub print_data: bool,
    /// Only the main table: no size sweep, no 2-CPU scaling
    #[arg(long)]
    pub no_extras: bool,
}

/// Backends a replay runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReplayBackend {
    /// the kernel's own allocators
    Real,
    /// memlab's mirror allocators
    Mirror,
    /// the real allocators, then the mirror
    Both,
}

#[derive(Args, Debug, PartialEq)]
pub struct ReplayArgs {
    /// The trace file
    pub file: PathBuf,
    /// Which allocators replay it
    #[arg(long, value_enum, default_value = "both")]
    pub backend: ReplayBackend,
    /// One ALLOC or FREE ioctl per step (the old path) instead of one
    /// MEMLAB_IOC_REPLAY
    #[arg(long, conflicts_with = "compare")]
    pub per_step: bool,
    /// Replay by both paths and print per-step / ioctl latency ratios
    #[arg(long)]
    pub compare: bool,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, PartialEq)]
pub struct FragArgs {
    /// Steps of the workload
    #[arg(long, value_name = "N", default_value_t = 20000,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(uapi::MEMLAB_REPLAY_MAX_STEPS)))]
    pub steps: u32,
    /// Sample every S steps
    #[arg(long, value_name = "S", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub sample_every: u32,
    /// Seed of the workload (the same steps on both backends)
    #[arg(long, value_name = "X", default_value_t = 1)]
    pub seed: u32,
    /// Most objects live at once
    #[arg(long, value_name = "N", default_value_t = 512,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(uapi::MEMLAB_REPLAY_MAX_IDS)))]
    pub live: u32,
    /// Write frag.json to FILE (and a summary to stdout)
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Also write the workload as a trace to FILE (for `memlabctl replay`)
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Print frag.json to stdout instead of a summary
    #[arg(long)]
    pub json: bool,
    /// Succeed even when the two arenas (zone Normal's free pages at step
    /// 0) differ by more than a tenth, so that the indexes do not compare
    #[arg(long)]
    pub unequal_arenas: bool,
}

/// The synthetic streams of `diverge`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StreamKind {
    /// 90% of the usable arena live at the peak, in waves down to 75%, a
    /// third of it long-lived, mixed orders, caches and lifetimes
    Fragment,
    /// half the arena live, churn, nothing long-lived
    Mixed,
}

#[derive(Args, Debug, PartialEq)]
pub struct DivergeArgs {
    /// Replay this trace (`trace record`'s format) instead of a synthetic
    /// stream
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// The synthetic stream, sized to the usable arena (zone Normal's free
    /// pages above the real high watermark or the mirror's reserve, the
    /// smaller side's)
    #[arg(long, value_name = "KIND", value_enum, default_value_t = StreamKind::Fragment)]
    pub stream: StreamKind,
    /// Steps of the synthetic stream (fragment's waves need about 150000
    /// to reach their fill)
    #[arg(long, value_name = "N", default_value_t = 150000,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(uapi::MEMLAB_REPLAY_MAX_STEPS)))]
    pub steps: u32,
    /// Seed of the synthetic stream
    #[arg(long, value_name = "X", default_value_t = 1)]
    pub seed: u32,
    /// Live memory at the peak, percent of the usable arena (synthetic
    /// streams; default: fragment 90, mixed 50)
    #[arg(long, value_name = "PCT", value_parser = clap::value_parser!(u32).range(1..=99))]
    pub fill: Option<u32>,
    /// Sample both sides every S steps
    #[arg(long, value_name = "S", default_value_t = 2500, value_parser = clap::value_parser!(u32).range(1..))]
    pub sample_every: u32,
    /// Write the report as JSON (diverge.json, what memplot draws) to FILE
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print the JSON instead of the text
    #[arg(long)]
    pub json: bool,
    /// List every cache's metrics in the table, not only the sums
    #[arg(long)]
    pub all: bool,
    /// Succeed even when the two arenas differ by more than a tenth
    #[arg(long)]
    pub unequal_arenas: bool,
}

/// Parses a size like `4096`, `64K`, `2M`.
pub fn size_of(s: &str) -> Option<u64> {
    let (num, mul) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1 << 10),
        b'm' | b'M' => (&s[..s.len() - 1], 1 << 20),
        b'g' | b'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mul)
}

fn parse_size(s: &str) -> Result<u64, String> {
    size_of(s).ok_or_else(|| "not a size: give bytes, optionally with K, M or G (4096, 64K)".into())
}

fn parse_align(s: &str) -> Result<u32, String> {
    let n = parse_size(s)?;
    let n = u32::try_from(n).map_err(|_| "alignment above 4 GiB".to_string())?;
    if n.is_power_of_two() {
        Ok(n)
    } else {
        Err("not a power of two".into())
    }
}

fn parse_gfp(s: &str) -> Result<u32, String> {
    names::parse_gfp(s).ok_or_else(|| {
        let all: Vec<&str> = names::GFPS.iter().map(|&(n, _)| n).collect();
        format!(
            "not a GFP selector: one of {}, optionally with +zero",
            all.join(" ")
        )
    })
}

/// Rewrites `key=value` words after the subcommand into `--key=value` when
/// `key` is one of that subcommand's long options.
pub fn normalize(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    let cmd = Cli::command();
    let Some(pos) = args
        .iter()
        .skip(1)
        .position(|a| !a.to_string_lossy().starts_with('-'))
        .map(|p| p + 1)
    else {
        return args;
    };
    let Some(sub) = args[pos]
        .to_str()
        .and_then(|name| cmd.find_subcommand(name))
    else {
        return args;
    };
    let longs: Vec<&str> = sub.get_arguments().filter_map(|a| a.get_long()).collect();
    for a in &mut args[pos + 1..] {
        let Some(s) = a.to_str() else { continue };
        if s == "--" {
            break;
        }
        if let Some((key, _)) = s.split_once('=') {
            if !key.starts_with('-') && longs.contains(&key) {
                *a = format!("--{s}").into();
            }
        }
    }
    args
}

/// An error about `sub`'s arguments, formatted as clap formats its own.
fn usage_error(sub: &str, kind: ErrorKind, msg: String) -> clap::Error {
    let mut cmd = Cli::command();
    cmd.build();
    match cmd.find_subcommand_mut(sub) {
        Some(s) => s.error(kind, msg),
        None => cmd.error(kind, msg),
    }
}

/// Checks what clap cannot see: which arguments a family takes.
fn validate(cli: &Cli) -> Result<(), clap::Error> {
    let Cmd::Alloc(a) = &cli.cmd else {
        return Ok(());
    };
    let family = names::name_of(names::FAMILIES, a.family.id());
    let err = |kind, msg: String| Err(usage_error("alloc", kind, msg));
    if a.family == Family::Pages {
        if let Some(size) = a.size {
            return err(
                ErrorKind::ArgumentConflict,
                format!("pages take '--order <N>' (order=N), not a SIZE ('{size}')"),
            );
        }
    } else {
        if a.size.is_none() {
            return err(
                ErrorKind::MissingRequiredArgument,
                format!("alloc {family} needs a SIZE in bytes, e.g. 'alloc {family} 4096'"),
            );
        }
        if a.order.is_some() {
            return err(
                ErrorKind::ArgumentConflict,
                format!("'--order <N>' is for pages only, not {family}"),
            );
        }
    }
    if (a.cache_dma || a.hwcache_align) && a.family != Family::KmemCache {
        return err(
            ErrorKind::ArgumentConflict,
            format!("'--cache-dma' and '--hwcache-align' are for kmem_cache only, not {family}"),
        );
    }
    if a.align.is_some() && a.family != Family::KmemCache {
        return err(
            ErrorKind::ArgumentConflict,
            format!("'--align <BYTES>' is for kmem_cache only, not {family}"),
        );
    }
    Ok(())
}

/// Parses a whole command line (program name first).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Cli, clap::Error> {
    let cli = Cli::try_parse_from(normalize(args))?;
    validate(&cli)?;
    Ok(cli)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Cli, clap::Error> {
        parse(
            std::iter::once("memlabctl")
                .chain(line.split_whitespace())
                .map(OsString::from),
        )
    }

    fn cmd(line: &str) -> Cmd {
        match p(line) {
            Ok(c) => c.cmd,
            Err(e) => panic!("{line}: {e}"),
        }
    }

    /// The error for `line`, rendered, and its kind.
    fn err(line: &str) -> (ErrorKind, String) {
        match p(line) {
            Ok(c) => panic!("{line} parsed: {c:?}"),
            Err(e) => (e.kind(), e.render().to_string()),
        }
    }

    fn alloc(line: &str) -> AllocArgs {
        match cmd(line) {
            Cmd::Alloc(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(size_of("4096"), Some(4096));
        assert_eq!(size_of("64K"), Some(64 << 10));
        assert_eq!(size_of("2m"), Some(2 << 20));
        assert_eq!(size_of("x"), None);
        assert_eq!(size_of(""), None);
        assert_eq!(size_of("99999999999999G"), None);
    }

    #[test]
    fn legacy_key_value_forms() {
        let a = alloc("alloc kmalloc 100 backend=mirror");
        assert_eq!(
            a.request(),
            uapi::MemlabAlloc {
                family: uapi::MEMLAB_FAMILY_KMALLOC,
                size: 100,
                backend: uapi::MEMLAB_BACKEND_MIRROR,
                ..Default::default()
            }
        );
        assert!(!a.json);
        let a = alloc("alloc pages order=3 gfp=GFP_DMA32+zero count=4 --json");
        assert_eq!(
            a.request(),
            uapi::MemlabAlloc {
                family: uapi::MEMLAB_FAMILY_PAGES,
                order: 3,
                gfp: uapi::MEMLAB_GFP_DMA32 | uapi::MEMLAB_GFP_ZERO,
                ..Default::default()
            }
        );
        assert_eq!((a.count, a.json), (4, true));
        let a = alloc("alloc kmem_cache 100 align=256");
        assert_eq!((a.request().size, a.request().align), (100, 256));
        assert_eq!(
            cmd("exercise all reps=8"),
            Cmd::Exercise(ExerciseArgs {
                names: vec![ExerciseName::All],
                reps: 8,
                json: false
            })
        );
        assert_eq!(
            cmd("replay /tmp/t --backend both"),
            Cmd::Replay(ReplayArgs {
                file: "/tmp/t".into(),
                backend: ReplayBackend::Both,
                per_step: false,
                compare: false,
                json: false
            })
        );
        assert_eq!(
            cmd("bench scale=50"),
            Cmd::Bench(BenchArgs {
                scale: 50,
                json: false,
                rounds: 5,
                k: 32,
                out: None,
                print_data: false,
                no_extras: false,
            })
        );
        assert_eq!(
            cmd("test --inject-failure"),
            Cmd::Test {
                inject_failure: true,
                list: false,
                only: None
            }
        );
        assert_eq!(cmd("demo"), Cmd::Demo);
        assert_eq!(cmd("report --json"), Cmd::Report { json: true });
        assert_eq!(cmd("version"), Cmd::Version { json: false });
    }

    #[test]
    fn option_forms_are_the_same() {
        for (a, b) in [
            (
                "alloc pages order=3 gfp=dma32+zero count=4 backend=mirror --json",
                "alloc pages --order 3 --gfp GFP_DMA32+zero --count=4 --backend mirror --json",
            ),
            ("alloc DMA 64K gfp=GFP_DMA", "alloc dma 65536 --gfp dma"),
            ("exercise kmalloc gfp reps=0", "exercise kmalloc gfp"),
            ("replay f backend=real", "replay --backend=real f"),
            ("bench", "bench --scale 1"),
            ("replay f --compare --json", "replay --json --compare f"),
            (
                "frag steps=100 sample-every=10 seed=3",
                "frag --steps 100 --sample-every 10 --seed 3 --live 512",
            ),
        ] {
            assert_eq!(cmd(a), cmd(b), "{a} / {b}");
        }
        let e = match cmd("exercise kmem_cache ALL dma --json") {
            Cmd::Exercise(e) => e,
            other => panic!("{other:?}"),
        };
        let ids: Vec<u32> = e.exercises().iter().map(|&(_, id)| id).collect();
        assert_eq!(ids, [3, 0, 1, 2, 3, 4, 5, 4]);
    }

    #[test]
    fn a_file_named_like_an_option_is_a_file() {
        // Only long options of the subcommand are rewritten.
        assert_eq!(
            cmd("replay size=3"),
            Cmd::Replay(ReplayArgs {
                file: "size=3".into(),
                backend: ReplayBackend::Both,
                per_step: false,
                compare: false,
                json: false
            })
        );
        assert!(
            matches!(cmd("replay -- backend=real"), Cmd::Replay(r) if r.file.as_os_str() == "backend=real")
        );
    }

    #[test]
    fn bad_arguments_are_named() {
        for (line, kind, needle) in [
            ("alloc kmallok 100", ErrorKind::InvalidValue, "<FAMILY>"),
            ("alloc kmalloc 12Q", ErrorKind::ValueValidation, "[SIZE]"),
            (
                "alloc kmalloc 100 gfp=GFP_BOGUS",
                ErrorKind::ValueValidation,
                "--gfp <GFP>",
            ),
            (
                "alloc pages order=x",
                ErrorKind::ValueValidation,
                "--order <N>",
            ),
            (
                "alloc kmalloc 100 backend=both",
                ErrorKind::InvalidValue,
                "--backend <BACKEND>",
            ),
            (
                "alloc kmem_cache 100 align=48",
                ErrorKind::ValueValidation,
                "power of two",
            ),
            (
                "alloc kmalloc 100 count=-1",
                ErrorKind::ValueValidation,
                "--count <N>",
            ),
            (
                "alloc kmalloc 100 colour=red",
                ErrorKind::UnknownArgument,
                "colour=red",
            ),
            (
                "alloc kmalloc",
                ErrorKind::MissingRequiredArgument,
                "needs a SIZE",
            ),
            (
                "alloc pages 4096",
                ErrorKind::ArgumentConflict,
                "--order <N>",
            ),
            (
                "alloc vmalloc 1M order=2",
                ErrorKind::ArgumentConflict,
                "--order <N>",
            ),
            (
                "alloc kmalloc 64 align=64",
                ErrorKind::ArgumentConflict,
                "--align <BYTES>",
            ),
            ("exercise", ErrorKind::MissingRequiredArgument, "<NAME>"),
            (
                "exercise kmalloc reps=1001",
                ErrorKind::ValueValidation,
                "--reps <N>",
            ),
            ("exercise slab", ErrorKind::InvalidValue, "<NAME>"),
            ("bench scale=0", ErrorKind::ValueValidation, "--scale <N>"),
            ("bench 50", ErrorKind::UnknownArgument, "50"),
            ("replay", ErrorKind::MissingRequiredArgument, "<FILE>"),
            (
                "replay f --backend",
                ErrorKind::InvalidValue,
                "--backend <BACKEND>",
            ),
            (
                "replay f --per-step --compare",
                ErrorKind::ArgumentConflict,
                "--compare",
            ),
            ("frag steps=0", ErrorKind::ValueValidation, "--steps <N>"),
            (
                "frag steps=1048577",
                ErrorKind::ValueValidation,
                "--steps <N>",
            ),
            (
                "frag sample-every=0",
                ErrorKind::ValueValidation,
                "--sample-every <S>",
            ),
            ("test --inject", ErrorKind::UnknownArgument, "--inject"),
            ("frobnicate", ErrorKind::InvalidSubcommand, "frobnicate"),
        ] {
            let (k, text) = err(line);
            assert_eq!(k, kind, "{line}: {text}");
            assert!(text.contains(needle), "{line}: {needle:?} not in {text}");
        }
    }

    #[test]
    fn every_subcommand_has_help() {
        Cli::command().debug_assert();
        let (k, text) = err("");
        assert_eq!(k, ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand);
        assert!(text.contains("key=value"), "{text}");
        for sub in Cli::command().get_subcommands() {
            let name = sub.get_name();
            let (k, text) = err(&format!("{name} --help"));
            assert_eq!(k, ErrorKind::DisplayHelp, "{name}");
            assert!(
                text.contains(&format!("Usage: memlabctl {name}")),
                "{name}: {text}"
            );
        }
        let (_, text) = err("alloc --help");
        for needle in ["kmem_cache", "--order <N>", "--gfp <GFP>", "key=value"] {
            assert!(text.contains(needle), "{needle} not in {text}");
        }
    }
}
