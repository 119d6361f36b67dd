// SPDX-License-Identifier: GPL-2.0

//! Refusals explain themselves, end to end: `memlabctl alloc` run as a
//! user would run it, refused by the kernel, prints one line naming the
//! rule and the limit with the errno, no table header, and exits non-zero;
//! and the kernel's errno is the one the shared rules (src/request/) give.

use super::{open, BACKENDS};
use crate::dev::uapi;
use crate::explain::{self, Pinned};
use crate::tap::{check, Outcome, Suite};
use std::process::Command;

/// The cases.
pub fn cases(s: &mut Suite) {
    s.case(
        "memlabctl alloc kmalloc 0, on each backend: one line naming the size rule (EINVAL), no table, exit 1",
        || {
            for (_, bn) in BACKENDS {
                let backend = format!("backend={bn}");
                refused(
                    &["alloc", "kmalloc", "0", &backend],
                    "kmalloc size 0: size must be at least 1 (EINVAL)",
                )?;
            }
            Ok(())
        },
    );
    s.case(
        "memlabctl alloc pages order=MAX_PAGE_ORDER+1: one line naming the kernel's MAX_PAGE_ORDER (EINVAL), no table, exit 1",
        || {
            let max = super::kernel::max_page_order()?;
            refused(
                &["alloc", "pages", &format!("order={}", max + 1)],
                &format!("order {} is above MAX_PAGE_ORDER {max} (EINVAL)", max + 1),
            )
        },
    );
    s.case(
        "memlabctl alloc vmalloc 100 MiB and kmalloc 93 GiB: one line naming max_pinned_mb (E2BIG), no table, exit 1",
        over_the_cap,
    );
    s.case(
        "the kernel refuses ALLOC with the errno the shared rules give, on both backends",
        kernel_agrees_with_the_rules,
    );
}

/// Runs this memlabctl with `args`: it must fail, print nothing on
/// stdout, and print exactly `memlabctl: alloc: WANT` on stderr.
fn refused(args: &[&str], want: &str) -> Outcome {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let out = Command::new(exe)
        .args(args)
        .output()
        .map_err(|e| format!("memlabctl {}: {e}", args.join(" ")))?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let what = args.join(" ");
    check(!out.status.success(), || {
        format!("memlabctl {what} succeeded: {stdout}")
    })?;
    check(stdout.is_empty(), || {
        format!("memlabctl {what} printed on stdout: {stdout:?}")
    })?;
    let want = format!("memlabctl: alloc: {want}\n");
    check(stderr == want, || {
        format!("memlabctl {what}: stderr {stderr:?}, want {want:?}")
    })
}

fn over_the_cap() -> Outcome {
    let caps = Pinned::read().ok_or("debugfs pinned unreadable")?;
    let cap_mb = caps.max_pinned >> 20;
    for (args, bytes) in [
        (["alloc", "vmalloc", "104857600"], "100 MiB"),
        (["alloc", "kmalloc", "99999999999"], "93 GiB"),
    ] {
        let size: u64 = args[2].parse().map_err(|e| format!("{e}"))?;
        if size <= caps.max_pinned {
            return Err(format!("max_pinned_mb={cap_mb} is not below {bytes}"));
        }
        let want = format!(
            "{bytes} would pass this file's pin cap, max_pinned_mb={cap_mb} (0 B held) (E2BIG)"
        );
        refused(&args, &want)?;
    }
    Ok(())
}

fn kernel_agrees_with_the_rules() -> Outcome {
    let d = open()?;
    let caps = Pinned::read();
    let max_order = super::kernel::max_page_order()?;
    let base = uapi::MemlabAlloc {
        family: uapi::MEMLAB_FAMILY_KMALLOC,
        size: 64,
        ..Default::default()
    };
    for (backend, bn) in BACKENDS {
        for r in [
            uapi::MemlabAlloc { size: 0, ..base },
            uapi::MemlabAlloc { order: 1, ..base },
            uapi::MemlabAlloc {
                gfp: uapi::MEMLAB_GFP_DMA32,
                ..base
            },
            uapi::MemlabAlloc {
                family: uapi::MEMLAB_FAMILY_PAGES,
                size: 0,
                order: max_order + 1,
                ..base
            },
            uapi::MemlabAlloc {
                family: uapi::MEMLAB_FAMILY_KMEM_CACHE,
                align: 48,
                ..base
            },
            uapi::MemlabAlloc {
                family: uapi::MEMLAB_FAMILY_VMALLOC,
                size: 1 << 40,
                ..base
            },
            uapi::MemlabAlloc {
                reserved: 1,
                ..base
            },
        ] {
            let r = uapi::MemlabAlloc { backend, ..r };
            let why = explain::alloc_refusal(&r, 0, 0, caps.as_ref())
                .ok_or_else(|| format!("{bn}: the rules pass {r:?}"))?;
            match d.alloc(&r) {
                Ok(h) => {
                    let _ = d.free(h);
                    return Err(format!("{bn}: {r:?} succeeded, the rules say {why}"));
                }
                Err(e) => {
                    let said = explain::explained(&e, Some(why));
                    check(said == explain::line(why), || {
                        format!(
                            "{bn}: {r:?}: kernel {e}, the rules say {why} ({})",
                            why.errno_name()
                        )
                    })?;
                }
            }
        }
    }
    Ok(())
}
