// SPDX-License-Identifier: GPL-2.0

//! `memlab-fuzz`: an ioctl fuzzer for `/dev/memlab`, run inside the VM.
//!
//! ```text
//! memlab-fuzz [secs=N | iters=N] [seed=S] [procs=N] [fds=N] [threads=N]
//!             [no-rmmod]          (also as --secs N, --seed S, ...)
//! ```
//!
//! `procs` processes, each with `fds` open files shared by `threads`
//! threads, send valid, near-valid and garbage requests (every command,
//! unknown numbers, wrong sizes, boundary sizes and orders, bad GFP values
//! and handles, NULL, unmapped, read-only and straddling pointers), close
//! files that still hold memory, fork children that share them; another
//! process reads every debugfs file and tries rmmod (which must refuse)
//! meanwhile. At the end: `mirror/check` must say exactly `ok`, rmmod must
//! succeed, the mirror must get every pool page back, kmemleak (if the
//! kernel has it) must find nothing, and the kernel log must have gained no
//! report (a WARNING, a stack dump such as sysfs's duplicate-name one:
//! vmcheck's list), whatever the console's log level let through. The last line is the verdict; the
//! exit status is non-zero on any finding. The seed makes the request
//! stream reproducible; thread interleavings are not.

#[path = "../../../src/uapi.rs"]
#[allow(dead_code)]
mod uapi;

mod kernel;
mod rng;
mod stats;
mod sys;
mod worker;

use rng::Rng;
use stats::Stats;
use std::io::{Read, Seek, SeekFrom};
use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use vmcheck::kmemleak;

const DEBUGFS: &str = "/sys/kernel/debug/memlab";
/// No ioctl completing for this long is a hang.
const HANG_SECS: u64 = 180;

struct Config {
    secs: u64,
    iters: u64,
    seed: u64,
    procs: u64,
    fds: u64,
    threads: u64,
    rmmod: bool,
}

fn parse_num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn parse_args() -> Result<Config, String> {
    let mut c = Config {
        secs: 60,
        iters: 0,
        seed: 0,
        procs: 3,
        fds: 3,
        threads: 3,
        rmmod: true,
    };
    let mut seeded = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let a = match a.strip_prefix("--") {
            Some(k) if !k.contains('=') && k != "no-rmmod" => {
                format!("{k}={}", args.next().unwrap_or_default())
            }
            Some(k) => k.to_string(),
            None => a,
        };
        if a == "no-rmmod" {
            c.rmmod = false;
            continue;
        }
        let (k, v) = a.split_once('=').ok_or(format!("bad argument '{a}'"))?;
        let n = parse_num(v).ok_or(format!("bad number in '{a}'"))?;
        match k {
            "secs" => (c.secs, c.iters) = (n, 0),
            "iters" => (c.iters, c.secs) = (n, 0),
            "seed" => (c.seed, seeded) = (n, true),
            "procs" => c.procs = n.clamp(1, 64),
            "fds" => c.fds = n.clamp(1, 64),
            "threads" => c.threads = n.clamp(1, 64),
            _ => return Err(format!("unknown argument '{k}'")),
        }
    }
    if !seeded {
        let mut b = [0u8; 8];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut b))
            .map_err(|e| format!("/dev/urandom: {e}"))?;
        c.seed = u64::from_ne_bytes(b);
    }
    Ok(c)
}

fn fork() -> i32 {
    // SAFETY: called while this process has a single thread.
    unsafe { libc::fork() }
}

/// Every regular file under `dir`, recursively.
fn walk(dir: &str, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path().to_string_lossy().into_owned();
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(&p, out),
            Ok(_) => out.push(p),
            Err(_) => {}
        }
    }
}

/// Reads `path` one way or another: whole, in small reads, or from a
/// random offset. Returns what it read from the start, if it did.
fn read_some(r: &mut Rng, path: &str) -> std::io::Result<Option<Vec<u8>>> {
    let mut f = std::fs::File::open(path)?;
    let mut out = Vec::new();
    match r.below(4) {
        0 | 1 => {
            f.read_to_end(&mut out)?;
            Ok(Some(out))
        }
        2 => {
            let mut b = [0u8; 7];
            for _ in 0..r.range(1, 64) {
                let n = f.read(&mut b[..r.range(1, 7) as usize])?;
                if n == 0 {
                    break;
                }
            }
            Ok(None)
        }
        _ => {
            f.seek(SeekFrom::Start(r.below(8192)))?;
            f.read_to_end(&mut out)?;
            Ok(None)
        }
    }
}

/// The debugfs reader: every file under memlab's debugfs directory, over
/// and over, and an rmmod attempt each round, which must fail while the
/// device is open (the parent holds it open throughout).
fn debugfs_reader(stats: &Stats, mut r: Rng) {
    let mut files = Vec::new();
    walk(DEBUGFS, &mut files);
    if files.is_empty() {
        stats.unexpected(format_args!("no files under {DEBUGFS}"));
    }
    while !stats.stopped() {
        for path in &files {
            match read_some(&mut r, path) {
                Ok(data) => {
                    stats.dbg_reads.fetch_add(1, Relaxed);
                    let data = data.unwrap_or_default();
                    stats.dbg_bytes.fetch_add(data.len() as u64, Relaxed);
                    if path.ends_with("mirror/check") && !data.is_empty() {
                        stats.check_reads.fetch_add(1, Relaxed);
                        if data != b"ok\n" && stats.check_bad.fetch_add(1, Relaxed) < 5 {
                            println!(
                                "fuzz: mirror/check during the storm: {:?}",
                                String::from_utf8_lossy(&data)
                            );
                        }
                    }
                }
                Err(e) => {
                    if stats.dbg_errors.fetch_add(1, Relaxed) < 5 {
                        println!("fuzz: reading {path}: {e}");
                    }
                }
            }
        }
        match sys::delete_module() {
            libc::EAGAIN | libc::EBUSY => {
                stats.rmmod_busy.fetch_add(1, Relaxed);
            }
            e => {
                stats.rmmod_wrong.fetch_add(1, Relaxed);
                stats.unexpected(format_args!(
                    "rmmod while /dev/memlab is open: {}",
                    sys::errno_name(e)
                ));
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One fuzzing process: its fds, its threads, then close everything.
/// Returns how many commands it sent (the parent counts a process that
/// sent none as a finding).
fn fuzz_process(stats: &'static Stats, kernel: kernel::Kernel, cfg: &Config, i: u64) -> u64 {
    let budget = if cfg.iters == 0 {
        0
    } else {
        cfg.iters.div_ceil(cfg.procs * cfg.threads)
    };
    let p = worker::Proc::new(stats, kernel, cfg.fds as usize, budget);
    std::thread::scope(|s| {
        for t in 0..cfg.threads {
            let p = &p;
            let r = Rng::derive(cfg.seed, 1 + i * 64 + t);
            s.spawn(move || p.run_thread(r));
        }
    });
    let sent = p.sent();
    p.finish(&mut Rng::derive(cfg.seed, 0x1_0000 + i));
    sent
}

/// Exit status of a fuzzing process that sent no command.
const EXIT_IDLE: i32 = 3;

/// Reaps children without blocking: returns how many are still running,
/// and notes any that died by a signal or failed.
fn reap(pids: &mut Vec<i32>, findings: &mut Vec<String>) {
    pids.retain(|&pid| {
        let mut st = 0;
        // SAFETY: `pid` is a child of this process.
        let rc = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        if rc == 0 {
            return true;
        }
        if rc != pid {
            findings.push(format!(
                "child {pid} lost: waitpid: {}",
                std::io::Error::last_os_error()
            ));
        } else if libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == EXIT_IDLE {
            findings.push(format!("fuzzing process {pid} sent no ioctl"));
        } else if !(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0) {
            findings.push(format!("child {pid} ended with wait status {st:#x}"));
        }
        false
    });
}

fn read_to_string(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

fn main() -> ExitCode {
    let cfg = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("memlab-fuzz: {e}");
            eprintln!("usage: memlab-fuzz [secs=N | iters=N] [seed=S] [procs=N] [fds=N] [threads=N] [no-rmmod]");
            return ExitCode::from(2);
        }
    };
    let limit = if cfg.iters != 0 {
        format!("iters={}", cfg.iters)
    } else {
        format!("secs={}", cfg.secs)
    };
    println!(
        "memlab-fuzz: seed={:#x} {limit} procs={} fds={} threads={}",
        cfg.seed, cfg.procs, cfg.fds, cfg.threads
    );
    println!(
        "fuzz: reproduce with: memlab-fuzz seed={:#x} {limit} procs={} fds={} threads={}",
        cfg.seed, cfg.procs, cfg.fds, cfg.threads
    );
    let stats: &'static Stats = sys::shared();
    let mut findings = Vec::new();
    // The kernel log's last timestamp now: reports after it are the run's.
    let log_start = match sys::kernel_log() {
        Ok(log) => last_stamp(&log),
        Err(e) => {
            findings.push(e);
            None
        }
    };

    // Held open (with memory in it) through the storm: the module must stay
    // busy, so the reader's rmmod attempts must fail.
    let keep = match sys::open_dev() {
        Ok(fd) => fd,
        Err(e) => {
            println!(
                "memlab-fuzz: FAIL cannot open /dev/memlab: {}",
                sys::errno_name(e)
            );
            return ExitCode::FAILURE;
        }
    };
    let kernel = match kernel::Kernel::read(DEBUGFS) {
        Ok(k) => k,
        Err(e) => {
            println!("memlab-fuzz: FAIL cannot read the zones: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "fuzz: zones: real {}, mirror {}",
        kernel.zone_names(uapi::MEMLAB_BACKEND_REAL).join(" "),
        kernel.zone_names(uapi::MEMLAB_BACKEND_MIRROR).join(" ")
    );
    for backend in [uapi::MEMLAB_BACKEND_REAL, uapi::MEMLAB_BACKEND_MIRROR] {
        let mut a = uapi::MemlabAlloc {
            family: uapi::MEMLAB_FAMILY_KMALLOC,
            size: 100,
            backend,
            ..Default::default()
        };
        let e = sys::ioctl(keep, uapi::MEMLAB_IOC_ALLOC, &mut a as *mut _ as usize);
        stats.judge(stats::Kind::Alloc, uapi::MEMLAB_IOC_ALLOC, 0, e);
    }

    let start = Instant::now();
    let reader = fork();
    if reader == 0 {
        debugfs_reader(stats, Rng::derive(cfg.seed, 0xdeb));
        // SAFETY: ends the child without the parent's atexit work.
        unsafe { libc::_exit(0) };
    }
    let mut workers = Vec::new();
    for i in 0..cfg.procs {
        let pid = fork();
        if pid == 0 {
            let sent = fuzz_process(stats, kernel, &cfg, i);
            // SAFETY: as above.
            unsafe { libc::_exit(if sent == 0 { EXIT_IDLE } else { 0 }) };
        }
        workers.push(pid);
    }

    let mut last = (0u64, start);
    let mut last_progress = start;
    let mut hang = false;
    while !workers.is_empty() {
        std::thread::sleep(Duration::from_millis(250));
        reap(&mut workers, &mut findings);
        let n = stats.ioctls.load(Relaxed);
        let now = Instant::now();
        if n != last.0 {
            last_progress = now;
        }
        if now.duration_since(last.1) >= Duration::from_secs(10) {
            let el = start.elapsed().as_secs_f64();
            println!(
                "fuzz: {:>4.0} s  {n:>10} ioctls  {:>7.0} ops/s  ({:.0} ops/s lately)",
                el,
                n as f64 / el,
                (n - last.0) as f64 / now.duration_since(last.1).as_secs_f64()
            );
            last = (n, now);
        }
        if cfg.secs != 0 && start.elapsed() >= Duration::from_secs(cfg.secs) {
            stats.stop.store(1, Relaxed);
        }
        if now.duration_since(last_progress) >= Duration::from_secs(HANG_SECS) {
            findings.push(format!("no ioctl completed for {HANG_SECS} s: hang"));
            hang = true;
            break;
        }
    }
    stats.stop.store(1, Relaxed);
    let wall = start.elapsed().as_secs_f64();
    let mut reader_pids = vec![reader];
    while !hang && !reader_pids.is_empty() {
        reap(&mut reader_pids, &mut findings);
        std::thread::sleep(Duration::from_millis(50));
    }
    sys::close(keep);

    let n = stats.ioctls.load(Relaxed);
    println!();
    stats.print_table();
    println!(
        "ioctls {n} in {wall:.1} s: {:.0} ops/s; {} processes x {} threads, {} fds each",
        n as f64 / wall,
        cfg.procs,
        cfg.threads,
        cfg.fds
    );
    println!(
        "fds closed and reopened with memory held {}, forked sharers {}, handle-table bursts {}, real exercises {}",
        stats.reopens.load(Relaxed),
        stats.forks.load(Relaxed),
        stats.bursts.load(Relaxed),
        stats.exercises.load(Relaxed)
    );
    println!(
        "debugfs: {} reads ({} bytes), {} errors; mirror/check read {} times, {} not ok; rmmod refused while open {} times, wrongly answered {}",
        stats.dbg_reads.load(Relaxed),
        stats.dbg_bytes.load(Relaxed),
        stats.dbg_errors.load(Relaxed),
        stats.check_reads.load(Relaxed),
        stats.check_bad.load(Relaxed),
        stats.rmmod_busy.load(Relaxed),
        stats.rmmod_wrong.load(Relaxed)
    );
    let unexpected = stats.unexpected.load(Relaxed);
    if unexpected != 0 {
        findings.push(format!(
            "{unexpected} unexpected results (see UNEXPECTED lines)"
        ));
    }
    if stats.dbg_errors.load(Relaxed) != 0 {
        findings.push("debugfs read errors".into());
    }
    if stats.check_bad.load(Relaxed) != 0 {
        findings.push("mirror/check not ok during the storm".into());
    }
    if !hang {
        end_checks(&cfg, &mut findings);
    }
    match sys::kernel_log() {
        Ok(log) => {
            for line in kernel_reports(&log, log_start) {
                findings.push(format!("kernel report: {}", line.trim()));
            }
        }
        Err(e) => findings.push(e),
    }
    let summary = format!(
        "seed={:#x} ioctls={n} secs={wall:.0} ops/s={:.0} procs={}",
        cfg.seed,
        n as f64 / wall,
        cfg.procs
    );
    if findings.is_empty() {
        println!("memlab-fuzz: PASS {summary}");
        ExitCode::SUCCESS
    } else {
        for f in &findings {
            println!("fuzz: finding: {f}");
        }
        println!("memlab-fuzz: FAIL ({} findings) {summary}", findings.len());
        ExitCode::FAILURE
    }
}

/// A kernel log line's timestamp (`<6>[   23.071234] ...`), in seconds.
fn stamp(line: &str) -> Option<f64> {
    let (_, rest) = line.split_once('[')?;
    let (secs, _) = rest.split_once(']')?;
    secs.trim().parse().ok()
}

/// The timestamp of the log's last line that has one.
fn last_stamp(log: &str) -> Option<f64> {
    log.lines().rev().find_map(stamp)
}

/// The lines of `log` that are a kernel report (vmcheck's list) and were
/// printed after `since` (all of them without it). By time, not by count:
/// the log is a ring, and an old report rotating out must not hide a new
/// one. A line without a timestamp counts.
fn kernel_reports(log: &str, since: Option<f64>) -> Vec<&str> {
    log.lines()
        .filter(|l| vmcheck::SPLATS.iter().any(|p| l.contains(p)))
        .filter(|l| match (since, stamp(l)) {
            (Some(t), Some(s)) => s > t,
            _ => true,
        })
        .collect()
}

/// After the storm, with every fd closed: the mirror's invariants, rmmod,
/// the pool's return, kmemleak.
fn end_checks(cfg: &Config, findings: &mut Vec<String>) {
    match read_to_string(&format!("{DEBUGFS}/mirror/check")) {
        Ok(s) if s == "ok\n" => println!("end: mirror/check: ok"),
        Ok(s) => findings.push(format!("mirror/check at the end: {s:?}")),
        Err(e) => findings.push(e),
    }
    if !cfg.rmmod {
        println!("end: rmmod skipped (no-rmmod)");
        return;
    }
    // Files closed by exiting children are released before wait returns;
    // still, give a straggling release a moment rather than fail at once.
    let mut e = sys::delete_module();
    for _ in 0..50 {
        if e != libc::EAGAIN {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        e = sys::delete_module();
    }
    if e != 0 {
        findings.push(format!(
            "rmmod after every fd closed: {}",
            sys::errno_name(e)
        ));
        return;
    }
    println!("end: rmmod: ok");
    match sys::kernel_log() {
        Ok(log) => match log.lines().rev().find(|l| l.contains("mirror: returning")) {
            Some(l) if l.contains("(0 were still allocated") => {
                println!("end: {}", l.trim());
            }
            Some(l) => findings.push(format!("pool not all returned: {}", l.trim())),
            None => findings.push("no 'mirror: returning' line in the kernel log".into()),
        },
        Err(e) => findings.push(e),
    }
    if std::fs::metadata(kmemleak::FILE).is_err() {
        println!("end: kmemleak: not in this kernel");
        return;
    }
    // Only leaks allocated once memlab was being loaded count; the init
    // script noted when (vmcheck::kmemleak).
    match kmemleak::scan_and_judge() {
        Ok(v) if v.leaks.is_empty() => println!("end: kmemleak: no new leaks; {}", v.aside),
        Ok(v) => {
            println!("end: kmemleak report ({}):\n{}", v.aside, v.leaks);
            findings.push("kmemleak reported leaks".into());
        }
        Err(e) => findings.push(e),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn kernel_reports_include_sysfs_duplicate_names() {
        let log = "[   23.07] rust_memlab: loaded (ABI 4)\n\
                   [   23.07] sysfs: cannot create duplicate filename '/kernel/slab/:d-0003000'\n\
                   [   23.07] Call Trace:\n\
                   [   23.08] kobject: kobject_add_internal failed for :d-0003000 with -EEXIST\n";
        let r = super::kernel_reports(log, None);
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(r[0].contains("duplicate filename") && r[1].contains("Call Trace:"));
        assert!(super::kernel_reports("[ 1.0] rust_memlab: loaded\n", None).is_empty());
    }

    #[test]
    fn kernel_reports_since_a_time_survive_rotation() {
        let start = "<4>[   10.000001] WARNING: CPU: 0 PID: 1 at old\n\
                     <6>[   12.500000] rust_memlab: loaded (ABI 4)\n";
        let t = super::last_stamp(start);
        assert_eq!(t, Some(12.5));
        // The old WARNING rotated out, a new one came: the count of report
        // lines is the same as at the start, the new one is still found.
        let end = "<6>[   12.500000] rust_memlab: loaded (ABI 4)\n\
                   <4>[   40.100000] WARNING: CPU: 1 PID: 99 at new\n";
        let r = super::kernel_reports(end, t);
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(r[0].contains("at new"));
        assert!(super::kernel_reports(start, t).is_empty());
        assert_eq!(super::stamp("no stamp here"), None);
    }
}
