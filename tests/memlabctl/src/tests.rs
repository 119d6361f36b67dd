// SPDX-License-Identifier: GPL-2.0

//! The in-VM tests and the demo. The init script loads the module before
//! `memlabctl test` and leaves unloading to the last tests here, so the
//! whole run, teardown included, is one TAP stream.

use crate::dev::{uapi, Memlab, DEBUGFS, DEV_PATH};
use crate::tap::{check, Case, Outcome};
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::process::ExitCode;

const MODULE: &str = "rust_memlab";
const KMEMLEAK: &str = "/sys/kernel/debug/kmemleak";

fn errno_of(r: io::Result<impl Sized>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

fn expect_errno(r: io::Result<impl Sized>, want: i32, name: &str) -> Outcome {
    match errno_of(r) {
        Some(e) if e == want => Ok(()),
        Some(e) => Err(format!("expected {name} ({want}), got errno {e}")),
        None => Err(format!("expected {name} ({want}), but the call succeeded")),
    }
}

fn module_loaded() -> bool {
    fs::read_to_string("/proc/modules")
        .map(|m| m.lines().any(|l| l.split(' ').next() == Some(MODULE)))
        .unwrap_or(false)
}

/// Runs `f` in a child process that has dropped CAP_SYS_ADMIN from its
/// effective set (still uid 0), and returns the child's exit code.
fn in_child_without_cap_sys_admin(f: fn() -> i32) -> io::Result<i32> {
    // SAFETY: fork in a single-threaded process; the child only makes raw
    // syscalls and calls `f`, then `_exit`s without unwinding.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy, Default)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        let mut hdr = Header {
            version: 0x2008_0522,
            pid: 0,
        };
        let mut data = [Data::default(); 2];
        // SAFETY: capget/capset with a v3 header and two data words, as the
        // ABI requires; both point to live stack memory.
        let code = unsafe {
            if libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) != 0 {
                100
            } else {
                data[0].effective &= !(1 << 21); // CAP_SYS_ADMIN
                if libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) != 0 {
                    101
                } else {
                    f()
                }
            }
        };
        // SAFETY: terminating the forked child without running destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        return Err(io::Error::last_os_error());
    }
    if libc::WIFEXITED(status) {
        Ok(libc::WEXITSTATUS(status))
    } else {
        Ok(-1)
    }
}

fn cases(inject_failure: bool) -> Vec<Case> {
    let mut v: Vec<Case> = Vec::new();
    macro_rules! case {
        ($name:expr, $body:expr) => {
            v.push(Case {
                name: $name,
                run: Box::new($body),
            })
        };
    }

    case!("module is loaded", || check(module_loaded(), || {
        format!("{MODULE} not in /proc/modules")
    }));
    case!("/dev/memlab is a character device with mode 0600", || {
        let md = fs::metadata(DEV_PATH).map_err(|e| format!("{DEV_PATH}: {e}"))?;
        check(md.file_type().is_char_device(), || {
            "not a char device".into()
        })?;
        let mode = md.permissions().mode() & 0o7777;
        check(mode == 0o600, || format!("mode is {mode:o}"))
    });
    case!(
        "VERSION ioctl reports the ABI this harness was built for",
        || {
            let v = Memlab::open()
                .and_then(|d| d.version())
                .map_err(|e| e.to_string())?;
            let want = uapi::MemlabVersion {
                abi_version: uapi::MEMLAB_ABI_VERSION,
                struct_size: std::mem::size_of::<uapi::MemlabVersion>() as u32,
                max_page_order: 10,
                page_size: 4096,
            };
            check(v == want, || format!("got {v:?}, want {want:?}"))
        }
    );
    case!("debugfs version file names the ABI", || {
        let got = fs::read_to_string(format!("{DEBUGFS}/version")).map_err(|e| e.to_string())?;
        let want = format!("memlab ABI {}\n", uapi::MEMLAB_ABI_VERSION);
        check(got == want, || format!("got {got:?}, want {want:?}"))
    });
    case!("unknown ioctl command fails with ENOTTY", || {
        let d = Memlab::open().map_err(|e| e.to_string())?;
        expect_errno(
            d.ioctl_raw(uapi::MEMLAB_IOC_VERSION + 0x7f, 0),
            libc::ENOTTY,
            "ENOTTY",
        )
    });
    case!(
        "VERSION ioctl into an unmapped address fails with EFAULT",
        || {
            let d = Memlab::open().map_err(|e| e.to_string())?;
            expect_errno(
                d.ioctl_raw(uapi::MEMLAB_IOC_VERSION, 16),
                libc::EFAULT,
                "EFAULT",
            )
        }
    );
    case!("open without CAP_SYS_ADMIN fails with EPERM", || {
        let code = in_child_without_cap_sys_admin(|| match Memlab::open() {
            Ok(_) => 0,
            Err(e) => e.raw_os_error().unwrap_or(0),
        })
        .map_err(|e| e.to_string())?;
        check(code == libc::EPERM, || {
            format!("child saw errno {code} (0 = open succeeded)")
        })
    });
    abi_cases(&mut v);
    v.extend(crate::real_tests::cases());
    v.extend(crate::mirror_tests::cases());
    if inject_failure {
        case!("injected failure (memlabctl test --inject-failure)", || {
            Err("deliberately failed: the host must report this run as failed".into())
        });
    }
    case!("rmmod rust_memlab succeeds", || {
        let name = c"rust_memlab";
        // SAFETY: NUL-terminated module name; O_NONBLOCK as rmmod uses.
        let rc = unsafe { libc::syscall(libc::SYS_delete_module, name.as_ptr(), libc::O_NONBLOCK) };
        check(rc == 0, || {
            format!("delete_module: {}", io::Error::last_os_error())
        })
    });
    case!("unload removes /dev/memlab and the debugfs tree", || {
        check(!module_loaded(), || "module still listed".into())?;
        check(fs::metadata(DEV_PATH).is_err(), || {
            format!("{DEV_PATH} still exists")
        })?;
        check(fs::metadata(DEBUGFS).is_err(), || {
            format!("{DEBUGFS} still exists")
        })
    });
    case!(
        "unload returned the whole mirror pool, nothing still allocated",
        pool_returned
    );
    case!("kmemleak finds no new leak after unload", kmemleak_clean);
    v
}

/// A request that must be refused with `want` before any allocation.
fn refused(req: uapi::MemlabAlloc, want: i32, name: &str) -> Outcome {
    let d = Memlab::open().map_err(|e| e.to_string())?;
    expect_errno(d.alloc(&req), want, name)
}

fn kmalloc(size: u64) -> uapi::MemlabAlloc {
    uapi::MemlabAlloc {
        family: uapi::MEMLAB_FAMILY_KMALLOC,
        size,
        ..Default::default()
    }
}

/// Hostile input to the allocation ABI: each class gets its errno.
fn abi_cases(v: &mut Vec<Case>) {
    use uapi::*;
    let cases: Vec<(&'static str, uapi::MemlabAlloc, i32, &'static str)> = vec![
        (
            "ALLOC with an unknown family fails with EINVAL",
            MemlabAlloc {
                family: MEMLAB_NR_FAMILIES,
                size: 64,
                ..Default::default()
            },
            libc::EINVAL,
            "EINVAL",
        ),
        (
            "ALLOC with an unknown GFP selector fails with EINVAL",
            MemlabAlloc {
                gfp: MEMLAB_NR_GFP,
                ..kmalloc(64)
            },
            libc::EINVAL,
            "EINVAL",
        ),
        (
            "ALLOC with an unknown GFP modifier bit fails with EINVAL",
            MemlabAlloc {
                gfp: 1 << 9,
                ..kmalloc(64)
            },
            libc::EINVAL,
            "EINVAL",
        ),
        (
            "ALLOC with an unknown backend fails with EINVAL",
            MemlabAlloc {
                backend: 2,
                ..kmalloc(64)
            },
            libc::EINVAL,
            "EINVAL",
        ),
        (
            "ALLOC of zero bytes fails with EINVAL",
            kmalloc(0),
            libc::EINVAL,
            "EINVAL",
        ),
        (
            "ALLOC of pages above MAX_PAGE_ORDER fails with EINVAL",
            MemlabAlloc {
                family: MEMLAB_FAMILY_PAGES,
                order: 11,
                ..Default::default()
            },
            libc::EINVAL,
            "EINVAL",
        ),
        (
            "ALLOC of pages with order 2^31 fails with EINVAL",
            MemlabAlloc {
                family: MEMLAB_FAMILY_PAGES,
                order: 1 << 31,
                ..Default::default()
            },
            libc::EINVAL,
            "EINVAL",
        ),
        (
            "ALLOC with a non-power-of-two alignment fails with EINVAL",
            MemlabAlloc {
                family: MEMLAB_FAMILY_KMEM_CACHE,
                size: 64,
                align: 48,
                ..Default::default()
            },
            libc::EINVAL,
            "EINVAL",
        ),
        (
            "ALLOC with an alignment for kmalloc fails with EINVAL",
            MemlabAlloc {
                align: 64,
                ..kmalloc(64)
            },
            libc::EINVAL,
            "EINVAL",
        ),
        (
            "ALLOC larger than max_pinned_mb fails with E2BIG",
            MemlabAlloc {
                family: MEMLAB_FAMILY_VMALLOC,
                size: (64 << 20) + 1,
                ..Default::default()
            },
            libc::E2BIG,
            "E2BIG",
        ),
        (
            "ALLOC of u64::MAX bytes fails with E2BIG",
            kmalloc(u64::MAX),
            libc::E2BIG,
            "E2BIG",
        ),
    ];
    for (name, req, errno, errname) in cases {
        v.push(Case {
            name,
            run: Box::new(move || refused(req, errno, errname)),
        });
    }
    v.push(Case {
        name: "FREE and INSPECT of unknown handles fail with EINVAL",
        run: Box::new(|| {
            let d = Memlab::open().map_err(|e| e.to_string())?;
            for h in [0, 1, 1024, u32::MAX] {
                expect_errno(d.free(h), libc::EINVAL, "EINVAL")
                    .map_err(|e| format!("FREE {h}: {e}"))?;
                expect_errno(d.inspect(h), libc::EINVAL, "EINVAL")
                    .map_err(|e| format!("INSPECT {h}: {e}"))?;
            }
            Ok(())
        }),
    });
    v.push(Case {
        name: "EXERCISE with an unknown id or too many reps fails with EINVAL",
        run: Box::new(|| {
            let d = Memlab::open().map_err(|e| e.to_string())?;
            expect_errno(d.exercise(MEMLAB_NR_EXERCISES, 0), libc::EINVAL, "EINVAL")?;
            expect_errno(d.exercise(MEMLAB_EX_KMALLOC, 1001), libc::EINVAL, "EINVAL")
        }),
    });
    v.push(Case {
        name: "pinned memory is capped per open file (E2BIG) and freed on close",
        run: Box::new(pin_cap_and_close),
    });
}

/// MemFree in KiB from /proc/meminfo.
fn mem_free_kib() -> Result<u64, String> {
    let m = fs::read_to_string("/proc/meminfo").map_err(|e| e.to_string())?;
    m.lines()
        .find_map(|l| l.strip_prefix("MemFree:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no MemFree in /proc/meminfo".into())
}

/// 40 MiB fits under the default 64 MiB cap, a second 40 MiB does not; the
/// first is freed by closing the file, seen in MemFree.
fn pin_cap_and_close() -> Outcome {
    let big = uapi::MemlabAlloc {
        family: uapi::MEMLAB_FAMILY_VMALLOC,
        size: 40 << 20,
        ..Default::default()
    };
    let before = mem_free_kib()?;
    {
        let d = Memlab::open().map_err(|e| e.to_string())?;
        let h = d.alloc(&big).map_err(|e| format!("first 40 MiB: {e}"))?;
        expect_errno(d.alloc(&big), libc::E2BIG, "E2BIG")
            .map_err(|e| format!("second 40 MiB: {e}"))?;
        let during = mem_free_kib()?;
        check(before.saturating_sub(during) >= 39 << 10, || {
            format!(
                "MemFree fell only {} KiB while 40 MiB was held",
                before.saturating_sub(during)
            )
        })?;
        // Freeing explicitly makes room again.
        d.free(h).map_err(|e| format!("FREE: {e}"))?;
        let _h = d
            .alloc(&big)
            .map_err(|e| format!("40 MiB after FREE: {e}"))?;
    }
    let after = mem_free_kib()?;
    check(after + (8 << 10) >= before, || {
        format!("MemFree {before} KiB before, {after} KiB after close: not returned")
    })
}

/// The kernel log, through syslog(2) (SYSLOG_ACTION_READ_ALL).
fn kernel_log() -> Result<String, String> {
    let mut buf = vec![0u8; 1 << 20];
    // SAFETY: the buffer is valid for its length.
    let n = unsafe { libc::klogctl(3, buf.as_mut_ptr().cast(), buf.len() as i32) };
    if n < 0 {
        return Err(format!("klogctl: {}", io::Error::last_os_error()));
    }
    buf.truncate(n as usize);
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The mirror logs its pool accounting when the module unloads.
fn pool_returned() -> Outcome {
    let log = kernel_log()?;
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("mirror: returning"))
        .ok_or("no 'mirror: returning' line in the kernel log")?;
    check(
        line.contains("returning 4096 pool pages") && line.contains("(0 were still allocated"),
        || line.to_string(),
    )
}

/// Scans for leaks; the init script cleared older reports before loading
/// the module, so anything here appeared while memlab was loaded.
fn kmemleak_clean() -> Outcome {
    if fs::metadata(KMEMLEAK).is_err() {
        // The bench kernel has no kmemleak; the test kernel must (test.sh
        // fails a test-kernel run with any skip).
        return Err(format!("{}no {KMEMLEAK} in this kernel", crate::tap::SKIP));
    }
    // kmemleak ignores objects younger than 5 s; let unload's frees settle.
    std::thread::sleep(std::time::Duration::from_secs(6));
    for _ in 0..2 {
        fs::write(KMEMLEAK, "scan").map_err(|e| format!("scan: {e}"))?;
    }
    let report = fs::read_to_string(KMEMLEAK).map_err(|e| e.to_string())?;
    check(report.trim().is_empty(), || report)
}

pub fn run(inject_failure: bool) -> ExitCode {
    let failed = crate::tap::run(cases(inject_failure));
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn show_file(path: &str, max_lines: usize) -> bool {
    println!("\n$ cat {path}");
    match fs::read_to_string(path) {
        Ok(s) => {
            for l in s.lines().take(max_lines) {
                println!("{l}");
            }
            if s.lines().count() > max_lines {
                println!("... ({} lines in all)", s.lines().count());
            }
            true
        }
        Err(e) => {
            println!("memlabctl: {path}: {e}");
            false
        }
    }
}

/// The same requests on both backends, one table: what the kernel's
/// allocators hand out next to what memlab's mirror hands out.
fn side_by_side(d: &Memlab) -> bool {
    use uapi::*;
    let reqs: [(&str, MemlabAlloc); 9] = [
        (
            "kmalloc 100 B",
            MemlabAlloc {
                family: MEMLAB_FAMILY_KMALLOC,
                size: 100,
                ..Default::default()
            },
        ),
        (
            "kmalloc 5000 B",
            MemlabAlloc {
                family: MEMLAB_FAMILY_KMALLOC,
                size: 5000,
                ..Default::default()
            },
        ),
        (
            "kmalloc 64 KiB",
            MemlabAlloc {
                family: MEMLAB_FAMILY_KMALLOC,
                size: 65536,
                ..Default::default()
            },
        ),
        (
            "pages order 3",
            MemlabAlloc {
                family: MEMLAB_FAMILY_PAGES,
                order: 3,
                ..Default::default()
            },
        ),
        (
            "pages, GFP_DMA",
            MemlabAlloc {
                family: MEMLAB_FAMILY_PAGES,
                gfp: MEMLAB_GFP_DMA,
                ..Default::default()
            },
        ),
        (
            "pages, GFP_DMA32",
            MemlabAlloc {
                family: MEMLAB_FAMILY_PAGES,
                gfp: MEMLAB_GFP_DMA32,
                ..Default::default()
            },
        ),
        (
            "kmem_cache 100 B align 256",
            MemlabAlloc {
                family: MEMLAB_FAMILY_KMEM_CACHE,
                size: 100,
                align: 256,
                ..Default::default()
            },
        ),
        (
            "vmalloc 1 MiB",
            MemlabAlloc {
                family: MEMLAB_FAMILY_VMALLOC,
                size: 1 << 20,
                ..Default::default()
            },
        ),
        (
            "dma 64 KiB, GFP_DMA32",
            MemlabAlloc {
                family: MEMLAB_FAMILY_DMA,
                size: 64 << 10,
                gfp: MEMLAB_GFP_DMA32,
                ..Default::default()
            },
        ),
    ];
    println!("\n-- real vs mirror: the same requests on both backends --");
    println!(
        "{:<28} {:<7} {}",
        "request",
        "backend",
        crate::cli::BLOCK_HEADER
    );
    let mut ok = true;
    for (what, req) in reqs {
        for (bname, backend) in [
            ("real", MEMLAB_BACKEND_REAL),
            ("mirror", MEMLAB_BACKEND_MIRROR),
        ] {
            let r = MemlabAlloc { backend, ..req };
            match d.alloc(&r).and_then(|h| d.inspect(h)) {
                Ok(i) => println!("{what:<28} {bname:<7} {}", crate::cli::block_row(&i)),
                Err(e) => {
                    ok = false;
                    println!("{what:<28} {bname:<7} failed: {e}");
                }
            }
        }
    }
    ok
}

pub fn demo() -> ExitCode {
    println!("== memlab demo ==");
    let d = match Memlab::open() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("memlabctl: {DEV_PATH}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match d.version() {
        Ok(v) => println!(
            "/dev/memlab: ABI {}, page size {} B, MAX_PAGE_ORDER {}",
            v.abi_version, v.page_size, v.max_page_order
        ),
        Err(e) => {
            eprintln!("memlabctl: VERSION: {e}");
            return ExitCode::FAILURE;
        }
    }
    let mut ok = true;
    println!("\n-- 1. the real allocators: every exercise --");
    ok &= crate::cli::exercise(&["all".to_string()]) == ExitCode::SUCCESS;
    ok &= show_file(&format!("{DEBUGFS}/real/report"), 400);
    ok &= side_by_side(&d);
    println!("\n-- 2. the mirror's own view, in the kernel's formats --");
    for f in [
        "pool",
        "buddyinfo",
        "extfrag_index",
        "unusable_index",
        "slabinfo",
    ] {
        ok &= show_file(&format!("{DEBUGFS}/mirror/{f}"), 40);
    }
    println!("\n-- 3. the kernel's own free lists, for comparison --");
    ok &= show_file("/proc/buddyinfo", 10);
    if ok {
        ExitCode::SUCCESS
    } else {
        eprintln!("memlabctl: demo: some steps failed (see above)");
        ExitCode::FAILURE
    }
}
