// SPDX-License-Identifier: GPL-2.0

//! Counters every process of the run shares (one `MAP_SHARED` mapping made
//! before the first fork): calls by command and errno, and the findings.

use crate::sys::errno_name;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

/// What a call was, for the per-command table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Version,
    Alloc,
    Free,
    Inspect,
    Exercise,
    Workload,
    Replay,
    Session,
    /// Unknown command numbers, and known ones with a wrong size or direction.
    BadCmd,
    /// A known command with a NULL, unmapped, read-only, kernel or
    /// straddling pointer.
    BadPtr,
}

pub const KINDS: [(Kind, &str); 10] = [
    (Kind::Version, "VERSION"),
    (Kind::Alloc, "ALLOC"),
    (Kind::Free, "FREE"),
    (Kind::Inspect, "INSPECT"),
    (Kind::Exercise, "EXERCISE"),
    (Kind::Workload, "WORKLOAD"),
    (Kind::Replay, "REPLAY"),
    (Kind::Session, "SESSION"),
    (Kind::BadCmd, "bad command nr"),
    (Kind::BadPtr, "bad pointer"),
];

/// Errno values counted one by one; larger ones share the last slot.
pub const NERRNO: usize = 140;

/// The errnos an ioctl of `/dev/memlab` may return; anything else is a
/// finding.
pub const EXPECTED: [i32; 8] = [
    0,
    libc::EINVAL,
    libc::E2BIG,
    libc::ENOMEM,
    libc::EFAULT,
    libc::ENOTTY,
    libc::ENODEV,
    libc::EBUSY,
];

/// Calls timed separately, for the latency table: ALLOC by family.
pub const TIMED: [&str; 16] = [
    "VERSION",
    "ALLOC kmalloc",
    "ALLOC vmalloc",
    "ALLOC pages",
    "ALLOC kmem_cache",
    "ALLOC dma",
    "ALLOC bad family",
    "FREE",
    "INSPECT",
    "EXERCISE (real)",
    "EXERCISE (bad)",
    "WORKLOAD",
    "bad command nr",
    "bad pointer",
    "REPLAY",
    "SESSION",
];

/// The shared counters; all zero at the start (a fresh anonymous mapping).
#[repr(C)]
pub struct Stats {
    /// Set by the parent at the deadline (or on a finding with --stop-on-error).
    pub stop: AtomicU32,
    pub ioctls: AtomicU64,
    pub by: [[AtomicU64; NERRNO]; KINDS.len()],
    pub unexpected: AtomicU64,
    pub reopens: AtomicU64,
    pub forks: AtomicU64,
    pub bursts: AtomicU64,
    pub exercises: AtomicU64,
    pub dbg_reads: AtomicU64,
    pub dbg_bytes: AtomicU64,
    pub dbg_errors: AtomicU64,
    pub check_reads: AtomicU64,
    pub check_bad: AtomicU64,
    pub rmmod_busy: AtomicU64,
    pub rmmod_wrong: AtomicU64,
    /// CLOCK_MONOTONIC ms before which no real exercise may start.
    pub next_exercise_ms: AtomicU64,
    /// Per [`TIMED`] entry: calls, total ns, most ns.
    pub time: [[AtomicU64; 3]; TIMED.len()],
}

impl Stats {
    pub fn stopped(&self) -> bool {
        self.stop.load(Relaxed) != 0
    }

    /// Runs `f` (one ioctl) and adds its time to [`TIMED`] entry `t`.
    pub fn timed(&self, t: usize, f: impl FnOnce() -> i32) -> i32 {
        let start = std::time::Instant::now();
        let e = f();
        let ns = start.elapsed().as_nanos() as u64;
        let [n, total, max] = &self.time[t];
        n.fetch_add(1, Relaxed);
        total.fetch_add(ns, Relaxed);
        max.fetch_max(ns, Relaxed);
        e
    }

    /// Counts one call of `kind` that returned `errno` (0: success).
    pub fn record(&self, kind: Kind, errno: i32) {
        let e = (errno.max(0) as usize).min(NERRNO - 1);
        self.by[kind as usize][e].fetch_add(1, Relaxed);
        self.ioctls.fetch_add(1, Relaxed);
    }

    /// A finding: counted, and the first few printed with what led to it.
    pub fn unexpected(&self, what: std::fmt::Arguments<'_>) {
        let n = self.unexpected.fetch_add(1, Relaxed);
        if n < 20 {
            eprintln!("fuzz: UNEXPECTED [pid {}] {what}", std::process::id());
        }
    }

    /// Counts the call and flags an errno outside [`EXPECTED`].
    pub fn judge(&self, kind: Kind, cmd: u32, arg: usize, errno: i32) {
        self.record(kind, errno);
        if !EXPECTED.contains(&errno) {
            self.unexpected(format_args!(
                "{kind:?} cmd {cmd:#x} arg {arg:#x}: {}",
                errno_name(errno)
            ));
        }
    }

    /// Prints the per-command table and the errno histogram.
    pub fn print_table(&self) {
        let cols = [
            0,
            libc::EINVAL,
            libc::E2BIG,
            libc::ENOMEM,
            libc::EFAULT,
            libc::ENOTTY,
        ];
        print!("{:<16} {:>10}", "command", "calls");
        for e in cols {
            print!(" {:>9}", errno_name(e));
        }
        println!(" {:>9}", "other");
        let mut total = [0u64; NERRNO];
        for (kind, name) in KINDS {
            let row: Vec<u64> = self.by[kind as usize]
                .iter()
                .map(|c| c.load(Relaxed))
                .collect();
            let calls: u64 = row.iter().sum();
            print!("{name:<16} {calls:>10}");
            for e in cols {
                print!(" {:>9}", row[e as usize]);
            }
            let other: u64 = calls - cols.iter().map(|&e| row[e as usize]).sum::<u64>();
            println!(" {other:>9}");
            for (t, r) in total.iter_mut().zip(&row) {
                *t += r;
            }
        }
        let hist: Vec<String> = total
            .iter()
            .enumerate()
            .filter(|(_, &n)| n != 0)
            .map(|(e, n)| format!("{} {n}", errno_name(e as i32)))
            .collect();
        println!("errno histogram: {}", hist.join(", "));
        println!(
            "{:<16} {:>10} {:>10} {:>10} {:>8}",
            "timed call", "calls", "mean us", "max us", "time %"
        );
        let all: u64 = self
            .time
            .iter()
            .map(|t| t[1].load(Relaxed))
            .sum::<u64>()
            .max(1);
        for (name, [n, total, max]) in TIMED.iter().zip(&self.time) {
            let (n, total) = (n.load(Relaxed), total.load(Relaxed));
            println!(
                "{name:<16} {n:>10} {:>10} {:>10} {:>8.1}",
                total / n.max(1) / 1000,
                max.load(Relaxed) / 1000,
                total as f64 * 100.0 / all as f64
            );
        }
    }
}
