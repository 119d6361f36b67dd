// SPDX-License-Identifier: GPL-2.0

//! A minimal TAP producer: plan first, so a crash leaves a short run that the
//! host treats as a failure.

use std::io::Write;

/// Outcome of one test: `Ok(())` passes, `Err(why)` fails with a diagnostic,
/// except that an `Err` starting with [`SKIP`] is reported as a TAP skip
/// (the host counts those apart, never as passed).
pub type Outcome = Result<(), String>;

/// Prefix of an `Err` that means "cannot run here", not "failed".
pub const SKIP: &str = "SKIP: ";

/// One named test.
pub struct Case {
    pub name: &'static str,
    pub run: Box<dyn FnOnce() -> Outcome>,
}

/// Runs `cases` in order, printing TAP. Returns the number of failures.
pub fn run(cases: Vec<Case>) -> usize {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "TAP version 13");
    let _ = writeln!(out, "1..{}", cases.len());
    let mut failed = 0;
    for (i, case) in cases.into_iter().enumerate() {
        match (case.run)() {
            Ok(()) => {
                let _ = writeln!(out, "ok {} - {}", i + 1, case.name);
            }
            Err(why) if why.starts_with(SKIP) => {
                let _ = writeln!(
                    out,
                    "ok {} - {} # SKIP {}",
                    i + 1,
                    case.name,
                    &why[SKIP.len()..]
                );
            }
            Err(why) => {
                failed += 1;
                let _ = writeln!(out, "not ok {} - {}", i + 1, case.name);
                for line in why.lines() {
                    let _ = writeln!(out, "# {line}");
                }
            }
        }
        let _ = out.flush();
    }
    failed
}

/// Fails with `what` unless `cond`.
pub fn check(cond: bool, what: impl FnOnce() -> String) -> Outcome {
    if cond {
        Ok(())
    } else {
        Err(what())
    }
}
