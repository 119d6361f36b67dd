// SPDX-License-Identifier: GPL-2.0

//! Hostile user space must not hurt the kernel: unloading while a file is
//! open, a killed holder, and caps checked against the kernel's own
//! accounting (MemFree in /proc/meminfo), not memlab's counters.

use crate::dev::{uapi, Memlab, DEBUGFS};
use crate::tap::{check, Outcome, Suite};
use std::fs;
use std::io::{self, Read, Write};

const MODULE: &std::ffi::CStr = c"rust_memlab";

/// The cases, before the unload cases (the module must stay loaded).
pub fn cases(s: &mut Suite) {
    s.case(
        "rmmod while /dev/memlab is open is refused (module in use), and the close is clean",
        rmmod_while_device_open,
    );
    s.case(
        "rmmod while a debugfs file is open is refused (module in use), and the close is clean",
        rmmod_while_debugfs_open,
    );
    s.case(
        "a process holding allocations on both backends killed with SIGKILL frees them all",
        sigkill_frees_everything,
    );
    s.case(
        "kmem_cache: the zone comes from the cache (MEMLAB_CACHE_DMA), not the GFP, on both backends",
        kmem_cache_zone_comes_from_the_cache,
    );
    s.case(
        "kmem_cache: racing creates and destroys of one mergeable geometry never collide in sysfs",
        mergeable_caches_race_cleanly,
    );
    s.case(
        "charges: DMA holds its get_order block and kmem_cache its slab, on both backends",
        charges_are_what_is_held,
    );
    s.case(
        "per-file cap holds on MemFree for adversarial shapes (alignment, +1 sizes, many caches, small vmallocs)",
        caps_hold_on_the_kernels_numbers,
    );
    s.case(
        "module-wide cap holds on MemFree across several files",
        module_wide_cap_holds_across_files,
    );
    s.case(
        "mirror per-file cap: 1 MiB blocks stop with E2BIG at max_pinned_mb when the pool is larger, else with ENOMEM within the pool",
        mirror_cap_is_reached,
    );
}
const MIB: u64 = 1 << 20;
/// What the kernel's own MemFree may fall beyond a cap: per-CPU page lists
/// (pages freed to them are not counted free), slab and page-table
/// metadata of memlab's bookkeeping, KASAN shadow and kmemleak objects.
const SLACK: u64 = 16 * MIB;

/// `delete_module(rust_memlab, O_NONBLOCK)`, as rmmod does.
fn rmmod() -> io::Result<()> {
    // SAFETY: NUL-terminated module name; O_NONBLOCK as rmmod uses.
    let rc = unsafe { libc::syscall(libc::SYS_delete_module, MODULE.as_ptr(), libc::O_NONBLOCK) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The module's reference count, from sysfs.
fn refcnt() -> Result<u64, String> {
    let t = fs::read_to_string("/sys/module/rust_memlab/refcnt").map_err(|e| e.to_string())?;
    t.trim().parse().map_err(|e| format!("refcnt {t:?}: {e}"))
}

/// rmmod must be refused while `what` is open: the open file holds a
/// module reference, and `delete_module(O_NONBLOCK)` answers a module in
/// use with EWOULDBLOCK (`try_stop_module`; rmmod prints "in use").
fn expect_busy(what: &str) -> Outcome {
    let n = refcnt()?;
    check(n >= 1, || format!("refcnt {n} while {what} is open"))?;
    match rmmod() {
        Ok(()) => Err(format!(
            "rmmod succeeded while {what} was open: the module is gone under an open file"
        )),
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(()),
        Err(e) => Err(format!(
            "rmmod while {what} open: want EWOULDBLOCK, got {e}"
        )),
    }
}

/// The three steps of the reported oops, on `/dev/memlab`: open and use the
/// device, rmmod while it is open (must be refused now), close (must not
/// oops: vmcheck fails the run on any kernel report). The module stays
/// loaded for the tests after this one, and unloads at the end.
fn rmmod_while_device_open() -> Outcome {
    let m = Memlab::open().map_err(|e| format!("open: {e}"))?;
    m.version().map_err(|e| format!("VERSION: {e}"))?;
    let r = expect_busy("/dev/memlab");
    drop(m);
    r?;
    let m = Memlab::open().map_err(|e| format!("open after close: {e}"))?;
    m.version()
        .map(|_| ())
        .map_err(|e| format!("VERSION after close: {e}"))
}

/// The same three steps on a debugfs file.
fn rmmod_while_debugfs_open() -> Outcome {
    let path = format!("{DEBUGFS}/mirror/pool");
    let mut f = fs::File::open(&path).map_err(|e| format!("open {path}: {e}"))?;
    let mut head = [0u8; 16];
    f.read(&mut head).map_err(|e| format!("read {path}: {e}"))?;
    let r = expect_busy(&path);
    drop(f);
    r?;
    fs::read_to_string(&path)
        .map(|_| ())
        .map_err(|e| format!("{path} after close: {e}"))
}

/// `pinned_total_bytes` from debugfs.
pub(super) fn pinned_total() -> Result<u64, String> {
    let t = fs::read_to_string(format!("{DEBUGFS}/pinned")).map_err(|e| e.to_string())?;
    field(&t, "pinned_total_bytes")
}

fn field(text: &str, name: &str) -> Result<u64, String> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .ok_or_else(|| format!("no {name} in {text:?}"))
}

/// The per-file and module-wide caps, from debugfs.
fn caps() -> Result<(u64, u64), String> {
    let t = fs::read_to_string(format!("{DEBUGFS}/pinned")).map_err(|e| e.to_string())?;
    Ok((
        field(&t, "max_pinned_bytes")?,
        field(&t, "max_pinned_total_bytes")?,
    ))
}

/// After a run on `bn`: the pinned total is back at `pinned` and
/// mirror/check holds.
pub(super) fn pinned_back(bn: &str, pinned: u64) -> Outcome {
    let now = pinned_total()?;
    check(now == pinned, || {
        format!("{bn}: pinned_total_bytes {pinned} before, {now} after")
    })?;
    mirror_check().map_err(|e| format!("{bn}: {e}"))
}

pub(super) fn mirror_check() -> Outcome {
    let c = fs::read_to_string(format!("{DEBUGFS}/mirror/check")).map_err(|e| e.to_string())?;
    check(c.trim() == "ok", || format!("mirror/check: {c}"))
}

fn req(backend: u32, family: u32, size: u64, order: u32, align: u32) -> uapi::MemlabAlloc {
    uapi::MemlabAlloc {
        family,
        gfp: uapi::MEMLAB_GFP_KERNEL,
        size,
        order,
        align,
        handle: 0,
        backend,
        cache_flags: 0,
        reserved: 0,
    }
}

/// Threads that each create and destroy a mergeable cache of one geometry
/// no kernel cache shares (SLAB_CACHE_DMA, 3000 B) as fast as they can.
/// SLUB names such a cache's sysfs directory after its geometry
/// (`:d-0003000`), and `kmem_cache_destroy` removes that directory only
/// after dropping `slab_mutex`: a create in between made the kernel dump
/// "cannot create duplicate filename" (SLUB carries on without the
/// cache's sysfs files). Every ALLOC must succeed and the kernel log must
/// gain no such line. The window is narrow: a failure here is proof, a
/// pass only a sample.
fn mergeable_caches_race_cleanly() -> Outcome {
    const THREADS: usize = 3;
    const SECS: u64 = 2;
    let marks = [
        "cannot create duplicate filename",
        "kobject_add_internal failed",
    ];
    let count = |log: &str| marks.iter().map(|m| log.matches(m).count()).sum::<usize>();
    let before = count(&super::kernel::log()?);
    let r = uapi::MemlabAlloc {
        cache_flags: uapi::MEMLAB_CACHE_DMA,
        ..req(
            uapi::MEMLAB_BACKEND_REAL,
            uapi::MEMLAB_FAMILY_KMEM_CACHE,
            3000,
            0,
            0,
        )
    };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(SECS);
    let results: Vec<Result<u64, String>> = std::thread::scope(|s| {
        // Shrinking the cache through sysfs holds its directory busy, so a
        // destroy waits longer before the directory goes: a wider window.
        s.spawn(move || {
            while std::time::Instant::now() < until {
                for e in fs::read_dir("/sys/kernel/slab")
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.starts_with(":d-") {
                        let _ = fs::write(e.path().join("shrink"), "1");
                    }
                }
            }
        });
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(move || {
                    let m = Memlab::open().map_err(|e| e.to_string())?;
                    let mut n = 0u64;
                    while std::time::Instant::now() < until {
                        let h = m.alloc(&r).map_err(|e| format!("ALLOC {n}: {e}"))?;
                        m.free(h).map_err(|e| format!("FREE {n}: {e}"))?;
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|_| Err("thread panicked".into())))
            .collect()
    });
    let after = count(&super::kernel::log()?);
    check(after == before, || {
        format!(
            "the kernel log gained {} duplicate-name reports",
            after - before
        )
    })?;
    let mut total = 0;
    for r in results {
        total += r?;
    }
    check(total >= THREADS as u64, || {
        format!("{total} creates in {SECS} s: too few to race")
    })
}

/// The largest kmem_cache alignment ALLOC takes: KMALLOC_MAX_SIZE, the
/// running kernel's.
fn largest_align() -> Result<u32, String> {
    let max = super::kernel::kmalloc_max_size()?;
    u32::try_from(max).map_err(|_| format!("KMALLOC_MAX_SIZE {max} above 4 GiB"))
}

/// A process holding allocations on both backends is killed with SIGKILL:
/// everything it held is freed (the module-wide total goes back to where it
/// was, the mirror's checkers pass).
fn sigkill_frees_everything() -> Outcome {
    let before = pinned_total()?;
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(format!("pipe: {}", io::Error::last_os_error()));
    }
    // SAFETY: the child only allocates through the device, writes one byte
    // and sleeps until it is killed; it never returns into the harness.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(format!("fork: {}", io::Error::last_os_error()));
    }
    if pid == 0 {
        let mut ok = 0u8;
        if let Ok(m) = Memlab::open() {
            let held = [
                req(
                    uapi::MEMLAB_BACKEND_REAL,
                    uapi::MEMLAB_FAMILY_PAGES,
                    0,
                    8,
                    0,
                ),
                req(
                    uapi::MEMLAB_BACKEND_MIRROR,
                    uapi::MEMLAB_FAMILY_PAGES,
                    0,
                    4,
                    0,
                ),
                req(
                    uapi::MEMLAB_BACKEND_MIRROR,
                    uapi::MEMLAB_FAMILY_KMALLOC,
                    100,
                    0,
                    0,
                ),
                req(
                    uapi::MEMLAB_BACKEND_REAL,
                    uapi::MEMLAB_FAMILY_VMALLOC,
                    MIB,
                    0,
                    0,
                ),
                req(
                    uapi::MEMLAB_BACKEND_MIRROR,
                    uapi::MEMLAB_FAMILY_KMEM_CACHE,
                    200,
                    0,
                    0,
                ),
            ];
            ok = u8::from(held.iter().all(|r| m.alloc(r).is_ok()));
            // SAFETY: writing one byte from a live buffer to our pipe end.
            unsafe { libc::write(fds[1], (&raw const ok).cast(), 1) };
            loop {
                // SAFETY: sleeping until SIGKILL.
                unsafe { libc::pause() };
            }
        }
        // SAFETY: as above; then leave without running the harness.
        unsafe {
            libc::write(fds[1], (&raw const ok).cast(), 1);
            libc::_exit(1)
        };
    }
    // SAFETY: our copy of the write end is not needed.
    unsafe { libc::close(fds[1]) };
    let mut byte = 0u8;
    // SAFETY: reading one byte into a live buffer from our pipe end.
    let n = unsafe { libc::read(fds[0], (&raw mut byte).cast(), 1) };
    let during = pinned_total();
    // SAFETY: killing and reaping our own child.
    unsafe {
        libc::close(fds[0]);
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
    check(n == 1 && byte == 1, || {
        "the child could not allocate".into()
    })?;
    let during = during?;
    check(during >= before + 2 * MIB, || {
        format!("pinned_total_bytes {during} while the child held > 2 MiB (before: {before})")
    })?;
    let after = pinned_total()?;
    check(after == before, || {
        format!("pinned_total_bytes {after} after SIGKILL, {before} before")
    })?;
    mirror_check()
}

/// MemFree from /proc/meminfo, in bytes.
fn mem_free() -> Result<u64, String> {
    let t = fs::read_to_string("/proc/meminfo").map_err(|e| e.to_string())?;
    let kb = t
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemFree:")?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse::<u64>()
                .ok()
        })
        .ok_or("no MemFree in /proc/meminfo")?;
    Ok(kb * 1024)
}

/// Most live handles one file may hold (src/chardev.rs): the next ALLOC
/// is E2BIG, as at the byte cap.
const MAX_HANDLES: usize = 1024;

/// The cache-per-handle shape of [`caps_hold_on_the_kernels_numbers`], and
/// how many handles it fills.
const PER_HANDLE_CACHE: &str = "real kmem_cache 8 B, a cache per handle";
const CACHE_HANDLES: usize = MAX_HANDLES / 8;

/// What stopped a [`fill`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The count asked for, before any refusal.
    Count,
    /// E2BIG with the file's handle table full.
    Handles,
    /// E2BIG below the handle limit: a byte cap (the file's or the module's).
    Cap,
    /// ENOMEM: the allocator (the mirror's pool, or the kernel) ran out.
    OutOfMemory,
}

impl Stop {
    fn name(self) -> &'static str {
        match self {
            Stop::Count => "the count asked for",
            Stop::Handles => "the 1024-handle limit (E2BIG)",
            Stop::Cap => "a pin cap (E2BIG)",
            Stop::OutOfMemory => "the allocator running out (ENOMEM)",
        }
    }
}

/// Allocates `r` on `m` until it is refused, or `limit` times: E2BIG, the
/// caps or the handle limit, or ENOMEM, an allocator (the mirror's pool)
/// running out. Returns how many succeeded and what stopped them
/// ([`Stop::Count`] at the limit); any other error fails.
fn fill(m: &Memlab, r: &uapi::MemlabAlloc, limit: usize) -> Result<(usize, Stop), String> {
    for n in 0..limit {
        match m.alloc(r) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::E2BIG) && n == MAX_HANDLES => {
                return Ok((n, Stop::Handles))
            }
            Err(e) if e.raw_os_error() == Some(libc::E2BIG) => return Ok((n, Stop::Cap)),
            Err(e) if e.raw_os_error() == Some(libc::ENOMEM) => return Ok((n, Stop::OutOfMemory)),
            Err(e) => return Err(format!("{r:?} #{n}: {e}")),
        }
    }
    Ok((limit, Stop::Count))
}

/// The mirror's per-file cap, reached: 1 MiB blocks (pages of order 8)
/// until refused. With a pool larger than the cap (`pool_mb` above
/// `max_pinned_mb`) the refusal must be E2BIG with exactly the cap's worth
/// held; with the default 16 MiB pool under the 64 MiB cap the pool runs
/// out first, and the refusal must be ENOMEM with no more than the pool
/// held. The TAP line names the limit that stopped it.
fn mirror_cap_is_reached() -> Outcome {
    let (per_file, _) = caps()?;
    let p = super::params::params();
    let m = Memlab::open().map_err(|e| e.to_string())?;
    let r = req(
        uapi::MEMLAB_BACKEND_MIRROR,
        uapi::MEMLAB_FAMILY_PAGES,
        0,
        8,
        0,
    );
    let (n, stop) = fill(&m, &r, 4096)?;
    let held = n as u64 * MIB;
    crate::tap::note(format!(
        "{n} MiB held, stopped by {} (pool {} MiB, cap {} MiB)",
        stop.name(),
        p.pool_mb,
        per_file / MIB
    ));
    if p.pool_mb << 20 > per_file {
        check(stop == Stop::Cap && held == per_file, || {
            format!(
                "pool {} MiB above the {} MiB cap: stopped by {} at {n} MiB, want E2BIG at the cap",
                p.pool_mb,
                per_file / MIB,
                stop.name()
            )
        })
    } else {
        check(
            stop == Stop::OutOfMemory && n >= 1 && held <= p.pool_mb << 20,
            || {
                format!(
                    "pool {} MiB not above the {} MiB cap: stopped by {} at {n} MiB, want ENOMEM within the pool",
                    p.pool_mb,
                    per_file / MIB,
                    stop.name()
                )
            },
        )
    }
}

/// The adversarial shapes of issue 13: each is allocated until E2BIG on a
/// fresh file, and the kernel's MemFree must fall by no more than the
/// per-file cap plus [`SLACK`]. Closing the file gives it all back.
///
/// Except the cache per handle: SLUB's `kmem_cache_destroy` waits for RCU
/// barriers (`kvfree_rcu_barrier_on_cache`), about 0.1 s a cache even
/// natively, so 1024 caches took 71 s on UML and 150 s under TCG, most of
/// a suite. That shape fills [`CACHE_HANDLES`] and its MemFree fall is
/// scaled to a full handle table before the same comparison: what it
/// bounds is the memory a cache costs beyond what memlab charges, which
/// grows with the count.
fn caps_hold_on_the_kernels_numbers() -> Outcome {
    let (per_file, _) = caps()?;
    let real = uapi::MEMLAB_BACKEND_REAL;
    let mirror = uapi::MEMLAB_BACKEND_MIRROR;
    let max_align = largest_align()?;
    let max_order = super::kernel::max_page_order()?;
    let shapes: [(&str, uapi::MemlabAlloc); 8] = [
        (
            "real kmem_cache 8 B at the largest alignment (KMALLOC_MAX_SIZE)",
            req(real, uapi::MEMLAB_FAMILY_KMEM_CACHE, 8, 0, max_align),
        ),
        (
            PER_HANDLE_CACHE,
            req(real, uapi::MEMLAB_FAMILY_KMEM_CACHE, 8, 0, 0),
        ),
        (
            "real dma 2 MiB + 4 KiB",
            req(real, uapi::MEMLAB_FAMILY_DMA, 2 * MIB + 4096, 0, 0),
        ),
        (
            "real kmalloc 2 MiB + 1",
            req(real, uapi::MEMLAB_FAMILY_KMALLOC, 2 * MIB + 1, 0, 0),
        ),
        (
            "real vmalloc 4 KiB",
            req(real, uapi::MEMLAB_FAMILY_VMALLOC, 4096, 0, 0),
        ),
        (
            "real pages of MAX_PAGE_ORDER",
            req(real, uapi::MEMLAB_FAMILY_PAGES, 0, max_order, 0),
        ),
        (
            "mirror kmem_cache 2100 B",
            req(mirror, uapi::MEMLAB_FAMILY_KMEM_CACHE, 2100, 0, 0),
        ),
        (
            "mirror vmalloc 4 KiB",
            req(mirror, uapi::MEMLAB_FAMILY_VMALLOC, 4096, 0, 0),
        ),
    ];
    let mut report = String::new();
    let mut bad = Vec::new();
    for (name, r) in shapes {
        if r.family == uapi::MEMLAB_FAMILY_DMA && super::kernel::is_uml() {
            // No DMA API on UML.
            continue;
        }
        let limit = if name == PER_HANDLE_CACHE {
            CACHE_HANDLES
        } else {
            4096
        };
        let start = std::time::Instant::now();
        let m = Memlab::open().map_err(|e| e.to_string())?;
        let free0 = mem_free()?;
        let (n, stop) = fill(&m, &r, limit)?;
        let mut fell = free0.saturating_sub(mem_free()?);
        drop(m);
        report += &format!(
            "{name}: {n} handles, stopped by {}, MemFree fell {} KiB ({:.1} s with the close)",
            stop.name(),
            fell >> 10,
            start.elapsed().as_secs_f64()
        );
        if stop == Stop::Count {
            if name != PER_HANDLE_CACHE {
                bad.push(format!("{name}: {n} allocations and no refusal"));
            }
            fell = fell * MAX_HANDLES as u64 / n.max(1) as u64;
            report += &format!(", {} KiB scaled to {MAX_HANDLES} handles", fell >> 10);
        }
        report += "\n";
        if fell > per_file + SLACK {
            bad.push(format!(
                "{name}: MemFree fell {} MiB, past the {} MiB cap + {} MiB slack",
                fell / MIB,
                per_file / MIB,
                SLACK / MIB
            ));
        }
        if n == 0 {
            bad.push(format!("{name}: not even one handle"));
        }
    }
    check(bad.is_empty(), || format!("{report}{}", bad.join("\n")))?;
    let _ = io::stdout().write_all(
        report
            .lines()
            .map(|l| format!("# {l}\n"))
            .collect::<String>()
            .as_bytes(),
    );
    Ok(())
}

/// Several files at once against the module-wide cap: together they are
/// refused (E2BIG) once `max_pinned_total_mb` is reached, and MemFree falls
/// by no more than that plus [`SLACK`].
fn module_wide_cap_holds_across_files() -> Outcome {
    let (per_file, total) = caps()?;
    let files = (total / per_file + 1) as usize;
    let r = req(
        uapi::MEMLAB_BACKEND_REAL,
        uapi::MEMLAB_FAMILY_PAGES,
        0,
        10,
        0,
    );
    let free0 = mem_free()?;
    let before = pinned_total()?;
    let mut open = Vec::new();
    let mut got = 0;
    for _ in 0..files {
        let m = Memlab::open().map_err(|e| e.to_string())?;
        got += fill(&m, &r, 4096)?.0;
        open.push(m);
    }
    let fell = free0.saturating_sub(mem_free()?);
    let held = pinned_total()? - before;
    drop(open);
    let block = 4 * MIB;
    check(held <= total && got as u64 * block == held, || {
        format!("{files} files hold {held} bytes in {got} blocks; module cap {total}")
    })?;
    check(held + block > total.saturating_sub(before), || {
        format!("{files} files stopped at {held} bytes, well below the module cap {total}")
    })?;
    check(fell <= total + SLACK, || {
        format!(
            "MemFree fell {} MiB for a {} MiB module cap",
            fell / MIB,
            total / MIB
        )
    })?;
    let after = pinned_total()?;
    check(after == before, || {
        format!("pinned_total_bytes {after} after closing, {before} before")
    })
}

/// SLUB takes a kmem_cache's zone from the cache's flags, not from the
/// mask of one allocation: GFP_DMA does not move an object of a plain cache
/// into ZONE_DMA, and a `MEMLAB_CACHE_DMA` cache's objects are in ZONE_DMA
/// whatever the mask. The same on both backends.
fn kmem_cache_zone_comes_from_the_cache() -> Outcome {
    let m = Memlab::open().map_err(|e| e.to_string())?;
    let mut seen = Vec::new();
    for b in [uapi::MEMLAB_BACKEND_REAL, uapi::MEMLAB_BACKEND_MIRROR] {
        for (gfp, flags) in [
            (uapi::MEMLAB_GFP_DMA, 0),
            (uapi::MEMLAB_GFP_KERNEL, uapi::MEMLAB_CACHE_DMA),
            (uapi::MEMLAB_GFP_ATOMIC, uapi::MEMLAB_CACHE_DMA),
            (uapi::MEMLAB_GFP_KERNEL, uapi::MEMLAB_CACHE_HWCACHE_ALIGN),
        ] {
            let r = uapi::MemlabAlloc {
                gfp,
                cache_flags: flags,
                ..req(b, uapi::MEMLAB_FAMILY_KMEM_CACHE, 100, 0, 0)
            };
            let h = m.alloc(&r).map_err(|e| format!("{r:?}: {e}"))?;
            let i = m.inspect(h).map_err(|e| e.to_string())?;
            m.free(h).map_err(|e| e.to_string())?;
            let in_dma = i.zone == uapi::MEMLAB_ZONE_DMA;
            // Without ZONE_DMA (UML) a SLAB_CACHE_DMA cache is in Normal.
            let want_dma = flags & uapi::MEMLAB_CACHE_DMA != 0
                && super::kernel::zone_limit(uapi::MEMLAB_GFP_DMA).is_some();
            seen.push(format!(
                "backend {b} gfp {gfp} flags {flags}: zone {}",
                i.zone
            ));
            check(in_dma == want_dma, || seen.join("\n"))?;
            if flags & uapi::MEMLAB_CACHE_HWCACHE_ALIGN != 0 {
                // 100 B objects on 64 B lines: 128 B apart, 64 B aligned.
                check(i.align_log2 >= 6 && i.usable == 100, || {
                    format!(
                        "hwcache-aligned object: align 2^{}, usable {}",
                        i.align_log2, i.usable
                    )
                })?;
            }
        }
    }
    Ok(())
}

/// What one allocation of `r` adds to `pinned_total_bytes`.
fn charge_of(m: &Memlab, r: &uapi::MemlabAlloc) -> Result<u64, String> {
    let before = pinned_total()?;
    let h = m.alloc(r).map_err(|e| format!("{r:?}: {e}"))?;
    let during = pinned_total();
    m.free(h).map_err(|e| e.to_string())?;
    let after = pinned_total()?;
    check(after == before, || {
        format!("{r:?}: {after} pinned after free, {before} before")
    })?;
    Ok(during?.saturating_sub(before))
}

/// The charge is what the allocator holds, not what was asked: a 12 KiB
/// DMA buffer is a 16 KiB `get_order` block on both backends; a kmem_cache
/// handle holds at least a slab (the mirror's order-3 slab for 2100 B
/// objects; on the real side SLUB's sheaf refill, 4 objects of a slot of
/// the largest alignment, KMALLOC_MAX_SIZE: 4 MiB on Debian's 7.2 x86-64).
fn charges_are_what_is_held() -> Outcome {
    let m = Memlab::open().map_err(|e| e.to_string())?;
    let mut bad = Vec::new();
    // No DMA API on UML: the kmem_cache charges below still run.
    let dma_backends: &[u32] = if super::kernel::is_uml() {
        &[]
    } else {
        &[uapi::MEMLAB_BACKEND_REAL, uapi::MEMLAB_BACKEND_MIRROR]
    };
    for &b in dma_backends {
        let c = charge_of(&m, &req(b, uapi::MEMLAB_FAMILY_DMA, 12 << 10, 0, 0))?;
        if c != 16 << 10 {
            bad.push(format!("backend {b}: dma 12 KiB charged {c}, want 16 KiB"));
        }
    }
    let c = charge_of(
        &m,
        &req(
            uapi::MEMLAB_BACKEND_MIRROR,
            uapi::MEMLAB_FAMILY_KMEM_CACHE,
            2100,
            0,
            0,
        ),
    )?;
    if !(32 << 10..=40 << 10).contains(&c) {
        bad.push(format!(
            "mirror kmem_cache 2100 B charged {c}, want its 32 KiB slab (+ the cache)"
        ));
    }
    let c = charge_of(
        &m,
        &req(
            uapi::MEMLAB_BACKEND_REAL,
            uapi::MEMLAB_FAMILY_KMEM_CACHE,
            8,
            0,
            largest_align()?,
        ),
    )?;
    let slot = u64::from(largest_align()?);
    if c < 4 * slot {
        bad.push(format!(
            "real kmem_cache 8 B aligned {slot} B charged {c}, less than SLUB's sheaf of 4 such slots"
        ));
    }
    let c = charge_of(
        &m,
        &req(
            uapi::MEMLAB_BACKEND_REAL,
            uapi::MEMLAB_FAMILY_KMALLOC,
            2 * MIB + 1,
            0,
            0,
        ),
    )?;
    if c != 4 * MIB {
        bad.push(format!(
            "real kmalloc 2 MiB + 1 charged {c}, want its 4 MiB block"
        ));
    }
    check(bad.is_empty(), || bad.join("\n"))
}
