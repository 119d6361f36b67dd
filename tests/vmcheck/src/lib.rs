// SPDX-License-Identifier: GPL-2.0

//! Judges the console log of one memlab VM run.
//!
//! A run passes only if the guest printed a TAP plan and exactly that many
//! results, none `not ok`; the init script's `MEMLAB-EXIT:` sentinel says 0;
//! and the kernel printed no splat: a test that "passes" while the kernel
//! warned, oopsed, or reported a KASAN, lockdep or kmemleak finding did not
//! pass.

pub mod kmemleak;

/// Console substrings that mean the kernel found something wrong.
pub const SPLATS: &[&str] = &[
    "BUG:",
    "WARNING:",
    "Oops",
    "KASAN",
    "kernel BUG",
    "Kernel panic",
    "general protection fault",
    "possible circular locking",
    "possible recursive locking",
    "inconsistent lock state",
    "lockdep",
    "unreferenced object",
    "sleeping function called from invalid context",
    "Call Trace:",
    // sysfs_warn_dup: a stack dump follows, but not as a WARNING.
    "cannot create duplicate filename",
    "UBSAN",
    // Hung tasks and RCU stalls: at loglevel=5 the stack after them may
    // not print, so the first line must be enough.
    "blocked for more than",
    "detected stalls on CPUs/tasks",
    "detected stall on CPU",
    "self-detected stall on CPU",
    "rcu_preempt detected stalls",
    "rcu_sched detected stalls",
    "soft lockup",
    "hard LOCKUP",
];

/// One judged item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// `None` if it passed, else why it failed.
    pub failure: Option<String>,
    /// A TAP `# SKIP`: neither passed nor failed.
    pub skipped: bool,
}

impl Check {
    fn pass(name: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            failure: None,
            skipped: false,
        }
    }
    fn fail(name: impl Into<String>, why: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            failure: Some(why.into()),
            skipped: false,
        }
    }
    fn skip(name: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            failure: None,
            skipped: true,
        }
    }
}

/// Parses `ok N - name` / `not ok N - name` (directives after `#` ignored).
fn tap_result(line: &str) -> Option<(bool, u32, &str)> {
    let (ok, rest) = if let Some(r) = line.strip_prefix("not ok ") {
        (false, r)
    } else if let Some(r) = line.strip_prefix("ok ") {
        (true, r)
    } else {
        return None;
    };
    let (num, name) = rest.split_once(' ').unwrap_or((rest, ""));
    let num = num.parse().ok()?;
    Some((ok, num, name.trim_start_matches("- ").trim()))
}

/// Judges `log`, the guest console with `\r` already removed. `tap` says
/// whether this run was expected to produce TAP (the test command) or not
/// (the demo).
pub fn judge(log: &str, tap: bool) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut plan: Option<u32> = None;
    let mut seen = 0u32;
    let mut exit: Option<String> = None;
    let mut splats = Vec::new();
    for line in log.lines() {
        if let Some(n) = line.strip_prefix("1..") {
            if let Ok(n) = n.trim().parse() {
                plan = Some(n);
            }
        } else if let Some((ok, num, name)) = tap_result(line) {
            seen += 1;
            let skip = name.contains("# SKIP");
            let name = format!("vm {num}: {name}");
            checks.push(match (ok, skip) {
                (true, true) => Check::skip(name),
                (true, false) => Check::pass(name),
                (false, _) => Check::fail(name, "not ok"),
            });
        } else if let Some(s) = line.strip_prefix("MEMLAB-EXIT: ") {
            exit = Some(s.trim().to_string());
        }
        if SPLATS.iter().any(|p| line.contains(p)) {
            splats.push(line.to_string());
        }
    }
    if tap {
        checks.push(match plan {
            None => Check::fail("vm: TAP plan", "no TAP plan (1..N) in the console"),
            Some(n) if n != seen => Check::fail(
                "vm: TAP plan",
                format!("plan was 1..{n} but {seen} results arrived"),
            ),
            Some(0) => Check::fail("vm: TAP plan", "empty plan: no test ran"),
            Some(_) => Check::pass("vm: TAP plan complete"),
        });
    }
    checks.push(match exit.as_deref() {
        Some("0") => Check::pass("vm: guest exit status 0"),
        Some(s) => Check::fail(
            "vm: guest exit status",
            format!("guest exited with status {s}"),
        ),
        None => Check::fail(
            "vm: guest exit status",
            "no MEMLAB-EXIT line: guest died or hung",
        ),
    });
    checks.push(if splats.is_empty() {
        Check::pass("vm: console free of BUG/WARNING/Oops/KASAN/lockdep/kmemleak reports")
    } else {
        Check::fail("vm: console clean", splats.join("\n"))
    });
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str =
        "MEMLAB: kernel 7.2.13\nTAP version 13\n1..2\nok 1 - a\nok 2 - b\nMEMLAB-EXIT: 0\n";

    fn failures(c: &[Check]) -> Vec<&str> {
        c.iter()
            .filter(|c| c.failure.is_some())
            .map(|c| c.name.as_str())
            .collect()
    }

    #[test]
    fn clean_run_passes() {
        let c = judge(GOOD, true);
        assert_eq!(c.len(), 5);
        assert!(failures(&c).is_empty(), "{c:?}");
    }

    #[test]
    fn not_ok_fails() {
        let c = judge(&GOOD.replace("ok 2 - b", "not ok 2 - b"), true);
        assert_eq!(failures(&c), ["vm 2: b"]);
    }

    #[test]
    fn short_run_fails() {
        let c = judge(&GOOD.replace("ok 2 - b\n", ""), true);
        assert_eq!(failures(&c), ["vm: TAP plan"]);
    }

    #[test]
    fn missing_plan_fails_but_demo_needs_none() {
        let log = GOOD.replace("1..2\n", "");
        assert_eq!(failures(&judge(&log, true)), ["vm: TAP plan"]);
        assert!(failures(&judge("MEMLAB-EXIT: 0\n", false)).is_empty());
    }

    #[test]
    fn nonzero_or_missing_exit_fails() {
        let c = judge(&GOOD.replace("EXIT: 0", "EXIT: 1"), true);
        assert_eq!(failures(&c), ["vm: guest exit status"]);
        let c = judge(&GOOD.replace("MEMLAB-EXIT: 0\n", ""), true);
        assert_eq!(failures(&c), ["vm: guest exit status"]);
    }

    #[test]
    fn kernel_splats_fail() {
        for splat in [
            "[    3.1] WARNING: CPU: 0 PID: 1 at rust_memlab.rs:42 init",
            "[    3.1] BUG: KASAN: slab-out-of-bounds in foo",
            "[    3.1] Oops: general protection fault",
            "unreferenced object 0xffff888003a1c000 (size 64):",
            "[    3.1] WARNING: possible circular locking dependency detected",
            "[   61.2] sysfs: cannot create duplicate filename '/kernel/slab/:d-0000512'",
        ] {
            fails_console_judge(splat);
        }
    }

    /// A console whose only fault is `splat` fails the judge on exactly
    /// that line.
    fn fails_console_judge(splat: &str) {
        let log = GOOD.replace("ok 2 - b\n", &format!("ok 2 - b\n{splat}\n"));
        let c = judge(&log, true);
        assert_eq!(failures(&c), ["vm: console clean"], "{splat}");
        assert_eq!(
            c.last().and_then(|c| c.failure.clone()).as_deref(),
            Some(splat)
        );
    }

    #[test]
    fn hung_tasks_and_rcu_stalls_fail() {
        for splat in [
            "[  123.4] INFO: task memlabctl:97 blocked for more than 122 seconds.",
            "[  123.4] rcu: INFO: rcu_sched detected stalls on CPUs/tasks:",
            "[  123.4] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
            "[  123.4] rcu: INFO: rcu_preempt self-detected stall on CPU",
            "[  123.4] rcu: INFO: rcu_sched self-detected stall on CPU",
            "[  123.4] watchdog: BUG: soft lockup - CPU#1 stuck for 26s! [memlabctl:97]",
        ] {
            fails_console_judge(splat);
        }
        // Ordinary boot lines that mention the same subsystems pass.
        for fine in [
            "[    0.1] rcu: Preemptible hierarchical RCU implementation.",
            "[    0.1] rcu: \tRCU CPU stall warnings timeout set to 100 (rcu_cpu_stall_timeout).",
            "[    0.2] khungtaskd: hung_task_timeout_secs 120",
        ] {
            let log = GOOD.replace("ok 2 - b\n", &format!("ok 2 - b\n{fine}\n"));
            assert!(failures(&judge(&log, true)).is_empty(), "{fine}");
        }
    }

    #[test]
    fn skips_are_neither_passed_nor_failed() {
        let c = judge(
            &GOOD.replace("ok 2 - b", "ok 2 - b # SKIP no kmemleak"),
            true,
        );
        assert!(failures(&c).is_empty());
        assert_eq!(c.iter().filter(|c| c.skipped).count(), 1);
        // A failing test stays failed even if it claims to be skipped.
        let c = judge(&GOOD.replace("ok 2 - b", "not ok 2 - b # SKIP x"), true);
        assert_eq!(failures(&c), ["vm 2: b # SKIP x"]);
    }

    #[test]
    fn tap_parsing() {
        assert_eq!(tap_result("ok 3 - x y"), Some((true, 3, "x y")));
        assert_eq!(tap_result("not ok 12 - z"), Some((false, 12, "z")));
        assert_eq!(tap_result("okay 1"), None);
        assert_eq!(tap_result("ok x"), None);
    }
}
