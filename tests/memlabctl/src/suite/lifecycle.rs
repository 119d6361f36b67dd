// SPDX-License-Identifier: GPL-2.0

//! The module's life: loaded at the start (the init script did that), and
//! at the end unloaded, its device and debugfs tree gone, the mirror's pool
//! returned whole, and no kmemleak report. The unload cases must come last.

use crate::dev::{DEBUGFS, DEV_PATH};
use crate::tap::{check, Outcome, Suite, SKIP};
use std::fs;
use std::io;

const MODULE: &str = "rust_memlab";
const KMEMLEAK: &str = "/sys/kernel/debug/kmemleak";

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
    s.case("kmemleak finds no new leak after unload", kmemleak_clean);
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
        return Err(format!("{SKIP}no {KMEMLEAK} in this kernel"));
    }
    // kmemleak ignores objects younger than 5 s; let unload's frees settle.
    std::thread::sleep(std::time::Duration::from_secs(6));
    for _ in 0..2 {
        fs::write(KMEMLEAK, "scan").map_err(|e| format!("scan: {e}"))?;
    }
    let report = fs::read_to_string(KMEMLEAK).map_err(|e| e.to_string())?;
    check(report.trim().is_empty(), || report)
}
