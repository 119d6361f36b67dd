// SPDX-License-Identifier: GPL-2.0

//! The module's life: loaded at the start (the init script did that), and
//! at the end unloaded, its device and debugfs tree gone, the mirror's pool
//! returned whole, and no kmemleak report. The unload cases must come last.

use crate::dev::{DEBUGFS, DEV_PATH};
use crate::tap::{check, note, Outcome, Suite, SKIP};
use std::fs;
use std::io;
use vmcheck::kmemleak;

const MODULE: &str = "rust_memlab";

fn module_loaded() -> bool {
    fs::read_to_string("/proc/modules")
        .map(|m| m.lines().any(|l| l.split(' ').next() == Some(MODULE)))
        .unwrap_or(false)
}

/// The first case.
pub fn loaded(s: &mut Suite) {
    s.case("module is loaded", || {
        check(module_loaded(), || format!("{MODULE} not in /proc/modules"))
    });
    s.case(
        "the kernel brought up every CPU the rig gave the VM (memlab.cpus=), so per-CPU paths run on more than one",
        every_cpu_online,
    );
}

/// The rig passes the vCPUs it asked QEMU or UML for as `memlab.cpus=N`.
/// A kernel that finds fewer (an x86 one with neither ACPI's MADT nor MP
/// table parsing sees only the boot CPU) would run every per-CPU case on
/// one CPU, and they would pass.
fn every_cpu_online() -> Outcome {
    let cmdline = fs::read_to_string("/proc/cmdline").map_err(|e| format!("/proc/cmdline: {e}"))?;
    let Some(want) = cmdline_cpus(&cmdline) else {
        return Err(format!(
            "no memlab.cpus= on the kernel command line: {}",
            cmdline.trim()
        ));
    };
    let online = crate::bench::online_cpus();
    check(online == want, || {
        format!("{online} CPUs online, the VM was given {want}")
    })
}

/// `N` of `memlab.cpus=N` on a kernel command line.
fn cmdline_cpus(cmdline: &str) -> Option<usize> {
    cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("memlab.cpus="))
        .and_then(|n| n.parse().ok())
}

/// The last cases: nothing may use the module after them.
pub fn unload(s: &mut Suite) {
    s.case("rmmod rust_memlab succeeds", || {
        let name = c"rust_memlab";
        // SAFETY: NUL-terminated module name; O_NONBLOCK as rmmod uses.
        let rc = unsafe { libc::syscall(libc::SYS_delete_module, name.as_ptr(), libc::O_NONBLOCK) };
        check(rc == 0, || {
            format!("delete_module: {}", io::Error::last_os_error())
        })
    });
    s.case("unload removes /dev/memlab and the debugfs tree", || {
        check(!module_loaded(), || "module still listed".into())?;
        check(fs::metadata(DEV_PATH).is_err(), || {
            format!("{DEV_PATH} still exists")
        })?;
        check(fs::metadata(DEBUGFS).is_err(), || {
            format!("{DEBUGFS} still exists")
        })
    });
    s.case(
        "unload returned the whole mirror pool, nothing still allocated",
        pool_returned,
    );
    s.case(
        "insmod refuses out-of-range pool_mb, max_pinned_mb and max_pinned_total_mb with EINVAL and a message",
        bad_params_refused,
    );
    s.case("kmemleak finds no new leak after unload", kmemleak_clean);
}

/// Where the init script keeps the module (also for NOMODULE=1).
const MODULE_FILE: &str = "/lib/modules/rust_memlab.ko";

/// `finit_module` of [`MODULE_FILE`] with parameters `args`.
fn insmod(args: &str) -> io::Result<()> {
    let file = fs::File::open(MODULE_FILE)?;
    let args = std::ffi::CString::new(args).map_err(io::Error::other)?;
    // SAFETY: an open file descriptor and a NUL-terminated string, both
    // live across the call; no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            std::os::fd::AsRawFd::as_raw_fd(&file),
            args.as_ptr(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// With the module unloaded, each parameter just outside its bounds fails
/// the load with EINVAL, and the kernel log gains the module's message
/// naming the parameter, its bounds and the value. A load that succeeds
/// is unloaded again and fails the case.
fn bad_params_refused() -> Outcome {
    check(!module_loaded(), || format!("{MODULE} is loaded"))?;
    for (args, message) in [
        ("pool_mb=0", "pool_mb must be 1..=2048, not 0"),
        ("pool_mb=4096", "pool_mb must be 1..=2048, not 4096"),
        ("max_pinned_mb=0", "max_pinned_mb must be 1..=65536, not 0"),
        (
            "max_pinned_mb=65537",
            "max_pinned_mb must be 1..=65536, not 65537",
        ),
        (
            "max_pinned_total_mb=0",
            "max_pinned_total_mb must be 1..=65536, not 0",
        ),
        (
            "max_pinned_total_mb=70000 pool_mb=16",
            "max_pinned_total_mb must be 1..=65536, not 70000",
        ),
    ] {
        let message = format!("{MODULE}: {message}");
        let before = super::kernel::log()?.matches(&message).count();
        match insmod(args) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(format!("insmod {args}: {e}, want EINVAL")),
            Ok(()) => {
                let name = c"rust_memlab";
                // SAFETY: NUL-terminated module name.
                unsafe { libc::syscall(libc::SYS_delete_module, name.as_ptr(), libc::O_NONBLOCK) };
                return Err(format!("insmod {args} succeeded"));
            }
        }
        let after = super::kernel::log()?.matches(&message).count();
        check(after == before + 1, || {
            format!("insmod {args}: the kernel log has {after} lines {message:?}, {before} before")
        })?;
    }
    check(!module_loaded(), || format!("{MODULE} is loaded"))
}

/// The mirror logs its pool accounting when the module unloads.
fn pool_returned() -> Outcome {
    let log = super::kernel::log()?;
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("mirror: returning"))
        .ok_or("no 'mirror: returning' line in the kernel log")?;
    let pages = super::params::params().pool_pages();
    check(
        line.contains(&format!("returning {pages} pool pages"))
            && line.contains("(0 were still allocated"),
        || format!("{line} (want {pages} pages returned)"),
    )
}

/// Scans for leaks, and counts those allocated once memlab was being
/// loaded (the init script noted the jiffies before insmod); older ones,
/// the kernel's own boot's, are only counted in the TAP line.
fn kmemleak_clean() -> Outcome {
    if fs::metadata(kmemleak::FILE).is_err() {
        // The bench kernel has no kmemleak; the test kernel must (test.sh
        // fails a test-kernel run with any skip).
        return Err(format!("{SKIP}no {} in this kernel", kmemleak::FILE));
    }
    let v = kmemleak::scan_and_judge()?;
    note(v.aside);
    check(v.leaks.is_empty(), || v.leaks)
}

#[cfg(test)]
mod tests {
    use super::cmdline_cpus;

    #[test]
    fn cpus_from_the_command_line() {
        let line =
            "console=ttyS0 panic=-1 loglevel=5 memlab.cmd=test memlab.cpus=2 memlab.engine=tcg\n";
        assert_eq!(cmdline_cpus(line), Some(2));
        assert_eq!(cmdline_cpus("memlab.cmd=test"), None);
        assert_eq!(cmdline_cpus("memlab.cpus=x"), None);
        assert_eq!(cmdline_cpus("xmemlab.cpus=3"), None);
    }
}
