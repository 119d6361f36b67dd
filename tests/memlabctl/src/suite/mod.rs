// SPDX-License-Identifier: GPL-2.0

//! The in-VM tests (`memlabctl test`), one TAP stream. The init script loads
//! the module before and leaves unloading to the last tests here, so the
//! whole run, teardown included, is judged.
//!
//! Order matters and is fixed by [`suite`]: the device and its ABI, each
//! family on each backend, the GFP matrix, limits, the real exercises, the
//! debugfs files (the report needs the exercises), the mirror, workloads,
//! then unload and the leak checks, last.
//!
//! Building the suite touches nothing: every case opens `/dev/memlab`
//! itself when it runs (so `memlabctl test --list` and the host unit tests
//! can list it).

mod abi;
mod debugfs;
mod exercises;
mod families;
mod geometry;
mod hostile;
mod kernel;
mod lifecycle;
mod mirror;
mod pagemap;
mod params;
mod refusals;
mod replay;
mod session;
mod slabinfo;
mod trace;
mod workloads;

use crate::dev::{uapi, Memlab, DEBUGFS};
use crate::tap::{check, Outcome, Suite};
use std::fs;
use std::io::{self, Write};
use std::process::ExitCode;

/// Every case, in the order it runs.
pub fn suite(inject_failure: bool) -> Suite {
    let mut s = Suite::default();
    lifecycle::loaded(&mut s);
    abi::cases(&mut s);
    families::cases(&mut s);
    exercises::cases(&mut s);
    debugfs::cases(&mut s);
    mirror::cases(&mut s);
    geometry::cases(&mut s);
    slabinfo::cases(&mut s);
    pagemap::cases(&mut s);
    trace::cases(&mut s);
    workloads::cases(&mut s);
    replay::cases(&mut s);
    session::cases(&mut s);
    hostile::cases(&mut s);
    refusals::cases(&mut s);
    if inject_failure {
        s.case("injected failure (memlabctl test --inject-failure)", || {
            Err("deliberately failed: the host must report this run as failed".into())
        });
    }
    lifecycle::unload(&mut s);
    s
}

/// `memlabctl test [--inject-failure] [--list] [--only TEXT]`.
pub fn run(inject_failure: bool, list: bool, only: Option<&str>) -> ExitCode {
    let mut s = suite(inject_failure);
    if let Some(text) = only {
        s.retain(|name| name.contains(text));
    }
    if list {
        let mut out = io::stdout().lock();
        for (i, name) in s.names().enumerate() {
            if writeln!(out, "{} - {name}", i + 1).is_err() {
                break;
            }
        }
        return ExitCode::SUCCESS;
    }
    if s.run(&mut io::stdout()) == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

// ---- helpers shared by the test files ----

/// The backends, named as in case titles.
pub const BACKENDS: [(u32, &str); 2] = [
    (uapi::MEMLAB_BACKEND_REAL, "real"),
    (uapi::MEMLAB_BACKEND_MIRROR, "mirror"),
];

/// Page size the VM runs with (the VERSION test checks it).
pub const PAGE: u64 = 4096;

pub fn open() -> Result<Memlab, String> {
    Memlab::open().map_err(|e| format!("open /dev/memlab: {e}"))
}

pub fn read(path: &str) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

pub fn mirror_file(name: &str) -> Result<String, String> {
    read(&format!("{DEBUGFS}/mirror/{name}"))
}

/// The symbolic name of the errnos the ABI uses.
pub fn errno_name(e: i32) -> &'static str {
    match e {
        libc::EPERM => "EPERM",
        libc::ENOMEM => "ENOMEM",
        libc::EFAULT => "EFAULT",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::ENOTTY => "ENOTTY",
        libc::E2BIG => "E2BIG",
        _ => "errno",
    }
}

/// Expects `r` to have failed with `want`.
pub fn expect_errno(r: io::Result<impl Sized>, want: i32) -> Outcome {
    let name = errno_name(want);
    match r.err().and_then(|e| e.raw_os_error()) {
        Some(e) if e == want => Ok(()),
        Some(e) => Err(format!("expected {name} ({want}), got errno {e}")),
        None => Err(format!("expected {name} ({want}), but the call succeeded")),
    }
}

/// Expects ALLOC of `r` to fail with `errno`, freeing the block if it did
/// not.
pub fn expect_refused(m: &Memlab, r: &uapi::MemlabAlloc, errno: i32) -> Outcome {
    if r.family == uapi::MEMLAB_FAMILY_DMA {
        kernel::need_dma()?;
    }
    match m.alloc(r) {
        Ok(h) => {
            let _ = m.free(h);
            Err(format!("{r:?} succeeded, want {}", errno_name(errno)))
        }
        Err(e) => check(e.raw_os_error() == Some(errno), || {
            format!("{r:?}: expected {}, got {e}", errno_name(errno))
        }),
    }
}

/// Requests that must all be refused with one errno before anything is
/// allocated: one TAP point.
pub struct Refusal {
    pub name: String,
    pub reqs: Vec<uapi::MemlabAlloc>,
    pub errno: i32,
}

/// One case per [`Refusal`].
pub fn refusals(s: &mut Suite, rows: Vec<Refusal>) {
    s.table(
        rows,
        |r| r.name.clone(),
        |r| {
            let m = open()?;
            r.reqs
                .iter()
                .try_for_each(|q| expect_refused(&m, q, r.errno))
        },
    );
}

/// Request builders, `const` so tables can be built from them.
pub mod req {
    use crate::dev::uapi::{self, MemlabAlloc};

    pub const fn alloc(family: u32, size: u64) -> MemlabAlloc {
        MemlabAlloc {
            family,
            gfp: uapi::MEMLAB_GFP_KERNEL,
            size,
            order: 0,
            align: 0,
            handle: 0,
            backend: uapi::MEMLAB_BACKEND_REAL,
            cache_flags: 0,
            reserved: 0,
        }
    }
    pub const fn kmalloc(size: u64) -> MemlabAlloc {
        alloc(uapi::MEMLAB_FAMILY_KMALLOC, size)
    }
    pub const fn vmalloc(size: u64) -> MemlabAlloc {
        alloc(uapi::MEMLAB_FAMILY_VMALLOC, size)
    }
    pub const fn pages(order: u32) -> MemlabAlloc {
        MemlabAlloc {
            order,
            ..alloc(uapi::MEMLAB_FAMILY_PAGES, 0)
        }
    }
    pub const fn kmem_cache(size: u64, align: u32) -> MemlabAlloc {
        MemlabAlloc {
            align,
            ..alloc(uapi::MEMLAB_FAMILY_KMEM_CACHE, size)
        }
    }
    pub const fn dma(size: u64) -> MemlabAlloc {
        alloc(uapi::MEMLAB_FAMILY_DMA, size)
    }
    /// `r` with GFP field `gfp` (selector, maybe `| MEMLAB_GFP_ZERO`).
    pub const fn gfp(r: MemlabAlloc, gfp: u32) -> MemlabAlloc {
        MemlabAlloc { gfp, ..r }
    }
    /// `r` on `backend`.
    pub const fn on(backend: u32, r: MemlabAlloc) -> MemlabAlloc {
        MemlabAlloc { backend, ..r }
    }
}

/// Highest bus address + 1 a DMA block may reach for selector `sel`: the
/// device the selector picks (24, 32 or 64-bit mask).
pub fn dma_limit(sel: u32) -> u64 {
    match sel {
        uapi::MEMLAB_GFP_DMA => 1 << 24,
        uapi::MEMLAB_GFP_DMA32 => 1 << 32,
        _ => u64::MAX,
    }
}

/// Facts every block must show, whatever the family, backend or request:
/// INSPECT echoes the request; pages and runs make sense; the zone is a
/// zone; usable covers the request; page-backed memory is page aligned;
/// `zeroed` is set exactly when __GFP_ZERO was asked for (and then the
/// module found zeros); only DMA blocks have a bus address, below their
/// device's mask; GFP_DMA memory is in ZONE_DMA and GFP_DMA32 memory at most
/// in ZONE_DMA32.
pub fn check_block(r: &uapi::MemlabAlloc, h: u32, info: &uapi::MemlabBlockInfo) -> Outcome {
    use uapi::*;
    let sel = r.gfp & 0xff;
    check(
        info.handle == h && info.family == r.family && info.gfp == r.gfp && info.size == r.size,
        || "INSPECT echoes wrong handle/family/gfp/size".into(),
    )?;
    check(
        info.nr_pages >= 1 && info.phys_runs >= 1 && info.phys_runs <= info.nr_pages,
        || "nonsense pages/runs".into(),
    )?;
    check(
        info.zone <= MEMLAB_ZONE_MOVABLE || info.zone == MEMLAB_ZONE_MIXED,
        || "bad zone".into(),
    )?;
    check(info.usable >= info.size, || "usable < size".into())?;
    check(info.first_pfn != 0, || "first_pfn 0".into())?;
    check(
        info.align_log2 >= 12
            || info.family == MEMLAB_FAMILY_KMALLOC
            || info.family == MEMLAB_FAMILY_KMEM_CACHE,
        || "page-backed block not page aligned".into(),
    )?;
    let zero = r.gfp & MEMLAB_GFP_ZERO != 0;
    check(info.zeroed == u32::from(zero), || {
        format!(
            "zeroed {} for a request {} __GFP_ZERO",
            info.zeroed,
            if zero { "with" } else { "without" }
        )
    })?;
    if info.family == MEMLAB_FAMILY_DMA {
        let limit = dma_limit(sel);
        check(info.dma_addr != 0, || "dma_addr is 0".into())?;
        check(
            info.dma_addr
                .checked_add(r.size)
                .is_some_and(|end| end <= limit),
            || format!("dma_addr {:#x} + size not below {limit:#x}", info.dma_addr),
        )?;
    } else {
        check(info.dma_addr == 0, || {
            "dma_addr set for a non-DMA family".into()
        })?;
    }
    // The kernel's zone for the selector (on UML, GFP_DMA and GFP_DMA32
    // go to ZONE_NORMAL, where nothing is below it to check).
    match kernel::zone_limit(sel) {
        Some(MEMLAB_ZONE_DMA) => check(info.zone == MEMLAB_ZONE_DMA, || {
            format!("zone {} != DMA", info.zone)
        })?,
        Some(_) => check(info.zone <= MEMLAB_ZONE_DMA32, || {
            format!("zone {} above DMA32", info.zone)
        })?,
        None => {}
    }
    Ok(())
}

/// Allocates `r`, inspects it, frees it, checks the handle is gone and the
/// facts of [`check_block`], and hands the info to `verify`.
pub fn alloc_inspect_free(
    r: uapi::MemlabAlloc,
    verify: impl FnOnce(&uapi::MemlabBlockInfo) -> Outcome,
) -> Outcome {
    if r.family == uapi::MEMLAB_FAMILY_DMA {
        kernel::need_dma()?;
    }
    let m = open()?;
    let h = m.alloc(&r).map_err(|e| format!("ALLOC {r:?}: {e}"))?;
    let info = m.inspect(h).map_err(|e| format!("INSPECT {h}: {e}"));
    let freed = m.free(h).map_err(|e| format!("FREE {h}: {e}"));
    let info = info?;
    freed?;
    check(m.inspect(h).is_err(), || {
        format!("handle {h} still inspectable after FREE")
    })?;
    check_block(&r, h, &info)
        .and_then(|()| verify(&info))
        .map_err(|e| format!("{e}\n{info:?}"))
}

/// Free pages in a buddyinfo-format file, over all zones and orders.
pub fn free_pages_in(buddyinfo: &str) -> u64 {
    buddyinfo
        .lines()
        .flat_map(|l| {
            l.split(" zone ")
                .nth(1)
                .map(|r| r.split_whitespace().skip(1).collect::<Vec<_>>())
        })
        .map(|v| {
            v.iter()
                .enumerate()
                .map(|(o, c)| c.parse::<u64>().unwrap_or(0) << o)
                .sum::<u64>()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The TAP points `memlabctl test` produced before the suite was made
    /// table-driven (commit 12e4954): the count may grow, never drop.
    const POINTS_BEFORE: usize = 89;

    #[test]
    fn suite_keeps_its_coverage_and_order() {
        let s = suite(false);
        let names: Vec<&str> = s.names().collect();
        assert!(names.len() >= POINTS_BEFORE, "{} cases", names.len());
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "case names must be unique");
        assert_eq!(names[0], "module is loaded");
        assert_eq!(
            names[names.len() - 5..],
            [
                "rmmod rust_memlab succeeds",
                "unload removes /dev/memlab and the debugfs tree",
                "unload returned the whole mirror pool, nothing still allocated",
                "insmod refuses out-of-range pool_mb, max_pinned_mb and max_pinned_total_mb with EINVAL and a message",
                "kmemleak finds no new leak after unload",
            ]
        );
        let injected = suite(true);
        let inj: Vec<&str> = injected.names().collect();
        assert_eq!(inj.len(), names.len() + 1);
        assert!(inj[inj.len() - 6].starts_with("injected failure"));
    }

    /// The console judge fails a run on kernel-report words anywhere in the
    /// console: no case name, nor a note printed after one, may hold them.
    #[test]
    fn no_tap_line_reads_as_a_kernel_report() {
        let s = suite(true);
        for text in s.names().chain([geometry::DEBUG_KERNEL_NOTE]) {
            for splat in vmcheck::SPLATS {
                assert!(!text.contains(splat), "{text:?} holds {splat:?}");
            }
        }
    }

    #[test]
    fn buddyinfo_free_pages() {
        let b = "Node 0, zone      DMA      1      0      2 \n\
                 Node 0, zone   Normal      0      1      0 \n";
        assert_eq!(free_pages_in(b), 1 + 2 * 4 + 2);
    }
}
