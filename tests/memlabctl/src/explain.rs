// SPDX-License-Identifier: GPL-2.0

//! Refusals that explain themselves: when the kernel refuses a request
//! with EINVAL or E2BIG, the same rules (src/request/, compiled here from
//! the same files as in the module) say which one failed, with the value
//! and the limit, and the errno is kept: "order 11 is above MAX_PAGE_ORDER
//! 10 (EINVAL)". An E2BIG the rules do not explain is a cap: this file's
//! `max_pinned_mb`, the module's `max_pinned_total_mb` (read from debugfs
//! `pinned`) or the handle limit.

use crate::dev::{uapi, DEBUGFS};
use memlab_core::request::{
    check_pin_cap,
    replay::{decode, ids_needed, plan, ReplayRequest},
    AllocRequest, Refusal, RequestError,
};
use std::{fs, io};

/// Most live handles one open file may hold (`src/chardev.rs`).
pub const MAX_HANDLES: usize = 1024;

/// The errno a refusal maps to, as the kernel returns it.
fn errno(r: Refusal) -> i32 {
    match r.error() {
        RequestError::Invalid => libc::EINVAL,
        RequestError::TooBig => libc::E2BIG,
    }
}

/// `r` as the one line the user reads: the rule, the limit, the errno.
pub fn line(r: Refusal) -> String {
    format!("{r} ({})", r.errno_name())
}

/// The kernel's error `err`, explained by `local` if the rules run here
/// refused with the same errno; else the error as it came.
pub fn explained(err: &io::Error, local: Option<Refusal>) -> String {
    match local {
        Some(r) if err.raw_os_error() == Some(errno(r)) => line(r),
        _ => err.to_string(),
    }
}

/// The module's caps, from debugfs `pinned`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pinned {
    /// `max_pinned_mb`, in bytes.
    pub max_pinned: u64,
    /// `max_pinned_total_mb`, in bytes.
    pub max_total: u64,
    /// What all files and running exercises hold now.
    pub total: u64,
}

impl Pinned {
    /// Parses the `name value` lines of debugfs `pinned`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut p = Pinned::default();
        for line in text.lines() {
            let (name, value) = line.split_once(' ')?;
            let v: u64 = value.trim().parse().ok()?;
            match name {
                "max_pinned_bytes" => p.max_pinned = v,
                "max_pinned_total_bytes" => p.max_total = v,
                "pinned_total_bytes" => p.total = v,
                _ => {}
            }
        }
        (p.max_pinned != 0 && p.max_total != 0).then_some(p)
    }

    /// Reads debugfs `pinned`, if debugfs is there.
    pub fn read() -> Option<Self> {
        Pinned::parse(&fs::read_to_string(format!("{DEBUGFS}/pinned")).ok()?)
    }
}

/// Why ALLOC `req` may be refused, on a file holding `held` bytes in
/// `handles` handles under the caps `caps`: a rule of the request, then the
/// file's cap, the module's budget and the handle limit, in the kernel's
/// order.
pub fn alloc_refusal(
    req: &uapi::MemlabAlloc,
    held: u64,
    handles: usize,
    caps: Option<&Pinned>,
) -> Option<Refusal> {
    let r = match AllocRequest::try_from(req) {
        Ok(r) => r,
        Err(refused) => return Some(refused),
    };
    let caps = caps?;
    let bytes = r.bytes() as u64;
    if let Err(refused) = check_pin_cap(bytes, held, caps.max_pinned) {
        return Some(refused);
    }
    if handles >= MAX_HANDLES {
        return Some(Refusal::Handles(MAX_HANDLES as u32));
    }
    (bytes > caps.max_total.saturating_sub(caps.total)).then_some(Refusal::TotalCap {
        bytes,
        pinned: caps.total,
        cap: caps.max_total,
    })
}

/// Why the kernel may refuse to replay `steps` (as `Memlab::replay` sends
/// them, without samples): the header's rules, then each step's (with the
/// step's number, from 1), then the id pairing and the cache bound.
pub fn replay_refusal(steps: &[uapi::MemlabReplayStep]) -> Option<(Option<usize>, Refusal)> {
    let q = uapi::MemlabReplay {
        steps: 1,
        steps_len: std::mem::size_of_val(steps) as u64,
        backend: uapi::MEMLAB_BACKEND_REAL,
        zone: uapi::MEMLAB_ZONE_NORMAL,
        ..Default::default()
    };
    if let Err(r) = ReplayRequest::try_from(&q) {
        return Some((None, r));
    }
    for (i, s) in steps.iter().enumerate() {
        if let Err(r) = decode(s) {
            return Some((Some(i + 1), r));
        }
    }
    let mut live = vec![0u64; ids_needed(steps)];
    plan(steps, &mut live).err().map(|r| (None, r))
}

/// The kernel's error `err` for a replay of `steps`, explained as
/// [`explained`] does.
pub fn replay_explained(err: &io::Error, steps: &[uapi::MemlabReplayStep]) -> String {
    match replay_refusal(steps) {
        Some((step, r)) if err.raw_os_error() == Some(errno(r)) => match step {
            Some(i) => format!("step {i}: {}", line(r)),
            None => line(r),
        },
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kmalloc(size: u64) -> uapi::MemlabAlloc {
        uapi::MemlabAlloc {
            family: uapi::MEMLAB_FAMILY_KMALLOC,
            size,
            ..Default::default()
        }
    }

    const CAPS: Pinned = Pinned {
        max_pinned: 64 << 20,
        max_total: 256 << 20,
        total: 0,
    };

    #[test]
    fn the_rules_and_the_caps_explain_a_refusal() {
        let einval = io::Error::from_raw_os_error(libc::EINVAL);
        let e2big = io::Error::from_raw_os_error(libc::E2BIG);
        let why = |r, held, n| alloc_refusal(&r, held, n, Some(&CAPS));
        assert_eq!(
            explained(&einval, why(kmalloc(0), 0, 0)),
            "kmalloc size 0: size must be at least 1 (EINVAL)"
        );
        let pages = uapi::MemlabAlloc {
            family: uapi::MEMLAB_FAMILY_PAGES,
            order: 11,
            ..Default::default()
        };
        assert_eq!(
            explained(&einval, why(pages, 0, 0)),
            "order 11 is above MAX_PAGE_ORDER 10 (EINVAL)"
        );
        let vmalloc = uapi::MemlabAlloc {
            family: uapi::MEMLAB_FAMILY_VMALLOC,
            size: 104_857_600,
            ..Default::default()
        };
        assert_eq!(
            explained(&e2big, why(vmalloc, 0, 0)),
            "100 MiB would pass this file's pin cap, max_pinned_mb=64 (0 B held) (E2BIG)"
        );
        assert_eq!(
            explained(&e2big, why(kmalloc(99_999_999_999), 0, 0)),
            "93 GiB would pass this file's pin cap, max_pinned_mb=64 (0 B held) (E2BIG)"
        );
        assert_eq!(
            why(kmalloc(64), 0, MAX_HANDLES),
            Some(Refusal::Handles(1024))
        );
        let busy = Pinned {
            total: 250 << 20,
            ..CAPS
        };
        assert!(matches!(
            alloc_refusal(&kmalloc(8 << 20), 0, 0, Some(&busy)),
            Some(Refusal::TotalCap { .. })
        ));
        // The errno must agree, or the error is shown as it came.
        let enomem = io::Error::from_raw_os_error(libc::ENOMEM);
        assert_eq!(
            explained(&enomem, why(kmalloc(0), 0, 0)),
            enomem.to_string()
        );
        assert_eq!(explained(&e2big, why(kmalloc(64), 0, 0)), e2big.to_string());
        assert_eq!(alloc_refusal(&kmalloc(1 << 30), 0, 0, None), None);
    }

    #[test]
    fn pinned_parses_debugfs() {
        let p = Pinned::parse(
            "max_pinned_bytes 67108864\nmax_pinned_total_bytes 268435456\npinned_total_bytes 4096\n",
        );
        assert_eq!(
            p,
            Some(Pinned {
                max_pinned: 64 << 20,
                max_total: 256 << 20,
                total: 4096
            })
        );
        assert_eq!(Pinned::parse("garbage"), None);
    }

    #[test]
    fn a_replay_refusal_names_the_step() {
        let alloc = |id, arg| uapi::MemlabReplayStep {
            op: uapi::MEMLAB_REPLAY_ALLOC,
            family: uapi::MEMLAB_FAMILY_PAGES,
            id,
            arg,
            ..Default::default()
        };
        let free = |id| uapi::MemlabReplayStep {
            op: uapi::MEMLAB_REPLAY_FREE,
            id,
            ..Default::default()
        };
        let einval = io::Error::from_raw_os_error(libc::EINVAL);
        let e2big = io::Error::from_raw_os_error(libc::E2BIG);
        assert_eq!(replay_refusal(&[alloc(0, 1), free(0)]), None);
        assert_eq!(
            replay_explained(&e2big, &[alloc(0, 1), alloc(1, 11)]),
            "step 2: order 11 is above MAX_PAGE_ORDER 10 (E2BIG)"
        );
        assert_eq!(
            replay_explained(&einval, &[free(4)]),
            "free of id 4, which is not live (EINVAL)"
        );
        assert_eq!(
            replay_explained(&einval, &[]),
            "steps_len 0 is not a non-zero multiple of 24 (struct memlab_replay_step) (EINVAL)"
        );
        assert_eq!(replay_explained(&e2big, &[free(4)]), e2big.to_string());
    }
}
