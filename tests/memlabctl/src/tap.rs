// SPDX-License-Identifier: GPL-2.0

//! A minimal TAP producer and the one way tests are declared: a [`Suite`]
//! collects named cases, one at a time ([`Suite::case`]) or one per row of a
//! table ([`Suite::table`]), and runs them in order, plan first, so a crash
//! leaves a short run that the host (tests/vmcheck) treats as a failure.

use std::cell::RefCell;
use std::io::Write;
use std::time::{Duration, Instant};

/// Cases that take at least this long report their time (see [`Suite::run`]).
pub const SLOW: Duration = Duration::from_millis(500);

/// Outcome of one test: `Ok(())` passes, `Err(why)` fails with a diagnostic,
/// except that an `Err` starting with [`SKIP`] is reported as a TAP skip
/// (the host counts those apart, never as passed).
pub type Outcome = Result<(), String>;

/// Prefix of an `Err` that means "cannot run here", not "failed".
pub const SKIP: &str = "SKIP: ";

thread_local! {
    /// What the running case measured, for its TAP line (see [`note`]).
    static NOTE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Adds `text` to the TAP line of the case that is running, after its name
/// and a `; ` (pass or fail alike): for what a case observed, such as the
/// CPUs its workers ran on. `#` and newlines become spaces, since TAP gives
/// them a meaning there.
pub fn note(text: impl Into<String>) {
    let text: String = text
        .into()
        .chars()
        .map(|c| if c == '#' || c == '\n' { ' ' } else { c })
        .collect();
    NOTE.with(|n| *n.borrow_mut() = Some(text));
}

/// One named test.
pub struct Case {
    pub name: String,
    run: Box<dyn FnOnce() -> Outcome>,
}

/// Test cases in the order they run.
#[derive(Default)]
pub struct Suite {
    cases: Vec<Case>,
}

impl Suite {
    /// Adds one case.
    pub fn case(&mut self, name: impl Into<String>, run: impl FnOnce() -> Outcome + 'static) {
        let name = name.into();
        debug_assert!(
            !name.contains('#') && !name.contains('\n'),
            "a TAP name holds no '#' or newline: {name:?}"
        );
        self.cases.push(Case {
            name,
            run: Box::new(run),
        });
    }

    /// Adds one case per row: `name` titles the row, `run` tests it.
    pub fn table<R: 'static>(
        &mut self,
        rows: impl IntoIterator<Item = R>,
        name: impl Fn(&R) -> String,
        run: fn(R) -> Outcome,
    ) {
        for row in rows {
            let title = name(&row);
            self.case(title, move || run(row));
        }
    }

    /// Keeps only the cases whose name `keep` accepts, in order.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.cases.retain(|c| keep(&c.name));
    }

    /// The case names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.cases.iter().map(|c| c.name.as_str())
    }

    /// Runs the cases in order, printing TAP to `out`. A case that took at
    /// least [`SLOW`] gets a `# time:` diagnostic line after its result, so a
    /// console shows where a slow suite spends its time. Returns the number
    /// of failures.
    pub fn run(self, out: &mut impl Write) -> usize {
        let _ = writeln!(out, "TAP version 13");
        let _ = writeln!(out, "1..{}", self.cases.len());
        let mut failed = 0;
        for (i, case) in self.cases.into_iter().enumerate() {
            let n = i + 1;
            NOTE.with(|n| n.borrow_mut().take());
            let start = Instant::now();
            let outcome = (case.run)();
            let took = start.elapsed();
            let title = match NOTE.with(|n| n.borrow_mut().take()) {
                Some(note) => format!("{}; {note}", case.name),
                None => case.name,
            };
            match outcome {
                Ok(()) => {
                    let _ = writeln!(out, "ok {n} - {title}");
                }
                Err(why) if why.starts_with(SKIP) => {
                    let _ = writeln!(out, "ok {n} - {title} # SKIP {}", &why[SKIP.len()..]);
                }
                Err(why) => {
                    failed += 1;
                    let _ = writeln!(out, "not ok {n} - {title}");
                    for line in why.lines() {
                        let _ = writeln!(out, "# {line}");
                    }
                }
            }
            if took >= SLOW {
                let _ = writeln!(out, "# time: {:.1} s", took.as_secs_f64());
            }
            let _ = out.flush();
        }
        failed
    }
}

/// Fails with `what` unless `cond`.
pub fn check(cond: bool, what: impl FnOnce() -> String) -> Outcome {
    if cond {
        Ok(())
    } else {
        Err(what())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Suite {
        let mut s = Suite::default();
        s.case("passes", || Ok(()));
        s.table(
            [1u32, 2],
            |n| format!("row {n}"),
            |n| check(n == 1, || format!("{n} is not 1\nsecond line")),
        );
        s.case("skips", || Err(format!("{SKIP}not here")));
        s.case("notes", || {
            note("ran on CPUs 0,1 # not a directive");
            Err("one CPU".into())
        });
        s
    }

    #[test]
    fn tap_output_is_what_vmcheck_reads() {
        let mut out = Vec::new();
        assert_eq!(sample().run(&mut out), 2);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "TAP version 13\n1..5\nok 1 - passes\nok 2 - row 1\nnot ok 3 - row 2\n\
             # 2 is not 1\n# second line\nok 4 - skips # SKIP not here\n\
             not ok 5 - notes; ran on CPUs 0,1   not a directive\n# one CPU\n"
        );
        let checks = vmcheck::judge(&format!("{text}MEMLAB-EXIT: 0\n"), true);
        let failed: Vec<_> = checks
            .iter()
            .filter(|c| c.failure.is_some())
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            failed,
            [
                "vm 3: row 2",
                "vm 5: notes; ran on CPUs 0,1   not a directive"
            ]
        );
        assert_eq!(checks.iter().filter(|c| c.skipped).count(), 1);
        assert!(checks.iter().any(|c| c.name == "vm: TAP plan complete"));
    }

    #[test]
    fn retain_keeps_the_matching_cases_in_order() {
        let mut s = sample();
        s.retain(|n| n.starts_with("row") || n == "notes");
        assert_eq!(s.names().collect::<Vec<_>>(), ["row 1", "row 2", "notes"]);
        let mut out = Vec::new();
        assert_eq!(s.run(&mut out), 2);
        assert!(String::from_utf8(out)
            .unwrap()
            .starts_with("TAP version 13\n1..3\n"));
    }

    #[test]
    fn names_and_plan() {
        let s = sample();
        assert_eq!(
            s.names().collect::<Vec<_>>(),
            ["passes", "row 1", "row 2", "skips", "notes"]
        );
    }
}
