// SPDX-License-Identifier: GPL-2.0

//! The real allocators' exercises (EXERCISE ioctl): every case of every
//! exercise passes. They fill debugfs `real/report`, which [`super::debugfs`]
//! checks next.

use super::open;
use crate::dev::{uapi, DEBUGFS};
use crate::names;
use crate::tap::{check, Suite};
use std::fs;

pub fn cases(s: &mut Suite) {
    s.table(
        names::EXERCISES.iter().copied(),
        |(name, _)| format!("real exercise {name}: every case passes"),
        |(name, id)| {
            let m = open()?;
            if id == uapi::MEMLAB_EX_DMA && super::kernel::is_uml() {
                // No DMA API: the exercise must say so, with ENODEV.
                return match m.exercise(id, 1) {
                    Err(e) if e.raw_os_error() == Some(libc::ENODEV) => super::kernel::need_dma(),
                    r => Err(format!("EXERCISE dma on UML: want ENODEV, got {r:?}")),
                };
            }
            let reps = if id == uapi::MEMLAB_EX_VMALLOC { 4 } else { 8 };
            let ex = m
                .exercise(id, reps)
                .map_err(|e| format!("EXERCISE {name}: {e}"))?;
            check(ex.id == id && ex.cases > 0, || format!("bad reply {ex:?}"))?;
            check(ex.median_ns <= ex.p99_ns, || {
                format!("latencies out of order: {ex:?}")
            })?;
            check(ex.passed == ex.cases, || {
                format!(
                    "{}/{} passed {ex:?}\n{}",
                    ex.passed,
                    ex.cases,
                    report_section(name)
                )
            })
        },
    );
    s.case(
        "real EXERCISE with reps 0 uses the default and succeeds",
        || {
            let ex = open()?
                .exercise(uapi::MEMLAB_EX_PAGES, 0)
                .map_err(|e| e.to_string())?;
            check(ex.reps == 32 && ex.passed == ex.cases, || format!("{ex:?}"))
        },
    );
}

/// The header and failing rows of exercise `name` in the report, for a
/// failure's diagnostic.
fn report_section(name: &str) -> String {
    let text = fs::read_to_string(format!("{DEBUGFS}/real/report")).unwrap_or_default();
    let head = format!("== {name} (");
    let mut out = String::new();
    let mut on = false;
    for line in text.lines() {
        if line.starts_with("== ") {
            on = line.starts_with(&head);
        }
        if on && (line.starts_with("==") || line.starts_with("what") || line.contains(" no ")) {
            out += line;
            out.push('\n');
        }
    }
    out
}
